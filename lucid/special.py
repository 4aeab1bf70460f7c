"""lucid.special: PyTorch's `torch.special` functions that lucid's ops express (in lucid ops, so
they differentiate and compile)."""

from __future__ import annotations

import math

from lucid.tensor import Tensor


def expit(input: Tensor) -> Tensor:
    return input.sigmoid()


def logit(input: Tensor, eps: float | None = None) -> Tensor:
    return input.logit(eps)


def erf(input: Tensor) -> Tensor:
    return input.erf()


def erfc(input: Tensor) -> Tensor:
    return 1.0 - input.erf()


def ndtr(input: Tensor) -> Tensor:
    """The standard normal distribution function."""
    return 0.5 * (1.0 + (input._float_operand() * (1.0 / math.sqrt(2.0))).erf())


def log1p(input: Tensor) -> Tensor:
    return input.log1p()


def expm1(input: Tensor) -> Tensor:
    return input.expm1()


def exp2(input: Tensor) -> Tensor:
    return input.exp2()


def log_softmax(input: Tensor, dim: int, *, dtype=None) -> Tensor:
    from lucid.nn.functional import log_softmax as f

    return f(input, dim, dtype=dtype)


def softmax(input: Tensor, dim: int, *, dtype=None) -> Tensor:
    from lucid.nn.functional import softmax as f

    return f(input, dim, dtype=dtype)


def logsumexp(input: Tensor, dim, keepdim: bool = False) -> Tensor:
    return input.logsumexp(dim, keepdim)


def xlogy(input, other) -> Tensor:
    return input.xlogy(other)


def xlog1py(input: Tensor, other) -> Tensor:
    """x log(1 + y), 0 where x is 0."""
    from lucid.functions import where

    x = input._float_operand()
    y = other if isinstance(other, Tensor) else x._lift(other)
    zero = (x == 0).logical_and(y == y)
    return where(zero, 0.0, x * where(zero, 0.0, y).log1p())


def entr(input: Tensor) -> Tensor:
    """-x log x for x > 0, 0 at 0, -inf below."""
    from lucid.functions import where

    x = input._float_operand()
    positive = x > 0
    safe = where(positive, x, 1.0)
    return where(positive, -safe * safe.log(), where(x == 0, 0.0, -math.inf))


def sinc(input: Tensor) -> Tensor:
    return input.sinc()


def round(input: Tensor, decimals: int = 0) -> Tensor:  # noqa: A001
    return input.round(decimals)
