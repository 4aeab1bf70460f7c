"""Convolution and pooling, PyTorch's functional API over the `lucid.ops.conv` primitives.

This layer normalizes what users write (ints, pairs, "same", unbatched 3-d inputs, stride=None)
into the primitives' fixed attribute form. avg_pool2d has no primitive of its own: it is unfold,
a sum over each window, and a division by a constant count, so fusion sees straight through it.
"""

from __future__ import annotations

import numpy as np

from lucid import dtypes, ops
from lucid.arguments import same_dtype, tensor_args
from lucid.ops.conv import out_size, pool_extra
from lucid.ops.registry import DTypeError, LucidError, ShapeError, op_error, user_location
from lucid.tensor import Tensor

_NO_PAD = (0, 0)
_ONES = (1, 1)


def _pair(value, op: str, name: str) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value), int(value))
    if isinstance(value, (tuple, list)) and len(value) in (1, 2) and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        return (int(value[0]), int(value[-1]))
    raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")


def _batched(op: str, x: Tensor, *others: Tensor) -> tuple[Tensor, bool]:
    """(x as 4-d, whether it was unbatched 3-d), as PyTorch accepts (C, H, W) inputs."""
    if x.ndim == 4:
        return x, False
    if x.ndim == 3:
        return x.unsqueeze(0), True
    raise op_error(op, [x.aval, *(t.aval for t in others)],
                   f"expected a 3-d (C, H, W) or 4-d (N, C, H, W) input, got {x.ndim}-d")


def _unbatch(out: Tensor, unbatched: bool) -> Tensor:
    return out.squeeze(0) if unbatched else out


# ----------------------------------------------------------------------------- conv2d


def _same_padding(x: Tensor, kernel, stride, dilation, weight: Tensor):
    """PyTorch's padding="same": total d*(k-1) per axis, the odd one out on the bottom/right."""
    if stride != _ONES:
        raise op_error("conv2d", [x.aval, weight.aval],
                       f"padding='same' is not supported for strided convolutions "
                       f"(stride={stride})")
    total = [d * (k - 1) for d, k in zip(dilation, kernel, strict=True)]
    low = tuple(t // 2 for t in total)
    extra = [t - 2 * lo for t, lo in zip(total, low, strict=True)]
    if any(extra):
        x = ops.pad(x, pads=((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
    return x, low


@tensor_args
def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """2-d cross-correlation of input (N, C, H, W) or (C, H, W) with weight (O, C/groups, kh, kw).

    padding is an int, a pair, "valid" (none) or "same" (output as large as the input).
    """
    same_dtype("conv2d", input, weight=weight, bias=bias)
    x, unbatched = _batched("conv2d", input, weight)
    stride = _pair(stride, "conv2d", "stride")
    dilation = _pair(dilation, "conv2d", "dilation")
    if isinstance(padding, str):
        if padding == "valid":
            padding = _NO_PAD
        elif padding == "same":
            if weight.ndim != 4:
                ops.conv2d(x, weight, stride=stride, padding=_NO_PAD, dilation=dilation,
                           groups=groups)  # raises the rank error
            x, padding = _same_padding(x, weight.shape[2:], stride, dilation, weight)
        else:
            raise ValueError(f"conv2d: padding must be an int, a pair, 'valid' or 'same', "
                             f"got {padding!r}")
    else:
        padding = _pair(padding, "conv2d", "padding")
    out = ops.conv2d(x, weight, stride=stride, padding=padding, dilation=dilation,
                     groups=int(groups))
    if bias is not None:
        if bias.shape != (weight.shape[0],):
            raise op_error("conv2d", [input.aval, weight.aval, bias.aval],
                           f"the bias must have shape ({weight.shape[0]},), one value per "
                           f"output channel")
        out = out + bias.reshape(1, -1, 1, 1)
    return _unbatch(out, unbatched)


# ----------------------------------------------------------------------------- pooling


def _pool_attrs(op: str, kernel_size, stride, padding):
    kernel = _pair(kernel_size, op, "kernel_size")
    # PyTorch treats stride=None and an empty stride list alike: the stride is the kernel.
    stride = kernel if stride is None or stride == [] or stride == () else _pair(
        stride, op, "stride")
    return kernel, stride, _pair(padding, op, "padding")


@tensor_args
def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False) -> Tensor:
    """The maximum of each window; padding never wins (it is -inf). Gradients go to the first
    maximum of each window, as in PyTorch."""
    x, unbatched = _batched("max_pool2d", input)
    kernel, stride, padding = _pool_attrs("max_pool2d", kernel_size, stride, padding)
    out = ops.max_pool2d(x, kernel=kernel, stride=stride, padding=padding,
                         dilation=_pair(dilation, "max_pool2d", "dilation"),
                         ceil_mode=bool(ceil_mode))
    return _unbatch(out, unbatched)


def _window_counts(size: int, n: int, kernel: int, stride: int, padding: int,
                   include_pad: bool) -> np.ndarray:
    """How many elements each of the n windows along one axis averages over: the window clipped
    to the padded input (count_include_pad) or to the input itself."""
    start = np.arange(n) * stride - padding
    end = np.minimum(start + kernel, size + padding)
    if not include_pad:
        start, end = np.maximum(start, 0), np.minimum(end, size)
    return end - start


@tensor_args
def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """The mean of each window (padding counts as zeros when count_include_pad)."""
    x, unbatched = _batched("avg_pool2d", input)
    kernel, stride, padding = _pool_attrs("avg_pool2d", kernel_size, stride, padding)
    if not dtypes.is_floating(x.dtype):
        raise op_error("avg_pool2d", [input.aval], "needs a floating dtype (float32 or float64)",
                       DTypeError)
    if min(padding) < 0 or min(stride) < 1 or min(kernel) < 1:
        raise op_error("avg_pool2d", [input.aval], f"kernel {kernel} and stride {stride} must "
                                                   f"be positive, padding {padding} non-negative")
    for p, k in zip(padding, kernel, strict=True):
        if p > k // 2:
            raise op_error("avg_pool2d", [input.aval], f"pad should be at most half of effective "
                                                       f"kernel size, but got pad={p}, "
                                                       f"kernel_size={k} and dilation=1")
    n, c, h, w = x.shape
    ohw = tuple(out_size(s, k, st, p, 1, ceil_mode)
                for s, k, st, p in zip((h, w), kernel, stride, padding, strict=True))
    if min(ohw) < 1:
        raise op_error("avg_pool2d", [input.aval], f"the {h}x{w} input (padding {padding}) is "
                                                   f"smaller than the {kernel} kernel")
    extra = pool_extra((h, w), ohw, kernel, stride, padding, _ONES)
    if any(extra):
        # ceil_mode's last window hangs past the padding: zeros there add nothing to the sum.
        pads = tuple((p, p + e) for p, e in zip(padding, extra, strict=True))
        x, window_pad = ops.pad(x, pads=((0, 0), (0, 0)) + pads), _NO_PAD
    else:
        window_pad = padding
    cols = ops.unfold(x, kernel=kernel, stride=stride, padding=window_pad, dilation=_ONES)
    sums = cols.reshape(n, c, kernel[0] * kernel[1], ohw[0] * ohw[1]).sum(2)
    if divisor_override is not None:
        if divisor_override == 0:
            raise ValueError("avg_pool2d: divisor_override must not be zero")
        out = sums / float(divisor_override)
    else:
        axes = zip((h, w), ohw, kernel, stride, padding, strict=True)
        counts = np.outer(*(_window_counts(s, o, k, st, p, count_include_pad)
                            for s, o, k, st, p in axes))
        if (counts == counts.flat[0]).all():
            out = sums / float(counts.flat[0])
        else:
            out = sums / Tensor._wrap(counts.reshape(-1).astype(x.dtype))
    return _unbatch(out.reshape(n, c, *ohw), unbatched)


# ----------------------------------------------------------------------------- unfold / fold


@tensor_args
def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Sliding windows as columns: (N, C, H, W) -> (N, C*kh*kw, L), like torch's F.unfold."""
    x, unbatched = _batched("unfold", input)
    out = ops.unfold(x, kernel=_pair(kernel_size, "unfold", "kernel_size"),
                     stride=_pair(stride, "unfold", "stride"),
                     padding=_pair(padding, "unfold", "padding"),
                     dilation=_pair(dilation, "unfold", "dilation"))
    return _unbatch(out, unbatched)


@tensor_args
def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """The adjoint of unfold: (N, C*kh*kw, L) -> (N, C, H, W), summing where windows overlap."""
    if input.ndim not in (2, 3):
        raise op_error("fold", [input.aval], f"expected a 2-d (C*kh*kw, L) or 3-d "
                                             f"(N, C*kh*kw, L) input, got {input.ndim}-d",
                       ShapeError)
    unbatched = input.ndim == 2
    cols = input.unsqueeze(0) if unbatched else input
    out = ops.fold(cols, output_size=_pair(output_size, "fold", "output_size"),
                   kernel=_pair(kernel_size, "fold", "kernel_size"),
                   stride=_pair(stride, "fold", "stride"),
                   padding=_pair(padding, "fold", "padding"),
                   dilation=_pair(dilation, "fold", "dilation"))
    return _unbatch(out, unbatched)


@tensor_args
def pad(input: Tensor, pad, mode: str = "constant", value: float = 0.0) -> Tensor:
    """PyTorch's F.pad in constant mode: `pad` holds (low, high) pairs starting from the LAST
    dimension, e.g. (1, 2, 0, 3) pads the last axis by 1 before and 2 after, the one before it
    by 3 after. Differentiable; the gradient is the unpadded part."""
    if mode != "constant":
        raise LucidError(f"pad: mode {mode!r} is not supported (only 'constant') "
                         f"({user_location()})")
    pad = tuple(pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim or not all(
            isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in pad):
        raise TypeError(f"pad: needs an even number of ints, at most two per dimension of the "
                        f"{input.ndim}-d input, got {pad!r}")
    if any(p < 0 for p in pad):
        raise op_error("pad", [input.aval], f"negative padding {pad} (cropping) is not "
                                            "supported: slice the tensor instead", ShapeError)
    pairs = [(0, 0)] * input.ndim
    for k in range(len(pad) // 2):
        pairs[input.ndim - 1 - k] = (int(pad[2 * k]), int(pad[2 * k + 1]))
    return ops.pad(input, pads=tuple(pairs), value=float(value))


@tensor_args
def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """The transposed convolution (the gradient of conv2d with respect to its input): weight is
    (C_in, C_out/groups, kh, kw). Each input pixel's channels times the weight give a kh x kw
    patch per output channel (one matmul), and `fold` sums the patches into place."""
    same_dtype("conv_transpose2d", input, weight=weight, bias=bias)
    x, unbatched = _batched("conv_transpose2d", input, weight)
    stride = _pair(stride, "conv_transpose2d", "stride")
    padding = _pair(padding, "conv_transpose2d", "padding")
    dilation = _pair(dilation, "conv_transpose2d", "dilation")
    output_padding = _pair(output_padding, "conv_transpose2d", "output_padding")
    n, c_in, h, w = x.shape
    if weight.ndim != 4 or weight.shape[0] != c_in or c_in % groups:
        raise op_error("conv_transpose2d", [x.aval, weight.aval],
                       f"weight must be (C_in={c_in}, C_out/groups, kh, kw) with C_in divisible "
                       f"by groups={groups}", ShapeError)
    if any(op >= max(s, d) for op, s, d in zip(output_padding, stride, dilation, strict=True)):
        raise op_error("conv_transpose2d", [x.aval], "output padding must be smaller than "
                       "either stride or dilation", ShapeError)
    c_out_g, kh, kw = weight.shape[1:]
    out_h = (h - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + output_padding[0] + 1
    out_w = (w - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kw - 1) + output_padding[1] + 1
    c_in_g = c_in // groups
    xs = x.reshape(n, groups, c_in_g, h * w)
    ws = weight.reshape(groups, c_in_g, c_out_g * kh * kw)
    cols = ws.transpose(1, 2).unsqueeze(0).matmul(xs)  # (n, groups, c_out_g*kh*kw, h*w)
    cols = cols.reshape(n, groups * c_out_g * kh * kw, h * w)
    out = ops.fold(cols, output_size=(out_h, out_w), kernel=(kh, kw), stride=stride,
                   padding=padding, dilation=dilation)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return _unbatch(out, unbatched)
