"""Probability distributions (PyTorch's `torch.distributions`): Normal, Uniform, Bernoulli,
Categorical, with sampling, reparameterized sampling where it exists, log densities, entropies
and KL divergences, all in lucid ops (so they trace into compiled functions and differentiate).

Categorical draws by the Gumbel-max trick (the argmax of logits plus Gumbel noise), which needs
no host sort or search, so a sampling step compiles whole."""

from lucid.distributions import kl
from lucid.distributions.distribution import Distribution
from lucid.distributions.kl import kl_divergence, register_kl
from lucid.distributions.simple import Bernoulli, Categorical, Normal, Uniform

__all__ = ["Bernoulli", "Categorical", "Distribution", "Normal", "Uniform", "kl",
           "kl_divergence", "register_kl"]
