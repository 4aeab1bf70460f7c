"""Convolution and pooling primitives: unfold (im2col), its adjoint fold, conv2d, max_pool2d.

All tensors are NCHW. Every attribute (kernel, stride, padding, dilation) is a tuple of two ints,
normalized by `lucid.nn.functional`; the IR shows those concrete values. conv2d's eager impl is
unfold + one matmul over every image's columns at once, and its vjp is the same two ideas run
backwards (fold and matmul), written in lucid ops so it also records while tracing.

unfold's columns and fold's input have a `layout`: "nkl" (the default, torch's F.unfold: (N,
C*kh*kw, L)) or "knl" ((C*kh*kw, N, L)). conv2d uses "knl": its columns are then one (K, N*L)
matrix, so the forward product and both gradients are single GEMMs (per group) over all images,
and the backward reads the forward's columns with no transposing copy. avg_pool2d is no
primitive: the functional layer composes it from unfold and a sum.
"""

from __future__ import annotations

import numpy as np

from lucid import device, dtypes
from lucid.ops import reduction, registry
from lucid.ops.elementwise import cast, eq, mul
from lucid.ops.matmul import matmul, transpose_last
from lucid.ops.movement import broadcast_to, pad, permute, reshape
from lucid.ops.reduction import argmax
from lucid.ops.registry import Aval, DTypeError, ShapeError, defop, op_error

_WINDOW_ATTRS = ("kernel", "stride", "padding", "dilation")

# ----------------------------------------------------------------------------- shape helpers


def _check_pairs(op: str, avals, **pairs) -> None:
    """Every window attribute is a pair of ints: positive, except padding (non-negative)."""
    for name, value in pairs.items():
        low = 0 if name == "padding" else 1
        if (not isinstance(value, tuple) or len(value) != 2
                or not all(isinstance(v, (int, np.integer)) and v >= low for v in value)):
            need = "non-negative" if low == 0 else "positive"
            raise op_error(op, avals, f"{name} must be a pair of {need} ints, got {value!r}")


def _check_float(op: str, avals) -> None:
    for a in avals:
        if not dtypes.is_floating(a.dtype):
            raise op_error(op, avals, "needs floating tensors (float32 or float64)", DTypeError)
    if any(a.dtype != avals[0].dtype for a in avals):
        raise op_error(op, avals, "dtypes differ (cast explicitly)", DTypeError)


def _check_rank(op: str, avals, x: Aval, ndim: int, what: str) -> None:
    if len(x.shape) != ndim:
        raise op_error(op, avals, f"{what} must have {ndim} dimensions, got {len(x.shape)}")


def out_size(size: int, kernel: int, stride: int, padding: int, dilation: int,
             ceil_mode: bool = False) -> int:
    """Output length of a sliding window along one axis (PyTorch's rule, ceil_mode included:
    a window may hang over the right edge but must start inside the input or the left padding)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if not ceil_mode:
        return span // stride + 1
    n = -(-span // stride) + 1
    if (n - 1) * stride >= size + padding:
        n -= 1
    return n


def _out_hw(op: str, avals, hw, kernel, stride, padding, dilation, ceil_mode=False):
    oh, ow = (out_size(hw[i], kernel[i], stride[i], padding[i], dilation[i], ceil_mode)
              for i in range(2))
    if oh < 1 or ow < 1:
        raise op_error(op, avals, f"the {hw[0]}x{hw[1]} input (padding {padding}) is smaller "
                                  f"than the {kernel} kernel with dilation {dilation}: the "
                                  f"output would be {oh}x{ow}")
    return oh, ow


def _windows(xp: np.ndarray, kernel, stride, dilation, ohw) -> np.ndarray:
    """A (N, C, kh, kw, OH, OW) strided view of padded xp: element [n, c, i, j, y, x] is
    xp[n, c, y*sh + i*dh, x*sw + j*dw]. No copy; the kernel axes lead so that reductions over
    them combine whole contiguous-ish (OH, OW) slices at a time."""
    sn, sc, sy, sx = xp.strides
    shape = xp.shape[:2] + tuple(kernel) + tuple(ohw)
    strides = (sn, sc, sy * dilation[0], sx * dilation[1], sy * stride[0], sx * stride[1])
    return np.lib.stride_tricks.as_strided(xp, shape, strides, writeable=False)


def _pad_hw(x: np.ndarray, padding, value=0.0, extra=(0, 0)) -> np.ndarray:
    (ph, pw), (eh, ew) = padding, extra
    if not (ph or pw or eh or ew):
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph + eh), (pw, pw + ew)), constant_values=value)


# ----------------------------------------------------------------------------- unfold


def _check_layout(op: str, avals, layout) -> None:
    if layout not in ("nkl", "knl"):
        raise op_error(op, avals, f"layout must be 'nkl' or 'knl', got {layout!r}")


def _unfold_infer(x: Aval, *, kernel, stride, padding, dilation, layout="nkl") -> Aval:
    _check_rank("unfold", [x], x, 4, "the input (N, C, H, W)")
    _check_pairs("unfold", [x], kernel=kernel, stride=stride, padding=padding, dilation=dilation)
    _check_layout("unfold", [x], layout)
    if x.dtype == dtypes.bool_:
        raise op_error("unfold", [x], "needs a numeric dtype, got bool", DTypeError)
    oh, ow = _out_hw("unfold", [x], x.shape[2:], kernel, stride, padding, dilation)
    n, c = x.shape[:2]
    k = c * kernel[0] * kernel[1]
    return Aval((n, k, oh * ow) if layout == "nkl" else (k, n, oh * ow), x.dtype)


def _unfold(x, *, kernel, stride, padding, dilation, layout="nkl"):
    out = _unfold_infer(Aval(x.shape, x.dtype), kernel=kernel, stride=stride, padding=padding,
                        dilation=dilation, layout=layout)
    ohw = _out_hw("unfold", [], x.shape[2:], kernel, stride, padding, dilation)
    view = _windows(_pad_hw(x, padding), kernel, stride, dilation, ohw)  # (N, C, kh, kw, OH, OW)
    if layout == "knl":
        view = view.transpose(1, 2, 3, 0, 4, 5)
    return view.reshape(out.shape)  # the one copy: (C, kh, kw) rows, (OH, OW) columns


def _unfold_vjp(g, out, x, *, kernel, stride, padding, dilation, layout="nkl"):
    return (fold(g, output_size=tuple(x.shape[2:]), kernel=kernel, stride=stride,
                 padding=padding, dilation=dilation, layout=layout),)


unfold = defop("unfold", kind="conv", impl=_unfold, infer=_unfold_infer, vjp=_unfold_vjp,
               save=(), attrs=_WINDOW_ATTRS + ("layout",))

# ----------------------------------------------------------------------------- fold


def _fold_infer(cols: Aval, *, output_size, kernel, stride, padding, dilation,
                layout="nkl") -> Aval:
    _check_rank("fold", [cols], cols, 3, "the columns (N, C*kh*kw, L)" if layout != "knl" else
                "the columns (C*kh*kw, N, L)")
    _check_pairs("fold", [cols], output_size=output_size, kernel=kernel, stride=stride,
                 padding=padding, dilation=dilation)
    _check_layout("fold", [cols], layout)
    if cols.dtype == dtypes.bool_:
        raise op_error("fold", [cols], "needs a numeric dtype, got bool", DTypeError)
    n, rows, length = cols.shape
    if layout == "knl":
        rows, n = n, rows
    kk = kernel[0] * kernel[1]
    axis = 1 if layout == "nkl" else 0
    if rows % kk:
        raise op_error("fold", [cols], f"dimension {axis} ({rows}) is not a multiple of the "
                                       f"kernel's {kernel[0]}*{kernel[1]} = {kk} positions")
    oh, ow = _out_hw("fold", [cols], output_size, kernel, stride, padding, dilation)
    if length != oh * ow:
        raise op_error("fold", [cols], f"{length} columns, but an output of size {output_size} "
                                       f"with this window has {oh}x{ow} = {oh * ow} positions")
    return Aval((n, rows // kk, *output_size), cols.dtype)


def _fold(cols, *, output_size, kernel, stride, padding, dilation, layout="nkl"):
    out = _fold_infer(Aval(cols.shape, cols.dtype), output_size=output_size, kernel=kernel,
                      stride=stride, padding=padding, dilation=dilation, layout=layout)
    n, c, h, w = out.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    oh, ow = _out_hw("fold", [], output_size, kernel, stride, padding, dilation)
    if layout == "knl":
        patches = cols.reshape(c, kh, kw, n, oh, ow).transpose(3, 0, 1, 2, 4, 5)
    else:
        patches = cols.reshape(n, c, kh, kw, oh, ow)
    acc = np.zeros((n, c, h + 2 * ph, w + 2 * pw), cols.dtype)
    # One strided add per kernel offset: positions hit by several windows accumulate.
    for i in range(kh):
        for j in range(kw):
            y, x = i * dh, j * dw
            acc[:, :, y:y + sh * (oh - 1) + 1:sh, x:x + sw * (ow - 1) + 1:sw] += patches[:, :, i, j]
    return np.ascontiguousarray(acc[:, :, ph:ph + h, pw:pw + w])


def _fold_vjp(g, out, cols, *, output_size, kernel, stride, padding, dilation, layout="nkl"):
    return (unfold(g, kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                   layout=layout),)


fold = defop("fold", kind="conv", impl=_fold, infer=_fold_infer, vjp=_fold_vjp, save=(),
             attrs=("output_size",) + _WINDOW_ATTRS + ("layout",))

# ----------------------------------------------------------------------------- conv2d


def _conv2d_infer(x: Aval, w: Aval, *, stride, padding, dilation, groups) -> Aval:
    avals = (x, w)
    _check_rank("conv2d", avals, x, 4, "the input (N, C, H, W)")
    _check_rank("conv2d", avals, w, 4, "the weight (out_channels, in_channels/groups, kh, kw)")
    _check_float("conv2d", avals)
    _check_pairs("conv2d", avals, stride=stride, padding=padding, dilation=dilation)
    if not isinstance(groups, (int, np.integer)) or groups < 1:
        raise op_error("conv2d", avals, f"groups must be a positive int, got {groups!r}")
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    if o % groups:
        raise op_error("conv2d", avals, f"the weight's {o} output channels are not divisible "
                                        f"by groups={groups}")
    if c != cg * groups:
        raise op_error("conv2d", avals, f"the input has {c} channels, but the weight expects "
                                        f"{cg * groups} (weight.shape[1]={cg} x groups={groups})")
    if kh < 1 or kw < 1:
        raise op_error("conv2d", avals, f"the kernel {kh}x{kw} is empty")
    oh, ow = _out_hw("conv2d", avals, (h, wd), (kh, kw), stride, padding, dilation)
    return Aval((n, o, oh, ow), x.dtype)


def _conv2d(x, w, *, stride, padding, dilation, groups):
    out = _conv2d_infer(Aval(x.shape, x.dtype), Aval(w.shape, w.dtype), stride=stride,
                        padding=padding, dilation=dilation, groups=groups)
    n, o, oh, ow = out.shape
    cols = _unfold(x, kernel=w.shape[2:], stride=stride, padding=padding, dilation=dilation,
                   layout="knl")  # (G*K, N, L)
    y = np.matmul(w.reshape(groups, o // groups, -1), cols.reshape(groups, -1, n * oh * ow))
    # (G, O/G, N*L) -> NCHW
    return np.ascontiguousarray(y.reshape(o, n, oh, ow).transpose(1, 0, 2, 3))


def _conv2d_vjp(g, out, x, w, *, stride, padding, dilation, groups):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    length = g.shape[2] * g.shape[3]
    k = cg * kh * kw
    og = o // groups
    window = dict(kernel=(kh, kw), stride=stride, padding=padding, dilation=dilation,
                  layout="knl")
    # Both gradients contract over (image, position): g laid out (G, O/G, N*L) once, the
    # forward's columns are (G, K, N*L) as they are, and each gradient is one matmul per group
    # (2-d without groups, where BLAS takes the transposed operands as they are).
    lead = (groups,) if groups > 1 else ()
    g_cols = reshape(permute(reshape(g, shape=(n, o, length)), axes=(1, 0, 2)),
                     shape=lead + (og, n * length))
    gx = gw = None
    if x.requires_grad:
        w_g = reshape(w, shape=lead + (og, k))
        cols = matmul(transpose_last(w_g), g_cols)  # (G, K, N*L)
        gx = fold(reshape(cols, shape=(groups * k, n, length)), output_size=(h, wd), **window)
    if w.requires_grad:
        x_cols = reshape(unfold(x, **window), shape=lead + (k, n * length))
        gw = reshape(matmul(g_cols, transpose_last(x_cols)), shape=w.shape)  # (G, O/G, K)
    return gx, gw


conv2d = defop("conv2d", kind="conv", impl=_conv2d, infer=_conv2d_infer, vjp=_conv2d_vjp,
               save={0: (1,), 1: (0,)}, attrs=("stride", "padding", "dilation", "groups"))

# ----------------------------------------------------------------------------- max_pool2d


def _max_pool2d_infer(x: Aval, *, kernel, stride, padding, dilation, ceil_mode) -> Aval:
    _check_rank("max_pool2d", [x], x, 4, "the input (N, C, H, W)")
    _check_float("max_pool2d", [x])
    _check_pairs("max_pool2d", [x], kernel=kernel, stride=stride, padding=padding,
                 dilation=dilation)
    for p, k, d in zip(padding, kernel, dilation, strict=True):
        if p > ((k - 1) * d + 1) // 2:
            raise op_error("max_pool2d", [x], f"pad should be at most half of effective kernel "
                                              f"size, but got pad={p}, kernel_size={k} and "
                                              f"dilation={d}")
    oh, ow = _out_hw("max_pool2d", [x], x.shape[2:], kernel, stride, padding, dilation, ceil_mode)
    return Aval(x.shape[:2] + (oh, ow), x.dtype)


def pool_extra(hw, ohw, kernel, stride, padding, dilation) -> tuple[int, int]:
    """Padding beyond `padding` on the bottom/right that ceil_mode's last window hangs into."""
    return tuple(max(0, (ohw[i] - 1) * stride[i] + dilation[i] * (kernel[i] - 1) + 1
                     - hw[i] - 2 * padding[i]) for i in range(2))


def _max_pool2d(x, *, kernel, stride, padding, dilation, ceil_mode):
    out = _max_pool2d_infer(Aval(x.shape, x.dtype), kernel=kernel, stride=stride,
                            padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    ohw = out.shape[2:]
    extra = pool_extra(x.shape[2:], ohw, kernel, stride, padding, dilation)
    xp = _pad_hw(x, padding, -np.inf, extra)  # -inf never wins, so padding is never the max
    view = _windows(xp, kernel, stride, dilation, ohw)
    # One np.maximum per kernel offset: reducing the strided view directly is ~30x slower.
    out = view[:, :, 0, 0].copy()
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            if i or j:
                np.maximum(out, view[:, :, i, j], out=out)
    return out


def _max_pool2d_vjp(g, out, x, *, kernel, stride, padding, dilation, ceil_mode):
    # The whole gradient of a window goes to its FIRST maximum (row-major), as PyTorch routes it.
    return (max_pool2d_grad(g, x, kernel=kernel, stride=stride, padding=padding,
                            dilation=dilation, ceil_mode=ceil_mode),)


max_pool2d = defop("max_pool2d", kind="conv", impl=_max_pool2d, infer=_max_pool2d_infer,
                   vjp=_max_pool2d_vjp, save=(0,), attrs=_WINDOW_ATTRS + ("ceil_mode",))


# ----------------------------------------------------------------------------- max_pool2d_grad


def _max_pool2d_grad_infer(g: Aval, x: Aval, *, kernel, stride, padding, dilation,
                           ceil_mode) -> Aval:
    out = _max_pool2d_infer(x, kernel=kernel, stride=stride, padding=padding,
                            dilation=dilation, ceil_mode=ceil_mode)
    if g.shape != out.shape or g.dtype != x.dtype:
        raise op_error("max_pool2d_grad", [g, x], f"the gradient must be {out} (max_pool2d's "
                                                  f"output for this input)", ShapeError)
    return x


def _first_max(x, kernel, stride, padding, dilation, ohw):
    """(N, C, OH, OW): the row-major position in each window of its first maximum (the first
    NaN, if any), with -inf padding (never chosen over an element of the input)."""
    extra = pool_extra(x.shape[2:], ohw, kernel, stride, padding, dilation)
    view = _windows(_pad_hw(x, padding, -np.inf, extra), kernel, stride, dilation, ohw)
    n, c = x.shape[:2]
    return np.argmax(view.reshape(n, c, kernel[0] * kernel[1], *ohw), axis=2)


def _max_pool2d_grad(g, x, *, kernel, stride, padding, dilation, ceil_mode):
    ohw = g.shape[2:]
    first = _first_max(x, kernel, stride, padding, dilation, ohw)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    extra = pool_extra(x.shape[2:], ohw, kernel, stride, padding, dilation)
    n, c, h, w = x.shape
    acc = np.zeros((n, c, h + 2 * ph + extra[0], w + 2 * pw + extra[1]), g.dtype)
    oh, ow = ohw
    # One strided add per kernel offset: windows overlapping at a position accumulate.
    for i in range(kh):
        for j in range(kw):
            y, xx = i * dh, j * dw
            acc[:, :, y:y + sh * (oh - 1) + 1:sh, xx:xx + sw * (ow - 1) + 1:sw] += \
                np.where(first == i * kw + j, g, 0)
    return np.ascontiguousarray(acc[:, :, ph:ph + h, pw:pw + w])


def _max_pool2d_grad_vjp(gg, out, g, x, *, kernel, stride, padding, dilation, ceil_mode):
    # Linear in g: each window reads gg at its first maximum (unfold the padded gg, pick the
    # argmax position of the same windows of x). Piecewise constant in x.
    n, c = x.shape[:2]
    oh, ow = g.shape[2:]
    kk = kernel[0] * kernel[1]
    extra = pool_extra(x.shape[2:], (oh, ow), kernel, stride, padding, dilation)
    pads = ((0, 0), (0, 0), (padding[0], padding[0] + extra[0]),
            (padding[1], padding[1] + extra[1]))
    window = dict(kernel=kernel, stride=stride, padding=(0, 0), dilation=dilation)
    shape = (n, c, kk, oh * ow)
    x_cols = reshape(unfold(pad(x, pads=pads, value=float("-inf")), **window), shape=shape)
    first = broadcast_to(argmax(x_cols, axis=2, keepdims=True), shape=shape)
    positions = device.like(x, registry._wrap(np.arange(kk, dtype=np.int64).reshape(1, 1, kk,
                                                                                   1)))
    hit = cast(eq(first, broadcast_to(positions, shape=shape)), dtype=x.dtype)
    gg_cols = reshape(unfold(pad(gg, pads=pads, value=0.0), **window), shape=shape)
    picked = reduction.sum(mul(hit, gg_cols), axes=(2,), keepdims=False)
    return reshape(picked, shape=g.shape), None


max_pool2d_grad = defop("max_pool2d_grad", kind="conv", impl=_max_pool2d_grad,
                        infer=_max_pool2d_grad_infer, vjp=_max_pool2d_grad_vjp, save=(1,),
                        attrs=_WINDOW_ATTRS + ("ceil_mode",))
