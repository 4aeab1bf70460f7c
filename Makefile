# The two commands a fresh machine needs: `make demo` and `make test`. Each creates .venv on first
# use and installs the package in editable mode with the extras it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test bench lint install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,examples,distributed]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

# The CUDA tests run as their own invocation under numba's CUDA simulator (the variable must be
# set before numba is first imported). With a GPU: `.venv/bin/python -m pytest tests/cuda -m cuda`.
# The suite is mostly numba compiling (one core each), so it runs on one worker process per core
# (pytest-xdist, at most 4); the workers share the run's compile cache. `--durations` lists the
# slowest tests, to keep the whole run within CI's time budget.
TEST_WORKERS ?= auto
test: $(STAMP)
	$(BIN)/python -m pytest tests -m "not cuda" -n $(TEST_WORKERS) --maxprocesses=4 --durations=15
	NUMBA_ENABLE_CUDASIM=1 $(BIN)/python -m pytest tests/cuda -m cuda -n $(TEST_WORKERS) --maxprocesses=4 --durations=5

# OpenBLAS's core-type settings (set on some machines) select slower kernels: unset for timing.
bench: $(STAMP)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python -m benchmarks.run
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python -m benchmarks.compiled
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python -m benchmarks.neighbours
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python -m benchmarks.peers
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python -m benchmarks.latency --only seed_mlp cifar_net
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python -m benchmarks.latency --only tiny_gpt --modes async --out benchmarks/results/latency_gpt.json
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python -m benchmarks.distributed

lint: $(STAMP)
	$(BIN)/ruff check lucid lucid_jit tests examples benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
