"""Backends run an entry's optimized graphs. `reference` runs them through the interpreter (each
op's eager implementation); `cpu` is the default target and runs on the reference backend until
the native Numba backend lands."""

from __future__ import annotations

from lucid.ops.registry import LucidError
from lucid_jit.ir.interpret import interpret


class ReferenceBackend:
    name = "reference"

    def __init__(self, fastmath: bool = False) -> None:
        self.fastmath = fastmath

    def prepare(self, entry) -> None:
        """Anything to do once per cache entry (the reference backend needs nothing)."""

    def run(self, graph, arrays):
        return interpret(graph, arrays)


BACKENDS = {"reference": ReferenceBackend, "cpu": ReferenceBackend}


def get_backend(name: str, *, fastmath: bool = False):
    cls = BACKENDS.get(name)
    if cls is None:
        raise LucidError(f"lucid.compile: unknown backend {name!r}; available: "
                         f"{', '.join(sorted(BACKENDS))}")
    return cls(fastmath=fastmath)
