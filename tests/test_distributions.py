"""lucid.distributions: log densities, entropies and KL divergences against scipy.stats, draws
against their distributions' moments and frequencies, reparameterized gradients, and a compiled
REINFORCE-style step against eager."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import lucid
from lucid import distributions as D


def test_normal_and_uniform_against_scipy():
    loc, scale = np.array([0.5, -1.0, 2.0]), np.array([1.5, 0.3, 2.0])
    x = np.array([0.1, -0.7, 5.0])
    n = D.Normal(lucid.tensor(loc), lucid.tensor(scale))
    np.testing.assert_allclose(n.log_prob(lucid.tensor(x)).numpy(),
                               stats.norm.logpdf(x, loc, scale), rtol=1e-5)
    np.testing.assert_allclose(n.cdf(lucid.tensor(x)).numpy(), stats.norm.cdf(x, loc, scale),
                               rtol=1e-5)
    np.testing.assert_allclose(n.entropy().numpy(), stats.norm.entropy(loc, scale), rtol=1e-5)
    u = D.Uniform(lucid.tensor([0.0, -2.0]), lucid.tensor([2.0, 3.0]))
    np.testing.assert_allclose(u.log_prob(lucid.tensor([1.0, 4.0])).numpy(),
                               [np.log(0.5), -np.inf])
    np.testing.assert_allclose(u.entropy().numpy(), np.log([2.0, 5.0]), rtol=1e-6)
    assert D.Normal(0.0, 1.0).batch_shape == () and n.sample((4, 2)).shape == (4, 2, 3)
    with pytest.raises(ValueError, match="scale to be positive"):
        D.Normal(0.0, -1.0)


def test_discrete_distributions_against_scipy():
    p = np.array([0.2, 0.5, 0.3])
    c = D.Categorical(probs=lucid.tensor(p * 4.0))  # (unnormalized: probs are normalized)
    np.testing.assert_allclose(c.log_prob(lucid.tensor([0, 2, 1])).numpy(), np.log(p[[0, 2, 1]]),
                               rtol=1e-6)
    np.testing.assert_allclose(c.entropy().item(), stats.entropy(p), rtol=1e-6)
    logits = lucid.tensor([[1.0, -1.0, 0.0], [0.0, 0.0, 3.0]])
    batch = D.Categorical(logits=logits)
    assert batch.batch_shape == (2,) and batch.sample((7,)).shape == (7, 2)
    b = D.Bernoulli(logits=lucid.tensor([-0.5, 2.0]))
    q = 1 / (1 + np.exp([0.5, -2.0]))
    np.testing.assert_allclose(b.log_prob(lucid.tensor([1.0, 0.0])).numpy(),
                               stats.bernoulli.logpmf([1, 0], q), rtol=1e-5)
    np.testing.assert_allclose(b.entropy().numpy(), stats.bernoulli.entropy(q), rtol=1e-5)
    with pytest.raises(ValueError, match="either `probs` or `logits`"):
        D.Bernoulli(probs=0.5, logits=0.0)


def test_draws_follow_their_distributions():
    lucid.manual_seed(0)
    s = D.Normal(lucid.tensor([1.0, -2.0]), lucid.tensor([0.5, 3.0])).sample((20000,)).numpy()
    np.testing.assert_allclose(s.mean(0), [1.0, -2.0], atol=0.06)
    np.testing.assert_allclose(s.std(0), [0.5, 3.0], rtol=0.03)
    counts = np.bincount(D.Categorical(logits=lucid.tensor([0.0, 1.0, 2.0]))
                         .sample((20000,)).numpy(), minlength=3) / 20000
    np.testing.assert_allclose(counts, np.exp([0, 1, 2]) / np.exp([0, 1, 2]).sum(), atol=0.015)
    assert abs(D.Bernoulli(probs=0.3).sample((20000,)).numpy().mean() - 0.3) < 0.015
    u = D.Uniform(2.0, 5.0).sample((20000,)).numpy()
    assert u.min() >= 2.0 and u.max() < 5.0 and abs(u.mean() - 3.5) < 0.03


def test_rsample_carries_gradients_and_sample_does_not():
    loc = lucid.tensor([0.5], requires_grad=True)
    scale = lucid.tensor([2.0], requires_grad=True)
    lucid.manual_seed(1)
    n = D.Normal(loc, scale)
    x = n.rsample((1000,))
    x.mean().backward()
    eps = (x.detach().numpy() - 0.5) / 2.0
    np.testing.assert_allclose(loc.grad.item(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(scale.grad.item(), eps.mean(), rtol=1e-5)
    assert not n.sample().requires_grad
    with pytest.raises(NotImplementedError, match="rsample"):
        D.Categorical(logits=lucid.zeros(3)).rsample()


def test_kl_divergences_against_scipy():
    p, q = D.Normal(0.3, 1.2), D.Normal(-0.5, 0.7)
    grid = np.linspace(-12, 12, 200001)
    dp = stats.norm.pdf(grid, 0.3, 1.2)
    numeric = np.trapezoid(dp * (stats.norm.logpdf(grid, 0.3, 1.2)
                                 - stats.norm.logpdf(grid, -0.5, 0.7)), grid)
    np.testing.assert_allclose(D.kl_divergence(p, q).item(), numeric, rtol=1e-5)
    a, b = np.array([0.1, 0.6, 0.3]), np.array([0.3, 0.3, 0.4])
    kl = D.kl_divergence(D.Categorical(probs=lucid.tensor(a)), D.Categorical(probs=lucid.tensor(b)))
    np.testing.assert_allclose(kl.item(), stats.entropy(a, b), rtol=1e-6)
    kb = D.kl_divergence(D.Bernoulli(probs=lucid.tensor([0.2])), D.Bernoulli(probs=0.7))
    np.testing.assert_allclose(kb.item(), stats.entropy([0.2, 0.8], [0.7, 0.3]), rtol=1e-5)
    with pytest.raises(NotImplementedError, match="No KL"):
        D.kl_divergence(p, D.Uniform(0.0, 1.0))


def test_a_compiled_policy_gradient_step_matches_eager():
    def run(compiled: bool) -> list[float]:
        lucid.manual_seed(3)
        policy = lucid.nn.Linear(4, 3)
        opt = lucid.optim.SGD(policy.parameters(), lr=0.1)

        def step(obs, reward):
            dist = D.Categorical(logits=policy(obs))
            action = dist.sample()
            loss = -(dist.log_prob(action) * reward).mean() - 0.01 * dist.entropy().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss

        fn = lucid.compile(step, fullgraph=True) if compiled else step
        obs, reward = lucid.randn(8, 4), lucid.randn(8)
        lucid.manual_seed(4)
        return [fn(obs, reward).item() for _ in range(3)]

    np.testing.assert_allclose(run(True), run(False), rtol=1e-5)
