"""The tracer: what `lucid.ops.bind` talks to while `lucid.compile` runs a function symbolically.

Every op call becomes a node and returns a Tensor whose `.data` is a `Value` (shape and dtype,
no numbers). Tensors that already hold arrays are classified when an op first reads them:
- a tensor whose array was created during the trace (a Python number lifted by an operator, an
  array built inside the function) is a constant;
- anything else (an argument, a module's parameter, an optimizer's state, a `.grad`) is captured as
  a graph input with a `Source` that finds it again on the next call.

Storage, not tensor identity, decides what a read sees: `detach()` and the `old` half of an
in-place op share their tensor's array or value, so `current` maps a storage (the id of an array or
a Value) to the Value it holds now. In-place ops (`assign`) are functionalized: they rebind the
storage to a new Value, and the compiled function writes the final value back after each call.
Views made under the trace are tracked so that a write through a view, or a read of a view after
its base was overwritten, is a graph break instead of a silently different result.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from lucid.device import is_array
from lucid.ops.registry import CURRENT_TRACER, Op, user_location
from lucid.tensor import Tensor
from lucid_jit.ir.graph import Node, Value, make_const
from lucid_jit.tracing.floats import ARITH, FloatGuard, Slot, TracedFloat
from lucid_jit.tracing.sources import ObjSource, ResidualInput, SlotInput, Source

VIEW_OPS = frozenset({"reshape", "permute", "broadcast_to", "getitem"})


class _FloatOps:
    """Folds a lifted float's expression into float64 tensor ops on the slot inputs."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    def slot(self, index):
        return Tensor._share(self.tracer.slot_input(index))

    def const(self, value):
        t = Tensor._share(np.array(float(value), dtype=np.float64))
        self.tracer.created(t, None)
        return t

    def unary(self, op, x):
        return x.abs() if op == "abs" else -x

    def binary(self, op, a, b):
        return ARITH[op](a, b)


class GraphBreak(BaseException):  # noqa: N818 (not an error: the trace stops, eager takes over)
    """Raised inside a trace when the function does something a graph cannot express. It derives
    from BaseException so that a user's `except Exception` cannot swallow it."""

    def __init__(self, reason: str, location: str) -> None:
        super().__init__(f"{reason} ({location})")
        self.reason = reason
        self.location = location


# ----------------------------------------------------------------------------- the tracer


@dataclass
class Snapshot:
    """A real tensor's state before the trace touched it (restored when the trace ends)."""

    tensor: Tensor
    source: Source
    data: Any
    grad: Any
    requires_grad: bool
    ctx: Any
    version: int


class Tracer:
    """Records ops into a node list. `parent` is the forward trace when this one traces backward:
    values of the parent become this graph's inputs (the residuals the forward saves)."""

    def __init__(self, sources: dict[int, tuple[Tensor, Source]] | None = None,
                 parent: Tracer | None = None,
                 aliases: dict[int, list[Source]] | None = None) -> None:
        self.parent = parent
        # The device the graph runs on (api sets it from the tensors the function reaches).
        self.device = parent.device if parent is not None else "cpu"
        self.sources = sources if sources is not None else {}
        # The same, by array: `old` in an in-place op and `detach()` share their tensor's array.
        self.storage_sources = {id(t.data): src for t, src in self.sources.values()
                                if is_array(t.data)}
        self.aliases = aliases if aliases is not None else {}
        self.storage_aliases = {id(t.data): self.aliases[id(t)] for t, _ in self.sources.values()
                                if id(t) in self.aliases and is_array(t.data)}
        # Per graph input: (shape, dtype, requires_grad) of the tensor it was captured from
        # (None for lifted floats and residuals), and further sources that must resolve to the
        # same array (an argument that is also a closure variable).
        self.input_checks: list = []
        self.input_hosts: dict[int, bool] = {}  # captured input -> whether a NumPy array
        self.alias_sources: dict[int, list[Source]] = {}
        self.input_index: dict[int, int] = {}
        self.nodes: list[Node] = []
        self.inputs: list[Value] = []
        # Where each graph input comes from: a Source, a SlotInput or a ResidualInput.
        self.input_sources: list[Any] = []
        self.input_names: list[str] = []
        self.current: dict[int, Value] = {}
        self.keep: dict[int, Any] = {}
        self.born: set[int] = set()
        self.own: set[int] = set()
        self.view_base: dict[int, int] = {}
        self.views: dict[int, list[int]] = {}
        self.stale: set[int] = set()
        self.assigned: dict[int, Tensor] = {}
        self.snapshots: dict[int, Snapshot] = {}
        self.residuals: dict[int, Value] = {}
        self.slot_values: list[float] = []
        self.slot_sources: list[Source] = []
        self.slot_inputs: dict[int, Value] = {}
        self.float_values: dict[tuple, Value] = {}
        self.float_guards: list[FloatGuard] = []

    @contextmanager
    def active(self):
        token = CURRENT_TRACER.set(self)
        try:
            yield self
        finally:
            CURRENT_TRACER.reset(token)

    # ------------------------------------------------------------------ the bind hooks

    def emit(self, op: Op, args, attrs) -> Tensor:
        ins = [self.read(a) for a in args]
        if any(isinstance(v, TracedFloat) for v in attrs.values()):
            attrs = {k: v.pinned() if isinstance(v, TracedFloat) else v for k, v in attrs.items()}
        aval = op.infer(*[v.aval for v in ins], **attrs)
        out = self._node(op, ins, aval, attrs)
        if op.name in VIEW_OPS and (op.name != "getitem" or len(args) == 1):
            base = id(args[0].data)
            base = self.view_base.get(base, base)
            self.view_base[id(out)] = base
            self.views.setdefault(base, []).append(id(out))
        return Tensor._share(out)

    def assign(self, t: Tensor, result: Tensor) -> None:
        """`t` is overwritten in place by `result` (functionalized: its storage is rebound)."""
        key = id(t.data)
        if key in self.view_base:
            self.graph_break("an in-place write into a view (reshape, slice, permute, expand) of "
                             "another tensor")
        self._snapshot(t)
        value = self.read(result)
        for view in self.views.get(key, ()):
            self.stale.add(view)
        self.current[key] = value
        self.keep[key] = t.data
        self.assigned.setdefault(key, t)

    def is_view(self, t: Tensor) -> bool:
        """Whether t was made by a view op under this trace (a write into it is a write into
        its base)."""
        return id(t.data) in self.view_base

    def concretize(self, t: Tensor, what: str) -> np.ndarray:
        d = t.data
        if isinstance(d, np.ndarray) and id(d) in self.born and id(d) not in self.assigned:
            return d
        self.graph_break(f"{what} needs a tensor's value, which is only known when the compiled "
                         "function runs")

    def created(self, t: Tensor, data) -> None:
        """A concrete tensor was made inside the trace: a constant."""
        self.born.add(id(t.data))
        self.keep[id(t.data)] = t.data

    @staticmethod
    def lifted(value) -> bool:
        return isinstance(value, TracedFloat)

    def scalar(self, value, dtype) -> Tensor:
        """A Python number entering a tensor op: a lifted input if it is a TracedFloat."""
        if isinstance(value, TracedFloat):
            if value.tracer is not self:  # a forward float used by backward: a residual
                return Tensor._share(self._foreign(value.tracer.float_value(value,
                                                                            np.dtype(dtype))))
            return Tensor._share(self.float_value(value, np.dtype(dtype)))
        t = Tensor._share(np.array(value, dtype=dtype))
        self.created(t, value)
        return t

    # ------------------------------------------------------------------ reading values

    def read(self, t: Tensor) -> Value:
        d = t.data
        key = id(d)
        if key in self.stale:
            self.graph_break("a view is read after the tensor it views was modified in place")
        v = self.current.get(key)
        if v is not None:
            if id(t) not in self.snapshots and is_array(d) and key not in self.born:
                self._alias(t, key)
            return v
        if isinstance(d, Value):
            if d.id in self.own:
                return d
            return self._foreign(d)
        if not is_array(d):
            raise TypeError(f"a tensor holding {type(d).__name__} reached the tracer")
        if key in self.born:
            return self._constant(key, d)
        if self.parent is not None:
            v = self.parent.current.get(key)
            if v is not None:
                return self._foreign(v, key)
            if key in self.parent.born:
                return self._constant(key, d)
        return self._capture(t)

    def _constant(self, key: int, array: np.ndarray) -> Value:
        node = make_const(array)
        self.nodes.append(node)
        self.own.add(node.output.id)
        self.current[key] = node.output
        self.keep[key] = array
        return node.output

    def _capture(self, t: Tensor) -> Value:
        source = self._source_of(t)
        v = self.new_input(t.data.shape, t.data.dtype, source, source.describe())
        self.input_checks[-1] = (tuple(t.data.shape), t.data.dtype, t.requires_grad)
        self.input_hosts[len(self.inputs) - 1] = isinstance(t.data, np.ndarray)
        self.input_index[id(t.data)] = len(self.inputs) - 1
        self.current[id(t.data)] = v
        self.keep[id(t.data)] = t.data
        self._snapshot(t, source)
        extra = self.aliases.get(id(t)) or self.storage_aliases.get(id(t.data))
        if extra:
            self.alias_sources.setdefault(len(self.inputs) - 1, []).extend(extra)
        return v

    def _alias(self, t: Tensor, key: int) -> None:
        """Another real tensor sharing a captured array: if it has a source of its own, the call
        must give the same array through both."""
        self._snapshot(t)
        found = self.sources.get(id(t))
        k = self.input_index.get(key)
        if found is not None and found[0] is t and k is not None:
            self.alias_sources.setdefault(k, []).append(found[1])

    def _source_of(self, t: Tensor) -> Source:
        found = self.sources.get(id(t))
        if found is not None and found[0] is t:
            return found[1]
        src = self.storage_sources.get(id(t.data))
        if src is not None:
            return src
        # A `.grad` that the scan did not see: find its owner among the tensors seen so far.
        from lucid_jit.tracing.sources import GradSource

        for snap in list(self.snapshots.values()):
            if snap.grad is t or (snap.grad is not None and snap.grad.data is t.data):
                return GradSource(snap.source)
        return ObjSource(t, f"captured {t.aval}")

    def _foreign(self, v: Value, key: int | None = None) -> Value:
        """A value of the parent trace: an input of this graph (a residual the parent outputs)."""
        if self.parent is None:
            raise TypeError("a traced tensor from another compiled function reached this trace "
                            f"({user_location()})")
        mine = self.residuals.get(v.id)
        if mine is None:
            mine = self.new_input(v.shape, v.dtype, ResidualInput(v), "saved")
            self.residuals[v.id] = mine
        if key is not None:
            self.current[key] = mine
        return mine

    def new_input(self, shape, dtype, source, name: str) -> Value:
        v = Value(shape, dtype)
        self.own.add(v.id)
        self.inputs.append(v)
        self.input_sources.append(source)
        self.input_names.append(name)
        self.input_checks.append(None)
        return v

    def _node(self, op: Op, ins, aval, attrs) -> Value:
        out = Value(aval.shape, aval.dtype)
        self.own.add(out.id)
        self.nodes.append(Node(op, ins, (out,), attrs))
        return out

    # ------------------------------------------------------------------ lifted floats

    def lift_float(self, value: float, source: Source) -> TracedFloat:
        value = float(value)
        slot = len(self.slot_values)
        self.slot_values.append(float(value))
        self.slot_sources.append(source)
        return TracedFloat(value, Slot(slot), self)

    def float_value(self, tf: TracedFloat, dtype: np.dtype) -> Value:
        """The lifted float as a graph value: its expression as float64 ops on the slot inputs
        (one per expression and dtype), cast to dtype."""
        key = (tf.expr, dtype.str)
        v = self.float_values.get(key)
        if v is None:
            t = tf.expr.fold(_FloatOps(self))
            if t.dtype != dtype:
                t = t.cast(dtype)
            v = self.read(t)
            self.float_values[key] = v
        return v

    def slot_input(self, slot: int) -> Value:
        """The graph input holding lifted float `slot` (a 0-d float64 array at run time)."""
        v = self.slot_inputs.get(slot)
        if v is None:
            v = self.new_input((), np.float64, SlotInput(slot), self.slot_sources[slot].describe())
            self.slot_inputs[slot] = v
        return v

    def float_guard(self, tf: TracedFloat, op: str, other, result: bool) -> None:
        self.float_guards.append(FloatGuard(tf.expr, op, float(other), bool(result)))

    def pin(self, tf: TracedFloat) -> None:
        """The function used this float's exact value where no graph input can reach (an op
        attribute, a Python computation): guard it, so a different value retraces."""
        self.float_guards.append(FloatGuard(tf.expr, "pinned", tf.value, True))

    # ------------------------------------------------------------------ state

    def _snapshot(self, t: Tensor, source: Source | None = None) -> None:
        if id(t) in self.snapshots:
            return
        if source is None and is_array(t.data) and id(t.data) not in self.born:
            source = self._source_of(t)
        self.snapshots[id(t)] = Snapshot(t, source, t.data, t.grad, t.requires_grad, t._ctx,
                                         t._version[0])
        # The traced graph starts at this tensor: autograd under the trace must not walk into the
        # eager history that produced it.
        if t._ctx is not None:
            t._ctx = None

    def snapshot_tensor(self, t: Tensor, source: Source) -> None:
        self._snapshot(t, source)

    def restore(self) -> None:
        for snap in self.snapshots.values():
            t = snap.tensor
            t.data, t.grad, t.requires_grad, t._ctx = snap.data, snap.grad, snap.requires_grad, \
                snap.ctx
            t._version[0] = snap.version

    def graph_break(self, reason: str):
        raise GraphBreak(reason, user_location())
