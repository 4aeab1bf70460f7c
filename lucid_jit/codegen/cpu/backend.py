"""The cpu backend: a `Program` per graph (a generated module of numba code, its size and
constant tables, host ops, tiers), built when an entry is prepared."""

from __future__ import annotations

import dataclasses
import math
import os
import warnings

import numpy as np

from lucid.ops.creation import GENERATOR
from lucid.ops.registry import LucidError
from lucid_jit import log
from lucid_jit.codegen import backend as base
from lucid_jit.codegen import compiletime
from lucid_jit.codegen.cpu import process
from lucid_jit.codegen.cpu.ops import input_error
from lucid_jit.codegen.pool import OutputPool
from lucid_jit.ir.interpret import interpret


class Program:
    """One graph's generated module and the data its `run` takes (sizes, constants, host ops).

    Tiered: the first calls run the module's segments as Python, which call the njit kernels
    (kernels are shared by every graph, so a small graph compiles only kernels not seen before);
    from call `NATIVE_AFTER` on (or at once, when numba's disk cache has them) the segments run
    as njit functions too, one native call per segment.

    In the "async" mode the native tier is compiled by a worker process instead (background.py):
    until it is in numba's disk cache, calls run the reference interpreter over this graph (tier
    "interpreter", nothing compiled), then the native tier loads from the cache."""

    NATIVE_AFTER = int(os.environ.get("LUCID_JIT_NATIVE_AFTER", "2"))

    def __init__(self, graph, *, fastmath: bool = False, inplace=None, name: str = "graph",
                 part: str = "graph", mode: str = "sync") -> None:
        from lucid_jit.codegen import loader
        from lucid_jit.codegen.cpu.lowering import LOWERING
        from lucid_jit.codegen.cpu.module import emit_module
        from lucid_jit.codegen.lowering import expand_lowered

        self.graph = graph
        self.name, self.part = name, part
        # One per call before the program settled on its tier (those calls may compile).
        self.compile_records: list[compiletime.CompileRecord] = []
        # Nodes the lowering table rewrites (conv2d) are expanded for the emitter; the graph
        # itself (read by the reference interpreter and `explain`) keeps them.
        self.emitted = emit_module(expand_lowered(graph, LOWERING, "cpu"), fastmath=fastmath,
                                   inplace=inplace)
        self.text = self.emitted.text
        loader.register_kernels(self.emitted.kernel_texts)
        self.module = loader.load(self.text)
        self.D = np.array(self.emitted.dims, dtype=np.int64)
        self.K = np.array(self.emitted.consts, dtype=np.float64)
        self.H = tuple(self.emitted.host)
        self.C = tuple(self.emitted.const_arrays)
        self.owned = self.emitted.owned
        # output index -> the input whose array the native code computes it into
        self.inplace_map = {k: (inplace or {})[k] for k in self.emitted.inplace}
        self.mode = mode
        self._jobs: list = []  # the background compile (async mode): a future per worker
        self._waited = 0  # async mode: calls run on the interpreter so far
        self.pool = OutputPool(self.emitted.pool, np.empty)
        # Arenas for the intermediates (cpu/arena.py): one per concurrent call, made once.
        self._arenas: list[np.ndarray] = []
        self.calls = 0
        self.tier = "python"
        self.fallback = False
        self.fast = False
        if self.NATIVE_AFTER <= 1 or loader.native_cached(self.text):
            self.calls = self.NATIVE_AFTER

    def __call__(self, arrays):
        if self.fast:
            arenas = self._arenas
            arena = arenas.pop() if arenas else self._new_arena()
            try:
                return self.module.run(arrays, self.D, self.K, self.H, self.C,
                                       self.module.NATIVE,
                                       self.pool.take_all() if self.pool else (), arena)
            except IndexError as exc:
                err = input_error(exc)
                if err is None:
                    raise
                raise err from None
            finally:
                arenas.append(arena)
        return self._slow_call(arrays)

    def _new_arena(self) -> np.ndarray:
        """A 64-byte aligned byte array for one call's intermediates (a call running while
        another holds the first arena, from another thread, gets one of its own)."""
        n = self.emitted.arena_bytes
        raw = np.empty(n + 64, np.uint8)
        start = -raw.ctypes.data % 64
        return raw[start:start + n]

    def _slow_call(self, arrays):
        """Calls before the native tier, and the first native one: timed (they may compile, see
        compiletime)."""
        if self.fallback:
            return self._interpret(arrays)
        from lucid_jit.codegen import loader

        if self.mode == "async" and self.calls < self.NATIVE_AFTER:
            if not self._background_ready(arrays):
                self.tier = "interpreter"
                return self._interpret(arrays)
            self.calls = self.NATIVE_AFTER - 1  # ready: the native tier loads from the cache
        native = self.calls + 1 >= self.NATIVE_AFTER
        announce = None
        if native and not loader.native_cached(self.text):
            functions, lines = self.native_size()
            announce = (f"the native tier: {functions} njit function"
                        f"{'s' if functions != 1 else ''}, {lines} lines")
        with compiletime.timed(self.compile_records, self.name, self.part, self.calls + 1,
                               "native" if native else "python", announce):
            return self._first_calls(arrays)

    def _background_ready(self, arrays) -> bool:
        """Async mode: whether the native tier can run without compiling here. Submits the
        compile on the first call; a job that failed (or could not start) means compiling in the
        foreground, as the sync mode does."""
        from lucid_jit.codegen import loader
        from lucid_jit.codegen.cpu import background

        if not self._jobs:
            if loader.native_cached(self.text):
                return True
            self._waited += 1
            if self._waited < self.NATIVE_AFTER:  # not called often enough to compile yet
                return False
            # the segments dealt out to the workers, so each compiles a share at once
            n = min(background.workers(), max(1, self.emitted.segments))
            job = self.job(arrays)
            for i in range(n):
                future = background.submit(dataclasses.replace(
                    job, segments=None if n == 1 else tuple(range(i, self.emitted.segments, n))))
                if future is None:
                    self.mode = "sync"
                    return True
                self._jobs.append(future)
            functions, lines = self.native_size()
            log.write("compile", f"{self.name} {self.part}: compiling the native tier in the "
                      f"background ({functions} njit functions, {lines} lines, {n} "
                      f"worker{'s' if n != 1 else ''}); calls run the interpreter meanwhile")
            return False
        if not all(job.done() for job in self._jobs):
            return False
        failed = [job.exception() for job in self._jobs if job.exception() is not None]
        if failed:
            log.write("compile", f"{self.name} {self.part}: the background compile failed "
                      f"({failed[0]!r}); compiling here")
            self.mode = "sync"
        else:
            functions = [f for job in self._jobs for f in job.result()]
            record = compiletime.CompileRecord(
                self.part, 0, "native (worker)", max(job.seconds for job in self._jobs),
                sum(t for _, t in functions), len(functions), tuple(functions))
            self.compile_records.append(record)
            log.write("compile", f"{self.name} {record.describe()}: {record.numba_seconds:.2f} s "
                      f"compiling, {record.seconds:.2f} s in the worker's queue and compile")
        return True

    def job(self, arrays=None):
        """What a worker needs to compile this program's native tier (background.py); the
        zeros it runs on mimic `arrays`' layouts (a call's inputs), else C order."""
        from lucid_jit.codegen import loader
        from lucid_jit.codegen.cpu.background import Job, input_spec

        arrays = arrays if arrays is not None else [None] * len(self.graph.inputs)
        return Job(self.text, dict(self.emitted.kernel_texts),
                   [input_spec(a, v.shape, v.dtype)
                    for a, v in zip(arrays, self.graph.inputs, strict=True)],
                   self.D, self.K, self.H, self.C,
                   [(tuple(shape), np.dtype(dtype).str) for shape, dtype in self.emitted.pool],
                   self.emitted.arena_bytes, str(loader.cache_dir()), loader.secret_key(),
                   returns=list(self.emitted.segment_returns),
                   C_specs=[input_spec(c, c.shape, c.dtype) for c in self.C])

    def compile_ahead(self) -> None:
        """Compile the native tier now, in this process, without real inputs (precompile)."""
        from lucid_jit.codegen import loader
        from lucid_jit.codegen.cpu.background import compile_native

        if self.tier == "native" or loader.native_cached(self.text):
            return
        with compiletime.timed(self.compile_records, self.name, self.part, 0, "native", None):
            compile_native(self.job())

    def _interpret(self, arrays):
        """The graph on the reference interpreter, its outputs as the native code gives them:
        those it computes in place written into their inputs' arrays, those it owns fresh."""
        outs = interpret(self.graph, arrays)
        inputs = {id(a) for a in arrays}
        given: set[int] = set()
        for k, out in enumerate(outs):
            if k in self.inplace_map:
                target = arrays[self.inplace_map[k]]
                if out is not target:
                    np.copyto(target, out)
                outs[k] = target
            elif self.owned[k] and (id(out) in inputs or id(out) in given
                                    or not out.flags.owndata):
                outs[k] = out.copy()
            given.add(id(outs[k]))
        return outs

    def native_size(self) -> tuple[int, int]:
        """(njit functions, lines) of the native tier: what its compile has to get through."""
        functions = lines = 0
        inside = False
        for line in self.text.splitlines():
            if line.startswith("def native_segment"):
                functions, inside = functions + 1, True
            elif line and not line.startswith((" ", "#")):
                inside = False
            lines += inside
        return functions, lines

    def _first_calls(self, arrays):
        """Code that fails to load is dropped and compiled again once; segments numba cannot
        compile run as Python; a kernel it cannot compile sends the graph to the reference
        backend, with a warning (an error under LUCID_JIT_STRICT=1)."""
        self.calls += 1
        native = self.calls >= self.NATIVE_AFTER
        segments = self.module.NATIVE if native else self.module.PYTHON
        # What the code writes in place, as it was: a failure part-way (a kernel numba cannot
        # compile, found when the Python tier first calls it) must leave the inputs unchanged
        # for the retry, and for the caller. Only these first calls pay for the copies.
        # The generator too: a retry draws the same numbers.
        saved = [(arrays[k], arrays[k].copy()) for k in self.emitted.inplace_inputs]
        rng_state = GENERATOR.get_state()

        def restore():
            for arr, copy in saved:
                np.copyto(arr, copy)
            GENERATOR.set_state(rng_state)

        try:
            out = self._attempt(arrays, segments, native, restore)
        except LucidError:
            restore()
            raise
        except Exception as exc:  # noqa: BLE001 (ours, not the user's: see below)
            restore()
            if getattr(exc, "lucid_host_op", None) is not None:
                raise  # a host op's error: the inputs are bad (the code ran as compiled)
            if native:
                try:
                    out = self._attempt(arrays, self.module.PYTHON, False, restore)
                except Exception:  # noqa: BLE001
                    restore()
                    self.calls -= 1  # (the next call tries the native tier again)
                    raise exc from None  # the inputs are bad, not the code: report the error
                self._warn("run its segments as Python", exc)
                self.NATIVE_AFTER = 1 << 62  # stay on the Python tier
                return out
            try:
                out = self._interpret(arrays)
            except Exception:
                raise exc from None  # the inputs are bad, not the code: report the error
            self._warn("run on the reference backend", exc)
            self.fallback = True
            return out
        if native:
            self.tier = "native"
            self.fast = True
        return out

    def _attempt(self, arrays, segments, native: bool, restore):
        from lucid_jit.codegen import loader

        arena = self._arenas.pop() if self._arenas else self._new_arena()
        try:
            return self.module.run(arrays, self.D, self.K, self.H, self.C, segments,
                                   self.pool.take_all(), arena)
        except LucidError:
            raise
        except Exception as exc:  # noqa: BLE001 (a corrupt cache entry: rebuild it once)
            err = input_error(exc)
            if err is not None:
                raise err from None
            if getattr(exc, "lucid_host_op", None) is not None:
                raise
            restore()
            self.module = loader.purge(self.text, self.emitted.kernel_texts.values())
            segments = self.module.NATIVE if native else self.module.PYTHON
            return self.module.run(arrays, self.D, self.K, self.H, self.C, segments,
                                   self.pool.take_all(), arena)
        finally:
            self._arenas.append(arena)

    def _warn(self, what: str, exc: Exception) -> None:
        if base.STRICT:
            raise exc
        first = str(exc).splitlines()[0] if str(exc) else ""
        warnings.warn(f"lucid_jit: numba could not compile a graph ({type(exc).__name__}: "
                      f"{first}); it will {what}", stacklevel=5)
        log.write("recompiles", f"cpu backend: {what}: {exc!r}")

    def source(self) -> str:
        """The module, plus a demo that runs it on random inputs of the traced shapes."""
        g = self.graph
        demo = ["", "", 'if __name__ == "__main__":',
                "    # The traced sizes and constants; inputs are random.",
                f"    D = np.array({list(self.emitted.dims)}, dtype=np.int64)",
                f"    K = np.array({_literal([float(k) for k in self.emitted.consts])}, "
                "dtype=np.float64)",
                "    rng = np.random.default_rng(0)",
                "    args = ["]
        for v in g.inputs:
            demo.append(f"        rng.standard_normal({tuple(v.shape)}).astype(np.{v.dtype.name}),")
        demo.append("    ]")
        if self.H:
            demo.append(f"    # host ops ({', '.join(self.emitted.host_names)}) are lucid's eager "
                        "implementations")
            demo.append("    raise SystemExit('this graph calls host ops; run it through lucid')")
        demo.append("    C = [" + ", ".join(f"np.array({_literal(c.tolist())}, "
                                            f"dtype=np.{c.dtype.name})"
                                            for c in self.C) + "]")
        if self.emitted.pool:
            demo.append("    P = [" + ", ".join(f"np.empty({tuple(shape)}, np.{dtype.name})"
                                                for shape, dtype in self.emitted.pool) + "]")
        else:
            demo.append("    P = []")
        demo.append(f"    A = np.empty({self.emitted.arena_bytes}, np.uint8)  # the arena")
        demo += ["    for out in run(args, D, K, [], C, NATIVE, P, A):",
                 "        print(out.dtype, out.shape)"]
        return self.text + "\n".join(demo) + "\n"


def _literal(value) -> str:
    """Python source for a number or nested list of numbers (`float('inf')` where repr gives
    `inf`, which is not Python)."""
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, float) and not math.isfinite(value):
        return f"float('{value}')"
    return repr(value)


def inplace_requests(entry) -> dict[int, int]:
    """Forward output index -> input index, for each write-back of data into a tensor the graph
    also reads: the native code may compute the new value straight into it."""
    out = {}
    for eff in entry.effects:
        if eff.kind != "data" or eff.index is None:
            continue
        for k, src in enumerate(entry.input_sources):
            if src is eff.source:
                out[eff.index] = k
                break
    return out


class NumbaBackend:
    name = "cpu"

    def __init__(self, fastmath: bool = False, mode: str = "sync") -> None:
        process.prepare_cpu()
        self.fastmath = fastmath
        self.mode = mode
        self.programs: dict[int, Program] = {}

    def prepare(self, entry) -> None:
        for part, graph in (("forward", entry.forward), ("backward", entry.backward)):
            if graph is not None and id(graph) not in self.programs:
                inplace = inplace_requests(entry) if graph is entry.forward else None
                self.programs[id(graph)] = Program(graph, fastmath=self.fastmath,
                                                   inplace=inplace, part=part,
                                                   name=f"{entry.name} (entry {entry.index})",
                                                   mode=self.mode)

    def program(self, graph) -> Program:
        prog = self.programs.get(id(graph))
        if prog is None or prog.graph is not graph:
            prog = self.programs[id(graph)] = Program(graph, fastmath=self.fastmath,
                                                      mode=self.mode)
        return prog

    def run(self, graph, arrays):
        return self.program(graph)(arrays)

    def runner(self, graph):
        return self.program(graph)

    def owned(self, graph):
        return self.program(graph).owned

    def inplace(self, graph) -> frozenset:
        return self.program(graph).emitted.inplace

    def compile_records(self, graph) -> list:
        """The timed first calls of graph's program (none before it ran; compiles nothing)."""
        prog = self.programs.get(id(graph))
        return list(prog.compile_records) if prog is not None and prog.graph is graph else []
