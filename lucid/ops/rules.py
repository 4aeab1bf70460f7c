"""Shape and dtype rules shared by the primitives. Each takes avals (and attrs) and returns the
output aval, or raises an error naming the op, the operands and the user's line."""

from __future__ import annotations

import numpy as np

from lucid import dtypes
from lucid.ops.registry import Aval, DTypeError, ShapeError, op_error


def normalize_axis(op: str, aval: Aval, axis: int) -> int:
    ndim = len(aval.shape)
    if not -max(ndim, 1) <= axis < max(ndim, 1):
        raise op_error(op, [aval], f"axis {axis} is out of range for {ndim} dimensions", ShapeError)
    return axis % ndim if ndim else 0


def same(op: str):
    """Unary rule for any numeric dtype (bool refused)."""
    def rule(x: Aval) -> Aval:
        if x.dtype == dtypes.bool_:
            raise op_error(op, [x], "needs a numeric dtype, got bool", DTypeError)
        return x
    return rule


def floating(op: str):
    """Unary rule for ops defined on floating dtypes only."""
    def rule(x: Aval) -> Aval:
        if not dtypes.is_floating(x.dtype):
            raise op_error(op, [x], "needs a floating dtype (float32 or float64)", DTypeError)
        return x
    return rule


def _same_operands(op: str, avals) -> None:
    first = avals[0]
    for a in avals[1:]:
        if a.shape != first.shape:
            raise op_error(op, avals, "shapes differ (broadcast explicitly with broadcast_to)",
                           ShapeError)
        if a.dtype != first.dtype:
            raise op_error(op, avals, "dtypes differ (cast explicitly)", DTypeError)


def binary(op: str, *, float_only: bool = False, logical: bool = False):
    """Two operands of one shape and dtype. `logical`: bool operands are allowed (add is "or",
    mul is "and", maximum/minimum likewise, as in PyTorch)."""
    def rule(x: Aval, y: Aval) -> Aval:
        _same_operands(op, (x, y))
        if (x.dtype == dtypes.bool_ and not logical) or \
                (float_only and not dtypes.is_floating(x.dtype)):
            need = "a floating dtype" if float_only else "a numeric dtype"
            raise op_error(op, (x, y), f"needs {need}, got {x.dtype}", DTypeError)
        return x
    return rule


def compare(op: str):
    def rule(x: Aval, y: Aval) -> Aval:
        _same_operands(op, (x, y))
        return Aval(x.shape, dtypes.bool_)
    return rule


def broadcast_shapes(op: str, *avals: Aval) -> tuple[int, ...]:
    """NumPy's broadcasting of several shapes, with lucid's error on failure."""
    try:
        return tuple(np.broadcast_shapes(*(a.shape for a in avals)))
    except ValueError:
        raise op_error(op, avals, "shapes cannot be broadcast together", ShapeError) from None


def reduce_shape(op: str, x: Aval, axes, keepdims: bool) -> tuple[int, ...]:
    ndim = len(x.shape)
    if axes is None:
        axes = tuple(range(ndim))
    if any(not isinstance(a, (int, np.integer)) or not 0 <= a < max(ndim, 1) for a in axes) \
            or len(set(axes)) != len(axes):
        raise op_error(op, [x], f"invalid axes {axes} for {ndim} dimensions", ShapeError)
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    return tuple(d for i, d in enumerate(x.shape) if i not in axes)


def check_shape(op: str, shape) -> tuple[int, ...]:
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise op_error(op, [], f"negative size in shape {shape}", ShapeError)
    return shape
