"""Containers, GroupNorm, AdaptiveAvgPool2d, Upsample, ConvTranspose2d, Dropout2d, the
recurrent layers and the transformer encoder, against NumPy references written from PyTorch's
documented formulas; and compiled training steps through an LSTM and a TransformerEncoder."""

from __future__ import annotations

import numpy as np
import pytest

import lucid
import lucid.nn as nn
import lucid.nn.functional as F

RNG = np.random.default_rng(0)


def _t(a):
    return lucid.tensor(np.asarray(a, np.float32))


def _sig(x):
    return 1 / (1 + np.exp(-x))


# ----------------------------------------------------------------------------- containers


def test_module_dict_and_parameter_containers_register_their_members():
    m = nn.Module()
    m.blocks = nn.ModuleDict({"a": nn.Linear(2, 3), "b": nn.Linear(3, 1)})
    m.scales = nn.ParameterList([lucid.ones(3), nn.Parameter(lucid.zeros(1))])
    m.extra = nn.ParameterDict({"w": lucid.randn(2)})
    names = [n for n, _ in m.named_parameters()]
    assert names == ["blocks.a.weight", "blocks.a.bias", "blocks.b.weight", "blocks.b.bias",
                     "scales.0", "scales.1", "extra.w"]
    assert isinstance(m.scales[0], nn.Parameter) and m.scales[0].requires_grad
    assert list(m.blocks) == ["a", "b"] and "a" in m.blocks and len(m.extra) == 1
    m.blocks["c"] = nn.ReLU()
    assert list(m.blocks.keys()) == ["a", "b", "c"]
    assert list(m.state_dict())[-1] == "extra.w"
    assert nn.Unflatten(1, (2, 3))(lucid.zeros(4, 6)).shape == (4, 2, 3)


# ----------------------------------------------------------------------------- layers


def test_group_norm_matches_numpy():
    x = RNG.standard_normal((2, 6, 3, 4)).astype(np.float32)
    gn = nn.GroupNorm(3, 6)
    with lucid.no_grad():
        gn.weight.copy_(_t(RNG.standard_normal(6)))
        gn.bias.copy_(_t(RNG.standard_normal(6)))
    g = x.reshape(2, 3, -1)
    ref = ((g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + 1e-5))
    ref = ref.reshape(x.shape) * gn.weight.numpy()[:, None, None] + gn.bias.numpy()[:, None, None]
    np.testing.assert_allclose(gn(_t(x)).numpy(), ref, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="divisible by num_groups"):
        nn.GroupNorm(4, 6)


@pytest.mark.parametrize("out", [(3, 4), (1, 1), (5, 2), (7, 9)])
def test_adaptive_avg_pool_bins(out):
    x = RNG.standard_normal((2, 3, 7, 9)).astype(np.float32)
    ref = np.zeros((2, 3) + out, np.float32)
    for i in range(out[0]):
        for j in range(out[1]):
            h0, h1 = (i * 7) // out[0], -(-((i + 1) * 7) // out[0])
            w0, w1 = (j * 9) // out[1], -(-((j + 1) * 9) // out[1])
            ref[..., i, j] = x[..., h0:h1, w0:w1].mean((-2, -1))
    np.testing.assert_allclose(nn.AdaptiveAvgPool2d(out)(_t(x)).numpy(), ref, rtol=1e-5,
                               atol=1e-6)


def test_upsample_nearest_and_bilinear():
    x = RNG.standard_normal((1, 2, 3, 4)).astype(np.float32)
    near = nn.Upsample(scale_factor=2)(_t(x)).numpy()
    np.testing.assert_array_equal(near, x.repeat(2, 2).repeat(2, 3))
    # align_corners=True on a linear ramp stays a linear ramp
    ramp = np.arange(4, dtype=np.float32)[None, None, None, :].repeat(3, 2)
    up = F.interpolate(_t(ramp), size=(3, 7), mode="bilinear", align_corners=True).numpy()
    np.testing.assert_allclose(up[0, 0, 0], np.linspace(0, 3, 7), rtol=1e-6)
    # align_corners=False: PyTorch's half-pixel centres, edges clamped
    up = F.interpolate(_t(ramp), scale_factor=2, mode="bilinear", align_corners=False).numpy()
    src = np.clip((np.arange(8) + 0.5) / 2 - 0.5, 0, 3)
    np.testing.assert_allclose(up[0, 0, 0], src, rtol=1e-6)
    with pytest.raises(ValueError, match="only one of size or scale_factor"):
        F.interpolate(_t(x), size=4, scale_factor=2)


def _ref_conv_transpose(x, w, stride, padding, out_pad, groups):
    n, cin, h, wd = x.shape
    _, cog, kh, kw = w.shape
    oh = (h - 1) * stride - 2 * padding + kh + out_pad
    ow = (wd - 1) * stride - 2 * padding + kw + out_pad
    full = np.zeros((n, cog * groups, oh + 2 * padding, ow + 2 * padding))
    cig = cin // groups
    for b in range(n):
        for ci in range(cin):
            g = ci // cig
            for i in range(h):
                for j in range(wd):
                    full[b, g * cog:(g + 1) * cog, i * stride:i * stride + kh,
                         j * stride:j * stride + kw] += x[b, ci, i, j] * w[ci]
    return full[:, :, padding:padding + oh, padding:padding + ow]


@pytest.mark.parametrize("stride, padding, out_pad, groups", [(1, 0, 0, 1), (2, 1, 1, 2)])
def test_conv_transpose2d_scatters_the_kernel(stride, padding, out_pad, groups):
    x = RNG.standard_normal((2, 4, 3, 5)).astype(np.float32)
    m = nn.ConvTranspose2d(4, 6, 3, stride=stride, padding=padding, output_padding=out_pad,
                           groups=groups, bias=False)
    ref = _ref_conv_transpose(x, m.weight.numpy(), stride, padding, out_pad, groups)
    np.testing.assert_allclose(m(_t(x)).numpy(), ref, rtol=1e-4, atol=1e-5)
    # the gradient of conv2d with respect to its input is the transposed convolution
    xs = _t(RNG.standard_normal((2, 6, *ref.shape[-2:]))).requires_grad_(True)
    y = F.conv2d(xs, m.weight.detach(), stride=stride, padding=padding, groups=groups)
    g = _t(RNG.standard_normal(y.shape))
    (y * g).sum().backward()
    tr = F.conv_transpose2d(g, m.weight.detach(), stride=stride, padding=padding,
                            output_padding=out_pad, groups=groups)
    np.testing.assert_allclose(tr.numpy(), xs.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_dropout2d_zeros_whole_channels():
    lucid.manual_seed(0)
    y = nn.Dropout2d(0.5)(lucid.ones(4, 16, 3, 3)).numpy()
    per_channel = y.reshape(4, 16, -1)
    assert set(np.unique(per_channel)) <= {0.0, 2.0}
    assert (per_channel.min(-1) == per_channel.max(-1)).all()
    d = nn.Dropout2d(0.5).eval()
    assert (d(lucid.ones(2, 3, 2, 2)).numpy() == 1).all()


# ----------------------------------------------------------------------------- recurrent


def _ref_lstm(x, h, c, w_ih, w_hh, b_ih, b_hh, reverse=False):
    out = [None] * len(x)
    for t in (range(len(x) - 1, -1, -1) if reverse else range(len(x))):
        gates = x[t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        i, f, g, o = np.split(gates, 4, -1)
        c = _sig(f) * c + _sig(i) * np.tanh(g)
        h = _sig(o) * np.tanh(c)
        out[t] = h
    return np.stack(out), h, c


def test_lstm_bidirectional_matches_the_equations():
    lstm = nn.LSTM(5, 4, bidirectional=True)
    x = RNG.standard_normal((6, 2, 5)).astype(np.float32)
    out, (h, c) = lstm(_t(x))
    p = {k: v.numpy() for k, v in lstm.state_dict().items()}
    z = np.zeros((2, 4), np.float32)
    fwd = _ref_lstm(x, z, z, p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"],
                    p["bias_hh_l0"])
    bwd = _ref_lstm(x, z, z, p["weight_ih_l0_reverse"], p["weight_hh_l0_reverse"],
                    p["bias_ih_l0_reverse"], p["bias_hh_l0_reverse"], reverse=True)
    np.testing.assert_allclose(out.numpy(), np.concatenate([fwd[0], bwd[0]], -1), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(h.numpy(), np.stack([fwd[1], bwd[1]]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c.numpy(), np.stack([fwd[2], bwd[2]]), rtol=1e-5, atol=1e-6)
    assert [n for n, _ in lstm.named_parameters()][:4] == [
        "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]


def test_gru_batch_first_and_cells_match_the_equations():
    gru = nn.GRU(3, 4, batch_first=True, num_layers=2)
    x = RNG.standard_normal((2, 5, 3)).astype(np.float32)
    out, h = gru(_t(x))
    p = {k: v.numpy() for k, v in gru.state_dict().items()}

    def ref_layer(seq, k):
        hs, h = [], np.zeros((seq.shape[1], 4), np.float32)
        for t in range(len(seq)):
            gi = seq[t] @ p[f"weight_ih_l{k}"].T + p[f"bias_ih_l{k}"]
            gh = h @ p[f"weight_hh_l{k}"].T + p[f"bias_hh_l{k}"]
            r = _sig(gi[:, :4] + gh[:, :4])
            zg = _sig(gi[:, 4:8] + gh[:, 4:8])
            n = np.tanh(gi[:, 8:] + r * gh[:, 8:])
            h = (1 - zg) * n + zg * h
            hs.append(h)
        return np.stack(hs), h

    l0, h0 = ref_layer(x.transpose(1, 0, 2), 0)
    l1, h1 = ref_layer(l0, 1)
    np.testing.assert_allclose(out.numpy(), l1.transpose(1, 0, 2), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h.numpy(), np.stack([h0, h1]), rtol=1e-5, atol=1e-6)
    cell = nn.GRUCell(3, 4)
    cell.load_state_dict({k.replace("_l0", ""): v for k, v in gru.state_dict().items()
                          if k.endswith("_l0")})
    np.testing.assert_allclose(cell(_t(x[:, 0])).numpy(), ref_layer(x[:, :1].transpose(
        1, 0, 2), 0)[1], rtol=1e-5, atol=1e-6)
    hc = nn.LSTMCell(3, 4)(_t(x[0, 0]))
    assert hc[0].shape == (4,) and hc[1].shape == (4,)


def test_rnn_errors():
    with pytest.raises(lucid.ShapeError, match="input.size\\(-1\\) must be equal to input_size"):
        nn.LSTM(3, 4)(lucid.zeros(2, 1, 5))
    with pytest.raises(ValueError, match="Unknown nonlinearity"):
        nn.RNN(3, 4, nonlinearity="gelu")


# ----------------------------------------------------------------------------- attention


def test_multihead_attention_matches_numpy_with_masks():
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    x = RNG.standard_normal((3, 5, 8)).astype(np.float32)
    pad = np.zeros((3, 5), bool)
    pad[0, 3:] = True
    causal = np.triu(np.ones((5, 5), bool), 1)
    out, w = mha(_t(x), _t(x), _t(x), key_padding_mask=lucid.tensor(pad),
                 attn_mask=lucid.tensor(causal))
    p = {k: v.numpy() for k, v in mha.state_dict().items()}
    qkv = x @ p["in_proj_weight"].T + p["in_proj_bias"]
    q, k, v = (a.reshape(3, 5, 2, 4).transpose(0, 2, 1, 3) for a in np.split(qkv, 3, -1))
    s = q @ k.transpose(0, 1, 3, 2) / 2.0
    s = np.where(causal | pad[:, None, None, :], -np.inf, s)
    a = np.exp(s - s.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    o = (a @ v).transpose(0, 2, 1, 3).reshape(3, 5, 8) @ p["out_proj.weight"].T
    np.testing.assert_allclose(out.numpy(), o + p["out_proj.bias"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(w.numpy(), a.mean(1), rtol=1e-4, atol=1e-6)


def test_transformer_encoder_layers_are_copies_with_their_own_parameters():
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0)
    enc = nn.TransformerEncoder(layer, 3)
    params = list(enc.parameters())
    assert len(params) == 3 * len(list(layer.parameters()))
    assert params[0] is not layer.self_attn.in_proj_weight
    np.testing.assert_array_equal(enc.layers[2].linear1.weight.numpy(),
                                  layer.linear1.weight.numpy())


# ----------------------------------------------------------------------------- compiled


def _causal(n: int):
    return lucid.ones(n, n).triu(1) > 0


@pytest.mark.parametrize("kind", ["lstm", "transformer"])
def test_a_compiled_training_step_matches_eager(kind):
    def make():
        lucid.manual_seed(7)
        if kind == "lstm":
            body = nn.LSTM(4, 6, batch_first=True)
            head = nn.Linear(6, 1)

            def fwd(x):
                return head(body(x)[0][:, -1])
            return nn.ModuleList([body, head]), fwd
        body = nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0,
                                                                batch_first=True), 2)
        head = nn.Linear(4, 1)

        def fwd(x):
            return head(body(x, is_causal=True, mask=_causal(x.shape[1])).mean(1))
        return nn.ModuleList([body, head]), fwd

    models = {}
    for k in "ec":
        model, fwd = make()
        # (SGD: the attention's key bias has a gradient of zero up to rounding, which Adam
        # would scale up to full steps in either direction)
        opt = lucid.optim.SGD(model.parameters(), lr=0.05)

        def step(x, y, fwd=fwd, opt=opt):
            opt.zero_grad()
            loss = ((fwd(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            return loss
        models[k] = (model, step)
    compiled = lucid.compile(models["c"][1], mode="sync")
    for _ in range(3):
        x, y = lucid.randn(3, 3, 4), lucid.randn(3, 1)
        np.testing.assert_allclose(compiled(x, y).item(), models["e"][1](x, y).item(),
                                   rtol=1e-4)
    for a, b in zip(models["e"][0].parameters(), models["c"][0].parameters(), strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-5)
