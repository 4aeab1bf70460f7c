import os
import tempfile

# Before lucid_jit is imported: a graph numba cannot compile fails the test instead of falling
# back, and compiled modules go to one cache directory for the run (shared by the subprocesses
# the tests start), not the user's.
os.environ.setdefault("LUCID_JIT_STRICT", "1")
# Most test functions run once or twice: their segments run as Python calling shared njit
# kernels. Functions called 3+ times (training loops) go native, as they do for users.
os.environ.setdefault("LUCID_JIT_NATIVE_AFTER", "3")
# Compiles happen in the calling thread, as the calls need them (tests/jit/test_compile_modes.py
# covers the default "async" mode, which compiles in worker processes).
os.environ.setdefault("LUCID_JIT_MODE", "sync")
os.environ.setdefault("LUCID_JIT_CACHE_DIR", tempfile.mkdtemp(prefix="lucid_jit_test_cache_"))
# Cold compiles are slow on a test machine: the one-time "long compile" warning would turn up in
# whichever test compiles first (tests/jit/test_explain.py checks it on its own).
os.environ.setdefault("LUCID_JIT_LONG_COMPILE_SECONDS", "1e9")
# Compile workers started by async-mode tests stop when the run ends, instead of finishing a job
# in the background (test_compile_modes.py sets it back for the test of that behaviour).
os.environ.setdefault("LUCID_JIT_FINISH_AFTER_EXIT_S", "0")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import lucid  # noqa: E402


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same random state."""
    lucid.manual_seed(0)
    np.random.seed(0)
    yield
