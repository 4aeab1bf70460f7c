"""What lucid_jit changes in the process it runs in, all of it here, made once, when the cpu
backend is first created (never at import), and each opted out of by an environment variable.

A library shares its process with others (NumPy, SciPy, PyTorch, numba code of its own): it must
not slow them down. So lucid_jit sets no process-wide environment variable: an
`OMP_WAIT_POLICY` or `OPENBLAS_THREAD_TIMEOUT` left in `os.environ` is read by every OpenMP
runtime and OpenBLAS that loads later (a PyTorch imported afterwards ran small steps 5-7x slower
with a passive OpenMP policy). What it does instead:

- BLAS: compiled matmuls call SciPy's OpenBLAS (through numba's `np.dot`), a library separate
  from NumPy's. Its worker threads spin for about 0.1 s after each call, and on a small machine
  they then fight NumPy's pool (eager code, host ops between native segments) and the next
  native call: a CNN training step measured 2.1x slower. `prepare_cpu` loads SciPy's BLAS with
  `OPENBLAS_THREAD_TIMEOUT=4` set for that load only (the variable is read once, when the
  library loads), so only that library's threads sleep at once; NumPy's, PyTorch's and the
  environment are untouched. The trade: a program that also calls SciPy's BLAS directly gets the
  same short spin (its threads wake for each call). If something loaded SciPy's BLAS first, or
  the user set the variable, nothing is changed. `LUCID_JIT_BLAS_TUNE=0` opts out.
- malloc: see `tune_malloc` (`LUCID_JIT_MALLOC_TUNE=0` opts out).
- numba's thread pool (parallel loops over large arrays): numba's own choice among its
  threading layers, with TBB made loadable. numba prefers TBB when it can load it, but the `tbb`
  wheel (a dependency) puts `libtbb.so.12` in `<prefix>/lib`, where the dynamic loader does not
  look; `load_tbb` loads it from there first. With GNU OpenMP instead, a process that forks after
  its parallel loops ran (a DataLoader's workers, a `multiprocessing.Pool`) kills the child that
  calls them ("fork() called from a process already using GNU OpenMP"); TBB survives fork and
  serves concurrent callers. Nothing is set: `NUMBA_THREADING_LAYER` still decides, and a
  process whose numba already started its threads keeps them.
"""

from __future__ import annotations

import os
import sys

_DONE: set[str] = set()
BLAS_MODULE = "scipy.linalg.cython_blas"


def prepare_cpu() -> None:
    """Once per process: SciPy's BLAS with short-spinning threads, and malloc's thresholds."""
    if "cpu" in _DONE:
        return
    _DONE.add("cpu")
    load_blas()
    tune_malloc()
    load_tbb()
    from lucid import methods

    if methods._THREADS:  # lucid.set_num_threads before numba was loaded
        import numba

        numba.set_num_threads(min(methods._THREADS[0], numba.config.NUMBA_NUM_THREADS))


def load_tbb() -> bool:
    """Make numba's TBB threading layer loadable (see the module docstring). True when the
    library was loaded here."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        path = os.path.join(prefix, "lib", "libtbb.so.12")
        if os.path.exists(path):
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            except OSError:
                continue
            return True
    return False


def load_blas() -> bool:
    """Load SciPy's BLAS (what compiled matmuls call) with its threads sleeping right after a
    call. True when this load applied the setting."""
    if (BLAS_MODULE in sys.modules or os.environ.get("LUCID_JIT_BLAS_TUNE", "1") == "0"
            or "OPENBLAS_THREAD_TIMEOUT" in os.environ):
        return False
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = "4"
    try:
        import scipy.linalg.cython_blas  # noqa: F401 (OpenBLAS reads the variable as it loads)
    except ImportError:  # numba reports a missing SciPy where it needs BLAS
        return False
    finally:
        del os.environ["OPENBLAS_THREAD_TIMEOUT"]
    return True


def tune_malloc() -> bool:
    """Keep freed large blocks in glibc's heap instead of returning them to the OS at once.

    Compiled code allocates its large intermediates (with malloc, through numba) on every call;
    above glibc's default threshold each allocation is a fresh mmap whose every page then faults
    on first touch, which measured here as most of a small CNN's forward time. Raising the mmap
    threshold to its maximum (32 MiB) and the trim threshold to 256 MiB lets those blocks be
    reused. This is process-wide (glibc has one heap): the process keeps up to 256 MiB of freed
    memory for reuse instead of returning it. Glibc only; LUCID_JIT_MALLOC_TUNE=0 leaves malloc
    alone."""
    if os.environ.get("LUCID_JIT_MALLOC_TUNE", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 32 << 20)
                    and libc.mallopt(m_trim_threshold, 256 << 20))
    except (OSError, AttributeError):  # not glibc
        return False
