"""The models the tests share: seed 001's network and seed 004's CNN (the examples' own), and a
whole training step."""

from __future__ import annotations

from examples.simple_cnn import SimpleCNN  # noqa: F401 (re-exported)
from examples.train_mlp import NeuralNetwork  # noqa: F401 (re-exported)


def train_step(model, opt, loss_fn):
    """forward, loss, zero_grad, backward, step (what users compile)."""
    def step(x, y):
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    return step
