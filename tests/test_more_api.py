"""More of PyTorch's tensor API, layers and schedulers (lucid/methods.py, nn/modules/layers4.py,
nn/functional, optim/lr_scheduler.py): values against NumPy and PyTorch's documented formulas.
Gradients of the differentiable composites are in the OpInfo table (tests/opinfo.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lucid
import lucid.nn as nn
import lucid.nn.functional as F


def test_shapes_and_layout():
    a = np.arange(24.0, dtype=np.float32).reshape(2, 3, 4)
    x = lucid.tensor(a)
    np.testing.assert_array_equal(x.movedim(0, -1).numpy(), np.moveaxis(a, 0, -1))
    np.testing.assert_array_equal(x.moveaxis((0, 2), (2, 0)).numpy(),
                                  np.moveaxis(a, (0, 2), (2, 0)))
    np.testing.assert_array_equal(x.swapaxes(0, 2).numpy(), np.swapaxes(a, 0, 2))
    np.testing.assert_array_equal(x.tile((2,)).numpy(), np.tile(a, (2,)))
    np.testing.assert_array_equal(x.fliplr().numpy(), a[:, ::-1])
    np.testing.assert_array_equal(x.flipud().numpy(), a[::-1])
    assert x.stride() == (12, 4, 1) and x.transpose(0, 2).stride() == (1, 4, 12)
    assert x.stride(-1) == 1 and x.nbytes == 96 and x.itemsize == 4
    assert x.type_as(lucid.zeros(1, dtype=lucid.float64)).dtype == np.float64
    np.testing.assert_array_equal(x.take(lucid.tensor([[0, 23], [5, 7]])).numpy(),
                                  np.take(a, [[0, 23], [5, 7]]))
    with pytest.raises(RuntimeError, match="movedim: Invalid source or destination dims"):
        x.movedim((0, 1), 2)
    assert lucid.logspace(0, 2, 3).tolist() == [1.0, 10.0, 100.0]


def test_index_copy_fill_and_aminmax():
    a = np.zeros((4, 3), np.float32)
    x = lucid.tensor(a)
    src = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    out = x.index_copy(0, lucid.tensor([3, 1]), lucid.tensor(src)).numpy()
    ref = a.copy()
    ref[[3, 1]] = src
    np.testing.assert_array_equal(out, ref)
    filled = x.index_fill(1, lucid.tensor([0, 2]), -1.0).numpy()
    assert filled.tolist() == [[-1.0, 0.0, -1.0]] * 4
    y = lucid.tensor([[3.0, -1.0], [0.5, 7.0]])
    lo, hi = y.aminmax()
    assert lo.item() == -1.0 and hi.item() == 7.0
    assert y.aminmax(dim=1).max.tolist() == [3.0, 7.0]
    z = lucid.zeros(3)
    z.index_add_(0, lucid.tensor([0, 0, 2]), lucid.ones(3))
    assert z.tolist() == [2.0, 0.0, 1.0]


def test_division_modes_and_pointwise_spellings():
    a, b = lucid.tensor([7, -7, 7, -7]), lucid.tensor([2, 2, -2, -2])
    assert lucid.div(a, b, rounding_mode="trunc").tolist() == [3, -3, -3, 3]
    assert a.div(b, rounding_mode="floor").tolist() == [3, -4, -4, 3]
    assert lucid.div(lucid.tensor([7.0, -7.0]), 2.0, rounding_mode="trunc").tolist() == [3, -3]
    assert lucid.true_divide(a, b).tolist() == [3.5, -3.5, -3.5, 3.5]
    with pytest.raises(RuntimeError, match="rounding_mode"):
        a.div(b, rounding_mode="round")
    x = lucid.tensor([-0.0, 0.0, -2.0, 3.0])
    assert x.signbit().tolist() == [True, False, True, False]
    assert x.sgn().tolist() == [0.0, 0.0, -1.0, 1.0] and x.positive() is x
    assert x.greater(0).tolist() == [False, False, False, True]
    assert x.not_equal(0).tolist() == [False, False, True, True]
    np.testing.assert_allclose(lucid.tensor([180.0]).deg2rad().item(), math.pi, rtol=1e-7)
    v = lucid.tensor([np.nan, np.inf, -np.inf, 1.0])
    assert v.nan_to_num().tolist() == [0.0, float(np.finfo(np.float32).max),
                                       float(np.finfo(np.float32).min), 1.0]
    assert v.nan_to_num(nan=2.0, posinf=9.0, neginf=-9.0).tolist() == [2.0, 9.0, -9.0, 1.0]
    w = lucid.tensor([[np.nan, 1.0], [2.0, 4.0]])
    assert w.nansum().item() == 7.0 and w.nanmean(1).tolist() == [1.0, 3.0]
    assert lucid.xlogy(lucid.tensor([0.0]), lucid.tensor([0.0])).item() == 0.0
    assert lucid.logaddexp(lucid.tensor([-np.inf]), lucid.tensor([-np.inf])).item() == -np.inf


def test_exponential_draws_have_the_right_mean():
    lucid.manual_seed(0)
    x = lucid.empty(20000).exponential_(2.0)
    assert x.min().item() >= 0 and abs(x.mean().item() - 0.5) < 0.02


def test_gumbel_softmax_samples():
    lucid.manual_seed(1)
    logits = lucid.tensor([[0.0, 2.0, -1.0]] * 2000, requires_grad=True)
    soft = F.gumbel_softmax(logits, tau=0.5)
    np.testing.assert_allclose(soft.sum(-1).numpy(), 1.0, rtol=1e-5)
    hard = F.gumbel_softmax(logits, hard=True)
    assert set(hard.sum(-1).tolist()) == {1.0} and set(hard.detach().numpy().ravel()) <= {0, 1}
    freq = hard.detach().numpy().mean(0)  # Gumbel-max draws follow softmax(logits)
    p = np.exp([0.0, 2.0, -1.0]) / np.exp([0.0, 2.0, -1.0]).sum()
    np.testing.assert_allclose(freq, p, atol=0.03)
    (hard * lucid.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert logits.grad is not None and np.isfinite(logits.grad.numpy()).all()


def test_layers():
    lucid.manual_seed(0)
    table = lucid.randn(5, 3)
    emb = nn.Embedding.from_pretrained(table)
    assert not emb.weight.requires_grad and emb.weight is not table
    np.testing.assert_array_equal(emb(lucid.tensor([4, 0])).numpy(), table.numpy()[[4, 0]])
    assert nn.Embedding.from_pretrained(table, freeze=False).weight.requires_grad
    x = lucid.randn(2, 3, 4)
    norm = nn.RMSNorm(4)
    ref = x.numpy() / np.sqrt((x.numpy() ** 2).mean(-1, keepdims=True)
                              + np.finfo(np.float32).eps)
    np.testing.assert_allclose(norm(x).numpy(), ref, rtol=1e-5)
    assert repr(norm) == "RMSNorm((4,), eps=None, elementwise_affine=True)"
    img = lucid.randn(2, 8, 3, 5)
    up = nn.PixelShuffle(2)(img)
    assert up.shape == (2, 2, 6, 10)
    np.testing.assert_array_equal(nn.PixelUnshuffle(2)(up).numpy(), img.numpy())
    seq = lucid.randn(2, 3, 7)
    pooled = nn.AdaptiveAvgPool1d(3)(seq).numpy()
    bins = [(0, 3), (2, 5), (4, 7)]
    np.testing.assert_allclose(pooled, np.stack([seq.numpy()[..., a:b].mean(-1)
                                                 for a, b in bins], -1), rtol=1e-5, atol=1e-6)
    grid = lucid.randn(1, 2, 6, 4)
    np.testing.assert_array_equal(nn.AdaptiveMaxPool2d((3, 2))(grid).numpy(),
                                  F.max_pool2d(grid, (2, 2), (2, 2)).numpy())
    assert nn.AdaptiveMaxPool2d(1)(grid).shape == (1, 2, 1, 1)


def _lrs(make, steps=25, fractional=False):
    p = lucid.zeros(1, requires_grad=True)
    opt = lucid.optim.SGD([p], lr=0.1, momentum=0.9)
    sched = make(opt)
    out = [(opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"])]
    for i in range(1, steps):
        opt.step()
        sched.step(i * 0.5) if fractional else sched.step()
        out.append((opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"]))
    return np.array(out)


def test_warm_restarts_follow_sgdr():
    got = _lrs(lambda o: lucid.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, 3, 2, 0.01))
    t_cur, t_i, want = 0, 3, []
    for _ in range(25):  # restarts after 3, then 6, then 12 steps
        want.append(0.01 + 0.09 * (1 + math.cos(math.pi * t_cur / t_i)) / 2)
        t_cur += 1
        if t_cur == t_i:
            t_cur, t_i = 0, t_i * 2
    np.testing.assert_allclose(got[:, 0], want, rtol=1e-12)
    half = _lrs(lambda o: lucid.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, 4),
                fractional=True)
    np.testing.assert_allclose(half[1:, 0], [0.05 * (1 + math.cos(math.pi * (i * 0.5 % 4) / 4))
                                             for i in range(1, 25)], rtol=1e-12)


def test_polynomial_and_cyclic_schedules():
    got = _lrs(lambda o: lucid.optim.lr_scheduler.PolynomialLR(o, total_iters=8, power=2.0))
    np.testing.assert_allclose(got[:, 0], [0.1 * (1 - min(t, 8) / 8) ** 2 for t in range(25)],
                               rtol=1e-12, atol=1e-15)
    got = _lrs(lambda o: lucid.optim.lr_scheduler.CyclicLR(o, 0.01, 0.1, step_size_up=4,
                                                           step_size_down=6,
                                                           mode="triangular2"))
    want_lr, want_m = [], []
    for t in range(25):
        cycle = 1 + t // 10
        x = (t % 10) / 10
        f = x / 0.4 if x <= 0.4 else (x - 1) / (0.4 - 1)
        scale = 1 / 2 ** (cycle - 1)
        want_lr.append(0.01 + 0.09 * f * scale)
        want_m.append(0.9 - 0.1 * f * scale)
    np.testing.assert_allclose(got[:, 0], want_lr, rtol=1e-12)
    np.testing.assert_allclose(got[:, 1], want_m, rtol=1e-12)


def test_eager_math_gives_ieee_results_without_warnings():
    # In a fresh process (pytest's own warning capture would hide the import-time filter).
    import subprocess
    import sys

    code = ("import math, lucid; x = lucid.tensor([-1.0, 0.0, 1e30]); "
            "print(math.isnan(x.log()[0].item()), x.log()[1].item(), "
            "x.reciprocal()[1].item(), math.isnan((x / 0.0)[1].item()), "
            "math.isnan(x.sqrt()[0].item()), x.exp()[2].item())")
    done = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr
    assert done.stdout.split() == ["True", "-inf", "inf", "True", "True", "inf"]


def test_windows_rotations_and_order_statistics_against_numpy():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 7))
    x = lucid.tensor(a)
    win = np.lib.stride_tricks.sliding_window_view(a, 3, axis=1)[:, ::2]
    np.testing.assert_array_equal(x.unfold(1, 3, 2).numpy(), win)
    for k in (1, 2, 3, -1):
        np.testing.assert_array_equal(x.rot90(k).numpy(), np.rot90(a, k))
    np.testing.assert_allclose(x.sum_to_size(1, 7).numpy(), a.sum(0, keepdims=True))
    np.testing.assert_allclose(x.logcumsumexp(1).numpy(),
                               np.logaddexp.accumulate(a, axis=1), rtol=1e-12)
    np.testing.assert_array_equal(x.kthvalue(3, 1).values.numpy(), np.sort(a, 1)[:, 2])
    q = [0.1, 0.5, 0.95]
    for method in ("linear", "lower", "higher", "midpoint", "nearest"):
        np.testing.assert_allclose(
            lucid.quantile(x, lucid.tensor(q, dtype=lucid.float64), dim=1,
                           interpolation=method).numpy(),
            np.quantile(a, q, axis=1, method=method), rtol=1e-12, err_msg=method)
    assert lucid.quantile(x, 0.5).item() == pytest.approx(np.median(a))
    np.testing.assert_array_equal(x.mT.numpy(), a.T)
    assert np.array_equal(x.H.numpy(), a.T)


def test_more_pointwise_functions_against_numpy():
    a = np.array([np.nan, 1.0, -2.0, 0.0])
    b = np.array([3.0, np.nan, -1.0, -0.0])
    np.testing.assert_array_equal(lucid.fmax(lucid.tensor(a), lucid.tensor(b)).numpy(),
                                  np.fmax(a, b))
    np.testing.assert_array_equal(lucid.fmin(lucid.tensor(a), lucid.tensor(b)).numpy(),
                                  np.fmin(a, b))
    x = np.array([-1.5, 0.0, 0.25, 2.0])
    np.testing.assert_allclose(lucid.sinc(lucid.tensor(x)).numpy(), np.sinc(x), rtol=1e-12)
    np.testing.assert_array_equal(lucid.heaviside(lucid.tensor(x), lucid.tensor(0.5)).numpy(),
                                  np.heaviside(x, 0.5))
    assert lucid.tensor([2, 3]).float_power(2).dtype == np.float64
    from scipy import special

    np.testing.assert_allclose(lucid.special.entr(lucid.tensor(x)).numpy(), special.entr(x))
    np.testing.assert_allclose(lucid.special.ndtr(lucid.tensor(x)).numpy(), special.ndtr(x),
                               rtol=1e-7)
    np.testing.assert_allclose(lucid.special.xlog1py(lucid.tensor(x), lucid.tensor(x)).numpy(),
                               special.xlog1py(x, x), rtol=1e-12)
    np.testing.assert_allclose(lucid.special.expit(lucid.tensor(x)).numpy(), special.expit(x),
                               rtol=1e-7)
    blocks = lucid.block_diag(lucid.eye(2), lucid.tensor([[5.0, 6.0, 7.0]]), lucid.tensor(3.0))
    want = np.zeros((4, 6), np.float32)
    want[:2, :2] = np.eye(2)
    want[2, 2:5] = [5, 6, 7]
    want[3, 5] = 3
    np.testing.assert_array_equal(blocks.numpy(), want)
