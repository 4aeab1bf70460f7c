"""Activation functions, each a composition of lucid primitives (so autograd and the compiler see
through them). Where a branch could overflow (exp of a large input) the input to that branch is
masked first: `where` sends a zero gradient to the branch it drops, but 0 * inf is still NaN."""

from __future__ import annotations

import math
import warnings

from lucid import dtypes
from lucid.arguments import tensor_args
from lucid.functions import where
from lucid.ops.registry import ShapeError, op_error
from lucid.tensor import Tensor

_SQRT_HALF = math.sqrt(0.5)
_SQRT_TWO_OVER_PI = math.sqrt(2.0 / math.pi)


@tensor_args
def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(0, x); the gradient at 0 is 0."""
    return input.relu_() if inplace else input.relu()


@tensor_args
def relu_(input: Tensor) -> Tensor:
    """relu written into `input`; returns `input` itself."""
    return input.relu_()


def _leaky_relu(x: Tensor, negative_slope: float) -> Tensor:
    # where (not maximum) so the gradient at exactly 0 is negative_slope, as the formula says.
    return where(x > 0, x, x * negative_slope)


@tensor_args
def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x for x > 0, negative_slope * x otherwise (gradient negative_slope at x <= 0)."""
    if inplace:
        return input._inplace(lambda x: _leaky_relu(x, negative_slope))
    return _leaky_relu(input, negative_slope)


@tensor_args
def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    return leaky_relu(input, negative_slope, inplace=True)


def _elu(x: Tensor, alpha: float) -> Tensor:
    # exp only sees min(x, 0): exp of a large positive x would be inf in the dropped branch.
    return where(x > 0, x, (x.minimum(0.0).exp() - 1.0) * alpha)


@tensor_args
def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    if inplace:
        return input._inplace(lambda x: _elu(x, alpha))
    return _elu(input, alpha)


@tensor_args
def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x): exact with erf ('none') or with PyTorch's tanh approximation ('tanh')."""
    if approximate == "none":
        return input * ((input * _SQRT_HALF).erf() + 1.0) * 0.5
    if approximate == "tanh":
        inner = (input + input * input * input * 0.044715) * _SQRT_TWO_OVER_PI
        return input * (inner.tanh() + 1.0) * 0.5
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', not {approximate!r}")


@tensor_args
def sigmoid(input: Tensor) -> Tensor:
    return input.sigmoid()


@tensor_args
def tanh(input: Tensor) -> Tensor:
    return input.tanh()


@tensor_args
def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x)."""
    if inplace:
        return input._inplace(lambda x: x * x.sigmoid())
    return input * input.sigmoid()


@tensor_args
def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta * x)) / beta, linear where beta * x > threshold (PyTorch's form)."""
    z = input * beta if beta != 1.0 else input
    out = _softplus(z)
    if beta != 1.0:
        out = out / beta
    return where(z > threshold, input, out)


def _softplus(z: Tensor) -> Tensor:
    """log(1 + exp(z)) = relu(z) + log(1 + exp(-|z|)), stable for any z.

    -|z| is written as where(z > 0, -z, z) rather than -abs(z): abs's gradient at 0 is sign(0) = 0,
    which would make d/dz at z = 0 come out 0 instead of sigmoid(0) = 0.5.
    """
    return z.relu() + (where(z > 0, -z, z).exp() + 1.0).log()


def _softmax_dim(name: str, ndim: int, dim: int | None) -> int:
    if dim is None:
        # PyTorch's legacy rule for an implicit dim, with its warning.
        warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call "
                      "to include dim=X as an argument.", stacklevel=3)
        return 0 if ndim in (0, 1, 3) else 1
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise ShapeError(f"{name}: dim {dim} is out of range for a tensor of {ndim} dimensions")
    return dim % n


def _shifted(name: str, input: Tensor, dim: int | None, dtype) -> tuple[Tensor, int]:
    if dtype is not None:
        input = input.cast(dtype)
    elif not dtypes.is_floating(input.dtype):
        raise op_error(name, [input.aval], "needs a floating input (or pass dtype=)")
    dim = _softmax_dim(name, input.ndim, dim)
    if input.ndim == 0:
        return input - input.detach(), dim
    # Both functions are invariant to the shift, so detaching the max leaves gradients exact.
    return input - input.amax(dim, keepdim=True).detach(), dim


@tensor_args
def softmax(input: Tensor, dim: int | None = None, dtype=None) -> Tensor:
    """exp(x) / sum(exp(x)) along dim, computed from x - max(x) so large inputs do not overflow."""
    shifted, dim = _shifted("softmax", input, dim, dtype)
    e = shifted.exp()
    return e / e.sum(dim, keepdim=True)


@tensor_args
def log_softmax(input: Tensor, dim: int | None = None, dtype=None) -> Tensor:
    """x - log(sum(exp(x))) along dim (the log-sum-exp taken after subtracting the max)."""
    shifted, dim = _shifted("log_softmax", input, dim, dtype)
    return shifted - shifted.exp().sum(dim, keepdim=True).log()


@tensor_args
def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    return input.clamp_(min_val, max_val) if inplace else input.clamp(min_val, max_val)


@tensor_args
def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    return hardtanh(input, 0.0, 6.0, inplace)


@tensor_args
def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x tanh(softplus(x))."""
    out = input * softplus(input).tanh()
    return input.copy_(out) if inplace else out


@tensor_args
def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)) = -softplus(-x), without overflow."""
    return -_softplus(-input)


@tensor_args
def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6."""
    out = (input + 3.0).clamp(0.0, 6.0) * (1.0 / 6.0)
    return input.copy_(out) if inplace else out


@tensor_args
def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * relu6(x + 3) / 6."""
    out = input * hardsigmoid(input)
    return input.copy_(out) if inplace else out


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


@tensor_args
def selu(input: Tensor, inplace: bool = False) -> Tensor:
    out = _elu(input, _SELU_ALPHA) * _SELU_SCALE
    return input.copy_(out) if inplace else out


@tensor_args
def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """max(0, x) + min(0, alpha (exp(x / alpha) - 1))."""
    out = input.relu() + ((input / alpha).exp() - 1.0).clamp(max=0.0) * alpha
    return input.copy_(out) if inplace else out


@tensor_args
def glu(input: Tensor, dim: int = -1) -> Tensor:
    """a * sigmoid(b), the input split in halves a, b along dim."""
    if input.shape[dim] % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {dim} is size "
                           f"{input.shape[dim]}")
    a, b = input.chunk(2, dim)
    return a * b.sigmoid()


@tensor_args
def softsign(input: Tensor) -> Tensor:
    return input / (input.abs() + 1.0)


@tensor_args
def tanhshrink(input: Tensor) -> Tensor:
    return input - input.tanh()


@tensor_args
def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where x > threshold, else value."""
    from lucid.functions import where

    out = where(input > threshold, input, value)
    return input.copy_(out) if inplace else out


@tensor_args
def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """max(0, x) + weight * min(0, x), weight per channel (dim 1) or one for all."""
    w = weight
    if weight.numel() > 1 and input.ndim >= 2:
        w = weight.reshape((1, -1) + (1,) * (input.ndim - 2))
    return input.relu() - w * (-input).relu()


def gumbel_softmax(logits: Tensor, tau: float = 1.0, hard: bool = False, eps: float = 1e-10,
                   dim: int = -1) -> Tensor:
    """softmax((logits + Gumbel noise) / tau); `hard` gives one-hot samples whose gradient is
    the soft sample's (straight-through)."""
    gumbels = -logits.new_empty(logits.shape).exponential().log()
    y = softmax((logits + gumbels) / tau, dim)
    if not hard:
        return y
    index = y.argmax(dim, keepdim=True)
    one_hot = logits.new_zeros(logits.shape).scatter(dim, index, 1.0)
    return one_hot - y.detach() + y


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(*, C r^2, H, W) -> (*, C, H r, W r)."""
    r = upscale_factor
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise RuntimeError(f"pixel_shuffle expects its input's 'channel' dimension to be "
                           f"divisible by the square of upscale_factor, but input.size(-3)={c} "
                           f"is not divisible by {r * r}")
    n = len(lead)
    x = input.reshape(*lead, c // (r * r), r, r, h, w)
    x = x.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return x.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """(*, C, H r, W r) -> (*, C r^2, H, W)."""
    r = downscale_factor
    *lead, c, h, w = input.shape
    if h % r or w % r:
        raise RuntimeError(f"pixel_unshuffle expects height and width to be divisible by "
                           f"downscale_factor, but got {h} and {w} for factor {r}")
    n = len(lead)
    x = input.reshape(*lead, c, h // r, r, w // r, r)
    x = x.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return x.reshape(*lead, c * r * r, h // r, w // r)
