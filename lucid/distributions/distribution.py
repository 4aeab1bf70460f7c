"""The base of every distribution: shapes, sample/rsample, and argument checks."""

from __future__ import annotations

import math

from lucid import dtypes
from lucid.ops.registry import CURRENT_TRACER
from lucid.tensor import Tensor


def as_param(value, like: Tensor | None = None) -> Tensor:
    """A parameter as a floating tensor (Python numbers take the default float dtype)."""
    if isinstance(value, Tensor):
        return value if dtypes.is_floating(value.dtype) else value.float()
    device = like.device if like is not None else "cpu"
    return Tensor(float(value), dtype=like.dtype if like is not None else None, device=device)


def checking() -> bool:
    """Whether argument values can be checked: eagerly, not while a compiled function traces."""
    return CURRENT_TRACER.get() is None


class Distribution:
    """`batch_shape` indexes independent distributions, `event_shape` is one draw's shape;
    `sample(sample_shape)` has shape sample_shape + batch_shape + event_shape."""

    has_rsample = False
    arg_constraints: dict = {}
    _validate_default = True

    def __init__(self, batch_shape=(), event_shape=(), validate_args: bool | None = None) -> None:
        self._batch_shape = tuple(batch_shape)
        self._event_shape = tuple(event_shape)
        self._validate_args = self._validate_default if validate_args is None else validate_args

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        Distribution._validate_default = bool(value)

    @property
    def batch_shape(self) -> tuple:
        return self._batch_shape

    @property
    def event_shape(self) -> tuple:
        return self._event_shape

    def _extended_shape(self, sample_shape=()) -> tuple:
        if isinstance(sample_shape, int):
            sample_shape = (sample_shape,)
        return tuple(sample_shape) + self._batch_shape + self._event_shape

    def sample(self, sample_shape=()) -> Tensor:
        """A draw that carries no gradient."""
        from lucid.autograd import no_grad

        with no_grad():
            return self.rsample(sample_shape) if self.has_rsample else self._draw(sample_shape)

    def rsample(self, sample_shape=()) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no reparameterized sampler "
                                  "(rsample): its draws are not differentiable in its parameters")

    def _draw(self, sample_shape) -> Tensor:
        raise NotImplementedError

    def sample_n(self, n: int) -> Tensor:
        return self.sample((n,))

    def log_prob(self, value: Tensor) -> Tensor:
        raise NotImplementedError

    def prob(self, value: Tensor) -> Tensor:
        return self.log_prob(value).exp()

    def entropy(self) -> Tensor:
        raise NotImplementedError

    def perplexity(self) -> Tensor:
        return self.entropy().exp()

    @property
    def stddev(self) -> Tensor:
        return self.variance.sqrt()

    def _check(self, ok: Tensor, what: str) -> None:
        if self._validate_args and checking() and not bool(ok.all().item()):
            raise ValueError(f"Expected {what} in {type(self).__name__}")

    def __repr__(self) -> str:
        params = ", ".join(f"{k}: {tuple(getattr(self, k).shape)}" for k in self.arg_constraints
                           if k in self.__dict__ or hasattr(type(self), k))
        return f"{type(self).__name__}({params})"


LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
