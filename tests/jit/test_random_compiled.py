"""Random draws inside compiled functions run as Philox kernels (no host op) and give eager's
numbers for a seed: uniform and normal in both float dtypes, randint, dropout's masks; sizes
that fill whole counter blocks and ones that end part-way through one; several draws in one
graph, whatever order their results are used in; on the Python tier and the native one."""

from __future__ import annotations

import numpy as np
import pytest

import lucid
import lucid.nn.functional as F  # noqa: N812
from lucid_jit.codegen.cpu.backend import Program


def _draws(x):
    a = lucid.rand(5, 3)  # 15 float32: three whole blocks and three elements of a fourth
    b = lucid.randn(7, dtype=lucid.float64)
    c = F.dropout(x, 0.3)
    d = lucid.randint(-2, 9, (3, 3))
    e = lucid.randn(2, 4)
    f = lucid.rand(3, dtype=lucid.float64) * 2.0 - 1.0
    return e + 1.0, a, b, c, d, f  # (e is drawn last but used first)


def _host_nodes(compiled):
    return [name for entry in compiled.entries
            for name in entry.backend.program(entry.forward).emitted.host_nodes]


def _check(compiled, fn, x, seeds):
    for seed in seeds:
        lucid.manual_seed(seed)
        want = fn(x)
        after = lucid.get_rng_state().numpy()
        lucid.manual_seed(seed)
        got = compiled(x)
        # the generator moved on exactly as eagerly
        np.testing.assert_array_equal(lucid.get_rng_state().numpy(), after)
        for k, (w, g) in enumerate(zip(want, got, strict=True)):
            assert g.dtype == w.dtype and g.shape == w.shape, k
            if w.dtype.kind == "f" and k in (0, 2):  # normals: log, cos, sin (libm's)
                np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-12, atol=1e-12)
            else:
                np.testing.assert_array_equal(g.numpy(), w.numpy(), err_msg=str(k))


@pytest.mark.parametrize("tier", ["python", "native"])
def test_compiled_draws_are_eagers(tier, monkeypatch):
    monkeypatch.setattr(Program, "NATIVE_AFTER", 1 << 30 if tier == "python" else 1)
    if tier == "python":  # (a worker that ran the native case has the code on disk)
        from lucid_jit.codegen import loader

        monkeypatch.setattr(loader, "native_cached", lambda text: False)
    x = lucid.randn(4, 6)
    compiled = lucid.compile(_draws)
    _check(compiled, _draws, x, seeds=[0, 1, 2])
    assert _host_nodes(compiled) == []
    entry = compiled.entries[0]
    assert entry.backend.program(entry.forward).tier == tier
    # unseeded calls draw fresh numbers every time
    assert not np.array_equal(compiled(x)[1].numpy(), compiled(x)[1].numpy())


def test_large_draws_match_eager(monkeypatch):
    """Sizes past the parallel-loop threshold (normals loop in parallel)."""
    monkeypatch.setattr(Program, "NATIVE_AFTER", 1 << 30)

    def big(x):
        return lucid.randn(x.shape[0], 999) + x, lucid.rand(x.shape[0], 1001) * x

    x = lucid.randn(300, 1)
    compiled = lucid.compile(big)
    for seed in (5, 6):
        lucid.manual_seed(seed)
        want = big(x)
        lucid.manual_seed(seed)
        got = compiled(x)
        np.testing.assert_allclose(got[0].numpy(), want[0].numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(got[1].numpy(), want[1].numpy())
    assert _host_nodes(compiled) == []


def test_dropout_training_step_masks_match_eager(monkeypatch):
    """Dropout inside a compiled training step: the same masks as eager for a seed, so the
    losses and gradients agree, and the step is one native segment."""
    monkeypatch.setattr(Program, "NATIVE_AFTER", 1 << 30)
    lucid.manual_seed(0)
    w = lucid.randn(6, 5, requires_grad=True)

    def step(x):
        h = F.dropout(x @ w, 0.5)
        loss = (h * h).mean()
        loss.backward()
        return loss

    compiled = lucid.compile(step)
    x = lucid.randn(8, 6)
    for seed in (10, 11):
        w.grad = None
        lucid.manual_seed(seed)
        want = step(x).item()
        g_want = w.grad.numpy().copy()
        w.grad = None
        lucid.manual_seed(seed)
        got = compiled(x).item()
        np.testing.assert_allclose(got, want, rtol=1e-6)
        np.testing.assert_allclose(w.grad.numpy(), g_want, rtol=1e-5, atol=1e-7)
    assert _host_nodes(compiled) == []
