"""Parameter initialization, in place and without recording gradients (PyTorch's nn.init)."""

from __future__ import annotations

import math

from lucid import ops
from lucid.autograd import no_grad
from lucid.tensor import Tensor


def _fill(t: Tensor, value: Tensor) -> Tensor:
    with no_grad():
        return t.copy_(value)


def calculate_fan_in_and_fan_out(t: Tensor) -> tuple[int, int]:
    if t.ndim < 2:
        raise ValueError("fan in and fan out need a tensor of at least 2 dimensions")
    receptive = math.prod(t.shape[2:])
    return t.shape[1] * receptive, t.shape[0] * receptive


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    return _fill(t, ops.uniform(shape=t.shape, low=a, high=b, dtype=t.dtype))


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    return _fill(t, ops.normal(shape=t.shape, mean=mean, std=std, dtype=t.dtype))


def constant_(t: Tensor, value: float) -> Tensor:
    return _fill(t, ops.full(shape=t.shape, value=value, dtype=t.dtype))


def zeros_(t: Tensor) -> Tensor:
    return constant_(t, 0.0)


def ones_(t: Tensor) -> Tensor:
    return constant_(t, 1.0)


def _gain(nonlinearity: str, a: float) -> float:
    if nonlinearity in ("linear", "conv2d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        return math.sqrt(2.0 / (1 + a * a))
    raise ValueError(f"unknown nonlinearity {nonlinearity!r}")


calculate_gain = _gain


def kaiming_uniform_(t: Tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu") -> Tensor:
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    fan = fan_in if mode == "fan_in" else fan_out
    bound = math.sqrt(3.0) * _gain(nonlinearity, a) / math.sqrt(fan)
    return uniform_(t, -bound, bound)


def kaiming_normal_(t: Tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu") -> Tensor:
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    fan = fan_in if mode == "fan_in" else fan_out
    return normal_(t, 0.0, _gain(nonlinearity, a) / math.sqrt(fan))


def xavier_uniform_(t: Tensor, gain: float = 1.0) -> Tensor:
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -bound, bound)


def xavier_normal_(t: Tensor, gain: float = 1.0) -> Tensor:
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def trunc_normal_(t: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0, generator=None) -> Tensor:
    """Normal(mean, std) draws restricted to [a, b]: draws outside are drawn again (from lucid's
    generator), so the values follow the truncated distribution exactly."""
    import numpy as np

    if not a < b:
        raise ValueError(f"trunc_normal_: expected a < b, got a={a}, b={b}")
    n = t.numel()
    out = np.empty(0)
    while out.size < n:
        z = ops.normal(shape=(max(2 * (n - out.size), 16),), mean=mean, std=std,
                       dtype=np.dtype(np.float64)).numpy()
        out = np.concatenate([out, z[(z >= a) & (z <= b)]])
    return _fill(t, Tensor(out[:n].reshape(t.shape).astype(t.dtype)))


def orthogonal_(t: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """A (semi-)orthogonal matrix (of the flattened trailing dims), from the QR decomposition
    of a normal draw, signs fixed so that the result is uniformly distributed."""
    import numpy as np

    if t.ndim < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    rows = t.shape[0]
    cols = t.numel() // rows
    flat = ops.normal(shape=(rows, cols), mean=0.0, std=1.0, dtype=np.dtype(np.float64)).numpy()
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(t, Tensor((gain * q).reshape(t.shape).astype(t.dtype)))
