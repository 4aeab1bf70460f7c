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

import functools
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lucid import autograd
from lucid.autograd import _FREED
from lucid.nn.modules.module import STATE_EPOCH, Module
from lucid.ops.registry import ALL, CURRENT_TRACER, GRAD_ENABLED, Context, LucidError, Op
from lucid.tensor import Tensor
from lucid_jit import log, pytree
from lucid_jit.backends import get_backend
from lucid_jit.ir.graph import Graph
from lucid_jit.sources import (
    ArgSource,
    GradSource,
    GroupSource,
    OptStateSource,
    Source,
    scan,
)
from lucid_jit.trace import GraphBreak, TracedFloat, Tracer, evaluate

DEFAULT_CACHE_LIMIT = 8
_share = Tensor._share


class GraphBreakError(LucidError):
    """Raised by `lucid.compile(fullgraph=True)` where the function cannot be one graph."""


# ----------------------------------------------------------------------------- guards


@dataclass
class Guard:
    """`observe(flat)` must equal `expected` for an entry to run."""

    name: str
    observe: Any
    expected: Any

    def holds(self, flat) -> bool:
        try:
            return self.observe(flat) == self.expected
        except Exception:  # a source that no longer resolves
            return False

    def current(self, flat):
        try:
            return self.observe(flat)
        except Exception as exc:
            return f"<{type(exc).__name__}: {exc}>"


def _module_fingerprint(m: Module):
    simple = (bool, int, float, str, type(None))
    attrs = tuple((k, v if isinstance(v, simple) else ("object", id(v)))
                  for k, v in m.__dict__.items()
                  if k not in ("_parameters", "_buffers", "_modules", "_non_persistent"))
    return (attrs,
            tuple((k, id(v)) for k, v in m._parameters.items()),
            tuple((k, id(v)) for k, v in m._buffers.items()),
            tuple((k, id(v)) for k, v in m._modules.items()))


def _call_key(flat: list, spec) -> tuple:
    keys = []
    storages = []
    for x in flat:
        if isinstance(x, Tensor):
            d = x.data
            storages.append(id(d))
            keys.append((d.shape, d.dtype.str, x.requires_grad))
        elif isinstance(x, float) and not isinstance(x, TracedFloat):
            keys.append(float)
        elif x is None or isinstance(x, (bool, int, str, bytes)):
            keys.append((type(x), x))
        else:
            keys.append(("object", id(x)))
    # Which tensor arguments share an array (the same tensor passed twice): the graph differs.
    shared = None
    if len(storages) > 1 and len(set(storages)) != len(storages):
        shared = tuple(storages.index(i) for i in storages)
    return (spec, tuple(keys), GRAD_ENABLED.get(), shared)


def _describe_key_field(part) -> str:
    if part is float:
        return "float (lifted)"
    if isinstance(part, tuple) and len(part) == 3 and isinstance(part[0], tuple):
        shape, dtype, rg = part
        return f"{np.dtype(dtype).name}{list(shape)}{' requires_grad' if rg else ''}"
    if isinstance(part, tuple) and part and part[0] == "object":
        return f"object id {part[1]}"
    if isinstance(part, tuple) and len(part) == 2 and isinstance(part[0], type):
        return repr(part[1])
    return repr(part)


# ----------------------------------------------------------------------------- entries


@dataclass
class Effect:
    """After each call: `kind` is "data" (copy into the tensor), "grad" (set `.grad`) or
    "state" (set an optimizer state entry); `index` is the forward output holding the value."""

    kind: str
    source: Source
    index: int | None

    def describe(self) -> str:
        what = {"data": "write into", "grad": "set", "state": "set"}[self.kind]
        target = self.source.describe()
        if self.kind == "grad" and not target.endswith(".grad"):
            target += ".grad"
        value = "None" if self.index is None else f"output {self.index}"
        return f"{what} {target} <- {value}"


@dataclass
class Stage:
    name: str
    seconds: float
    nodes: int


@dataclass
class EagerEntry:
    """An input signature the function runs eagerly for (a graph break, or a failed trace)."""

    key: tuple
    reason: str
    location: str
    guards: list = field(default_factory=list)
    kind: str = "eager"
    hits: int = 0

    def check(self, flat):
        return () if all(g.holds(flat) for g in self.guards) else None

    def failures(self, flat) -> list[str]:
        return [f"{g.name}: {g.expected!r} -> {g.current(flat)!r}" for g in self.guards
                if not g.holds(flat)] or ["a new input signature"]


@dataclass
class CompiledEntry:
    key: tuple
    traced: Graph
    forward: Graph
    input_sources: list
    input_checks: list
    alias_checks: list
    slot_sources: list
    float_guards: list
    guards: list
    modules: list
    epoch: int
    effects: list[Effect]
    out_spec: Any
    out_leaves: list
    n_user: int
    backward: Graph | None = None
    backward_traced: Graph | None = None
    backward_sources: list = field(default_factory=list)
    leaf_sources: list = field(default_factory=list)
    grad_index: list = field(default_factory=list)
    diff_avals: list = field(default_factory=list)
    stages: list[Stage] = field(default_factory=list)
    pass_stats: dict = field(default_factory=dict)
    backend: Any = None
    name: str = "fn"
    kind: str = "compiled"
    hits: int = 0

    # ------------------------------------------------------------------ guards

    def check(self, flat):
        """The forward graph's input arrays for this call, or None when a guard fails."""
        if self.modules and STATE_EPOCH[0] != self.epoch:
            for m, fp in self.modules:
                if _module_fingerprint(m) != fp:
                    return None
            self.epoch = STATE_EPOCH[0]
        arrays = []
        slots = None
        for src, check in zip(self.input_sources, self.input_checks, strict=True):
            if check is None:  # a lifted float
                if slots is None:
                    slots = self._slots(flat)
                    if slots is None:
                        return None
                arrays.append(np.array(slots[src[1]], dtype=np.float64))
                continue
            t = src.get(flat)
            if not isinstance(t, Tensor):
                return None
            d = t.data
            if (d.shape, d.dtype, t.requires_grad) != check:
                return None
            arrays.append(d)
        if self.float_guards:
            if slots is None:
                slots = self._slots(flat)
            if slots is None or not all(g.holds(slots) for g in self.float_guards):
                return None
        for g in self.guards:
            if not g.holds(flat):
                return None
        if self.alias_checks:
            for k, src in self.alias_checks:
                t = src.get(flat)
                if not isinstance(t, Tensor) or t.data is not arrays[k]:
                    return None
        if len(arrays) > 1 and len({id(a) for a in arrays}) != len(arrays):
            return None  # two inputs that were distinct when traced now share an array
        return arrays

    def _slots(self, flat):
        values = []
        for src in self.slot_sources:
            v = src.get(flat)
            if not isinstance(v, (float, int)) or isinstance(v, bool):
                return None
            values.append(float(v))
        return values

    def failures(self, flat) -> list[str]:
        """Why `check` fails, one line per failed guard, with the traced and the current value."""
        out = []
        for m, fp in self.modules:
            if _module_fingerprint(m) != fp:
                changed = [k for (k, v) in fp[0] if dict(_module_fingerprint(m)[0]).get(k) != v]
                detail = f" (attributes {', '.join(changed)})" if changed else ""
                out.append(f"module {type(m).__name__} changed{detail}: training="
                           f"{dict(fp[0]).get('training')} -> {m.training}")
        for src, check in zip(self.input_sources, self.input_checks, strict=True):
            if check is None:
                continue
            t = src.get(flat)
            now = ((t.data.shape, t.data.dtype, t.requires_grad) if isinstance(t, Tensor)
                   else type(t).__name__)
            if now != check:
                out.append(f"{src.describe()}: {_fmt_check(check)} -> "
                           f"{_fmt_check(now) if isinstance(now, tuple) else now}")
        slots = self._slots(flat)
        for g in self.float_guards:
            if slots is not None and not g.holds(slots):
                was = evaluate(g.expr, self._traced_slots)
                out.append(f"lifted float {_fmt_expr(g.expr, self.slot_sources)}: "
                           f"{was!r} -> {evaluate(g.expr, slots)!r} ({_fmt_guard(g)})")
        for g in self.guards:
            if not g.holds(flat):
                out.append(f"{g.name}: {g.expected!r} -> {g.current(flat)!r}")
        return out or ["inputs that were distinct when traced now share storage"]

    _traced_slots: list = field(default_factory=list)

    # ------------------------------------------------------------------ running

    def run(self, fn_flat, arrays):
        outs = self.backend.run(self.forward, arrays)
        input_ids = {id(a) for a in arrays}
        given: set[int] = set()

        def fresh(arr):
            """An array no one else holds (inputs, constants and views are copied)."""
            if (id(arr) in input_ids or id(arr) in given or not arr.flags.writeable
                    or not arr.flags.owndata):
                arr = arr.copy()
            given.add(id(arr))
            return arr

        written = []
        for eff in self.effects:
            if eff.kind == "data":
                arr = outs[eff.index]
                if id(arr) in input_ids or not arr.flags.owndata:
                    arr = arr.copy()  # its source may be overwritten by another write-back
                written.append((eff.source.get(fn_flat), arr))
        for t, arr in written:
            if t.data is not arr:
                np.copyto(t.data, arr)
            t._version[0] += 1
        for eff in self.effects:
            if eff.kind == "grad":
                owner = eff.source.get(fn_flat)
                owner.grad = None if eff.index is None else _share(fresh(outs[eff.index]))
            elif eff.kind == "state":
                src = eff.source
                src.opt.state[src.param][src.key] = _share(fresh(outs[eff.index]))
        runner = None
        leaves = []
        for leaf in self.out_leaves:
            kind = leaf[0]
            if kind == "const":
                leaves.append(leaf[1])
            elif kind == "alias":
                leaves.append(leaf[1].get(fn_flat))
            else:
                _, index, grad = leaf
                t = self._view_of_input(outs[index], arrays, fn_flat)
                if t is None:
                    t = _share(fresh(outs[index]))
                if grad == "freed":
                    t.requires_grad, t._ctx = True, _FREED
                elif grad == "leaf":
                    t.requires_grad = True
                elif grad is not None:
                    if runner is None:
                        runner = _BackwardRunner(self, fn_flat, outs, arrays)
                    xs = tuple(src.get(fn_flat) for src in self.leaf_sources)
                    t.requires_grad = True
                    t._ctx = Context(runner.op, xs, {"index": grad},
                                     tuple(x._version[0] for x in xs), 0)
                leaves.append(t)
        return pytree.unflatten(self.out_spec, leaves)


    def _view_of_input(self, arr, arrays, flat):
        """An output that is a view of an input tensor's array stays a view sharing that tensor's
        version counter, as eagerly (writes through either are seen by both)."""
        if arr.flags.owndata:
            return None
        root = arr
        while isinstance(root.base, np.ndarray):
            root = root.base
        for k, a in enumerate(arrays):
            if a is root and not isinstance(self.input_sources[k], tuple):
                owner = self.input_sources[k].get(flat)
                t = _share(arr)
                t._version = owner._version
                return t
        return None


class _BackwardRunner:
    """Runs an entry's backward graph for the outputs of one call (holding that call's saved
    values). Each differentiable output's context calls it with its own gradient."""

    def __init__(self, entry: CompiledEntry, flat, outs, arrays) -> None:
        self.entry = entry
        self.flat = flat
        self.outs = outs
        self.op = Op(f"compiled {entry.name}", "matmul", None, None, self.vjp, save=ALL)

    def vjp(self, g, out, *xs, index):
        entry = self.entry
        if GRAD_ENABLED.get():
            raise LucidError(f"compiled function {entry.name!r}: backward with create_graph=True "
                             "(a derivative of a derivative) is not supported through a compiled "
                             "function; call the function eagerly for that")
        seeds = [np.zeros(aval.shape, aval.dtype) for aval in entry.diff_avals]
        seeds[index] = np.asarray(g.data, dtype=entry.diff_avals[index].dtype)
        arrays = []
        for src in entry.backward_sources:
            if isinstance(src, tuple) and src[0] == "seed":
                arrays.append(seeds[src[1]])
            elif isinstance(src, tuple) and src[0] == "saved":
                arrays.append(self.outs[src[1]])
            else:
                arrays.append(src.get(self.flat).data)
        grads = entry.backend.run(entry.backward, arrays)
        input_ids = {id(a) for a in arrays}
        result = []
        for i in entry.grad_index:
            if i is None:
                result.append(None)
                continue
            arr = grads[i]
            if id(arr) in input_ids or not arr.flags.writeable:
                arr = arr.copy()
            result.append(_share(arr))
        return tuple(result)


def _fmt_check(check) -> str:
    shape, dtype, rg = check
    return f"{np.dtype(dtype).name}{list(shape)}{' requires_grad' if rg else ''}"


def _fmt_expr(expr, slot_sources) -> str:
    if isinstance(expr, TracedFloat):
        expr = expr.expr
    if not isinstance(expr, tuple):
        return repr(expr)
    if expr[0] == "slot":
        return slot_sources[expr[1]].describe()
    if len(expr) == 2:
        inner = _fmt_expr(expr[1], slot_sources)
        return f"abs({inner})" if expr[0] == "abs" else f"-{inner}"
    sym = {"add": "+", "sub": "-", "mul": "*", "truediv": "/", "pow": "**"}[expr[0]]
    return f"({_fmt_expr(expr[1], slot_sources)} {sym} {_fmt_expr(expr[2], slot_sources)})"


def _fmt_guard(g) -> str:
    if g.op == "pinned":
        return f"its exact value {g.other!r} was used"
    sym = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}[g.op]
    return f"`{sym} {g.other!r}` was {g.result}"


# ----------------------------------------------------------------------------- tracing


class _State:
    """Modules' and optimizers' Python state before a trace, restored after it."""

    def __init__(self, reach, tracer: Tracer, names: list[str]) -> None:
        self.modules = [(m, dict(m.__dict__), dict(m._parameters), dict(m._buffers),
                         dict(m._modules)) for m, _ in reach.modules.values()]
        self.optimizers = []
        for opt, name in reach.optimizers.values():
            groups = [dict(g) for g in opt.param_groups]
            # Each parameter's state dict object, with a copy of its entries.
            inner = {p: (s, dict(s)) for p, s in opt.state.items()}
            self.optimizers.append((opt, name, opt.state, inner, opt.param_groups, groups))
        self.lifted_groups: list[tuple[dict, str, Any]] = []
        # Lift the optimizers' float hyperparameters (lr, betas, eps, ...) to graph inputs.
        for opt, name, _state, _snap, _groups, _copies in self.optimizers:
            for gi, group in enumerate(opt.param_groups):
                for key, value in list(group.items()):
                    if key == "params":
                        continue
                    if _is_float(value):
                        group[key] = tracer.lift_float(value, GroupSource(opt, gi, key, None,
                                                                          name))
                    elif isinstance(value, tuple) and value and all(map(_is_float, value)):
                        group[key] = tuple(tracer.lift_float(v, GroupSource(opt, gi, key, i,
                                                                            name))
                                           for i, v in enumerate(value))
                    else:
                        continue
                    self.lifted_groups.append((group, key, group[key]))

    def side_effects(self) -> str | None:
        """A Python-level change the graph cannot replay, or None."""
        for m, d, params, buffers, modules in self.modules:
            if (dict(m._parameters) != params or dict(m._buffers) != buffers
                    or dict(m._modules) != modules):
                return f"the function registers or replaces parameters of {type(m).__name__}"
            for k, v in m.__dict__.items():
                if k not in d or d[k] is not v:
                    return f"the function sets the attribute {k!r} of a {type(m).__name__}"
        for opt, _name, state, _snap, groups, _copies in self.optimizers:
            if opt.state is not state or opt.param_groups is not groups:
                return "the function replaces an optimizer's state or param_groups"
        lifted = {(id(g), k): v for g, k, v in self.lifted_groups}
        for opt, _name, _state, _snap, _groups, copies in self.optimizers:
            for group, before in zip(opt.param_groups, copies, strict=False):
                for k, v in group.items():
                    expected = lifted.get((id(group), k), before.get(k))
                    if v is not expected:
                        return f"the function changes the optimizer hyperparameter {k!r}"
        return None

    def restore(self) -> None:
        for m, d, params, buffers, modules in self.modules:
            m.__dict__.clear()
            m.__dict__.update(d)
            for store, saved in ((m._parameters, params), (m._buffers, buffers),
                                 (m._modules, modules)):
                store.clear()
                store.update(saved)
        for opt, _name, state, snap, groups, copies in self.optimizers:
            opt.state = state
            state.clear()
            for p, (obj, items) in snap.items():
                obj.clear()
                obj.update(items)
                state[p] = obj
            opt.param_groups = groups
            for group, before in zip(groups, copies, strict=True):
                group.clear()
                group.update(before)


def _is_float(v) -> bool:
    return isinstance(v, float) and not isinstance(v, TracedFloat)


class CompiledFunction:
    """What `lucid.compile(fn)` returns: call it like fn."""

    def __init__(self, fn, *, backend: str = "cpu", fullgraph: bool = False,
                 fastmath: bool = False, cache_limit: int = DEFAULT_CACHE_LIMIT,
                 pipeline: str = "default") -> None:
        self.fn = fn
        self.backend_name = backend
        self.backend = get_backend(backend, fastmath=fastmath)
        self.fullgraph = fullgraph
        self.fastmath = fastmath
        self.cache_limit = cache_limit
        self.pipeline = pipeline
        self.cache: dict[tuple, list] = {}
        self.entries: list = []
        self.recompiles: list[tuple[str, list[str]]] = []
        self.last_entry = None
        self._warned = False
        self.calls = 0
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
        flat: list = []
        spec = pytree.flatten((args, kwargs), flat)
        key = _call_key(flat, spec)
        for entry in self.cache.get(key, ()):
            arrays = entry.check(flat)
            if arrays is not None:
                self.last_entry = entry
                entry.hits += 1
                if entry.kind == "eager":
                    return self.fn(*args, **kwargs)
                return entry.run(flat, arrays)
        return self._miss(key, spec, flat, args, kwargs)

    def _miss(self, key, spec, flat, args, kwargs):
        if len(self.entries) >= self.cache_limit:
            if not self._warned:
                self._warned = True
                warnings.warn(f"lucid.compile: {self.name} was traced {len(self.entries)} times "
                              f"(the cache limit); new input signatures now run eagerly. The "
                              "last recompile: " + "; ".join(self.recompiles[-1][1] if
                                                             self.recompiles else []),
                              RuntimeWarning, stacklevel=3)
            return self.fn(*args, **kwargs)
        reasons = self._why(key, flat) if self.entries else None
        if reasons is not None and log.enabled("recompiles"):
            log.write("recompiles", f"{self.name}: retracing (entry {len(self.entries) + 1}) "
                      "because\n    " + "\n    ".join(reasons))
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
        return entry.run(flat, arrays)

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
                    reasons.append(f"argument {i}: {_describe_key_field(old)} -> "
                                   f"{_describe_key_field(new)}")
        if last[2] != key[2]:
            reasons.append(f"grad mode: {last[2]} -> {key[2]}")
        if last[3] != key[3]:
            reasons.append(f"tensor arguments sharing an array (by position): {last[3]} -> "
                           f"{key[3]}")
        return reasons or ["a new input signature"]

    # ------------------------------------------------------------------ tracing

    def _trace(self, key, spec, flat, args, kwargs):
        t0 = time.perf_counter()
        names: list[str] = []
        pytree.flatten((args, kwargs), [], names, "")
        names = [_arg_name(n, self.fn) for n in names]
        reach = scan(self.fn, flat, names)
        tracer = Tracer(sources=reach.tensors, aliases=reach.aliases)
        for t, src in reach.tensors.values():
            tracer.snapshot_tensor(t, src)
        structure_guards = _structure_guards(reach) + [
            Guard(f"variable {src.describe()}", _binding_observer(src), expected)
            for src, expected in reach.bindings]
        state = _State(reach, tracer, names)
        traced_flat = list(flat)
        for i, x in enumerate(flat):
            if _is_float(x):
                traced_flat[i] = tracer.lift_float(x, ArgSource(i, names[i]))
        targs, tkwargs = pytree.unflatten(spec, traced_flat)
        # Code may branch on whether a `.grad` is None: the optimizer skips parameters without
        # one, and backward sets a missing grad instead of adding to it.
        grad_guards = [(t, t.grad, Guard(f"{src.describe()}.grad is None", _grad_is_none(src),
                                         t.grad is None))
                       for t, src in reach.tensors.values() if t.requires_grad]
        optimized = {id(p) for opt, _ in reach.optimizers.values() for g in opt.param_groups
                     for p in g["params"]}
        try:
            with tracer.active():
                result = self.fn(*targs, **tkwargs)
                t1 = time.perf_counter()
                built = _finish_trace(tracer, state, reach, result)
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
            return EagerEntry(key, gb.reason, gb.location,
                              [g for _, _, g in grad_guards] + structure_guards)
        except BaseException:
            tracer.restore()
            state.restore()
            raise
        tracer.restore()
        state.restore()
        return self._build_entry(key, tracer, reach, built, used_grad_guards + structure_guards,
                                 [Stage("trace", t1 - t0, len(tracer.nodes)),
                                  Stage("autodiff", t2 - t1, len(built["bwd_nodes"]))])

    def _build_entry(self, key, tracer, reach, built, guards, stages):
        from lucid_jit.passes import run_pipeline

        traced = built["forward"]
        t0 = time.perf_counter()
        forward, fstats = run_pipeline(traced, self.pipeline)
        backward, bstats = (None, [])
        if built["backward"] is not None:
            backward, bstats = run_pipeline(built["backward"], self.pipeline)
        t1 = time.perf_counter()
        stages.append(Stage("passes", t1 - t0, len(forward) + (len(backward) if backward else 0)))
        checks = list(tracer.input_checks)
        modules = [(m, _module_fingerprint(m)) for m, _ in reach.modules.values()]
        entry = CompiledEntry(
            key=key, traced=traced, forward=forward, input_sources=list(tracer.input_sources),
            input_checks=checks, alias_checks=built["alias_checks"],
            slot_sources=list(tracer.slot_sources),
            float_guards=_dedupe_float_guards(tracer.float_guards),
            guards=guards, modules=modules, epoch=STATE_EPOCH[0], effects=built["effects"],
            out_spec=built["out_spec"], out_leaves=built["out_leaves"], n_user=built["n_user"],
            backward=backward, backward_traced=built["backward"],
            backward_sources=built["backward_sources"], leaf_sources=built["leaf_sources"],
            grad_index=built["grad_index"], diff_avals=built["diff_avals"], stages=stages,
            pass_stats={"forward": fstats, "backward": bstats}, backend=self.backend,
            name=self.name)
        entry._traced_slots = list(tracer.slot_values)
        t2 = time.perf_counter()
        self.backend.prepare(entry)
        stages.append(Stage(f"backend ({self.backend.name})", time.perf_counter() - t2,
                            len(forward)))
        return entry

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


def _structural(expr):
    if isinstance(expr, TracedFloat):
        expr = expr.expr
    if isinstance(expr, tuple):
        return tuple(_structural(x) for x in expr)
    return expr


def _dedupe_float_guards(guards) -> list:
    """One guard per distinct comparison (an optimizer compares `1 - beta1` once per parameter)."""
    seen, out = set(), []
    for g in guards:
        key = (_structural(g.expr), g.op, g.other, g.result)
        if key not in seen:
            seen.add(key)
            out.append(g)
    return out


def _binding_observer(src: Source):
    from lucid_jit.sources import _binding_value

    def observe(flat):
        return _binding_value(src.get(flat))
    return observe


def _grad_is_none(src: Source):
    def observe(flat):
        t = src.get(flat)
        return t.grad is None
    return observe


def _structure_guards(reach) -> list[Guard]:
    guards = []
    for opt, name in reach.optimizers.values():
        def params(flat, opt=opt):
            return tuple(tuple(id(p) for p in g["params"]) for g in opt.param_groups)

        def state_keys(flat, opt=opt):
            return tuple(tuple(opt.state[p]) if p in opt.state else ()
                         for g in opt.param_groups for p in g["params"])

        def settings(flat, opt=opt):
            return tuple(tuple((k, v) for k, v in g.items() if k != "params"
                               and not _is_float(v) and not (isinstance(v, tuple)
                                                             and all(map(_is_float, v))))
                         for g in opt.param_groups)

        guards.append(Guard(f"{name}: parameters", params, params(None)))
        guards.append(Guard(f"{name}: state keys", state_keys, state_keys(None)))
        guards.append(Guard(f"{name}: non-float settings", settings, settings(None)))
    return guards


def _arg_name(path: str, fn) -> str:
    """`[0][1]` (args[1]) as the parameter's name where the signature gives one."""
    import inspect

    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        params = []
    if path.startswith("[0]["):
        rest = path[4:]
        idx, _, tail = rest.partition("]")
        i = int(idx)
        name = params[i] if i < len(params) else f"args[{i}]"
        return name + tail
    if path.startswith("[1]["):
        rest = path[4:]
        key, _, tail = rest.partition("]")
        return key.strip("'\"") + tail
    return path


def _finish_trace(tracer: Tracer, state: _State, reach, result) -> dict:
    """Everything the trace determined, computed while the traced state is still in place:
    outputs, write-backs, and the backward graph."""
    reason = state.side_effects()
    if reason is not None:
        tracer.graph_break(reason)
    out_flat: list = []
    out_spec = pytree.flatten(result, out_flat)
    values = []
    out_leaves = []
    diff = []
    grad_owner = {id(s.tensor.grad): s for s in tracer.snapshots.values()
                  if s.source is not None and s.tensor.grad is not None}
    for x in out_flat:
        if isinstance(x, TracedFloat):
            tracer.pin(x)
            out_leaves.append(("const", x.value))
        elif not isinstance(x, Tensor):
            out_leaves.append(("const", x))
        elif id(x) in grad_owner:
            out_leaves.append(("alias", GradSource(grad_owner[id(x)].source)))
        elif isinstance(x.data, np.ndarray) and id(x.data) not in tracer.born:
            snap = tracer.snapshots.get(id(x))
            src = snap.source if snap is not None and snap.source is not None else \
                tracer._source_of(x)
            out_leaves.append(("alias", src))
        else:
            grad = None
            if x._ctx is _FREED:
                grad = "freed"
            elif x.requires_grad and x._ctx is None:
                grad = "leaf"
            elif x.requires_grad:
                grad = len(diff)
                diff.append(x)
            out_leaves.append(("value", len(values), grad))
            values.append(tracer.read(x))
    n_user = len(values)
    effects = _effects(tracer, state, values)
    for snap in tracer.snapshots.values():
        if snap.source is not None and snap.tensor._ctx is not None \
                and snap.tensor._ctx is not snap.ctx and snap.tensor._ctx is not _FREED:
            tracer.graph_break(f"an in-place op on {snap.source.describe()} was recorded by "
                               "autograd (update captured tensors under lucid.no_grad())")
    backward = None
    bwd = {"backward_sources": [], "leaf_sources": [], "grad_index": [], "diff_avals": [],
           "bwd_nodes": []}
    if diff:
        backward, bwd = _trace_backward(tracer, diff, values)
    alias_checks = []
    for k, src in enumerate(tracer.input_sources):
        if isinstance(src, tuple):
            continue
        for alt in tracer.alias_sources.get(k, ()):
            alias_checks.append((k, alt))
    forward = Graph(tracer.inputs, tracer.nodes, values, tracer.input_names)
    return {"forward": forward, "out_spec": out_spec, "out_leaves": out_leaves,
            "n_user": n_user, "effects": effects, "backward": backward,
            "alias_checks": alias_checks, **bwd}


def _effects(tracer: Tracer, state: _State, values: list) -> list[Effect]:
    effects = []
    done: set[int] = set()
    for snap in list(tracer.snapshots.values()):
        if snap.source is None:
            continue
        t = snap.tensor
        key = id(snap.data)
        if key in tracer.assigned and key not in done:
            done.add(key)
            effects.append(Effect("data", snap.source, len(values)))
            values.append(tracer.current[key])
        if t.grad is not snap.grad:
            if t.grad is None:
                effects.append(Effect("grad", snap.source, None))
            else:
                effects.append(Effect("grad", snap.source, len(values)))
                values.append(tracer.read(t.grad))
    for opt, name, _state, snap, _groups, _copies in state.optimizers:
        for p, entries in opt.state.items():
            before = snap[p][1] if p in snap else {}
            for k, v in entries.items():
                if before.get(k) is v:
                    continue
                if not isinstance(v, Tensor):
                    tracer.graph_break(f"the optimizer's state {k!r} is a Python value the step "
                                       "changes")
                found = tracer.sources.get(id(p))
                pname = found[1].describe() if found is not None else "param"
                effects.append(Effect("state", OptStateSource(opt, p, k, f"{name}.state[{pname}]"),
                                      len(values)))
                values.append(tracer.read(v))
            for k in before:
                if k not in entries:
                    tracer.graph_break(f"the step deletes the optimizer's state {k!r}")
    return effects


def _trace_backward(tracer: Tracer, diff: list[Tensor], values: list):
    """Run lucid's autograd loop over the forward trace, under a second tracer."""
    leaves = _leaves(diff, tracer)
    bt = Tracer(sources=tracer.sources, parent=tracer)
    with bt.active():
        seeds = [_share(bt.new_input(t.shape, t.dtype, ("seed", j), f"grad_output{j}"))
                 for j, t in enumerate(diff)]
        grads = autograd.run_backward(diff, seeds, inputs=[t for t, _ in leaves],
                                      retain_graph=True)
        outs, grad_index = [], []
        for g in grads:
            if g is None:
                grad_index.append(None)
            else:
                grad_index.append(len(outs))
                outs.append(bt.read(g))
    sources = []
    for src in bt.input_sources:
        if isinstance(src, tuple) and src[0] == "residual":
            sources.append(("saved", len(values)))
            values.append(src[1])
        elif isinstance(src, tuple) and src[0] == "slot":
            raise LucidError("internal: a lifted float reached the backward trace directly")
        else:
            sources.append(src)
    graph = Graph(bt.inputs, bt.nodes, outs, bt.input_names)
    return graph, {"backward_sources": sources, "leaf_sources": [s for _, s in leaves],
                   "grad_index": grad_index, "diff_avals": [t.aval for t in diff],
                   "bwd_nodes": bt.nodes}


def _leaves(roots: list[Tensor], tracer: Tracer) -> list[tuple[Tensor, Source]]:
    """The real tensors (arguments, captured) that the outputs' gradients flow to."""
    found, seen, stack = [], set(), list(roots)
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        ctx = t._ctx
        if ctx is None or ctx is _FREED:
            if t.requires_grad and isinstance(t.data, np.ndarray) \
                    and id(t.data) not in tracer.born:
                snap = tracer.snapshots.get(id(t))
                src = snap.source if snap is not None and snap.source is not None \
                    else tracer._source_of(t)
                found.append((t, src))
            continue
        stack.extend(x for x in ctx.inputs if x.requires_grad)
    return found


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


def compile(fn=None, *, backend: str = "cpu", fullgraph: bool = False,  # noqa: A001
            fastmath: bool = False, cache_limit: int = DEFAULT_CACHE_LIMIT):
    """Compile a function (or an nn.Module's forward). Usable as `@compile` and `@compile(...)`."""
    options = dict(backend=backend, fullgraph=fullgraph, fastmath=fastmath,
                   cache_limit=cache_limit)
    if fn is None:
        return lambda f: compile(f, **options)
    if isinstance(fn, Module):
        return CompiledModule(fn, **options)
    if not callable(fn):
        raise TypeError(f"lucid.compile: expected a function or an nn.Module, got "
                        f"{type(fn).__name__}")
    return CompiledFunction(fn, **options)

