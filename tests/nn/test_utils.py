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


def test_packing_lays_out_rows_time_step_by_time_step_longest_first():
    from lucid.nn.utils import rnn

    x = np.arange(24.0, dtype=np.float32).reshape(4, 3, 2)  # (T, B, 2)
    lengths = [2, 4, 1]
    packed = rnn.pack_padded_sequence(lucid.tensor(x), lengths, enforce_sorted=False)
    order = [1, 0, 2]  # by decreasing length
    rows = [x[t, b] for t in range(4) for b in order if lengths[b] > t]
    np.testing.assert_array_equal(packed.data.numpy(), np.stack(rows))
    assert packed.batch_sizes.tolist() == [3, 2, 1, 1]
    assert packed.sorted_indices.tolist() == order and packed.unsorted_indices.tolist() == [1, 0, 2]
    padded, got = rnn.pad_packed_sequence(packed, batch_first=True, padding_value=-1.0,
                                          total_length=5)
    assert got.tolist() == lengths and padded.shape == (3, 5, 2)
    want = np.full((3, 5, 2), -1.0, np.float32)
    for b, n in enumerate(lengths):
        want[b, :n] = x[:n, b]
    np.testing.assert_array_equal(padded.numpy(), want)
    seqs = [lucid.tensor(x[:n, b]) for b, n in enumerate(lengths)]
    back = rnn.unpack_sequence(rnn.pack_sequence(seqs, enforce_sorted=False))
    assert [s.tolist() for s in back] == [s.tolist() for s in seqs]
    with pytest.raises(RuntimeError, match="must be sorted in decreasing order"):
        rnn.pack_padded_sequence(lucid.tensor(x), lengths)


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_a_packed_batch_runs_each_sequence_as_if_alone(mode):
    from lucid.nn.utils import rnn

    lucid.manual_seed(0)
    layer = getattr(nn, mode)(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    lengths = [2, 5, 3]
    x = lucid.randn(3, 5, 3, requires_grad=True)
    packed = rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, state = layer(packed)
    h_n = state[0] if mode == "LSTM" else state
    padded, _ = rnn.pad_packed_sequence(out, batch_first=True)
    for b, n in enumerate(lengths):
        alone, alone_state = layer(x[b:b + 1, :n])
        alone_h = alone_state[0] if mode == "LSTM" else alone_state
        np.testing.assert_allclose(padded[b, :n].numpy(), alone[0].numpy(), rtol=1e-5,
                                   atol=1e-6)
        assert not padded[b, n:].numpy().any()
        np.testing.assert_allclose(h_n[:, b].numpy(), alone_h[:, 0].numpy(), rtol=1e-5,
                                   atol=1e-6)
    padded.sum().backward()
    grad = x.grad.numpy()
    for b, n in enumerate(lengths):  # padding never reaches the loss
        assert not grad[b, n:].any() and grad[b, :n].any()
