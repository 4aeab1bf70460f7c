"""The generated guard check: what it returns, and that every kind of guard can fail it."""

from __future__ import annotations

import numpy as np

import lucid
import lucid.nn as nn
import lucid.nn.functional as F  # noqa: N812
from lucid_jit.tracing.sources import SlotInput


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
        if isinstance(src, SlotInput):  # a lifted float: its current value as a 0-d float64 array
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


# ----------------------------------------------------------------------------- embedded values


def test_a_lifted_float_compared_with_inf_runs_and_guards():
    import math

    f = lucid.compile(lambda x, m: x * 2 if m < math.inf else x)
    x = lucid.ones(2)
    for m, expected in ((1.0, 2.0), (3.0, 2.0), (math.inf, 1.0), (5.0, 2.0)):
        assert f(x, m).tolist() == [expected, expected]
    assert len(f.entries) == 2  # `m < inf` true once, false once


def test_floats_pinned_at_inf_and_nan_reuse_their_entry():
    import math

    g = lucid.compile(lambda x, m: x * float(m))
    x = lucid.ones(2)
    for m in (math.inf, math.inf, math.nan, math.nan, -math.inf):
        out = g(x, m).numpy()
        np.testing.assert_array_equal(out, np.float32(m) * np.ones(2, np.float32))
    assert len(g.entries) == 3  # inf, nan and -inf: a second call with nan reuses its entry


_NAN = float("nan")


def test_a_global_nan_is_guarded_as_nan():
    f = lucid.compile(lambda x: x * _NAN)
    for _ in range(3):
        assert np.isnan(f(lucid.ones(2)).numpy()).all()
    assert len(f.entries) == 1


def test_enum_keys_and_values_in_param_groups():
    import enum

    class Tag(enum.Enum):
        A = 1

    model = nn.Linear(2, 1)
    opt = lucid.optim.SGD(model.parameters(), lr=0.1)
    opt.param_groups[0][Tag.A] = 0.5  # a float under an Enum key: lifted, read through the key
    opt.param_groups[0]["tag"] = Tag.A  # an Enum value: guarded by value

    @lucid.compile
    def step(x):
        opt.zero_grad()
        loss = model(x).sum()
        loss.backward()
        opt.step()
        return loss

    for _ in range(3):
        step(lucid.ones(3, 2))
    assert len(step.entries) == 2  # the second call sees a .grad
    opt.param_groups[0][Tag.A] = 0.25  # a lifted float: no retrace
    step(lucid.ones(3, 2))
    assert len(step.entries) == 2


def test_generated_source_spells_non_finite_constants():
    import math

    def f(x):
        return x * math.inf + lucid.tensor([1.0, math.nan])

    cf = lucid.compile(f)
    np.testing.assert_array_equal(cf(lucid.ones(2)).numpy(), [np.inf, np.nan])
    import ast

    names = {n.id for n in ast.walk(ast.parse(cf.source())) if isinstance(n, ast.Name)}
    assert not names & {"inf", "nan"}  # names Python does not define
