"""nn.utils: gradient clipping and parameter vectors against NumPy, eagerly and compiled."""

from __future__ import annotations

import numpy as np
import pytest

import lucid
import lucid.nn as nn
from lucid.nn.utils import (
    clip_grad_norm_,
    clip_grad_value_,
    parameters_to_vector,
    vector_to_parameters,
)


def _params_with_grads(seed=0, scale=3.0):
    rng = np.random.default_rng(seed)
    ps = [nn.Parameter(lucid.tensor(rng.standard_normal(s).astype(np.float32)))
          for s in [(3, 4), (4,), (2, 2)]]
    for p in ps:
        p.grad = lucid.tensor((scale * rng.standard_normal(p.shape)).astype(np.float32))
    return ps


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
def test_clip_grad_norm_scales_to_max_norm(norm_type):
    ps = _params_with_grads()
    grads = [p.grad.numpy().copy() for p in ps]
    flat = np.concatenate([g.ravel() for g in grads]).astype(np.float64)
    norm = np.abs(flat).max() if np.isinf(norm_type) else (np.abs(flat) ** norm_type).sum() ** (
        1 / norm_type)
    total = clip_grad_norm_(ps, max_norm=1.5, norm_type=norm_type)
    assert total.item() == pytest.approx(norm, rel=1e-5)
    scale = min(1.0, 1.5 / (norm + 1e-6))
    for p, g in zip(ps, grads, strict=True):
        np.testing.assert_allclose(p.grad.numpy(), g * scale, rtol=1e-5)
    # below the bar: unchanged
    before = [p.grad.numpy().copy() for p in ps]
    clip_grad_norm_(ps, max_norm=1e6, norm_type=norm_type)
    for p, g in zip(ps, before, strict=True):
        np.testing.assert_allclose(p.grad.numpy(), g, rtol=1e-6)


def test_clip_grad_norm_edge_cases():
    assert clip_grad_norm_([nn.Parameter(lucid.zeros(2))], 1.0).item() == 0.0
    ps = _params_with_grads()
    ps[0].grad = lucid.tensor(np.full((3, 4), np.nan, np.float32))
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)


def test_clip_grad_value_clamps():
    ps = _params_with_grads()
    grads = [p.grad.numpy().copy() for p in ps]
    clip_grad_value_(ps, 0.5)
    for p, g in zip(ps, grads, strict=True):
        np.testing.assert_array_equal(p.grad.numpy(), np.clip(g, -0.5, 0.5))


def test_parameters_to_vector_and_back():
    ps = _params_with_grads()
    v = parameters_to_vector(ps)
    np.testing.assert_array_equal(v.numpy(), np.concatenate([p.numpy().ravel() for p in ps]))
    vector_to_parameters(v * 2, ps)
    np.testing.assert_array_equal(parameters_to_vector(ps).numpy(), 2 * v.numpy())
    with pytest.raises(ValueError, match="elements"):
        vector_to_parameters(v[:3], ps)


def test_clipping_inside_a_compiled_step_matches_eager():
    lucid.manual_seed(1)
    models = {k: nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2)) for k in "ec"}
    models["c"].load_state_dict(models["e"].state_dict())
    opts = {k: lucid.optim.SGD(m.parameters(), lr=0.1) for k, m in models.items()}

    def step_of(k):
        def step(x, y):
            opts[k].zero_grad()
            loss = ((models[k](x) - y) ** 2).sum()
            loss.backward()
            norm = clip_grad_norm_(models[k].parameters(), 0.5)
            clip_grad_value_(models[k].parameters(), 0.05)
            opts[k].step()
            return loss, norm
        return step

    eager, compiled = step_of("e"), lucid.compile(step_of("c"), mode="sync", fullgraph=True)
    for _ in range(4):
        x, y = lucid.randn(8, 4) * 3, lucid.randn(8, 2)
        (le, ne), (lc, nc) = eager(x, y), compiled(x, y)
        np.testing.assert_allclose(lc.item(), le.item(), rtol=1e-5)
        np.testing.assert_allclose(nc.item(), ne.item(), rtol=1e-5)
    for a, b in zip(models["e"].parameters(), models["c"].parameters(), strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6)
