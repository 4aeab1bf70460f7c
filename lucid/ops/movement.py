"""Movement primitives: reshape, permute, broadcast_to, getitem (and its adjoint scatter_add),
concat, pad. Attributes are fully normalized (no -1 in shapes, non-negative axes) by Tensor's
methods, so the IR shows concrete values."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from lucid import dtypes
from lucid.ops import rules
from lucid.ops.reduction import sum as _sum
from lucid.ops.registry import Aval, DTypeError, ShapeError, defop, op_error

# ----------------------------------------------------------------------------- reshape


def _reshape_infer(x: Aval, *, shape) -> Aval:
    shape = rules.check_shape("reshape", shape)
    if math.prod(shape) != math.prod(x.shape):
        raise op_error("reshape", [x], f"cannot reshape {math.prod(x.shape)} elements to {shape}")
    return Aval(shape, x.dtype)


reshape = defop("reshape", kind="movement", impl=lambda x, *, shape: np.reshape(x, shape),
                infer=_reshape_infer, vjp=lambda g, out, x, *, shape: (reshape(g, shape=x.shape),),
                save=(), attrs=("shape",))

# ----------------------------------------------------------------------------- permute


def _permute_infer(x: Aval, *, axes) -> Aval:
    if sorted(axes) != list(range(len(x.shape))):
        raise op_error("permute", [x], f"axes {tuple(axes)} are not a permutation of "
                                      f"{len(x.shape)} dimensions")
    return Aval(tuple(x.shape[a] for a in axes), x.dtype)


def _permute_vjp(g, out, x, *, axes):
    return (permute(g, axes=tuple(int(i) for i in np.argsort(axes))),)


permute = defop("permute", kind="movement", impl=lambda x, *, axes: np.transpose(x, axes),
                infer=_permute_infer, vjp=_permute_vjp, save=(), attrs=("axes",))

# ----------------------------------------------------------------------------- broadcast_to


def _broadcast_infer(x: Aval, *, shape) -> Aval:
    shape = rules.check_shape("broadcast_to", shape)
    lead = len(shape) - len(x.shape)
    if lead < 0 or any(d not in (1, s) for d, s in zip(x.shape, shape[lead:], strict=True)):
        raise op_error("broadcast_to", [x], f"cannot broadcast to {shape}")
    return Aval(shape, x.dtype)


def broadcast_axes(in_shape, out_shape) -> tuple[int, ...]:
    """The axes of out_shape that broadcasting in_shape to it expanded."""
    lead = len(out_shape) - len(in_shape)
    return tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(in_shape) if d == 1 and out_shape[lead + i] != 1)


def _broadcast_vjp(g, out, x, *, shape):
    axes = broadcast_axes(x.shape, shape)
    if axes:
        g = _sum(g, axes=axes, keepdims=False)
    return (reshape(g, shape=x.shape) if g.shape != x.shape else g,)


broadcast_to = defop("broadcast_to", kind="movement",
                     impl=lambda x, *, shape: np.broadcast_to(x, shape),
                     infer=_broadcast_infer, vjp=_broadcast_vjp, save=(), attrs=("shape",))

# ----------------------------------------------------------------------------- getitem


class Slice(NamedTuple):
    """A hashable slice (Python 3.10's slice objects are not), as the IR stores it."""

    start: int | None
    stop: int | None
    step: int | None


class Slot(NamedTuple):
    """Stands in an index spec for the k-th integer index tensor given to getitem."""

    k: int


def _numpy_index(index, arrays):
    out = []
    for item in index:
        if isinstance(item, Slice):
            out.append(slice(item.start, item.stop, item.step))
        elif isinstance(item, Slot):
            out.append(arrays[item.k])
        else:
            out.append(item)
    return tuple(out)


def _getitem(x, *arrays, index):
    if Ellipsis not in index:  # (an index of all ints then gives a 0-d view, as in PyTorch,
        index = (*index, Ellipsis)  # not a scalar copy)
    return x[_numpy_index(index, arrays)]


def _index_avals(op: str, x: Aval, arrays, index):
    for a in arrays:
        if a.dtype not in (dtypes.int32, dtypes.int64):
            raise op_error(op, [x, *arrays], "index tensors must be int32 or int64", DTypeError)


def _getitem_infer(x: Aval, *arrays: Aval, index) -> Aval:
    _index_avals("getitem", x, arrays, index)
    # Index a zero-strided stand-in of x's shape with zero-filled stand-ins of the index arrays:
    # NumPy's own indexing rules give the shape, and no real data is touched.
    probe = np.broadcast_to(np.zeros((), np.int8), x.shape)
    stand_ins = [np.zeros(a.shape, np.intp) for a in arrays]
    try:
        shape = probe[_numpy_index(index, stand_ins)].shape
    except (IndexError, ValueError, TypeError) as exc:
        raise op_error("getitem", [x, *arrays], f"invalid index: {exc}", ShapeError) from None
    return Aval(shape, x.dtype)


def _getitem_vjp(g, out, x, *arrays, index):
    return (scatter_add(g, *arrays, index=index, shape=x.shape),) + (None,) * len(arrays)


getitem = defop("getitem", kind="index", impl=_getitem, infer=_getitem_infer, vjp=_getitem_vjp,
                save=tuple(range(1, 64)), attrs=("index",))


def _scatter_add(g, *arrays, index, shape):
    out = np.zeros(shape, g.dtype)
    ix = _numpy_index(index, arrays)
    if arrays:
        np.add.at(out, ix, g)  # repeated indices accumulate
    else:
        out[ix] = g
    return out


def _scatter_add_infer(g: Aval, *arrays: Aval, index, shape) -> Aval:
    target = Aval(tuple(shape), g.dtype)
    _index_avals("scatter_add", target, arrays, index)
    expected = _getitem_infer(target, *arrays, index=index)
    if expected.shape != g.shape:
        raise op_error("scatter_add", [g, *arrays], f"values of shape {g.shape} do not fit "
                                                   f"index {index} of a {shape} target")
    return target


def _scatter_add_vjp(g, out, gy, *arrays, index, shape):
    return (getitem(g, *arrays, index=index),) + (None,) * len(arrays)


scatter_add = defop("scatter_add", kind="index", impl=_scatter_add, infer=_scatter_add_infer,
                    vjp=_scatter_add_vjp, save=tuple(range(1, 64)), attrs=("index", "shape"))

# ----------------------------------------------------------------------------- concat


def _concat_infer(*xs: Aval, axis) -> Aval:
    if not xs:
        raise op_error("concat", [], "needs at least one tensor")
    first = xs[0]
    ndim = len(first.shape)
    if not 0 <= axis < max(ndim, 1) or ndim == 0:
        raise op_error("concat", xs, f"axis {axis} is out of range for {ndim} dimensions")
    for x in xs[1:]:
        if x.dtype != first.dtype:
            raise op_error("concat", xs, "dtypes differ (cast explicitly)", DTypeError)
        if len(x.shape) != ndim or any(
                a != b for i, (a, b) in enumerate(zip(x.shape, first.shape, strict=True))
                if i != axis):
            raise op_error("concat", xs, f"shapes differ outside axis {axis}")
    size = sum(x.shape[axis] for x in xs)
    return Aval(first.shape[:axis] + (size,) + first.shape[axis + 1:], first.dtype)



def _axis_slices(ndim: int, axis: int, start: int, stop: int) -> tuple:
    return (Slice(None, None, None),) * axis + (Slice(start, stop, None),) + \
        (Slice(None, None, None),) * (ndim - axis - 1)


def _concat_vjp(g, out, *xs, axis):
    grads, start = [], 0
    for x in xs:
        stop = start + x.shape[axis]
        grads.append(getitem(g, index=_axis_slices(len(x.shape), axis, start, stop)))
        start = stop
    return tuple(grads)


concat = defop("concat", kind="movement",
               impl=lambda *xs, axis: np.concatenate(xs, axis=axis),
               infer=_concat_infer, vjp=_concat_vjp, save=(), attrs=("axis",))

# ----------------------------------------------------------------------------- pad


def _pad_infer(x: Aval, *, pads, value=0.0) -> Aval:
    if len(pads) != len(x.shape) or any(lo < 0 or hi < 0 for lo, hi in pads):
        raise op_error("pad", [x], f"pads {pads} must give a non-negative (low, high) pair "
                                  f"for each of the {len(x.shape)} dimensions")
    return Aval(tuple(d + lo + hi for d, (lo, hi) in zip(x.shape, pads, strict=True)), x.dtype)


def _pad_vjp(g, out, x, *, pads, value=0.0):
    index = tuple(Slice(lo, lo + d, None) for d, (lo, _hi) in zip(x.shape, pads, strict=True))
    return (getitem(g, index=index),)


pad = defop("pad", kind="movement",
            impl=lambda x, *, pads, value=0.0: np.pad(x, pads, constant_values=value),
            infer=_pad_infer, vjp=_pad_vjp, save=(), attrs=("pads", "value"))
