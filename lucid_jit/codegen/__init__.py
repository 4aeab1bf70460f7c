"""Code generation: the Backend protocol and backends by name (`backend.py`), what kernels share
about a body (`body.py`), the module cache on disk (`loader.py`), compile timing
(`compiletime.py`), and the two targets, each owning its emitter, program and runtime: `cpu/`
(numba) and `cuda/` (numba-cuda)."""
