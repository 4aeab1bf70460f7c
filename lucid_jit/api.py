"""`lucid.compile`: trace a function once per input signature, optimize the graph, run it.

A `CompiledFunction` keeps a cache of entries per call key (the arguments' structure, each tensor
argument's shape, dtype and requires_grad, the values of Python ints, bools and strings, and grad
mode). An entry also carries guards on what the function captured (a parameter's shape, whether a
`.grad` is None, the optimizer's state keys, the modules' attributes and training flags, the
outcome of comparisons on lifted floats). The first entry whose guards hold runs; when none does the
function is traced again, and `LUCID_JIT_LOG=recompiles` says why, field by field.

An entry runs its forward graph, writes back what the function mutated (tensor data in place,
`.grad`, new optimizer state), and returns outputs. Outputs that need a gradient get an autograd
context whose vjp runs the entry's backward graph, which was traced by running lucid's own
autograd loop over the forward trace.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import threading
import time
import warnings

from lucid import dtypes
from lucid.device import is_device_array
from lucid.nn.modules.module import STATE_EPOCH, Module
from lucid.ops.registry import CURRENT_TRACER, GRAD_ENABLED, LucidError, user_stacklevel
from lucid.tensor import Tensor
from lucid_jit import log
from lucid_jit.cache.entry import CompiledEntry, EagerEntry, Stage
from lucid_jit.cache.guards import (
    binding_guard,
    call_key,
    dedupe_float_guards,
    describe_key_field,
    grad_guard,
    module_fingerprint,
    structure_guards,
)
from lucid_jit.cache.run import compile_run
from lucid_jit.codegen.backend import get_backend
from lucid_jit.tracing import pytree
from lucid_jit.tracing.capture import CaptureState, arg_name, finish_trace
from lucid_jit.tracing.floats import is_float
from lucid_jit.tracing.sources import ArgSource, scan
from lucid_jit.tracing.tracer import GraphBreak, Tracer

DEFAULT_CACHE_LIMIT = 8
_share = Tensor._share


class GraphBreakError(LucidError):
    """Raised by `lucid.compile(fullgraph=True)` where the function cannot be one graph."""


class GraphBreakWarning(UserWarning):
    """A compiled function runs eagerly for an input signature (a graph break). Given once per
    compiled function; `warnings.filterwarnings("ignore", category=GraphBreakWarning)` turns
    it off."""


class CompiledFunction:
    """What `lucid.compile(fn)` returns: call it like fn."""

    def __init__(self, fn, *, backend: str = "cpu", fullgraph: bool = False,
                 fastmath: bool = False, cache_limit: int = DEFAULT_CACHE_LIMIT,
                 pipeline: str = "fusion", mode: str | None = None) -> None:
        self.fn = fn
        self.backend_name = backend
        self.mode = compile_mode(mode)
        self.backend = get_backend(backend, fastmath=fastmath, mode=self.mode)
        self._cuda_backend = self.backend if backend == "cuda" else None
        self.fullgraph = fullgraph
        self.fastmath = fastmath
        self.cache_limit = cache_limit
        self.pipeline = pipeline
        self.cache: dict[tuple, list] = {}
        self.entries: list = []
        self.recompiles: list[tuple[str, list[str]]] = []
        self.last_entry = None
        # The compiled entry the last all-tensor positional call ran, tried first by the next
        # such call: its guard (`check`) decides, before the cache key is computed.
        self._last_hit: tuple | None = None
        self._warned = False
        self._warned_break = False
        self.calls = 0
        # Threads that miss at once trace one at a time, each first looking again for an entry
        # the others made: one trace per input signature.
        self._trace_lock = threading.RLock()
        functools.update_wrapper(self, fn, updated=())

    @property
    def name(self) -> str:
        fn = self.fn
        return getattr(fn, "__qualname__", getattr(fn, "__name__", type(fn).__name__))

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return functools.partial(self, obj)

    def __repr__(self) -> str:
        return f"<compiled {self.name} ({len(self.entries)} cache entries)>"

    # ------------------------------------------------------------------ calling

    def __call__(self, *args, **kwargs):
        if CURRENT_TRACER.get() is not None:  # called inside another trace: inline it
            return self.fn(*args, **kwargs)
        self.calls += 1
        if not kwargs and all(type(a) is Tensor for a in args):  # the common call: tensors
            last = self._last_hit
            if last is not None and last[0] == len(args) and last[1] is GRAD_ENABLED.get() \
                    and last[3] is dtypes.DEFAULT_FLOAT:
                # The fast path: the entry that ran last, if its guard holds. The guard checks
                # every input's shape, dtype, requires_grad and aliasing, and everything else the
                # trace read; only the grad mode and the default float dtype, parts of the key,
                # are compared here.
                entry = last[2]
                arrays = entry.check(args)
                if arrays is not None:
                    self.last_entry = entry
                    entry.hits += 1
                    return entry.run(args, arrays)
            flat = list(args)
            spec = _positional_spec(len(args))
        else:
            flat = []
            spec = pytree.flatten((args, kwargs), flat)
        key = call_key(flat, spec)
        for entry in self.cache.get(key, ()):
            arrays = entry.check(flat)
            if arrays is not None:
                self.last_entry = entry
                entry.hits += 1
                if entry.kind == "eager":
                    return self.fn(*args, **kwargs)
                self._remember(entry, args, kwargs, key)
                return entry.run(flat, arrays)
        return self._miss(key, spec, flat, args, kwargs)

    def precompile(self, *args, **kwargs) -> CompiledFunction:
        """Trace for these example arguments and compile the native code of the entry's
        forward and backward graphs now, in this process, without running them (nothing is
        computed, nothing written back). A later call with arguments of the same signature
        runs native code from its first call. Returns the compiled function."""
        if kwargs:
            flat: list = []
            spec = pytree.flatten((args, kwargs), flat)
        else:
            flat, spec = list(args), _positional_spec(len(args))
        key = call_key(flat, spec)
        with self._trace_lock:
            entry = next((e for e in self.cache.get(key, ()) if e.check(flat) is not None),
                         None)
            if entry is None:
                with _gc_paused():
                    entry = self._trace(key, spec, flat, args, kwargs)
                self.cache.setdefault(key, []).append(entry)
                self.entries.append(entry)
            self.last_entry = entry
        if entry.kind == "eager":
            return self
        for graph in (entry.forward, entry.backward):
            program = entry.backend.program(graph) if graph is not None else None
            if program is not None and hasattr(program, "compile_ahead"):
                program.compile_ahead()
        return self

    def _remember(self, entry, args, kwargs, key) -> None:
        """Keep `entry` for the fast path when the call was all positional tensors, no two
        sharing an array (the key tells sharing apart; the guard checks that distinct inputs
        stay distinct, not the converse)."""
        if not kwargs and key[3] is None and all(type(a) is Tensor for a in args):
            self._last_hit = (len(args), key[2], entry, key[4])
        else:
            self._last_hit = None

    def _miss(self, key, spec, flat, args, kwargs):
        with self._trace_lock:
            for entry in self.cache.get(key, ()):  # traced by another thread meanwhile
                arrays = entry.check(flat)
                if arrays is not None:
                    break
            else:
                return self._trace_and_run(key, spec, flat, args, kwargs)
        self.last_entry = entry
        entry.hits += 1
        if entry.kind == "eager":
            return self.fn(*args, **kwargs)
        return entry.run(flat, arrays)

    def _trace_and_run(self, key, spec, flat, args, kwargs):
        if len(self.entries) >= self.cache_limit:
            if not self._warned:
                self._warned = True
                warnings.warn(f"lucid.compile: {self.name} was traced {len(self.entries)} times "
                              f"(the cache limit); new input signatures now run eagerly. The "
                              "last recompile: " + "; ".join(self.recompiles[-1][1] if
                                                             self.recompiles else []),
                              RuntimeWarning, stacklevel=3)
            return self.fn(*args, **kwargs)
        t0 = time.perf_counter()
        reasons = self._why(key, flat) if self.entries else None
        if reasons is not None and log.enabled("recompiles"):
            log.write("recompiles", f"{self.name}: retracing (entry {len(self.entries)}) "
                      "because\n    " + "\n    ".join(reasons))
        with _gc_paused():
            entry = self._trace(key, spec, flat, args, kwargs)
        if reasons is not None:  # recorded once the trace gave an entry: recompile i -> entry i+1
            self.recompiles.append((self.name, reasons))
        self.cache.setdefault(key, []).append(entry)
        self.entries.append(entry)
        self.last_entry = entry
        entry.hits += 1
        if entry.kind == "eager":
            return self.fn(*args, **kwargs)
        arrays = entry.check(flat)
        if arrays is None:
            raise LucidError(f"compiled function {self.name!r}: a fresh trace does not accept "
                             "the call it was traced for: " + "; ".join(entry.failures(flat)))
        self._remember(entry, args, kwargs, key)
        try:
            return entry.run(flat, arrays)
        finally:
            entry.first_call_seconds = time.perf_counter() - t0

    def _why(self, key, flat) -> list[str]:
        same = self.cache.get(key)
        if same:
            return [f"guard failed: {r}" for r in same[-1].failures(flat)]
        last = self.entries[-1].key
        reasons = []
        if last[0] != key[0]:
            reasons.append("the arguments' structure changed")
        elif len(last[1]) == len(key[1]):
            for i, (old, new) in enumerate(zip(last[1], key[1], strict=True)):
                if old != new:
                    reasons.append(f"argument {i}: {describe_key_field(old)} -> "
                                   f"{describe_key_field(new)}")
        if last[2] != key[2]:
            reasons.append(f"grad mode: {last[2]} -> {key[2]}")
        if last[3] != key[3]:
            reasons.append(f"tensor arguments sharing an array (by position): {last[3]} -> "
                           f"{key[3]}")
        if last[4] != key[4]:
            reasons.append(f"the default float dtype: {last[4]} -> {key[4]}")
        return reasons or ["a new input signature"]

    # ------------------------------------------------------------------ tracing

    def _trace(self, key, spec, flat, args, kwargs):
        t0 = time.perf_counter()
        names: list[str] = []
        pytree.flatten((args, kwargs), [], names, "")
        names = [arg_name(n, self.fn) for n in names]
        reach = scan(self.fn, flat, names)
        tracer = Tracer(sources=reach.tensors, aliases=reach.aliases)
        tracer.device = _device_of_call(flat, reach)
        for t, src in reach.tensors.values():
            tracer.snapshot_tensor(t, src)
        other_guards = structure_guards(reach) + [
            binding_guard(src, expected) for src, expected in reach.bindings]
        state = CaptureState(reach, tracer, names)
        traced_flat = list(flat)
        for i, x in enumerate(flat):
            if is_float(x):
                traced_flat[i] = tracer.lift_float(x, ArgSource(i, names[i]))
        targs, tkwargs = pytree.unflatten(spec, traced_flat)
        # Code may branch on whether a `.grad` is None: the optimizer skips parameters without
        # one, and backward sets a missing grad instead of adding to it.
        grad_guards = [(t, t.grad, grad_guard(src, t.grad is None))
                       for t, src in reach.tensors.values() if t.requires_grad]
        optimized = {id(p) for opt, _ in reach.optimizers.values() for g in opt.param_groups
                     for p in g["params"]}
        try:
            with tracer.active():
                result = self.fn(*targs, **tkwargs)
                t1 = time.perf_counter()
                built = finish_trace(tracer, state, reach, result)
            t2 = time.perf_counter()
            # Only those whose None-ness the trace could depend on.
            used_grad_guards = [g for t, before, g in grad_guards
                                if id(t) in optimized or t.grad is not before]
        except GraphBreak as gb:
            tracer.restore()
            state.restore()
            if self.fullgraph:
                raise GraphBreakError(f"{self.name}: graph break: {gb.reason} "
                                      f"({gb.location})") from None
            log.write("graph_breaks", f"{self.name}: {gb.reason} ({gb.location}); this input "
                      "signature runs eagerly")
            if not self._warned_break:
                self._warned_break = True
                warnings.warn(f"lucid.compile: {self.name} cannot be compiled as one graph for "
                              f"this input signature and runs eagerly: {gb.reason} "
                              f"({gb.location}). lucid_jit.explain(fn) lists every graph break; "
                              "lucid.compile(fullgraph=True) raises instead",
                              GraphBreakWarning, stacklevel=user_stacklevel())
            return EagerEntry(key, gb.reason, gb.location,
                              [g for _, _, g in grad_guards] + other_guards)
        except BaseException:
            tracer.restore()
            state.restore()
            raise
        tracer.restore()
        state.restore()
        backward_nodes = len(built.backward.graph.nodes) if built.backward else 0
        return self._build_entry(key, tracer, reach, built, used_grad_guards + other_guards,
                                 [Stage("trace", t1 - t0, len(tracer.nodes)),
                                  Stage("autodiff", t2 - t1, backward_nodes)])

    def _build_entry(self, key, tracer, reach, built, guards, stages):
        from lucid_jit.passes import run_pipeline
        from lucid_jit.passes.remat import rematerialize

        # What the forward saves for a differentiable output's backward: a minimum cut, the
        # rest recomputed in the backward (inputs the call writes in place are never saved).
        written = [eff.source for eff in built.effects if eff.kind == "data"]
        pinned = {v.id for v, src in zip(built.forward.inputs, tracer.input_sources, strict=True)
                  if any(src is w for w in written)}
        built = rematerialize(built, pinned)
        traced, bt = built.forward, built.backward
        t0 = time.perf_counter()
        forward, fstats = run_pipeline(traced, self.pipeline)
        backward, bstats = (None, [])
        if bt is not None:
            backward, bstats = run_pipeline(bt.graph, self.pipeline)
        t1 = time.perf_counter()
        stages.append(Stage("passes", t1 - t0, len(forward) + (len(backward) if backward else 0)))
        checks = list(tracer.input_checks)
        modules = [(m, module_fingerprint(m)) for m, _ in reach.modules.values()]
        entry = CompiledEntry(
            key=key, traced=traced, forward=forward, input_sources=list(tracer.input_sources),
            input_checks=checks, alias_checks=built.alias_checks,
            slot_sources=list(tracer.slot_sources),
            float_guards=dedupe_float_guards(tracer.float_guards),
            guards=guards, modules=modules, epoch=STATE_EPOCH[0], effects=built.effects,
            out_spec=built.out_spec, out_leaves=built.out_leaves, n_user=built.n_user,
            backward=backward, backward_traced=bt.graph if bt else None,
            backward_sources=bt.sources if bt else [],
            leaf_sources=bt.leaf_sources if bt else [],
            grad_index=bt.grad_index if bt else [],
            diff_avals=bt.diff_avals if bt else [], stages=stages,
            pass_stats={"forward": fstats, "backward": bstats}, backend=self.backend,
            name=self.name, index=len(self.entries), input_hosts=dict(tracer.input_hosts),
            device=tracer.device)
        entry._traced_slots = list(tracer.slot_values)
        t2 = time.perf_counter()
        backend = self._backend_for(tracer.device)
        entry.backend = backend
        backend.prepare(entry)
        entry.run = compile_run(entry)
        stages.append(Stage(f"backend ({backend.name})", time.perf_counter() - t2,
                            len(forward)))
        return entry

    def _backend_for(self, device: str):
        """The backend for a graph on `device`: the one asked for, or the CUDA backend for
        device tensors when the default was left (`backend="cuda"` needs device inputs)."""
        if device == "cuda":
            if self._cuda_backend is None:
                self._cuda_backend = get_backend("cuda", fastmath=self.fastmath,
                                                 mode=self.mode)
            return self._cuda_backend
        if self.backend_name == "cuda":
            raise LucidError(f"lucid.compile({self.name}, backend='cuda'): the inputs are on the "
                             "cpu; move them (and the model) to the device with .to('cuda')")
        return self.backend

    # ------------------------------------------------------------------ inspection

    def ir(self, stage: str = "traced") -> str:
        """The graph of the most recent cache entry: "traced", "optimized", "backward" (as
        traced) or "backward_optimized"."""
        entry = self.last_entry
        if entry is None:
            raise LucidError(f"{self.name}: not traced yet; call it first")
        if entry.kind == "eager":
            return (f"# {self.name} runs eagerly for this input signature: {entry.reason} "
                    f"({entry.location})")
        graphs = {"traced": entry.traced, "optimized": entry.forward,
                  "backward": entry.backward_traced, "backward_optimized": entry.backward}
        if stage not in graphs:
            raise ValueError(f"ir(): stage must be one of {', '.join(graphs)}, not {stage!r}")
        graph = graphs[stage]
        if graph is None:
            return f"# {self.name} has no backward graph for this input signature"
        return graph.__str__()

    def source(self, stage: str = "forward") -> str:
        """The generated module of the most recent cache entry's "forward" or "backward" graph:
        numba kernels, the segments that call them (as Python, and as one njit function each
        with the kernels inlined) and `run`. It ends with a demo that runs it on random inputs
        of the traced shapes (`python file.py`, with lucid_jit installed)."""
        entry = self.last_entry
        if entry is None:
            raise LucidError(f"{self.name}: not traced yet; call it first")
        if entry.kind == "eager":
            return (f"# {self.name} runs eagerly for this input signature: {entry.reason} "
                    f"({entry.location})")
        graph = {"forward": entry.forward, "backward": entry.backward}.get(stage, ...)
        if graph is ...:
            raise ValueError(f"source(): stage must be 'forward' or 'backward', not {stage!r}")
        if graph is None:
            return f"# {self.name} has no backward graph for this input signature"
        program = entry.backend.program(graph)
        if program is None:
            return (f"# backend {entry.backend.name!r} generates no code; it interprets the "
                    "graph (see .ir())")
        return program.source()


@contextlib.contextmanager
def _gc_paused():
    """No cyclic garbage collection while a call is traced and its code emitted. A trace builds
    tens of thousands of objects that mostly live on in the entry; a full collection triggered
    among them scans every object of the process (numba's included: ~50 ms), and would land on
    the call that retraces. Collection resumes after, in its usual rhythm. The numba compile a
    first call may run is not covered: it makes cyclic garbage by the megabyte."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _device_of_call(flat, reach) -> str:
    """"cuda" when a tensor argument (or else any tensor the function reaches) is on the device."""
    args = [x.data for x in flat if isinstance(x, Tensor)]
    if any(is_device_array(d) for d in args):
        return "cuda"
    if any(is_device_array(t.data) for t, _ in reach.tensors.values()):
        return "cuda"
    return "cpu"


@functools.cache
def _positional_spec(n: int):
    """pytree's structure of `(args, {})` for n tensor arguments."""
    return pytree.flatten((tuple(range(n)), {}), [])


# ----------------------------------------------------------------------------- modules


class CompiledModule(Module):
    """A module whose forward is compiled; its parameters, buffers, training flag and
    state_dict are the wrapped module's own."""

    def __init__(self, module: Module, **options) -> None:
        object.__setattr__(self, "_orig_mod", module)
        object.__setattr__(self, "_compiled_forward",
                           CompiledFunction(module.forward, **options))

    def __call__(self, *args, **kwargs):
        return self._compiled_forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        return self._compiled_forward(*args, **kwargs)

    def precompile(self, *args, **kwargs) -> CompiledModule:
        """Compile the forward (and its backward) for these example inputs without running it
        (see CompiledFunction.precompile)."""
        self._compiled_forward.precompile(*args, **kwargs)
        return self

    def __getattr__(self, name):
        return getattr(object.__getattribute__(self, "_orig_mod"), name)

    def __setattr__(self, name, value):
        setattr(self._orig_mod, name, value)

    def __repr__(self) -> str:
        return f"Compiled{self._orig_mod!r}"

    def __dir__(self):
        return dir(self._orig_mod)

    # Module's own methods, delegated (they would otherwise see an empty module).
    def named_modules(self, *a, **k): return self._orig_mod.named_modules(*a, **k)
    def modules(self): return self._orig_mod.modules()
    def named_children(self): return self._orig_mod.named_children()
    def children(self): return self._orig_mod.children()
    def named_parameters(self, *a, **k): return self._orig_mod.named_parameters(*a, **k)
    def parameters(self, *a, **k): return self._orig_mod.parameters(*a, **k)
    def named_buffers(self, *a, **k): return self._orig_mod.named_buffers(*a, **k)
    def buffers(self, *a, **k): return self._orig_mod.buffers(*a, **k)
    def state_dict(self, *a, **k): return self._orig_mod.state_dict(*a, **k)
    def load_state_dict(self, *a, **k): return self._orig_mod.load_state_dict(*a, **k)
    def zero_grad(self, *a, **k): return self._orig_mod.zero_grad(*a, **k)
    def requires_grad_(self, *a, **k): return self._orig_mod.requires_grad_(*a, **k)
    def apply(self, fn):
        self._orig_mod.apply(fn)
        return self

    def train(self, mode: bool = True):
        self._orig_mod.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def to(self, *a, **k):
        self._orig_mod.to(*a, **k)
        return self

    def ir(self, stage: str = "traced") -> str:
        return self._compiled_forward.ir(stage)

    def source(self, stage: str = "forward") -> str:
        return self._compiled_forward.source(stage)


MODES = ("async", "sync")


def compile_mode(mode: str | None) -> str:
    """The compile mode: `mode`, else LUCID_JIT_MODE, else "async"."""
    chosen = mode if mode is not None else os.environ.get("LUCID_JIT_MODE", "async")
    if chosen not in MODES:
        raise ValueError(f"lucid.compile: mode must be one of {', '.join(MODES)}, not "
                         f"{chosen!r}" + ("" if mode is not None else " (LUCID_JIT_MODE)"))
    return chosen


def compile(fn=None, *, backend: str = "cpu", fullgraph: bool = False,  # noqa: A001
            fastmath: bool = False, cache_limit: int = DEFAULT_CACHE_LIMIT,
            pipeline: str = "fusion", mode: str | None = None):
    """Compile a function (or an nn.Module's forward). Usable as `@compile` and `@compile(...)`.

    `pipeline` names the pass pipeline (`lucid_jit.passes.PIPELINES`: "default", "fusion", ...).
    `mode` (default: LUCID_JIT_MODE, else "async"): "async" never makes a call wait for numba:
    until a graph's native code is compiled (by worker processes, into the disk cache) its calls
    run the reference interpreter over the optimized graph. "sync" compiles in the calling
    thread, as the calls need it (for benchmarks and tests).
    """
    options = dict(backend=backend, fullgraph=fullgraph, fastmath=fastmath,
                   cache_limit=cache_limit, pipeline=pipeline, mode=compile_mode(mode))
    if fn is None:
        return lambda f: compile(f, **options)
    if isinstance(fn, Module):
        return CompiledModule(fn, **options)
    if not callable(fn):
        raise TypeError(f"lucid.compile: expected a function or an nn.Module, got "
                        f"{type(fn).__name__}")
    return CompiledFunction(fn, **options)

