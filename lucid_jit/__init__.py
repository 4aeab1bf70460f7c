"""lucid_jit: the compiler behind `lucid.compile`.

Tracing (`trace.py`) records a function's lucid ops into a graph IR (`ir/`), passes (`passes/`)
rewrite it, autodiff on the graph comes from running lucid's own autograd loop under the tracer,
and a backend (`backends.py`) runs the result. `api.py` holds `compile` and the cache of traced
entries with their guards; `explain.py` reports what the compiler did.
"""

from lucid_jit.api import CompiledFunction, CompiledModule, GraphBreakError, compile
from lucid_jit.explain import explain

__version__ = "0.1.0"
__all__ = ["compile", "explain", "CompiledFunction", "CompiledModule", "GraphBreakError"]
