"""Backends run an entry's optimized graphs.

- `cpu` (the default) compiles each graph to a generated module of numba code (codegen/cpu.py):
  one native call per graph where every node has a native kernel;
- `reference` runs graphs through the interpreter (each op's eager implementation): the
  independent check the native backend is tested against.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from lucid.ops.registry import LucidError
from lucid_jit import log
from lucid_jit.ir.interpret import interpret

# Tests set this: a graph numba cannot compile is then an error, not a warning and a fallback.
STRICT = os.environ.get("LUCID_JIT_STRICT", "") not in ("", "0")


class ReferenceBackend:
    name = "reference"

    def __init__(self, fastmath: bool = False) -> None:
        self.fastmath = fastmath

    def prepare(self, entry) -> None:
        """Anything to do once per cache entry (the reference backend needs nothing)."""

    def run(self, graph, arrays):
        return interpret(graph, arrays)

    def owned(self, graph):
        return None

    def program(self, graph):
        return None


class Program:
    """One graph's generated module and the data its `run` takes (sizes, constants, host ops)."""

    def __init__(self, graph, *, fastmath: bool = False) -> None:
        from lucid_jit.codegen import loader
        from lucid_jit.codegen.cpu import emit_module

        self.graph = graph
        self.emitted = emit_module(graph, fastmath=fastmath)
        self.text = self.emitted.text
        self.module = loader.load(self.text)
        self.D = np.array(self.emitted.dims, dtype=np.int64)
        self.K = np.array(self.emitted.consts, dtype=np.float64)
        self.H = tuple(self.emitted.host)
        self.C = tuple(self.emitted.const_arrays)
        self.owned = self.emitted.owned
        self.ready = False
        self.fallback = False

    def __call__(self, arrays):
        if self.ready:
            return self.module.run(arrays, self.D, self.K, self.H, self.C)
        return self._first_call(arrays)

    def _first_call(self, arrays):
        """The first call compiles (or loads numba's cached code). Code that fails to load is
        dropped and compiled again; a graph numba cannot compile runs on the reference backend,
        with a warning (an error under LUCID_JIT_STRICT=1)."""
        from lucid_jit.codegen import loader

        if self.fallback:
            return interpret(self.graph, arrays)
        try:
            try:
                out = self.module.run(arrays, self.D, self.K, self.H, self.C)
            except LucidError:
                raise
            except Exception:  # noqa: BLE001 (a corrupt cache entry: rebuild it once)
                self.module = loader.purge(self.text)
                out = self.module.run(arrays, self.D, self.K, self.H, self.C)
        except LucidError:
            raise
        except Exception as exc:
            if STRICT:
                raise
            warnings.warn(f"lucid_jit: the cpu backend could not compile a graph "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                          "); it runs on the reference backend instead", stacklevel=4)
            log.write("recompiles", f"cpu backend fallback: {exc!r}")
            self.fallback = True
            return interpret(self.graph, arrays)
        self.ready = True
        return out

    def source(self) -> str:
        """The module, plus a demo that runs it on random inputs of the traced shapes."""
        g = self.graph
        demo = ["", "", 'if __name__ == "__main__":',
                "    # The traced sizes and constants; inputs are random.",
                f"    D = np.array({list(self.emitted.dims)}, dtype=np.int64)",
                f"    K = np.array({[float(k) for k in self.emitted.consts]}, dtype=np.float64)",
                "    rng = np.random.default_rng(0)",
                "    args = ["]
        for v in g.inputs:
            demo.append(f"        rng.standard_normal({tuple(v.shape)}).astype(np.{v.dtype.name}),")
        demo.append("    ]")
        if self.H:
            demo.append(f"    # host ops ({', '.join(self.emitted.host_names)}) are lucid's eager "
                        "implementations")
            demo.append("    raise SystemExit('this graph calls host ops; run it through lucid')")
        demo.append("    C = [" + ", ".join(f"np.array({c.tolist()!r}, dtype=np.{c.dtype.name})"
                                            for c in self.C) + "]")
        demo += ["    for out in run(args, D, K, [], C):",
                 "        print(out.dtype, out.shape)"]
        return self.text + "\n".join(demo) + "\n"


class NumbaBackend:
    name = "cpu"

    def __init__(self, fastmath: bool = False) -> None:
        self.fastmath = fastmath
        self.programs: dict[int, Program] = {}

    def prepare(self, entry) -> None:
        for graph in (entry.forward, entry.backward):
            if graph is not None and id(graph) not in self.programs:
                self.programs[id(graph)] = Program(graph, fastmath=self.fastmath)

    def program(self, graph) -> Program:
        prog = self.programs.get(id(graph))
        if prog is None or prog.graph is not graph:
            prog = self.programs[id(graph)] = Program(graph, fastmath=self.fastmath)
        return prog

    def run(self, graph, arrays):
        return self.program(graph)(arrays)

    def owned(self, graph):
        return self.program(graph).owned


BACKENDS = {"reference": ReferenceBackend, "cpu": NumbaBackend}


def get_backend(name: str, *, fastmath: bool = False):
    cls = BACKENDS.get(name)
    if cls is None:
        raise LucidError(f"lucid.compile: unknown backend {name!r}; available: "
                         f"{', '.join(sorted(BACKENDS))}")
    return cls(fastmath=fastmath)
