"""The cuda backend: a `CudaProgram` per graph (program.py), built at the graph's first call."""

from __future__ import annotations

import functools

import numpy as np

from lucid.ops.registry import LucidError
from lucid_jit.codegen import compiletime


class CudaBackend:
    """Graphs on the CUDA device (`program.py`): kernels per fused group, launched with
    configurations bound once per graph. Built at a graph's first call, when it is known
    which inputs arrive as 0-d host arrays (passed to kernels as scalars)."""

    name = "cuda"

    def __init__(self, fastmath: bool = False, mode: str = "sync") -> None:
        from lucid import device

        device.runtime()  # the clear error where there is no device
        self.fastmath = fastmath
        self.programs: dict[int, object] = {}
        self.labels: dict[int, tuple[str, str]] = {}

    def prepare(self, entry) -> None:
        """Nothing is built before the first call (see the class docstring); the graphs' names
        are kept for the compile log."""
        for part, graph in (("forward", entry.forward), ("backward", entry.backward)):
            if graph is not None:
                self.labels[id(graph)] = (f"{entry.name} (entry {entry.index})", part)

    def compile_records(self, graph) -> list:
        prog = self.programs.get(id(graph))
        return list(getattr(prog, "compile_records", ())) if prog is not None else []

    def program(self, graph):
        prog = self.programs.get(id(graph))
        if prog is None or prog.graph is not graph:
            from lucid_jit.codegen.cuda.program import CudaProgram

            prog = self.programs[id(graph)] = CudaProgram(graph, (), self.fastmath)
        return prog

    def run(self, graph, arrays):
        prog = self.programs.get(id(graph))
        if prog is None or prog.graph is not graph:
            from lucid_jit.codegen.cuda.program import CudaProgram

            scalars = _host_scalars(graph, arrays)
            prog = self.programs[id(graph)] = CudaProgram(graph, scalars, self.fastmath)
            prog.compile_records = []
            name, part = self.labels.get(id(graph), ("graph", "graph"))
            with compiletime.timed(prog.compile_records, name, part, 1, "cuda", None):
                return prog(arrays)  # kernels compile at their first launch
        return prog(arrays)

    def runner(self, graph):
        return functools.partial(self.run, graph)

    def owned(self, graph):
        return [True] * len(graph.outputs)  # every output of a program is a fresh device array

    def inplace(self, graph) -> frozenset:
        return frozenset()  # (write-backs are device-to-device copies after the program)


def _host_scalars(graph, arrays) -> set[int]:
    """The inputs that are host arrays: they must be 0-d (passed to kernels as values)."""
    out = set()
    for k, (v, a) in enumerate(zip(graph.inputs, arrays, strict=True)):
        if isinstance(a, np.ndarray):
            if a.ndim:
                name = graph.input_names[k] or f"input {k}"
                raise LucidError(f"a compiled function running on cuda reads a cpu tensor "
                                 f"{name} ({v.aval}); move it to the device with .to('cuda')")
            out.add(k)
    return out
