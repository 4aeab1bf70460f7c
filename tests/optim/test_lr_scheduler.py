"""optim.lr_scheduler: each scheduler's rates against its closed form (PyTorch's documented
formulas, computed here independently), state dicts, errors, and a compiled step whose
learning rate and momentum a scheduler changes every step without a retrace."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lucid
import lucid.nn as nn
from lucid.optim import SGD, Adam
from lucid.optim import lr_scheduler as S


def _opt(kind="sgd", lr=0.1):
    p = [nn.Parameter(lucid.zeros(2))]
    return SGD(p, lr=lr, momentum=0.9) if kind == "sgd" else Adam(p, lr=lr)


def _rates(sched, opt, steps, metric=None):
    out = [opt.param_groups[0]["lr"]]
    for i in range(steps):
        opt.step()
        sched.step() if metric is None else sched.step(metric(i))
        out.append(opt.param_groups[0]["lr"])
    return out


CLOSED = {
    "StepLR": (lambda o: S.StepLR(o, 3, 0.5), lambda t: 0.1 * 0.5 ** (t // 3)),
    "MultiStepLR": (lambda o: S.MultiStepLR(o, [2, 5, 5]),
                    lambda t: 0.1 * 0.1 ** ((t >= 2) + 2 * (t >= 5))),
    "ExponentialLR": (lambda o: S.ExponentialLR(o, 0.9), lambda t: 0.1 * 0.9 ** t),
    "CosineAnnealingLR": (lambda o: S.CosineAnnealingLR(o, 7, 0.01),
                          lambda t: 0.01 + 0.09 * (1 + math.cos(math.pi * t / 7)) / 2),
    "LambdaLR": (lambda o: S.LambdaLR(o, lambda e: 1 / (1 + e)), lambda t: 0.1 / (1 + t)),
    "MultiplicativeLR": (lambda o: S.MultiplicativeLR(o, lambda e: 0.95),
                         lambda t: 0.1 * 0.95 ** t),
    "ConstantLR": (lambda o: S.ConstantLR(o, 0.5, 4), lambda t: 0.05 if t < 4 else 0.1),
    "LinearLR": (lambda o: S.LinearLR(o, 0.2, 1.0, 6),
                 lambda t: 0.1 * (0.2 + 0.8 * min(t, 6) / 6)),
}


@pytest.mark.parametrize("name", sorted(CLOSED))
def test_rates_follow_the_closed_form(name):
    make, closed = CLOSED[name]
    opt = _opt()
    rates = _rates(make(opt), opt, 7 if name == "CosineAnnealingLR" else 12)
    np.testing.assert_allclose(rates, [closed(t) for t in range(len(rates))], rtol=1e-12)


def test_one_cycle_rates_and_momentum():
    for kind, key in (("sgd", "momentum"), ("adam", "betas")):
        opt = _opt(kind)
        sched = S.OneCycleLR(opt, max_lr=1.0, total_steps=20, pct_start=0.25)
        lrs, moms = [], []
        for _ in range(19):
            g = opt.param_groups[0]
            lrs.append(g["lr"])
            moms.append(g[key] if kind == "sgd" else g[key][0])
            opt.step()
            sched.step()
        up, total = 0.25 * 20 - 1, 19

        def cos(a, b, pct):
            return b + (a - b) / 2 * (math.cos(math.pi * pct) + 1)

        want = [cos(0.04, 1.0, t / up) if t <= up else cos(1.0, 0.04 / 1e4, (t - up) / (total - up))
                for t in range(19)]
        np.testing.assert_allclose(lrs, want, rtol=1e-12)
        assert moms[0] == pytest.approx(0.95) and min(moms) == pytest.approx(0.85, abs=1e-3)
    with pytest.raises(ValueError, match="Tried to step 3 times"):
        opt = _opt()
        sched = S.OneCycleLR(opt, max_lr=1.0, total_steps=2)
        for _ in range(3):
            sched.step()


def test_sequential_lr_hands_over_at_the_milestone():
    opt = _opt()
    sched = S.SequentialLR(opt, [S.ConstantLR(opt, 0.1, 100), S.ExponentialLR(opt, 0.5)], [3])
    np.testing.assert_allclose(_rates(sched, opt, 6), [0.01, 0.01, 0.01, 0.1, 0.05, 0.025,
                                                       0.0125], rtol=1e-12)
    with pytest.raises(ValueError, match="one more than the number of milestone points"):
        S.SequentialLR(opt, [S.StepLR(opt, 2)], [3])


def test_reduce_on_plateau_waits_patience_then_cooldown():
    opt = _opt()
    sched = S.ReduceLROnPlateau(opt, patience=2, cooldown=1, factor=0.5, min_lr=0.02)
    rates = _rates(sched, opt, 12, metric=lambda i: 1.0 if i < 2 else 2.0)
    # steps 1-3 are bad (step 1 ties the best: not better by the threshold): the third
    # reduces; a cooldown step; three bad ones again; and again, down to min_lr
    assert rates == [0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.025,
                     0.02]
    with pytest.raises(ValueError, match="Factor should be < 1.0."):
        S.ReduceLROnPlateau(opt, factor=1.0)


def test_state_dict_round_trip_resumes_the_schedule():
    opt = _opt()
    sched = S.CosineAnnealingLR(opt, 10)
    _rates(sched, opt, 4)
    state = sched.state_dict()
    assert "optimizer" not in state
    opt2 = _opt()
    opt2.load_state_dict(opt.state_dict())
    sched2 = S.CosineAnnealingLR(opt2, 10)
    sched2.load_state_dict(state)
    np.testing.assert_allclose(_rates(sched2, opt2, 3), _rates(sched, opt, 3), rtol=1e-12)
    with pytest.raises(KeyError, match="initial_lr"):
        S.StepLR(_opt(), 2, last_epoch=4)


def test_a_scheduled_compiled_step_never_retraces():
    lucid.manual_seed(0)
    models = {k: nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 1)) for k in "ec"}
    models["c"].load_state_dict(models["e"].state_dict())
    opts = {k: SGD(m.parameters(), lr=0.05, momentum=0.9) for k, m in models.items()}
    scheds = {k: S.OneCycleLR(o, max_lr=0.2, total_steps=40) for k, o in opts.items()}

    def step_of(k):
        def step(x, y):
            opts[k].zero_grad()
            loss = ((models[k](x) - y) ** 2).mean()
            loss.backward()
            opts[k].step()
            return loss
        return step

    eager, compiled = step_of("e"), lucid.compile(step_of("c"), mode="sync")
    for _ in range(12):
        x, y = lucid.randn(4, 3), lucid.randn(4, 1)
        np.testing.assert_allclose(compiled(x, y).item(), eager(x, y).item(), rtol=1e-5)
        for s in scheds.values():
            s.step()
    # one entry before the optimizer's state exists, one after: no retrace for new rates
    assert len(compiled.entries) == 2, compiled.recompiles
