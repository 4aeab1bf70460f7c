"""KL divergences between distributions of the same family (PyTorch's `kl_divergence`), and
`register_kl` for pairs of one's own."""

from __future__ import annotations

from lucid.distributions.simple import Bernoulli, Categorical, Normal, Uniform
from lucid.functions import where

_KL: dict[tuple[type, type], object] = {}


def register_kl(type_p: type, type_q: type):
    """A decorator registering fn(p, q) as KL(p || q) for these two types."""
    def decorate(fn):
        _KL[(type_p, type_q)] = fn
        return fn
    return decorate


def kl_divergence(p, q):
    """KL(p || q), batched over their batch shapes."""
    for (tp, tq), fn in _KL.items():
        if isinstance(p, tp) and isinstance(q, tq):
            return fn(p, q)
    raise NotImplementedError(f"No KL(p || q) is implemented for p: {type(p).__name__}, "
                              f"q: {type(q).__name__}")


@register_kl(Normal, Normal)
def _kl_normal_normal(p: Normal, q: Normal):
    ratio = (p.scale / q.scale) ** 2
    diff = ((p.loc - q.loc) / q.scale) ** 2
    return 0.5 * (ratio + diff - 1.0 - ratio.log())


@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli_bernoulli(p: Bernoulli, q: Bernoulli):
    from lucid.nn.functional import softplus

    a = p.probs * (softplus(-q.logits) - softplus(-p.logits))
    b = (1.0 - p.probs) * (softplus(q.logits) - softplus(p.logits))
    a = where(p.probs == 0, 0.0, a)
    b = where(p.probs == 1, 0.0, b)
    return a + b


@register_kl(Categorical, Categorical)
def _kl_categorical_categorical(p: Categorical, q: Categorical):
    t = p.probs * (p.logits - q.logits)
    return where(p.probs == 0, 0.0, t).sum(-1)


@register_kl(Uniform, Uniform)
def _kl_uniform_uniform(p: Uniform, q: Uniform):
    inside = (q.low <= p.low).logical_and(p.high <= q.high)
    return where(inside, ((q.high - q.low) / (p.high - p.low)).log(), float("inf"))
