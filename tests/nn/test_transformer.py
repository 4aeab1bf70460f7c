"""TransformerDecoderLayer, TransformerDecoder and Transformer (nn/modules/transformer.py): one
decoder layer against a NumPy reference of PyTorch's formulas, the stacks' masks and layouts,
and a compiled training step against eager."""

from __future__ import annotations

import numpy as np
import pytest

import lucid
import lucid.nn as nn


def _np(t):
    return t.detach().numpy().astype(np.float64)


def _mha(m, q, kv, mask=None):
    """PyTorch's multi-head attention, (L, E) inputs, in NumPy."""
    e = q.shape[-1]
    h = m.num_heads
    w, b = _np(m.in_proj_weight), _np(m.in_proj_bias)
    qq, kk, vv = q @ w[:e].T + b[:e], kv @ w[e:2 * e].T + b[e:2 * e], kv @ w[2 * e:].T + b[2 * e:]
    d = e // h
    heads = []
    for i in range(h):
        s = qq[:, i * d:(i + 1) * d] @ kk[:, i * d:(i + 1) * d].T / np.sqrt(d)
        if mask is not None:
            s = s + mask
        p = np.exp(s - s.max(-1, keepdims=True))
        heads.append((p / p.sum(-1, keepdims=True)) @ vv[:, i * d:(i + 1) * d])
    return np.concatenate(heads, -1) @ _np(m.out_proj.weight).T + _np(m.out_proj.bias)


def _ln(m, x):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + m.eps) * _np(m.weight) + _np(m.bias)


def _lin(m, x):
    return x @ _np(m.weight).T + _np(m.bias)


def test_decoder_layer_matches_a_numpy_reference():
    lucid.manual_seed(0)
    layer = nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, dropout=0.0).eval()
    tgt, mem = lucid.randn(4, 1, 8), lucid.randn(6, 1, 8)
    mask = nn.Transformer.generate_square_subsequent_mask(4)
    out = layer(tgt, mem, tgt_mask=mask).numpy()[:, 0]
    x, m = _np(tgt)[:, 0], _np(mem)[:, 0]
    x = _ln(layer.norm1, x + _mha(layer.self_attn, x, x, mask.numpy()))
    x = _ln(layer.norm2, x + _mha(layer.multihead_attn, x, m))
    x = _ln(layer.norm3, x + _lin(layer.linear2, np.maximum(_lin(layer.linear1, x), 0)))
    np.testing.assert_allclose(out, x, rtol=1e-5, atol=1e-5)


def test_transformer_parameters_masks_and_errors():
    lucid.manual_seed(1)
    model = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=1,
                           dim_feedforward=16, dropout=0.0, batch_first=True).eval()
    names = dict(model.named_parameters())
    assert names["decoder.layers.0.multihead_attn.in_proj_weight"].shape == (24, 8)
    assert names["encoder.norm.weight"].shape == (8,) and "decoder.norm.bias" in names
    assert "encoder.layers.1.linear2.weight" in names and "encoder.layers.2.norm1.weight" \
        not in names
    mask = nn.Transformer.generate_square_subsequent_mask(5)
    assert np.array_equal(mask.numpy(), np.triu(np.full((5, 5), -np.inf, np.float32), 1))
    src, tgt = lucid.randn(2, 6, 8), lucid.randn(2, 5, 8)
    padded = lucid.tensor([[False] * 6, [False] * 4 + [True] * 2])
    out = model(src, tgt, tgt_mask=mask, src_key_padding_mask=padded,
                memory_key_padding_mask=padded).numpy()
    later = tgt.clone()
    later[:, 3:] = lucid.randn(2, 2, 8)
    src2 = src.clone()
    src2[1, 4:] = 100.0  # padded positions: never attended to
    out2 = model(src2, later, tgt_mask=mask, src_key_padding_mask=padded,
                 memory_key_padding_mask=padded).numpy()
    np.testing.assert_allclose(out2[:, :3], out[:, :3], rtol=1e-5, atol=1e-6)  # causal
    with pytest.raises(RuntimeError, match="batch number of src and tgt"):
        model(lucid.randn(3, 6, 8), tgt)


def test_compiled_transformer_matches_eager():
    lucid.manual_seed(2)
    model = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                           dim_feedforward=16, dropout=0.0, batch_first=True).eval()
    src, tgt = lucid.randn(3, 6, 8), lucid.randn(3, 4, 8)
    mask = nn.Transformer.generate_square_subsequent_mask(4)
    fast = lucid.compile(model, fullgraph=True)
    with lucid.no_grad():
        want = model(src, tgt, tgt_mask=mask).numpy()
        for _ in range(2):
            np.testing.assert_allclose(fast(src, tgt, tgt_mask=mask).numpy(), want, rtol=1e-5,
                                       atol=1e-6)
