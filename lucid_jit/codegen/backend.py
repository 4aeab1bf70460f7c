"""The Backend protocol: what runs an entry's optimized graphs.

A backend builds what it needs once per cache entry (`prepare`), runs a graph on the call's
input arrays (`run`), says which outputs are fresh buffers the caller may hand out as they are
(`owned`), shows its generated code (`program(graph).source()`, or no program) and how long its
first calls took (`compile_records`). Backends, by name:

- `reference`: the interpreter (each op's eager implementation), the oracle the others are
  tested against (this module);
- `cpu` (the default): numba code generated per graph (`codegen/cpu/`);
- `cuda`: numba-cuda kernels per fused group (`codegen/cuda/`).

What each backend does with each op (a native emitter, or a declared host fallback) is its
lowering table (`lowering.py`).
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable
from typing import Any, Protocol

from lucid.ops.registry import LucidError
from lucid_jit.ir.interpret import interpret

# Tests set this: a graph numba cannot compile is then an error, not a warning and a fallback.
STRICT = os.environ.get("LUCID_JIT_STRICT", "") not in ("", "0")


class Backend(Protocol):
    name: str
    fastmath: bool

    def prepare(self, entry) -> None:
        """Anything to build once per cache entry, before its first call."""

    def run(self, graph, arrays) -> list:
        """The graph's outputs for these input arrays."""

    def runner(self, graph) -> Callable[[list], list]:
        """`run` for one graph, as a callable of the arrays (what generated calls hold)."""

    def owned(self, graph) -> Any:
        """Per output: True where it is a fresh buffer no one else holds (None: unknown).
        Known before the graph's first call."""

    def inplace(self, graph) -> frozenset:
        """The outputs the generated code computes straight into the input they are written
        back into (a parameter updated in place): the caller has nothing left to copy."""

    def program(self, graph) -> Any:
        """The graph's generated program (with `.source()`), or None for an interpreter."""

    def compile_records(self, graph) -> list:
        """The timed first calls of the graph's program (`compiletime.CompileRecord`)."""


class ReferenceBackend:
    """Graphs run through the interpreter: each op's eager implementation, node by node."""

    name = "reference"

    def __init__(self, fastmath: bool = False, mode: str = "sync") -> None:
        if fastmath:
            raise LucidError("lucid.compile(backend='reference', fastmath=True): fastmath "
                             "applies to generated code, and the reference backend generates "
                             "none (it runs each op's eager implementation)")
        self.fastmath = False

    def prepare(self, entry) -> None:
        """Nothing to build."""

    def run(self, graph, arrays):
        return interpret(graph, arrays)

    def runner(self, graph):
        return functools.partial(interpret, graph)

    def owned(self, graph):
        return None

    def inplace(self, graph) -> frozenset:
        return frozenset()

    def program(self, graph):
        return None

    def compile_records(self, graph) -> list:
        return []


# name -> "module:class", imported on first use (the cpu and cuda backends import numba).
BACKENDS = {"reference": f"{__name__}:ReferenceBackend",
            "cpu": "lucid_jit.codegen.cpu.backend:NumbaBackend",
            "cuda": "lucid_jit.codegen.cuda.backend:CudaBackend"}


def get_backend(name: str, *, fastmath: bool = False, mode: str = "sync") -> Backend:
    """The backend `name`; `mode` is the compile mode ("sync", "async": see lucid.compile),
    which only the cpu backend's compiles distinguish."""
    where = BACKENDS.get(name)
    if where is None:
        raise LucidError(f"lucid.compile: unknown backend {name!r}; available: "
                         f"{', '.join(sorted(BACKENDS))}")
    module, cls = where.split(":")
    return getattr(importlib.import_module(module), cls)(fastmath=fastmath, mode=mode)
