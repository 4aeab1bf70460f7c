"""lucid_jit: the compiler behind `lucid.compile`.

Tracing (`trace.py`) records a function's lucid ops into a graph IR (`ir/`), passes (`passes/`)
rewrite it, autodiff on the graph comes from running lucid's own autograd loop under the tracer,
and a backend (`backends.py`) runs the result: numba code generated per graph (`codegen/`) by
default. `api.py` holds `compile` and the cache of traced
entries with their guards; `explain.py` reports what the compiler did.
"""

from lucid_jit.api import (
    CompiledFunction,
    CompiledModule,
    GraphBreakError,
    GraphBreakWarning,
    compile,
)
from lucid_jit.explain import explain

__version__ = "0.1.0"
__all__ = ["compile", "explain", "CompiledFunction", "CompiledModule", "GraphBreakError",
           "GraphBreakWarning",
           "cache_info", "cache_clear"]


def cache_info() -> dict:
    """The cpu backend's module cache: its directory (`LUCID_JIT_CACHE_DIR`, by default under
    the user's cache directory), the graph and kernel modules on disk, numba's files, their size
    in bytes, the modules loaded in this process, and how many numba compiles and disk-cache
    loads this process did for them."""
    from lucid_jit.codegen import loader

    return loader.info()


def cache_clear() -> None:
    """Remove every cached module from disk and forget the loaded ones (compiled functions
    already holding their modules keep working)."""
    from lucid_jit.codegen import loader

    loader.clear()
