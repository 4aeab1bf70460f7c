"""THE op registry: every primitive lucid has, one family per file. See registry.py."""

from lucid.ops.creation import GENERATOR, full, normal, uniform
from lucid.ops.elementwise import (
    abs,
    add,
    cast,
    copy,
    cos,
    div,
    eq,
    erf,
    exp,
    ge,
    gt,
    le,
    log,
    lt,
    maximum,
    minimum,
    mul,
    ne,
    neg,
    pow,
    reciprocal,
    relu,
    sigmoid,
    sign,
    sin,
    sqrt,
    sub,
    tanh,
    where,
)
from lucid.ops.matmul import matmul
from lucid.ops.movement import (
    Slice,
    Slot,
    broadcast_to,
    concat,
    getitem,
    pad,
    permute,
    reshape,
    scatter_add,
)
from lucid.ops.reduction import argmax, max, sum
from lucid.ops.registry import (
    ALL,
    CURRENT_TRACER,
    GRAD_ENABLED,
    OUT,
    REGISTRY,
    Aval,
    Context,
    DTypeError,
    LucidError,
    Op,
    ShapeError,
    bind,
    defop,
    op_error,
    user_location,
)

__all__ = sorted(name for name in dir() if not name.startswith("_"))
from lucid.ops.conv import conv2d, fold, max_pool2d, unfold  # noqa: E402,F401
