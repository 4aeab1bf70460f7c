"""optim.LBFGS: converges to known minima with and without the strong-Wolfe line search, keeps
its evaluation budget, and refuses what PyTorch's refuses."""

from __future__ import annotations

import numpy as np
import pytest

import lucid


def _rosenbrock(p):
    return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2 + (p[2] - p[1]) ** 2


@pytest.mark.parametrize("line_search", [None, "strong_wolfe"])
def test_rosenbrock_reaches_its_minimum(line_search):
    p = lucid.tensor([-1.2, 1.0, 0.5], dtype=lucid.float64, requires_grad=True)
    opt = lucid.optim.LBFGS([p], history_size=10, max_iter=50, line_search_fn=line_search)
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = _rosenbrock(p)
        loss.backward()
        return loss

    first = opt.step(closure)
    assert first.item() == pytest.approx(24.45)
    for _ in range(10):
        opt.step(closure)
    np.testing.assert_allclose(p.detach().numpy(), [1.0, 1.0, 1.0], atol=1e-4)
    assert len(calls) <= 11 * (50 * 5 // 4 + 1)


def test_least_squares_matches_the_normal_equations():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((20, 4)), rng.standard_normal(20)
    w = lucid.zeros(4, dtype=lucid.float64, requires_grad=True)
    opt = lucid.optim.LBFGS([w], line_search_fn="strong_wolfe", tolerance_grad=1e-12,
                            tolerance_change=1e-15)
    A, B = lucid.tensor(a), lucid.tensor(b)

    def closure():
        opt.zero_grad()
        loss = ((A @ w - B) ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    np.testing.assert_allclose(w.detach().numpy(), np.linalg.lstsq(a, b, rcond=None)[0],
                               rtol=1e-6, atol=1e-8)


def test_lbfgs_refuses_groups_and_a_missing_closure():
    p = lucid.zeros(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="requires a closure"):
        lucid.optim.LBFGS([p]).step(None)
    with pytest.raises(ValueError, match="per-parameter options"):
        lucid.optim.LBFGS([{"params": [p]}, {"params": [lucid.zeros(1, requires_grad=True)]}])
    with pytest.raises(ValueError, match="strong_wolfe"):
        lucid.optim.LBFGS([p], line_search_fn="backtracking")
