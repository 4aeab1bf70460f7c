"""The generated guard check: what it returns, and that every kind of guard can fail it."""

from __future__ import annotations

import numpy as np

import lucid
import lucid.nn as nn
import lucid.nn.functional as F  # noqa: N812


def _step():
    lucid.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    opt = lucid.optim.Adam(model.parameters(), lr=0.01)

    def step(x, y):
        loss = F.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return model, opt, lucid.compile(step)


def test_check_returns_the_input_arrays_in_graph_order():
    model, opt, step = _step()
    x, y = lucid.randn(3, 4), lucid.randn(3, 1)
    for _ in range(3):
        step(x, y)
    entry = step.entries[-1]
    arrays = entry.check([x, y])
    assert arrays is not None and len(arrays) == len(entry.forward.inputs)
    for array, src in zip(arrays, entry.input_sources, strict=True):
        if isinstance(src, tuple):  # a lifted float: its current value as a 0-d float64 array
            assert array.dtype == np.float64 and array.shape == ()
        else:
            assert array is src.get([x, y]).data
    assert "def check(flat):" in entry.check.source


def test_each_kind_of_guard_fails_the_check():
    model, opt, step = _step()
    x, y = lucid.randn(3, 4), lucid.randn(3, 1)
    for _ in range(3):
        step(x, y)
    entry = step.entries[-1]
    flat = [x, y]
    assert entry.check(flat) is not None

    saved = opt.param_groups[0]["amsgrad"]
    opt.param_groups[0]["amsgrad"] = True  # a non-float setting
    assert entry.check(flat) is None
    opt.param_groups[0]["amsgrad"] = saved

    opt.param_groups[0]["lr"] = "fast"  # a lifted float that is not a number
    assert entry.check(flat) is None
    opt.param_groups[0]["lr"] = 0.5  # a new float value: no retrace needed
    assert entry.check(flat) is not None

    state = opt.state[model[0].weight]
    exp_avg = state.pop("exp_avg")  # a missing optimizer state entry
    assert entry.check(flat) is None
    state["exp_avg"] = exp_avg

    grad, model[0].weight.grad = model[0].weight.grad, None  # a parameter without a gradient
    assert entry.check(flat) is None
    model[0].weight.grad = grad

    assert entry.check([x, lucid.randn(3, 2)]) is None  # a shape
    model.eval()  # a module attribute
    assert entry.check(flat) is None
    model.train()
    assert entry.check(flat) is not None  # everything restored: the entry runs again
