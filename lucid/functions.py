"""Tensor functions that take several tensors or build on the primitives: matmul, where, cat,
stack, and the module-level forms of Tensor's methods (`lucid.exp(t)`)."""

from __future__ import annotations

import numpy as np

from lucid import dtypes, ops
from lucid.ops import rules
from lucid.ops.registry import CURRENT_TRACER, DTypeError, ShapeError, op_error
from lucid.tensor import Tensor


def _as_tensor(x, like: Tensor | None = None) -> Tensor:
    if isinstance(x, Tensor):
        return x
    return like._lift(x) if like is not None else Tensor(x)


def _common(op: str, *ts: Tensor) -> list[Tensor]:
    """Cast tensors to their promoted dtype and broadcast them to one shape."""
    dtype = ts[0].dtype
    for t in ts[1:]:
        dtype = dtypes.promote(dtype, t.dtype)
    shape = rules.broadcast_shapes(op, *(t.aval for t in ts))
    return [t.cast(dtype).broadcast_to(shape) for t in ts]


def matmul(a, b) -> Tensor:
    """NumPy's matmul semantics (1-d operands, broadcast batch dims) on top of the primitive."""
    a, b = _as_tensor(a), _as_tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        raise op_error("matmul", (a.aval, b.aval), "operands must not be 0-d")
    if a.dtype != b.dtype:  # as in PyTorch: no silent promotion of a matrix product
        raise op_error("matmul", (a.aval, b.aval),
                       f"operands must have the same dtype, got {a.dtype} and {b.dtype}",
                       DTypeError)
    squeeze_a, squeeze_b = a.ndim == 1, b.ndim == 1
    if squeeze_a:
        a = a.reshape(1, a.shape[0])
    if squeeze_b:
        b = b.reshape(b.shape[0], 1)
    if a.shape[-1] != b.shape[-2]:
        raise op_error("matmul", (a.aval, b.aval),
                       f"inner dimensions {a.shape[-1]} and {b.shape[-2]} differ", ShapeError)
    if b.ndim > 2 or a.ndim < b.ndim:
        try:
            batch = tuple(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
        except ValueError:
            raise op_error("matmul", (a.aval, b.aval), "batch dimensions cannot be broadcast",
                           ShapeError) from None
        a = a.broadcast_to(batch + a.shape[-2:])
        b = b.broadcast_to(batch + b.shape[-2:])
    out = ops.matmul(a, b)
    if squeeze_a:
        out = out.squeeze(-2)
    if squeeze_b:
        out = out.squeeze(-1)
    return out


def where(condition, x, y) -> Tensor:
    ref = x if isinstance(x, Tensor) else y if isinstance(y, Tensor) else None
    c = _as_tensor(condition)
    x = _as_tensor(x, ref)
    y = _as_tensor(y, ref)
    if c.dtype != dtypes.bool_:
        c = c.cast(dtypes.bool_)
    x, y = _common("where", x, y)
    shape = rules.broadcast_shapes("where", c.aval, x.aval)
    return ops.where(c.broadcast_to(shape), x.broadcast_to(shape), y.broadcast_to(shape))


def maximum(a, b) -> Tensor:
    return _as_tensor(a).maximum(b)


def minimum(a, b) -> Tensor:
    return _as_tensor(a).minimum(b)


def cat(tensors, dim: int = 0) -> Tensor:
    tensors = [_as_tensor(t) for t in tensors]
    if not tensors:
        raise op_error("concat", [], "needs at least one tensor")
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = dtypes.promote(dtype, t.dtype)
    axis = dim % max(tensors[0].ndim, 1)
    return ops.concat(*(t.cast(dtype) for t in tensors), axis=axis)


concat = cat


def stack(tensors, dim: int = 0) -> Tensor:
    tensors = [_as_tensor(t) for t in tensors]
    dim = dim % (tensors[0].ndim + 1)
    return cat([t.unsqueeze(dim) for t in tensors], dim)


def clamp(x, min=None, max=None) -> Tensor:
    return _as_tensor(x).clamp(min, max)


def is_tracing() -> bool:
    """True while lucid.compile is tracing the current function."""
    return CURRENT_TRACER.get() is not None


def method_function(name: str):
    """`lucid.<name>(t, ...)` as `t.<name>(...)` (lucid/__init__ exports one per METHODS name)."""
    def fn(x, *args, **kwargs):
        return getattr(_as_tensor(x), name)(*args, **kwargs)
    fn.__name__ = name
    fn.__doc__ = f"lucid.{name}(t, ...) is t.{name}(...)."
    return fn


METHODS = ("exp", "log", "log1p", "sqrt", "abs", "sin", "cos", "tanh", "erf", "sign", "reciprocal",
           "sigmoid", "relu", "neg", "sum", "mean", "var", "std", "max", "min", "amax", "amin",
           "argmax", "argmin", "reshape", "permute", "transpose", "flatten", "squeeze",
           "unsqueeze", "broadcast_to", "pow", "detach", "clone")
