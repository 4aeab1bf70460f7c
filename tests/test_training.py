"""End-to-end training: the seed 001 loop, classifiers that must learn a known answer, and
gradient accumulation."""

from __future__ import annotations

import numpy as np

import lucid
import lucid.nn as nn
from lucid.optim import SGD, Adam
from tests.helpers import assert_close


def seed_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 2), nn.Sigmoid())


def test_seed_001_loop_drives_the_loss_down():
    model = seed_mlp()
    x = lucid.rand(32, 64)
    y = lucid.randint(0, 2, (32, 2)).float()
    criterion = nn.BCELoss()
    opt = Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(50):
        loss = criterion(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert abs(losses[0] - np.log(2)) < 0.1  # an untrained sigmoid output is about 0.5
    assert losses[-1] < 0.2 * losses[0]  # 32 random targets are memorised
    assert np.mean(losses[-10:]) < np.mean(losses[10:20]) < np.mean(losses[:10])


def blobs(n_per_class: int = 100, seed: int = 0):
    """Three Gaussian blobs in the plane, centres 4 apart and std 0.6: almost separable."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [4.0, 0.0], [2.0, 3.5]])
    x = np.concatenate([c + 0.6 * rng.standard_normal((n_per_class, 2)) for c in centres])
    y = np.repeat(np.arange(3), n_per_class)
    return x.astype(np.float32), y


def xor_points(n: int = 400, seed: int = 0):
    """Points in [-1, 1]^2 away from the axes, labelled by whether x and y share a sign: no
    linear classifier gets much past 50%."""
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0.1, 1.0, (n, 2)) * rng.choice([-1.0, 1.0], (n, 2))
    return pts.astype(np.float32), (pts[:, 0] * pts[:, 1] > 0).astype(np.int64)


def fit(model: nn.Module, opt, x: np.ndarray, y: np.ndarray, steps: int) -> float:
    """Full-batch training with cross-entropy; returns the final training accuracy."""
    xt, yt = lucid.tensor(x), lucid.tensor(y)
    criterion = nn.CrossEntropyLoss()
    for _ in range(steps):
        loss = criterion(model(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with lucid.no_grad():
        predicted = model(xt).argmax(dim=1).numpy()
    return float((predicted == y).mean())


def test_mlp_with_adam_classifies_three_blobs():
    x, y = blobs()
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 3))
    assert fit(model, Adam(model.parameters(), lr=0.05), x, y, steps=100) >= 0.95


def test_mlp_with_sgd_momentum_learns_xor():
    x, y = xor_points()
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                          nn.Linear(32, 2))
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    assert fit(model, opt, x, y, steps=200) >= 0.95


def test_a_linear_model_cannot_learn_xor():
    # The control for the test above: XOR needs the hidden layers, so this must stay near chance.
    x, y = xor_points()
    model = nn.Linear(2, 2)
    assert fit(model, SGD(model.parameters(), lr=0.1, momentum=0.9), x, y, steps=200) < 0.8


def test_gradient_accumulation_over_two_backwards_is_the_sum():
    model = seed_mlp()
    criterion = nn.BCELoss()
    batches = [(lucid.rand(8, 64), lucid.randint(0, 2, (8, 2)).float()) for _ in range(2)]
    params = list(model.parameters())

    separate = []
    for xb, yb in batches:
        model.zero_grad()
        criterion(model(xb), yb).backward()
        separate.append([p.grad.numpy().copy() for p in params])

    model.zero_grad()
    for xb, yb in batches:  # no zero_grad in between: .grad accumulates
        criterion(model(xb), yb).backward()
    for p, g0, g1 in zip(params, *separate, strict=True):
        assert not np.allclose(g0, g1)  # the two batches really differ
        assert_close(p.grad, g0 + g1, rtol=1e-5, atol=1e-7)


def test_accumulated_gradients_step_like_one_big_batch_with_sum_loss():
    # Two half-batches with reduction='sum' accumulate exactly the full batch's gradient, so one
    # SGD step after them lands where one step on the full batch does.
    x, y = lucid.rand(16, 64), lucid.randint(0, 2, (16, 2)).float()
    criterion = nn.BCELoss(reduction="sum")
    lucid.manual_seed(1)
    a = seed_mlp()
    lucid.manual_seed(1)
    b = seed_mlp()
    opt_a, opt_b = SGD(a.parameters(), lr=0.01), SGD(b.parameters(), lr=0.01)
    opt_a.zero_grad()
    criterion(a(x), y).backward()
    opt_a.step()
    opt_b.zero_grad()
    criterion(b(x[:8]), y[:8]).backward()
    criterion(b(x[8:]), y[8:]).backward()
    opt_b.step()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert_close(pb, pa, rtol=1e-5, atol=1e-6)
