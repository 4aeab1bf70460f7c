"""RMSprop, Adagrad, Adadelta, Adamax, NAdam, RAdam against float64 NumPy references written from
PyTorch's documented update rules; and each inside a compiled training step, equal to eager,
with no retrace as its step count grows."""

from __future__ import annotations

import numpy as np
import pytest

import lucid
import lucid.nn as nn
from lucid import optim


def _ref(name, kw, p, grads):
    """The parameter after one update per gradient, in float64."""
    lr = kw.get("lr", {"RMSprop": 1e-2, "Adagrad": 1e-2, "Adadelta": 1.0, "Adamax": 2e-3,
                       "NAdam": 2e-3, "RAdam": 1e-3}[name])
    b1, b2 = kw.get("betas", (0.9, 0.999))
    wd = kw.get("weight_decay", 0.0)
    p = p.astype(np.float64).copy()
    z = np.zeros_like(p)
    s1, s2, s3 = z.copy(), z.copy(), z.copy()
    if name == "Adagrad":
        s1 += kw.get("initial_accumulator_value", 0.0)
    mu_prod = 1.0
    for t, g in enumerate(grads, start=1):
        decoupled = kw.get("decoupled_weight_decay", False)
        if wd and decoupled:
            p = p * (1 - lr * wd)
        elif wd:
            g = g + wd * p
        if name == "RMSprop":
            a, eps, mom = kw.get("alpha", 0.99), kw.get("eps", 1e-8), kw.get("momentum", 0.0)
            s1 = a * s1 + (1 - a) * g * g
            if kw.get("centered"):
                s2 = a * s2 + (1 - a) * g
                avg = np.sqrt(s1 - s2 * s2) + eps
            else:
                avg = np.sqrt(s1) + eps
            if mom:
                s3 = mom * s3 + g / avg
                p = p - lr * s3
            else:
                p = p - lr * g / avg
        elif name == "Adagrad":
            clr = lr / (1 + (t - 1) * kw.get("lr_decay", 0.0))
            s1 = s1 + g * g
            p = p - clr * g / (np.sqrt(s1) + kw.get("eps", 1e-10))
        elif name == "Adadelta":
            rho, eps = kw.get("rho", 0.9), kw.get("eps", 1e-6)
            s1 = rho * s1 + (1 - rho) * g * g
            d = np.sqrt(s2 + eps) / np.sqrt(s1 + eps) * g
            s2 = rho * s2 + (1 - rho) * d * d
            p = p - lr * d
        elif name == "Adamax":
            s1 = b1 * s1 + (1 - b1) * g
            s2 = np.maximum(b2 * s2, np.abs(g) + kw.get("eps", 1e-8))
            p = p - lr / (1 - b1 ** t) * s1 / s2
        elif name == "NAdam":
            md, eps = kw.get("momentum_decay", 4e-3), kw.get("eps", 1e-8)
            mu = b1 * (1 - 0.5 * 0.96 ** (t * md))
            mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * md))
            mu_prod = float(np.float32(mu_prod * mu))
            s1 = b1 * s1 + (1 - b1) * g
            s2 = b2 * s2 + (1 - b2) * g * g
            denom = np.sqrt(s2 / (1 - b2 ** t)) + eps
            p = p - lr * (1 - mu) / (1 - mu_prod) * g / denom
            p = p - lr * mu_next / (1 - mu_prod * mu_next) * s1 / denom
        elif name == "RAdam":
            s1 = b1 * s1 + (1 - b1) * g
            s2 = b2 * s2 + (1 - b2) * g * g
            rho_inf = 2 / (1 - b2) - 1
            rho_t = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
            m_hat = s1 / (1 - b1 ** t)
            if rho_t > 5:
                rect = np.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                               / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
                p = p - lr * m_hat * rect * np.sqrt(1 - b2 ** t) / (np.sqrt(s2) + 1e-8)
            else:
                p = p - lr * m_hat
    return p


CASES = [("RMSprop", {}), ("RMSprop", dict(momentum=0.9, centered=True, weight_decay=0.1)),
         ("Adagrad", dict(lr_decay=0.01, initial_accumulator_value=0.1)),
         ("Adadelta", dict(weight_decay=0.01)), ("Adamax", dict(lr=0.01)),
         ("NAdam", {}), ("NAdam", dict(weight_decay=0.1, decoupled_weight_decay=True)),
         ("RAdam", dict(lr=0.01)), ("RAdam", dict(weight_decay=0.1, decoupled_weight_decay=True))]


@pytest.mark.parametrize("name, kw", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_matches_the_reference(name, kw):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(10)]  # RAdam rectifies from step 6
    p = nn.Parameter(lucid.tensor(p0))
    opt = getattr(optim, name)([p], **kw)
    for g in grads:
        p.grad = lucid.tensor(g)
        opt.step()
    np.testing.assert_allclose(p.numpy(), _ref(name, kw, p0, grads), rtol=1e-9, atol=1e-12)


def test_invalid_arguments_raise():
    p = [nn.Parameter(lucid.zeros(2))]
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.RMSprop(p, lr=-1)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        optim.NAdam(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Invalid rho value"):
        optim.Adadelta(p, rho=1.5)


@pytest.mark.parametrize("name", ["RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam"])
def test_compiled_step_matches_eager_without_retracing(name):
    lucid.manual_seed(4)
    models = {k: nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1)) for k in "ec"}
    models["c"].load_state_dict(models["e"].state_dict())
    kw = {"momentum": 0.5} if name == "RMSprop" else {}
    opts = {k: getattr(optim, name)(m.parameters(), **kw) for k, m in models.items()}

    def step_of(k):
        def step(x, y):
            opts[k].zero_grad()
            loss = ((models[k](x) - y) ** 2).mean()
            loss.backward()
            opts[k].step()
            return loss
        return step

    eager, compiled = step_of("e"), lucid.compile(step_of("c"), mode="sync")
    for _ in range(8):
        x, y = lucid.randn(4, 3), lucid.randn(4, 1)
        np.testing.assert_allclose(compiled(x, y).item(), eager(x, y).item(), rtol=2e-5)
    for a, b in zip(models["e"].parameters(), models["c"].parameters(), strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=2e-5, atol=1e-6)
    assert len(compiled.entries) == 2, compiled.recompiles
