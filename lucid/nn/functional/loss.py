"""Losses, each PyTorch's formula written in lucid ops (so gradients come from the primitives).

`reduction` is 'mean', 'sum' or 'none' everywhere. Weighted class losses ('mean') divide by the
sum of the picked weights, not by the count, exactly as PyTorch does.
"""

from __future__ import annotations

import warnings

import numpy as np

from lucid import dtypes
from lucid.arguments import tensor_args
from lucid.factories import arange
from lucid.functions import is_tracing, where
from lucid.nn.functional.activation import _softplus, log_softmax
from lucid.ops.registry import DTypeError, ShapeError, op_error
from lucid.tensor import Tensor

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(name: str, loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{name}: reduction must be one of {_REDUCTIONS}, not {reduction!r}")


def _check_reduction(name: str, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {_REDUCTIONS}, not {reduction!r}")


def _as_target(target, like: Tensor) -> Tensor:
    return target if isinstance(target, Tensor) else Tensor(target, dtype=like.dtype)


def _warn_if_broadcast(name: str, input: Tensor, target: Tensor) -> None:
    if input.shape != target.shape:
        warnings.warn(f"{name}: using a target size {target.shape} that is different to the input "
                      f"size {input.shape}; this will likely lead to incorrect results due to "
                      "broadcasting. Please ensure they have the same size.", stacklevel=3)


@tensor_args
def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """(input - target) ** 2, reduced."""
    target = _as_target(target, input)
    _warn_if_broadcast("mse_loss", input, target)
    diff = input - target
    return _reduce("mse_loss", diff * diff, reduction)


@tensor_args
def l1_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """|input - target|, reduced."""
    target = _as_target(target, input)
    _warn_if_broadcast("l1_loss", input, target)
    return _reduce("l1_loss", (input - target).abs(), reduction)


def _clamped_log(p: Tensor) -> Tensor:
    """log(p) clamped below at -100 (PyTorch's BCE), finite with a finite gradient at p = 0.

    log is only ever applied to positive numbers: at p = 0 log's vjp would compute 0 / 0 = NaN
    even though `where` sends it a zero gradient.
    """
    positive = p > 0
    safe = where(positive, p, 1.0)
    return where(positive, safe.log(), -100.0).maximum(-100.0)


@tensor_args
def binary_cross_entropy(input: Tensor, target, weight: Tensor | None = None,
                         reduction: str = "mean") -> Tensor:
    """-(y log p + (1 - y) log(1 - p)), each log clamped at -100, times weight, reduced."""
    target = _as_target(target, input)
    if target.shape != input.shape:
        raise op_error("binary_cross_entropy", [input.aval, target.aval],
                       "target and input must have the same shape", ShapeError)
    if isinstance(input.data, np.ndarray) and input.data.size:
        # Eager-only validation, as PyTorch does: log of a negative number would be a silent NaN.
        low, high = input.data.min(), input.data.max()
        if not (low >= 0 and high <= 1):
            raise op_error("binary_cross_entropy", [input.aval, target.aval],
                           "all elements of input should be between 0 and 1 "
                           "(apply sigmoid first, or use binary_cross_entropy_with_logits)")
    loss = -(target * _clamped_log(input) + (1.0 - target) * _clamped_log(1.0 - input))
    if weight is not None:
        loss = loss * weight
    return _reduce("binary_cross_entropy", loss, reduction)


@tensor_args
def binary_cross_entropy_with_logits(input: Tensor, target, weight: Tensor | None = None,
                                     reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """BCE of sigmoid(input), computed stably from the logits.

    (1 - y) x + softplus(-x) equals max(x, 0) - x y + log(1 + exp(-|x|)); with pos_weight the
    softplus term is scaled by 1 + (pos_weight - 1) y, PyTorch's form.
    """
    target = _as_target(target, input)
    if target.shape != input.shape:
        raise op_error("binary_cross_entropy_with_logits", [input.aval, target.aval],
                       "target and input must have the same shape", ShapeError)
    log_sigmoid_neg = _softplus(-input)  # -log(sigmoid(x))
    if pos_weight is not None:
        log_sigmoid_neg = log_sigmoid_neg * ((pos_weight - 1.0) * target + 1.0)
    loss = (1.0 - target) * input + log_sigmoid_neg
    if weight is not None:
        loss = loss * weight
    return _reduce("binary_cross_entropy_with_logits", loss, reduction)


def _class_last(name: str, input: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """input (N, C, d1, ...) and target (N, d1, ...) as (M, C) and (M,) rows (C is dim 1)."""
    if target.dtype not in (dtypes.int32, dtypes.int64):
        raise op_error(name, [input.aval, target.aval],
                       "class-index targets must be an integer tensor", DTypeError)
    if input.ndim == 1:  # unbatched: input (C,), target ()
        input, target = input.unsqueeze(0), target.reshape(1)
    if input.ndim < 2 or target.shape != (input.shape[0],) + input.shape[2:]:
        raise op_error(name, [input.aval, target.aval],
                       "expected input (N, C, d1, ...) and target (N, d1, ...)", ShapeError)
    classes = input.shape[1]
    if input.ndim > 2:
        input = input.permute(0, *range(2, input.ndim), 1)
    return input.reshape(-1, classes), target.reshape(-1)


def _picked(name: str, logp: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int):
    """(-logp[i, target[i]] * w[i], w[i]) with w = weight[target] and 0 where target is ignored."""
    classes = logp.shape[1]
    if weight is not None and weight.shape != (classes,):
        raise op_error(name, [logp.aval, weight.aval], f"weight must have shape ({classes},)",
                       ShapeError)
    keep = target != ignore_index
    # Eagerly, name the bad target here; a compiled graph's gather reports it when it runs.
    if not is_tracing() and isinstance(target.data, np.ndarray):
        bad = target.data[keep.data & ((target.data < 0) | (target.data >= classes))]
        if bad.size:
            raise op_error(name, [logp.aval, target.aval],
                           f"target {int(bad[0])} is out of bounds for {classes} classes",
                           ShapeError)
    safe = where(keep, target, 0)  # ignored targets may be out of range: gather row 0 instead
    picked = logp[arange(logp.shape[0], device=logp.device), safe]
    w = keep.cast(logp.dtype) if weight is None else where(keep, weight.cast(logp.dtype)[safe],
                                                           0.0)
    return -picked * w, w


@tensor_args
def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None,
             ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """-input[n, target[n]] * weight[target[n]]; 'mean' divides by the summed weights."""
    _check_reduction("nll_loss", reduction)
    out_shape = target.shape
    logp, flat_target = _class_last("nll_loss", input, target)
    loss, w = _picked("nll_loss", logp, flat_target, weight, ignore_index)
    if reduction == "none":
        return loss.reshape(out_shape)
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / w.sum()


def _class_view(weight: Tensor, ndim: int) -> Tensor:
    return weight.reshape((1, weight.shape[0]) + (1,) * (ndim - 2)) if ndim >= 2 else weight


def _cross_entropy_probs(input: Tensor, target: Tensor, weight, ignore_index: int,
                         reduction: str, label_smoothing: float) -> Tensor:
    if ignore_index >= 0:
        raise op_error("cross_entropy", [input.aval, target.aval],
                       "ignore_index is not supported for class-probability targets")
    class_dim = 1 if input.ndim >= 2 else 0
    classes = input.shape[class_dim]
    logp = log_softmax(input, class_dim)
    if label_smoothing > 0.0:
        target = target * (1.0 - label_smoothing) + label_smoothing / classes
    terms = logp * target
    if weight is not None:
        terms = terms * _class_view(weight.cast(input.dtype), input.ndim)
    if reduction == "none":
        return -terms.sum(class_dim)
    if reduction == "sum":
        return -terms.sum()
    return -terms.sum() / float(input.numel() // classes)


@tensor_args
def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                  ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """log_softmax over dim 1, then NLL against class indices or class probabilities.

    Class-index targets: (1 - eps) * nll + eps / C * smooth, where smooth is -sum_c w_c logp_c
    (0 at ignored positions), reduced like nll ('mean' divides by the summed target weights).
    Probability targets (a float tensor shaped like input): -sum_c w_c y_c logp_c with
    y smoothed to y (1 - eps) + eps / C; 'mean' divides by the number of rows.
    """
    _check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], not {label_smoothing}")
    if dtypes.is_floating(target.dtype):
        if target.shape != input.shape:
            raise op_error("cross_entropy", [input.aval, target.aval],
                           "a floating target holds class probabilities and must have the "
                           "input's shape (class indices must be an integer tensor)", ShapeError)
        return _cross_entropy_probs(input, target, weight, ignore_index, reduction,
                                    label_smoothing)
    out_shape = target.shape
    logits, flat_target = _class_last("cross_entropy", input, target)
    logp = log_softmax(logits, 1)
    loss, w = _picked("cross_entropy", logp, flat_target, weight, ignore_index)
    if label_smoothing > 0.0:
        classes = logp.shape[1]
        weighted = logp if weight is None else logp * weight.cast(logp.dtype)
        smooth = where(flat_target != ignore_index, -weighted.sum(1), 0.0)
        loss = loss * (1.0 - label_smoothing) + smooth * (label_smoothing / classes)
    if reduction == "none":
        return loss.reshape(out_shape)
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / w.sum()


@tensor_args
def smooth_l1_loss(input: Tensor, target, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (d = input - target)."""
    target = _as_target(target, input)
    _warn_if_broadcast("smooth_l1_loss", input, target)
    if beta < 0:
        raise ValueError("smooth_l1_loss does not support negative values for beta.")
    d = (input - target).abs()
    loss = d if beta == 0 else where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta)
    return _reduce("smooth_l1_loss", loss, reduction)


@tensor_args
def huber_loss(input: Tensor, target, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """0.5 d^2 where |d| <= delta, else delta (|d| - 0.5 delta)."""
    target = _as_target(target, input)
    _warn_if_broadcast("huber_loss", input, target)
    d = (input - target).abs()
    loss = where(d <= delta, 0.5 * d * d, delta * (d - 0.5 * delta))
    return _reduce("huber_loss", loss, reduction)


@tensor_args
def kl_div(input: Tensor, target, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """KL(target || exp(input)) pointwise: target (log target - input), input being
    log-probabilities; 'batchmean' divides the sum by the batch size (the true KL divergence)."""
    target = _as_target(target, input)
    if log_target:
        loss = target.exp() * (target - input)
    else:
        safe = where(target > 0, target, 1.0)
        loss = where(target > 0, target * (safe.log() - input), 0.0)
    if reduction == "batchmean":
        return loss.sum() / input.shape[0] if input.ndim else loss.sum()
    if reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the "
                      "support size.'batchmean' divides only by the batch size, and aligns with "
                      "the KL div math definition.", UserWarning, stacklevel=2)
    return _reduce("kl_div", loss, reduction)


@tensor_args
def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """x1 . x2 / max(|x1| |x2|, eps) along dim."""
    dot = (x1 * x2).sum(dim)
    norms = (x1 * x1).sum(dim) * (x2 * x2).sum(dim)
    return dot / norms.clamp(min=eps * eps).sqrt()


@tensor_args
def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:
    """The p-norm of x1 - x2 + eps over the last dim."""
    return (x1 - x2 + eps).norm(p, -1, keepdim)


@tensor_args
def margin_ranking_loss(input1: Tensor, input2: Tensor, target, margin: float = 0.0,
                        reduction: str = "mean") -> Tensor:
    """max(0, -target (input1 - input2) + margin)."""
    target = _as_target(target, input1)
    return _reduce("margin_ranking_loss", (-target * (input1 - input2) + margin).relu(),
                   reduction)


@tensor_args
def cosine_embedding_loss(input1: Tensor, input2: Tensor, target, margin: float = 0.0,
                          reduction: str = "mean") -> Tensor:
    """1 - cos(x1, x2) where target is 1; max(0, cos(x1, x2) - margin) where it is -1."""
    target = _as_target(target, input1)
    cos = cosine_similarity(input1, input2, dim=-1)
    loss = where(target > 0, 1.0 - cos, (cos - margin).relu())
    return _reduce("cosine_embedding_loss", loss, reduction)


@tensor_args
def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0,
                        p: float = 2.0, eps: float = 1e-6, swap: bool = False,
                        reduction: str = "mean") -> Tensor:
    """max(d(a, p) - d(a, n) + margin, 0), d the p-norm distance (eps added, as PyTorch's)."""
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = d_neg.minimum(pairwise_distance(positive, negative, p, eps))
    return _reduce("triplet_margin_loss", (d_pos - d_neg + margin).relu(), reduction)


@tensor_args
def gaussian_nll_loss(input: Tensor, target, var, full: bool = False, eps: float = 1e-6,
                      reduction: str = "mean") -> Tensor:
    """0.5 (log(max(var, eps)) + (input - target)^2 / max(var, eps)) (+ 0.5 log(2 pi))."""
    import math

    target = _as_target(target, input)
    var = _as_target(var, input)
    if var.ndim < input.ndim and var.shape == input.shape[:-1]:
        var = var.unsqueeze(-1)
    v = var.clamp(min=eps)
    loss = 0.5 * (v.log() + (input - target) ** 2 / v)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce("gaussian_nll_loss", loss, reduction)


@tensor_args
def poisson_nll_loss(input: Tensor, target, log_input: bool = True, full: bool = False,
                     eps: float = 1e-8, reduction: str = "mean") -> Tensor:
    """exp(input) - target input (log_input), or input - target log(input + eps); `full` adds
    Stirling's approximation of log(target!) where target > 1."""
    import math

    target = _as_target(target, input)
    loss = input.exp() - target * input if log_input else input - target * (input + eps).log()
    if full:
        safe = where(target > 1, target, 2.0)
        stirling = safe * safe.log() - safe + 0.5 * (2 * math.pi * safe).log()
        loss = loss + where(target > 1, stirling, 0.0)
    return _reduce("poisson_nll_loss", loss, reduction)
