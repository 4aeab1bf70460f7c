"""`lucid.autograd.Function`: an operation with a backward the user writes (PyTorch's API).

`apply` runs `forward` with grad mode off and gives its outputs one autograd context: a hidden
node whose inputs are the call's tensor arguments, and through which every output's gradient
reaches one call of `backward` with the gradients of all outputs. Eagerly that is the gradient;
under `lucid.compile` the tracer records the ops of `forward` and of `backward`, so a compiled
forward or training step differentiates with the user's backward, not through `forward`'s ops.
"""

from __future__ import annotations

import numpy as np

from lucid import dtypes
from lucid.autograd import _grad_mode
from lucid.ops.registry import GRAD_ENABLED, Context, LucidError, Op, user_location
from lucid.tensor import Tensor


class FunctionCtx:
    """The `ctx` that `forward` (or `setup_context`) and `backward` share: tensors saved for
    backward, which inputs need a gradient, and any attribute the user sets."""

    def __init__(self, name: str, needs_input_grad: tuple[bool, ...]) -> None:
        self._name = name
        self.needs_input_grad = needs_input_grad
        self._saved: tuple = ()
        self._saved_versions: tuple = ()
        self._non_differentiable: set[int] = set()
        self.materialize_grads = True

    def save_for_backward(self, *tensors) -> None:
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"{self._name}: save_for_backward takes tensors (or None), not "
                                f"{type(t).__name__}; keep other values as attributes of ctx")
        self._saved = tensors
        self._saved_versions = tuple(None if t is None else t._version[0] for t in tensors)

    @property
    def saved_tensors(self) -> tuple:
        for i, (t, v) in enumerate(zip(self._saved, self._saved_versions, strict=True)):
            if t is not None and t._version[0] != v:
                raise LucidError(
                    f"{self._name}: saved tensor {i} ({t.aval}) needed for backward was modified "
                    f"in place after the forward ran (version counter moved); use an "
                    f"out-of-place op or clone() first ({user_location()})")
        return self._saved

    def mark_non_differentiable(self, *outputs) -> None:
        self._non_differentiable.update(id(t) for t in outputs)

    def mark_dirty(self, *tensors) -> None:
        raise NotImplementedError(
            f"{self._name}: mark_dirty (a Function that modifies its inputs in place) is not "
            "supported; return a new tensor from forward instead")

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = bool(value)


class _Grads:
    """The gradients of one call's outputs, as they reach the hidden node (a slot per output;
    the chain rule adds these as it adds tensors)."""

    __slots__ = ("slots", "dtype")

    def __init__(self, slots: list, dtype) -> None:
        self.slots, self.dtype = slots, dtype

    def __add__(self, other: _Grads) -> _Grads:
        return _Grads([b if a is None else a if b is None else a + b
                       for a, b in zip(self.slots, other.slots, strict=True)], self.dtype)


def _pick_vjp(g, out, node, *, index, count):
    slots = [None] * count
    slots[index] = g
    return (_Grads(slots, node.dtype),)


_PICK = Op("autograd.Function output", "elementwise", None, None, _pick_vjp, save=())


class Function:
    """Subclass with static `forward(ctx, *args)` and `backward(ctx, *grad_outputs)` (or
    `forward(*args)` plus `setup_context(ctx, inputs, output)`), and call `apply(*args)`.

    `backward` gets one gradient per output of `forward` and returns one per argument of
    `forward`: a tensor of the argument's shape (a broadcast shape is summed back), or None for
    an argument that needs none. Outputs that get no gradient are seeded with zeros unless
    `ctx.set_materialize_grads(False)` was called, when they are None."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a Function subclass must define forward")

    @staticmethod
    def setup_context(ctx, inputs, output):
        raise NotImplementedError  # (overridden: forward then takes no ctx)

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("a Function subclass must define backward to be "
                                  "differentiated")

    vjp = backward

    def __init__(self, *args, **kwargs) -> None:
        raise RuntimeError(f"{type(self).__name__}: call {type(self).__name__}.apply(...), not "
                           "the class itself (Function subclasses are used through apply)")

    @classmethod
    def apply(cls, *args, **kwargs):
        name = cls.__name__
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        ctx = FunctionCtx(name, needs if GRAD_ENABLED.get() else (False,) * len(args))
        separate = cls.setup_context is not Function.setup_context
        with _grad_mode(False):
            result = cls.forward(*args, **kwargs) if separate else \
                cls.forward(ctx, *args, **kwargs)
            if separate:
                cls.setup_context(ctx, args, result)
        if not (GRAD_ENABLED.get() and any(needs)):
            return result
        single = not isinstance(result, tuple)
        outs = [result] if single else list(result)
        inputs = [a for a in args if isinstance(a, Tensor)]
        tensor_ids = {id(a) for a in inputs}
        for i, o in enumerate(outs):
            if isinstance(o, Tensor) and (id(o) in tensor_ids or o._ctx is not None
                                          or o.requires_grad):
                # an input (or a tensor with a history) returned as is: a fresh alias carries
                # this node's gradient, leaving the original's own history alone
                fresh = Tensor._share(o.data)
                fresh._version = o._version  # (one storage: in-place writes show in both)
                if id(o) in ctx._non_differentiable:
                    ctx._non_differentiable.add(id(fresh))
                outs[i] = fresh
        diff = [i for i, o in enumerate(outs)
                if isinstance(o, Tensor) and dtypes.is_floating(o.dtype)
                and id(o) not in ctx._non_differentiable]
        if diff:
            node = Tensor._share(np.empty(0, np.float32))
            node.requires_grad = True
            op = Op(f"{name}.backward", "elementwise", None, None,
                    _NodeVjp(cls, ctx, args, outs), save=())
            node._ctx = Context(op, tuple(inputs), {}, tuple(x._version[0] for x in inputs), 0)
            for i in diff:
                outs[i].requires_grad = True
                outs[i]._ctx = Context(_PICK, (node,), {"index": i, "count": len(outs)},
                                       (0,), 0)
        return outs[0] if single else tuple(outs)


class _NodeVjp:
    """The hidden node's vjp: one call of the user's backward, its results checked and shaped."""

    def __init__(self, cls, ctx: FunctionCtx, args: tuple, outs: list) -> None:
        self.cls, self.ctx, self.args = cls, ctx, args
        # the outputs' shapes and dtypes only (holding the outputs would keep their graph alive)
        self.out_avals = [o.aval if isinstance(o, Tensor) else None for o in outs]
        self.out_devices = [o.device if isinstance(o, Tensor) else None for o in outs]

    def __call__(self, grads: _Grads, node, *inputs):
        from lucid.factories import zeros

        name = self.cls.__name__
        seeds = []
        for g, aval, device in zip(grads.slots, self.out_avals, self.out_devices, strict=True):
            if g is None and aval is not None and self.ctx.materialize_grads:
                g = zeros(aval.shape, dtype=aval.dtype, device=device)
            seeds.append(g)
        result = self.cls.backward(self.ctx, *seeds)
        result = result if isinstance(result, tuple) else (result,)
        n = len(self.args)
        if len(result) < n or any(r is not None for r in result[n:]):
            raise LucidError(f"{name}.backward returned an incorrect number of gradients "
                             f"(expected {n}, got {len(result)}) ({user_location()})")
        out = []
        for i, (a, r) in enumerate(zip(self.args, result[:n], strict=True)):
            if not isinstance(a, Tensor):
                if r is not None:
                    raise LucidError(f"{name}.backward returned a gradient for argument {i}, "
                                     f"which is not a tensor ({type(a).__name__}); return None "
                                     "there")
                continue
            out.append(None if r is None else _fit(name, i, r, a))
        return tuple(out)


def _fit(name: str, i: int, g, a: Tensor) -> Tensor:
    """The gradient for argument i as a tensor of its shape: a broadcast shape summed back."""
    if not isinstance(g, Tensor):
        raise LucidError(f"{name}.backward returned a {type(g).__name__} as the gradient of "
                         f"argument {i}; return a tensor or None")
    if g.shape == a.shape:
        return g
    lead = g.ndim - a.ndim
    if lead >= 0 and all(s == t or s == 1 for s, t in zip(a.shape, g.shape[lead:],
                                                            strict=True)):
        axes = tuple(range(lead)) + tuple(lead + k for k, s in enumerate(a.shape)
                                          if s == 1 and g.shape[lead + k] != 1)
        return g.sum(axes, keepdim=False).reshape(a.shape) if axes else g.reshape(a.shape)
    raise LucidError(f"{name}.backward returned a gradient of shape {g.shape} for argument {i}, "
                     f"of shape {a.shape} ({user_location()})")


def once_differentiable(backward):
    """Mark a backward as not differentiable itself: it runs with grad mode off."""
    def wrapper(ctx, *grad_outputs):
        with _grad_mode(False):
            return backward(ctx, *grad_outputs)
    wrapper.__name__ = getattr(backward, "__name__", "backward")
    wrapper.__doc__ = backward.__doc__
    return wrapper


__all__ = ["Function", "FunctionCtx", "once_differentiable"]
