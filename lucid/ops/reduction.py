"""Reductions: sum, max, argmax. `axes` is a sorted tuple of non-negative axes (None: all axes);
Tensor's methods normalize what users write into that form."""

from __future__ import annotations

import numpy as np

from lucid import dtypes
from lucid.ops import rules
from lucid.ops.registry import OUT, Aval, defop, op_error


def _sum_dtype(dtype: np.dtype) -> np.dtype:
    return dtype if dtypes.is_floating(dtype) else dtypes.int64


def _sum_infer(x: Aval, *, axes=None, keepdims=False) -> Aval:
    return Aval(rules.reduce_shape("sum", x, axes, keepdims), _sum_dtype(x.dtype))


def _keepdims_shape(shape, axes):
    axes = range(len(shape)) if axes is None else axes
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


def _sum_vjp(g, out, x, *, axes=None, keepdims=False):
    if not dtypes.is_floating(x.dtype):
        return (None,)
    return (g.reshape(_keepdims_shape(x.shape, axes)).broadcast_to(x.shape),)


sum = defop(
    "sum", kind="reduction",
    impl=lambda x, *, axes=None, keepdims=False: np.sum(x, axis=axes, keepdims=keepdims,
                                                        dtype=_sum_dtype(x.dtype)),
    infer=_sum_infer, vjp=_sum_vjp, save=(), attrs=("axes", "keepdims"))


def _max_infer(x: Aval, *, axes=None, keepdims=False) -> Aval:
    shape = rules.reduce_shape("max", x, axes, keepdims)
    axes = range(len(x.shape)) if axes is None else axes
    if any(x.shape[a] == 0 for a in axes):
        raise op_error("max", [x], "cannot reduce over an empty axis")
    return Aval(shape, x.dtype)


def _max_vjp(g, out, x, *, axes=None, keepdims=False):
    # Ties share the gradient equally (the subgradient PyTorch's amax uses).
    kshape = _keepdims_shape(x.shape, axes)
    hit = (x == out.reshape(kshape).broadcast_to(x.shape)).cast(x.dtype)
    count = sum(hit, axes=axes, keepdims=True)
    return ((g.reshape(kshape) / count).broadcast_to(x.shape) * hit,)


max = defop("max", kind="reduction",
            impl=lambda x, *, axes=None, keepdims=False: np.max(x, axis=axes, keepdims=keepdims),
            infer=_max_infer, vjp=_max_vjp, save=(0, OUT), attrs=("axes", "keepdims"))


def _argmax_infer(x: Aval, *, axis=None, keepdims=False) -> Aval:
    axes = None if axis is None else (axis,)
    if x.shape and axis is None and 0 in x.shape or axis is not None and x.shape[axis] == 0:
        raise op_error("argmax", [x], "cannot take the argmax of an empty axis")
    shape = rules.reduce_shape("argmax", x, axes, keepdims)
    return Aval(shape, dtypes.int64)


def _argmax(x, *, axis=None, keepdims=False):
    return np.argmax(x, axis=axis, keepdims=keepdims).astype(np.int64, copy=False)


argmax = defop("argmax", kind="reduction", impl=_argmax, infer=_argmax_infer,
               attrs=("axis", "keepdims"))
