"""batch_norm and layer_norm, composed from reductions and elementwise ops.

batch_norm updates the running statistics in place, under no_grad, with the unbiased batch
variance (PyTorch's convention: normalize with the biased variance, track the unbiased one).
"""

from __future__ import annotations

import math

import numpy as np

from lucid.arguments import same_dtype, tensor_args
from lucid.autograd import no_grad
from lucid.ops.registry import ShapeError, op_error
from lucid.tensor import Tensor


def _channel_view(t: Tensor, ndim: int) -> Tensor:
    """A (C,) tensor shaped (1, C, 1, ...) to broadcast against an (N, C, ...) input."""
    return t.reshape((1, t.shape[0]) + (1,) * (ndim - 2))


@tensor_args
def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalize each channel (dim 1) of an (N, C, ...) input over every other dim."""
    if input.ndim < 2:
        raise op_error("batch_norm", [input.aval], "expected an input of at least 2 dims (N, C)",
                       ShapeError)
    same_dtype("batch_norm", input, running_mean=running_mean, running_var=running_var,
               weight=weight, bias=bias)
    channels = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None and t.shape != (channels,):
            raise op_error("batch_norm", [input.aval, t.aval],
                           f"{name} must have shape ({channels},), one value per channel",
                           ShapeError)
    axes = (0,) + tuple(range(2, input.ndim))
    if training:
        count = math.prod(input.shape[a] for a in axes)
        if count <= 1:
            raise op_error("batch_norm", [input.aval],
                           f"expected more than 1 value per channel when training, got {count}",
                           ShapeError)
        mean = input.mean(axes, keepdim=True)
        centered = input - mean
        var = (centered * centered).mean(axes, keepdim=True)
        if running_mean is not None and running_var is not None:
            with no_grad():
                batch_mean = mean.detach().reshape(channels)
                unbiased = var.detach().reshape(channels) * (count / (count - 1))
                running_mean.copy_(running_mean * (1.0 - momentum) + batch_mean * momentum)
                running_var.copy_(running_var * (1.0 - momentum) + unbiased * momentum)
    else:
        if running_mean is None or running_var is None:
            raise op_error("batch_norm", [input.aval],
                           "running_mean and running_var are needed when not training")
        centered = input - _channel_view(running_mean, input.ndim)
        var = _channel_view(running_var, input.ndim)
    out = centered / (var + eps).sqrt()
    if weight is not None:
        out = out * _channel_view(weight, input.ndim)
    if bias is not None:
        out = out + _channel_view(bias, input.ndim)
    return out


@tensor_args
def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize over the trailing dims `normalized_shape` (biased variance), then scale/shift."""
    shape = _trailing("layer_norm", input, normalized_shape)
    k = len(shape)
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != shape:
            raise op_error("layer_norm", [input.aval, t.aval],
                           f"{name} must have shape {shape}", ShapeError)
    same_dtype("layer_norm", input, weight=weight, bias=bias)
    axes = tuple(range(input.ndim - k, input.ndim))
    centered = input - input.mean(axes, keepdim=True)
    var = (centered * centered).mean(axes, keepdim=True)
    out = centered / (var + eps).sqrt()
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize (N, C, ...) over each group of C / num_groups channels and the spatial dims
    (biased variance), then scale and shift per channel."""
    if input.ndim < 2:
        raise op_error("group_norm", [input.aval], "expects an input of at least 2 dims (N, C)",
                       ShapeError)
    n, c = input.shape[:2]
    if c % num_groups:
        raise op_error("group_norm", [input.aval], f"Expected number of channels in input to "
                       f"be divisible by num_groups, but got input of shape {input.shape} and "
                       f"num_groups={num_groups}", ShapeError)
    same_dtype("group_norm", input, weight=weight, bias=bias)
    x = input.reshape(n, num_groups, -1)
    centered = x - x.mean(2, keepdim=True)
    var = (centered * centered).mean(2, keepdim=True)
    out = (centered / (var + eps).sqrt()).reshape(input.shape)
    affine = (1, c) + (1,) * (input.ndim - 2)
    if weight is not None:
        out = out * weight.reshape(affine)
    if bias is not None:
        out = out + bias.reshape(affine)
    return out


def _trailing(op: str, input: Tensor, normalized_shape) -> tuple[int, ...]:
    """normalized_shape as a tuple, checked against the input's trailing dimensions."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or input.ndim < k or tuple(input.shape[-k:]) != shape:
        raise op_error(op, [input.aval],
                       f"normalized_shape {shape} does not match the input's trailing dims",
                       ShapeError)
    return shape


def rms_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:
    """input / sqrt(mean(input^2 over the trailing dims) + eps), times weight; eps defaults to
    the dtype's machine epsilon (as PyTorch's)."""
    shape = _trailing("rms_norm", input, normalized_shape)
    k = len(shape)
    if weight is not None and tuple(weight.shape) != shape:
        raise op_error("rms_norm", [input.aval, weight.aval], f"weight must have shape {shape}",
                       ShapeError)
    same_dtype("rms_norm", input, weight=weight)
    if eps is None:
        eps = float(np.finfo(input.dtype).eps)
    axes = tuple(range(input.ndim - k, input.ndim))
    out = input * ((input * input).mean(axes, keepdim=True) + eps).rsqrt()
    return out if weight is None else out * weight
