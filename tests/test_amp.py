"""lucid.amp: autocast changes nothing, GradScaler scales, unscales, skips non-finite steps and
moves its scale as PyTorch's documents; low-precision conversions are clear errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import lucid
import lucid.nn as nn


def _setup():
    lucid.manual_seed(0)
    model = nn.Linear(3, 2)
    return model, lucid.optim.SGD(model.parameters(), lr=0.1), lucid.randn(4, 3)


def test_autocast_blocks_run_unchanged():
    model, _, x = _setup()
    want = model(x).numpy()
    with lucid.autocast(device_type="cuda", dtype=lucid.float16):
        got = model(x)
    assert got.dtype == np.float32 and np.array_equal(got.numpy(), want)

    @lucid.amp.autocast("cpu", dtype=lucid.bfloat16)
    def run(x):
        return model(x)
    assert np.array_equal(run(x).numpy(), want)
    with pytest.raises(RuntimeError, match="unsupported autocast device_type"):
        lucid.autocast(device_type="tpu")


def test_grad_scaler_matches_an_unscaled_step_and_moves_its_scale():
    model, opt, x = _setup()
    ref = nn.Linear(3, 2)
    ref.load_state_dict(model.state_dict())
    ref_opt = lucid.optim.SGD(ref.parameters(), lr=0.1)
    scaler = lucid.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=2)
    for _ in range(2):
        opt.zero_grad()
        scaler.scale(model(x).square().mean()).backward()
        assert abs(model.weight.grad.abs().max().item()) > 10  # scaled by 1024
        scaler.step(opt)
        scaler.update()
        ref_opt.zero_grad()
        ref(x).square().mean().backward()
        ref_opt.step()
    for a, b in zip(model.parameters(), ref.parameters(), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)  # scale by 2**k is exact
    assert scaler.get_scale() == 2048.0  # grown after growth_interval good steps
    before = model.weight.numpy().copy()
    opt.zero_grad()
    scaler.scale(model(x * float("inf")).sum()).backward()
    scaler.step(opt)  # skipped: the gradients hold inf or nan
    scaler.update()
    assert np.array_equal(model.weight.numpy(), before) and scaler.get_scale() == 1024.0
    state = scaler.state_dict()
    other = lucid.amp.GradScaler("cpu")
    other.load_state_dict(state)
    assert other.get_scale() == 1024.0


@pytest.mark.skipif(lucid.cuda.is_available(), reason="a CUDA device is there")
def test_a_cuda_scaler_without_cuda_passes_through():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scaler = lucid.cuda.amp.GradScaler()
    assert not scaler.is_enabled() and any("Disabling" in str(w.message) for w in caught)
    model, opt, x = _setup()
    loss = model(x).sum()
    assert scaler.scale(loss) is loss and scaler.get_scale() == 1.0


def test_low_precision_conversions_are_clear_errors():
    with pytest.raises(TypeError, match="no float16 or bfloat16 arithmetic"):
        lucid.ones(2).half()
    with pytest.raises(TypeError, match="Linear.half\\(\\): lucid computes in float32"):
        nn.Linear(2, 2).half()
