"""Cache entries: a compiled graph with its inputs' sources, guards and write-backs, or an eager
fallback. `CompiledEntry.run` executes one call: forward graph, write-backs, outputs (with an
autograd context that runs the backward graph where an output needs a gradient).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lucid.autograd import _FREED
from lucid.device import is_device_array
from lucid.ops.registry import ALL, GRAD_ENABLED, Context, LucidError, Op
from lucid.tensor import Tensor
from lucid_jit.cache.guards import fmt_check, fmt_expr, fmt_guard, module_fingerprint
from lucid_jit.ir.graph import Graph
from lucid_jit.tracing import pytree
from lucid_jit.tracing.sources import Source
from lucid_jit.tracing.tracer import evaluate

_share = Tensor._share


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
    index: int = 0  # in its function's cache (explain and the logs number entries alike)
    kind: str = "compiled"
    hits: int = 0
    # run(flat, arrays) generated for entries whose write-backs are simple (guardgen.compile_run)
    fast: Any = None
    device: str = "cpu"
    input_hosts: dict = field(default_factory=dict)
    first_call_seconds: float | None = None  # the wall time of the call that traced it

    # ------------------------------------------------------------------ guards

    def __post_init__(self) -> None:
        from lucid_jit.cache.check import compile_check

        # check(flat): the forward graph's input arrays for this call, or None when a guard
        # fails; generated straight-line code (see guardgen), since it runs on every call.
        self.check = compile_check(self)

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
            if module_fingerprint(m) != fp:
                changed = [k for (k, v) in fp[0] if dict(module_fingerprint(m)[0]).get(k) != v]
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
                out.append(f"{src.describe()}: {fmt_check(check)} -> "
                           f"{fmt_check(now) if isinstance(now, tuple) else now}")
        slots = self._slots(flat)
        for g in self.float_guards:
            if slots is not None and not g.holds(slots):
                was = evaluate(g.expr, self._traced_slots)
                out.append(f"lifted float {fmt_expr(g.expr, self.slot_sources)}: "
                           f"{was!r} -> {evaluate(g.expr, slots)!r} ({fmt_guard(g)})")
        for g in self.guards:
            if not g.holds(flat):
                out.append(f"{g.name}: {g.expected!r} -> {g.current(flat)!r}")
        return out or ["inputs that were distinct when traced now share storage"]

    _traced_slots: list = field(default_factory=list)

    # ------------------------------------------------------------------ running

    def run(self, fn_flat, arrays):
        outs = self.backend.run(self.forward, arrays)
        owned = self.backend.owned(self.forward)
        input_ids = {id(a) for a in arrays}
        given: set[int] = set()

        def fresh(k):
            """Output k as an array no one else holds (inputs, constants and views are copied;
            the native backend says which of its outputs are fresh buffers already)."""
            arr = outs[k]
            if owned is not None and owned[k] and id(arr) not in given:
                given.add(id(arr))
                return arr
            if is_device_array(arr):
                arr = _device_copy(arr)
            elif (id(arr) in input_ids or id(arr) in given or not arr.flags.writeable
                    or not arr.flags.owndata):
                arr = arr.copy()
            given.add(id(arr))
            return arr

        written = []
        for eff in self.effects:
            if eff.kind == "data":
                t = eff.source.get(fn_flat)
                arr = outs[eff.index]
                if arr is not t.data and (owned is None or not owned[eff.index]) and (
                        id(arr) in input_ids or not arr.flags.owndata):
                    arr = arr.copy()  # its source may be overwritten by another write-back
                written.append((t, arr))
        for t, arr in written:
            if t.data is not arr:
                if isinstance(t.data, np.ndarray) and isinstance(arr, np.ndarray):
                    np.copyto(t.data, arr)
                else:
                    _write_device(t, arr)
            t._version[0] += 1
        for eff in self.effects:
            if eff.kind == "grad":
                owner = eff.source.get(fn_flat)
                owner.grad = None if eff.index is None else _share(fresh(eff.index))
            elif eff.kind == "state":
                src = eff.source
                src.opt.state[src.param][src.key] = _share(fresh(eff.index))
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
                    t = _share(fresh(index))
                if grad == "freed":
                    t.requires_grad, t._ctx = True, _FREED
                elif grad == "leaf":
                    t.requires_grad = True
                elif grad is not None:
                    if runner is None:
                        runner = BackwardRunner(self, fn_flat, outs, arrays)
                    xs = tuple(src.get(fn_flat) for src in self.leaf_sources)
                    t.requires_grad = True
                    t._ctx = Context(runner.op, xs, {"index": grad},
                                     tuple(x._version[0] for x in xs), 0)
                leaves.append(t)
        return pytree.unflatten(self.out_spec, leaves)


    def _view_of_input(self, arr, arrays, flat):
        """An output that is a view of an input tensor's array stays a view sharing that tensor's
        version counter, as eagerly (writes through either are seen by both)."""
        if is_device_array(arr) or arr.flags.owndata:
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


class BackwardRunner:
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
        # the other outputs' seeds are zeros (of their size: allocated only where there are any)
        if entry.device == "cuda":
            seeds = [_on_device(g.data, aval) if k == index else _device_zeros(aval)
                     for k, aval in enumerate(entry.diff_avals)]
        else:
            seeds = [np.asarray(g.data, dtype=aval.dtype) if k == index
                     else np.zeros(aval.shape, aval.dtype)
                     for k, aval in enumerate(entry.diff_avals)]
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
            if is_device_array(arr):
                if id(arr) in input_ids:
                    arr = _device_copy(arr)
            elif id(arr) in input_ids or not arr.flags.writeable:
                arr = arr.copy()
            result.append(_share(arr))
        return tuple(result)


# ----------------------------------------------------------------------------- device arrays


def _device_copy(arr):
    from lucid_jit.codegen.cuda.program import _fresh_copy

    return _fresh_copy(arr)


def _write_device(t, arr) -> None:
    """Write a result into a tensor's array where one of them is on the device."""
    from lucid import device

    if isinstance(t.data, np.ndarray):
        np.copyto(t.data, device.to_host(arr))
    elif isinstance(arr, np.ndarray):
        device.runtime().copy_into(t.data, device.to_device(arr))
    else:
        device.runtime().copy_into(t.data, arr)


def _on_device(data, aval):
    """An output gradient as a device array of the output's dtype."""
    from lucid import device

    if device.is_device_array(data) and data.dtype == aval.dtype:
        return data
    return device.to_device(np.asarray(device.to_host(data), dtype=aval.dtype))


def _device_zeros(aval):
    from lucid import device

    return device.to_device(np.zeros(aval.shape, aval.dtype))
