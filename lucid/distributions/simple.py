"""Normal, Uniform, Bernoulli and Categorical (PyTorch's arguments, shapes and formulas)."""

from __future__ import annotations

import math

import lucid
from lucid.distributions.distribution import LOG_SQRT_2PI, Distribution, as_param
from lucid.functions import where
from lucid.tensor import Tensor


def _pair(a, b) -> tuple[Tensor, Tensor]:
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None
    a, b = as_param(a, like), as_param(b, like)
    return lucid.broadcast_tensors(a, b)


class Normal(Distribution):
    """N(loc, scale^2)."""

    has_rsample = True
    arg_constraints = {"loc": "real", "scale": "positive"}

    def __init__(self, loc, scale, validate_args: bool | None = None) -> None:
        self.loc, self.scale = _pair(loc, scale)
        super().__init__(self.loc.shape, (), validate_args)
        self._check(self.scale > 0, "parameter scale to be positive")

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        return self.scale * self.scale

    @property
    def stddev(self) -> Tensor:
        return self.scale

    def rsample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        eps = lucid.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + eps * self.scale

    def log_prob(self, value) -> Tensor:
        value = as_param(value, self.loc)
        z = (value - self.loc) / self.scale
        return -0.5 * z * z - self.scale.log() - LOG_SQRT_2PI

    def cdf(self, value) -> Tensor:
        value = as_param(value, self.loc)
        return 0.5 * (1.0 + ((value - self.loc) / (self.scale * math.sqrt(2.0))).erf())

    def entropy(self) -> Tensor:
        return 0.5 + LOG_SQRT_2PI + self.scale.log()


class Uniform(Distribution):
    """Uniform on [low, high)."""

    has_rsample = True
    arg_constraints = {"low": "real", "high": "real"}

    def __init__(self, low, high, validate_args: bool | None = None) -> None:
        self.low, self.high = _pair(low, high)
        super().__init__(self.low.shape, (), validate_args)
        self._check(self.low < self.high, "parameter low to be less than high")

    @property
    def mean(self) -> Tensor:
        return (self.low + self.high) * 0.5

    @property
    def variance(self) -> Tensor:
        return (self.high - self.low) ** 2 / 12.0

    def rsample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        u = lucid.rand(shape, dtype=self.low.dtype, device=self.low.device)
        return self.low + u * (self.high - self.low)

    def log_prob(self, value) -> Tensor:
        value = as_param(value, self.low)
        inside = (value >= self.low).logical_and(value < self.high)
        return where(inside, -(self.high - self.low).log(), -math.inf)

    def cdf(self, value) -> Tensor:
        value = as_param(value, self.low)
        return ((value - self.low) / (self.high - self.low)).clamp(0.0, 1.0)

    def entropy(self) -> Tensor:
        return (self.high - self.low).log()


def _probs_or_logits(name: str, probs, logits):
    if (probs is None) == (logits is None):
        raise ValueError(f"{name}: either `probs` or `logits` must be specified, but not both.")
    return (as_param(probs), None) if probs is not None else (None, as_param(logits))


class Bernoulli(Distribution):
    """1 with probability `probs` (or sigmoid(`logits`)), else 0."""

    arg_constraints = {"probs": "unit_interval", "logits": "real"}

    def __init__(self, probs=None, logits=None, validate_args: bool | None = None) -> None:
        probs, logits = _probs_or_logits("Bernoulli", probs, logits)
        if probs is not None:
            self.probs = probs
            eps = float(lucid.finfo(probs.dtype).eps)
            clamped = probs.clamp(eps, 1.0 - eps)
            self.logits = (clamped / (1.0 - clamped)).log()
        else:
            self.logits = logits
            self.probs = logits.sigmoid()
        super().__init__(self.probs.shape, (), validate_args)
        if probs is not None:
            self._check((probs >= 0).logical_and(probs <= 1), "parameter probs in [0, 1]")

    @property
    def mean(self) -> Tensor:
        return self.probs

    @property
    def variance(self) -> Tensor:
        return self.probs * (1.0 - self.probs)

    def _draw(self, sample_shape) -> Tensor:
        shape = self._extended_shape(sample_shape)
        u = lucid.rand(shape, dtype=self.probs.dtype, device=self.probs.device)
        return (u < self.probs.broadcast_to(shape)).cast(self.probs.dtype)

    def log_prob(self, value) -> Tensor:
        value = as_param(value, self.logits)
        self._check((value == 0).logical_or(value == 1), "value in {0, 1}")
        # -BCE with logits: value * logits - softplus(logits), stable for any logit
        return value * self.logits - lucid.nn.functional.softplus(self.logits)

    def entropy(self) -> Tensor:
        return lucid.nn.functional.softplus(self.logits) - self.probs * self.logits


class Categorical(Distribution):
    """One of K categories (the last dimension of `probs` or `logits`), drawn by Gumbel-max."""

    arg_constraints = {"probs": "simplex", "logits": "real"}

    def __init__(self, probs=None, logits=None, validate_args: bool | None = None) -> None:
        probs, logits = _probs_or_logits("Categorical", probs, logits)
        param = probs if probs is not None else logits
        if param.ndim < 1:
            raise ValueError("Categorical: `probs` or `logits` must be at least one-dimensional")
        super().__init__(param.shape[:-1], (), validate_args)
        if probs is not None:
            self._check((probs >= 0).all(), "parameter probs to be non-negative")
            self.probs = probs / probs.sum(-1, keepdim=True)
            self.logits = self.probs.clamp(min=float(lucid.finfo(probs.dtype).tiny)).log()
        else:
            self.logits = logits - logits.logsumexp(-1, keepdim=True)
            self.probs = self.logits.exp()
        self._num_events = self.probs.shape[-1]

    @property
    def param_shape(self) -> tuple:
        return tuple(self.probs.shape)

    @property
    def mean(self) -> Tensor:
        return lucid.full(self._batch_shape, math.nan, dtype=self.probs.dtype)

    @property
    def mode(self) -> Tensor:
        return self.probs.argmax(-1)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        values = lucid.arange(self._num_events, device=self.probs.device)
        values = values.reshape((-1,) + (1,) * len(self._batch_shape))
        return values.broadcast_to((self._num_events,) + self._batch_shape) if expand else values

    def _draw(self, sample_shape) -> Tensor:
        shape = self._extended_shape(sample_shape) + (self._num_events,)
        u = lucid.rand(shape, dtype=self.logits.dtype, device=self.logits.device)
        tiny = float(lucid.finfo(self.logits.dtype).tiny)
        gumbel = -(-(u.clamp(min=tiny)).log()).log()
        return (self.logits.broadcast_to(shape) + gumbel).argmax(-1)

    def log_prob(self, value) -> Tensor:
        value = value if isinstance(value, Tensor) else lucid.tensor(value)
        value = value.long()
        self._check((value >= 0).logical_and(value < self._num_events),
                    f"value in [0, {self._num_events})")
        shape = lucid.broadcast_shapes(value.shape, self._batch_shape)
        logits = self.logits.broadcast_to(shape + (self._num_events,))
        return logits.gather(-1, value.broadcast_to(shape).unsqueeze(-1)).squeeze(-1)

    def entropy(self) -> Tensor:
        p_log_p = where(self.probs > 0, self.probs * self.logits, 0.0)
        return -p_log_p.sum(-1)
