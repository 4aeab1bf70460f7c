"""adaptive_avg_pool2d and interpolate, as products with small averaging and interpolation
matrices (out = A_h @ x @ A_w^T over the last two dims): exact, differentiable, and one matmul
each for the compiler."""

from __future__ import annotations

import math

import numpy as np

from lucid.ops.registry import ShapeError, op_error
from lucid.tensor import Tensor


def _pair(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _apply(x: Tensor, a_h: np.ndarray, a_w: np.ndarray) -> Tensor:
    ah = Tensor(a_h.astype(x.dtype), device=x.device)
    aw = Tensor(a_w.T.astype(x.dtype), device=x.device)
    return ah.matmul(x).matmul(aw)


def _average_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Row i averages the input positions floor(i n_in / n_out) .. ceil((i + 1) n_in / n_out)."""
    a = np.zeros((n_out, n_in))
    for i in range(n_out):
        lo, hi = (i * n_in) // n_out, -(-((i + 1) * n_in) // n_out)
        a[i, lo:hi] = 1.0 / (hi - lo)
    return a


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """The mean over each of output_size's bins of the last two dims (PyTorch's bins)."""
    if input.ndim not in (3, 4):
        raise op_error("adaptive_avg_pool2d", [input.aval], "expects a 3-d or 4-d input",
                       ShapeError)
    oh, ow = _pair(output_size)
    h, w = input.shape[-2:]
    oh, ow = h if oh is None else oh, w if ow is None else ow
    return _apply(input, _average_matrix(h, oh), _average_matrix(w, ow))


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    if input.ndim not in (2, 3):
        raise op_error("adaptive_avg_pool1d", [input.aval], "expects a 2-d or 3-d input",
                       ShapeError)
    size = output_size[0] if isinstance(output_size, (tuple, list)) else output_size
    return adaptive_avg_pool2d(input.unsqueeze(-2), (1, size)).squeeze(-2)


def _bins(n_in: int, n_out: int) -> np.ndarray:
    """PyTorch's adaptive bins of n_in positions into n_out, as an (n_out, widest) index array;
    a bin narrower than the widest is padded with n_in (a -inf position appended)."""
    starts = [(i * n_in) // n_out for i in range(n_out)]
    ends = [-(-((i + 1) * n_in) // n_out) for i in range(n_out)]
    k = max(e - b for b, e in zip(starts, ends, strict=True))
    idx = np.full((n_out, k), n_in, np.int64)
    for i, (b, e) in enumerate(zip(starts, ends, strict=True)):
        idx[i, :e - b] = np.arange(b, e)
    return idx


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False) -> Tensor:
    """The maximum over each of output_size's bins of the last two dims. Where the bins tile the
    input evenly this is max_pool2d (the gradient goes to each window's first maximum, as in
    PyTorch); otherwise bins are gathered, and ties share the gradient."""
    from lucid.functions import cat
    from lucid.nn.functional.conv import max_pool2d

    if input.ndim not in (3, 4):
        raise op_error("adaptive_max_pool2d", [input.aval], "expects a 3-d or 4-d input",
                       ShapeError)
    if return_indices:
        raise NotImplementedError("adaptive_max_pool2d(return_indices=True): lucid returns the "
                                  "values only")
    oh, ow = _pair(output_size)
    h, w = input.shape[-2:]
    oh, ow = h if oh is None else oh, w if ow is None else ow
    if h % oh == 0 and w % ow == 0:
        return max_pool2d(input, (h // oh, w // ow), (h // oh, w // ow))
    x = input
    for axis, n_in, n_out in ((-2, h, oh), (-1, w, ow)):
        shape = list(x.shape)
        shape[axis] = 1
        pad = Tensor(np.full(shape, -np.inf, x.dtype), device=x.device)
        padded = cat([x, pad], axis)
        idx = Tensor(_bins(n_in, n_out), device=x.device)
        if axis == -2:
            x = padded[..., idx, :].amax(-2)  # (.., oh, k, w) -> (.., oh, w)
        else:
            x = padded[..., idx].amax(-1)
    return x


def _nearest_matrix(n_in: int, n_out: int, scale: float) -> np.ndarray:
    a = np.zeros((n_out, n_in))
    src = np.minimum(np.floor(np.arange(n_out) * scale).astype(np.int64), n_in - 1)
    a[np.arange(n_out), src] = 1.0
    return a


def _linear_matrix(n_in: int, n_out: int, scale: float, align_corners: bool) -> np.ndarray:
    a = np.zeros((n_out, n_in))
    for i in range(n_out):
        if align_corners:
            src = i * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        else:
            src = max((i + 0.5) * scale - 0.5, 0.0)
        lo = min(int(math.floor(src)), n_in - 1)
        hi = min(lo + 1, n_in - 1)
        frac = src - lo
        a[i, lo] += 1.0 - frac
        a[i, hi] += frac
    return a


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
                align_corners: bool | None = None,
                recompute_scale_factor: bool | None = None) -> Tensor:
    """Resize the last two dims of an (N, C, H, W) or (C, H, W) input: "nearest" or
    "bilinear" (PyTorch's coordinate mapping, `align_corners` included)."""
    if input.ndim not in (3, 4):
        raise op_error("interpolate", [input.aval], "lucid resizes 3-d and 4-d inputs (the last "
                       "two dims)", ShapeError)
    if mode not in ("nearest", "bilinear"):
        raise NotImplementedError(f"interpolate: mode {mode!r} (lucid has 'nearest' and "
                                  "'bilinear')")
    if (size is None) == (scale_factor is None):
        raise ValueError("only one of size or scale_factor should be defined")
    if align_corners is not None and mode == "nearest":
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    h, w = input.shape[-2:]
    if size is not None:
        oh, ow = _pair(size)
        sh, sw = h / oh, w / ow
    else:
        fh, fw = _pair(scale_factor)
        oh, ow = int(math.floor(h * fh)), int(math.floor(w * fw))
        sh, sw = (h / oh, w / ow) if recompute_scale_factor else (1.0 / fh, 1.0 / fw)
    if mode == "nearest":
        return _apply(input, _nearest_matrix(h, oh, sh), _nearest_matrix(w, ow, sw))
    corners = bool(align_corners)
    return _apply(input, _linear_matrix(h, oh, sh, corners), _linear_matrix(w, ow, sw, corners))
