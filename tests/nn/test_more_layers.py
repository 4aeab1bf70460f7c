"""Activations, losses, 1-d layers, padding, InstanceNorm2d, Bilinear, pad_sequence, the extra
initializers and module hooks, against NumPy formulas (PyTorch's documented definitions)."""

from __future__ import annotations

import numpy as np
import pytest

import lucid
import lucid.nn as nn

RNG = np.random.default_rng(0)
X = RNG.standard_normal((4, 6)).astype(np.float32) * 2


def _t(a):
    return lucid.tensor(np.asarray(a, np.float32))


def _sig(x):
    return 1 / (1 + np.exp(-x))


ACTIVATIONS = {
    "LogSigmoid": (nn.LogSigmoid(), lambda x: np.log(_sig(x))),
    "Hardsigmoid": (nn.Hardsigmoid(), lambda x: np.clip(x + 3, 0, 6) / 6),
    "Hardswish": (nn.Hardswish(), lambda x: x * np.clip(x + 3, 0, 6) / 6),
    "SELU": (nn.SELU(), lambda x: 1.0507009873554805 * np.where(
        x > 0, x, 1.6732632423543772 * (np.exp(x) - 1))),
    "CELU": (nn.CELU(0.5), lambda x: np.maximum(x, 0) + np.minimum(0, 0.5 * (np.exp(x / 0.5)
                                                                           - 1))),
    "GLU": (nn.GLU(), lambda x: x[:, :3] * _sig(x[:, 3:])),
    "Softsign": (nn.Softsign(), lambda x: x / (1 + np.abs(x))),
    "Tanhshrink": (nn.Tanhshrink(), lambda x: x - np.tanh(x)),
    "Threshold": (nn.Threshold(0.5, -1.0), lambda x: np.where(x > 0.5, x, -1.0)),
    "ReLU6": (nn.ReLU6(), lambda x: np.clip(x, 0, 6)),
    "Mish": (nn.Mish(), lambda x: x * np.tanh(np.log1p(np.exp(x)))),
    "PReLU": (nn.PReLU(), lambda x: np.where(x > 0, x, 0.25 * x)),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_modules(name):
    module, ref = ACTIVATIONS[name]
    np.testing.assert_allclose(module(_t(X)).numpy(), ref(X.astype(np.float64)), rtol=1e-5,
                               atol=1e-6)


def test_losses():
    a, b, c = (RNG.standard_normal((5, 4)) for _ in range(3))
    t = np.sign(RNG.standard_normal(5))
    got = nn.MarginRankingLoss(0.3)(_t(a[:, 0]), _t(b[:, 0]), _t(t)).item()
    assert got == pytest.approx(np.maximum(0, -t * (a[:, 0] - b[:, 0]) + 0.3).mean(), rel=1e-5)
    cos = (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))
    got = nn.CosineEmbeddingLoss(0.2)(_t(a), _t(b), _t(t)).item()
    assert got == pytest.approx(np.where(t > 0, 1 - cos, np.maximum(0, cos - 0.2)).mean(),
                                rel=1e-5)
    d = lambda u, v: np.sqrt(((u - v + 1e-6) ** 2).sum(1))  # noqa: E731
    got = nn.TripletMarginLoss()(_t(a), _t(b), _t(c)).item()
    assert got == pytest.approx(np.maximum(d(a, b) - d(a, c) + 1, 0).mean(), rel=1e-5)
    v = np.abs(c) + 0.1
    got = nn.GaussianNLLLoss()(_t(a), _t(b), _t(v)).item()
    assert got == pytest.approx((0.5 * (np.log(v) + (a - b) ** 2 / v)).mean(), rel=1e-5)
    k = np.abs(np.round(b * 3))
    got = nn.PoissonNLLLoss()(_t(a), _t(k)).item()
    assert got == pytest.approx((np.exp(a) - k * a).mean(), rel=1e-5)


def test_one_dimensional_layers():
    x = RNG.standard_normal((2, 3, 11)).astype(np.float32)
    conv = nn.Conv1d(3, 4, 3, stride=2, padding=1)
    w, bias = conv.weight.numpy(), conv.bias.numpy()
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1)))
    ref = np.stack([np.einsum("nck,ock->no", xp[:, :, 2 * i:2 * i + 3], w)
                    for i in range(6)], -1) + bias[None, :, None]
    np.testing.assert_allclose(conv(_t(x)).numpy(), ref, rtol=1e-5, atol=1e-5)
    assert conv(_t(x[0])).shape == (4, 6) and conv.weight.shape == (4, 3, 3)
    np.testing.assert_array_equal(nn.MaxPool1d(2)(_t(x)).numpy(),
                                  x[..., :10].reshape(2, 3, 5, 2).max(-1))
    np.testing.assert_allclose(nn.AvgPool1d(2)(_t(x)).numpy(),
                               x[..., :10].reshape(2, 3, 5, 2).mean(-1), rtol=1e-6)


def test_padding_instance_norm_and_bilinear():
    x = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(nn.ZeroPad2d((1, 2, 0, 1))(_t(x)).numpy(),
                                  np.pad(x, ((0, 0), (0, 0), (0, 1), (1, 2))))
    np.testing.assert_array_equal(nn.ConstantPad2d(1, 3.0)(_t(x)).numpy(),
                                  np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)),
                                         constant_values=3.0))
    m, s = x.mean((2, 3), keepdims=True), x.std((2, 3), keepdims=True)
    np.testing.assert_allclose(nn.InstanceNorm2d(3)(_t(x)).numpy(),
                               (x - m) / np.sqrt(s ** 2 + 1e-5), rtol=1e-4, atol=1e-5)
    bl = nn.Bilinear(3, 4, 2)
    x1, x2 = RNG.standard_normal((5, 3)), RNG.standard_normal((5, 4))
    ref = np.einsum("ni,oij,nj->no", x1, bl.weight.numpy(), x2) + bl.bias.numpy()
    np.testing.assert_allclose(bl(_t(x1), _t(x2)).numpy(), ref, rtol=1e-5, atol=1e-5)


def test_pad_sequence_and_initializers():
    from lucid.nn.utils.rnn import pad_sequence

    seqs = [_t(np.ones((2, 3))), _t(2 * np.ones((4, 3)))]
    out = pad_sequence(seqs, padding_value=-1.0)
    assert out.shape == (4, 2, 3) and out.numpy()[2:, 0].tolist() == [[-1.0] * 3] * 2
    left = pad_sequence(seqs, batch_first=True, padding_side="left")
    assert left.numpy()[0, :2].tolist() == [[0.0] * 3] * 2
    t = lucid.empty(4000)
    nn.init.trunc_normal_(t, std=1.0, a=-1.0, b=1.0)
    v = t.numpy()
    assert v.min() >= -1 and v.max() <= 1 and abs(v.mean()) < 0.05
    q = lucid.empty(3, 7)
    nn.init.orthogonal_(q)
    np.testing.assert_allclose(q.numpy() @ q.numpy().T, np.eye(3), atol=1e-5)


def test_forward_hooks_and_submodules():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    seen = []
    handle = model[0].register_forward_hook(lambda m, args, out: seen.append(out.shape))
    pre = model[2].register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    out = model(lucid.ones(4, 2))
    assert seen == [(4, 3)]
    np.testing.assert_allclose(out.numpy(), np.broadcast_to(model[2].bias.numpy(), (4, 1)))
    handle.remove()
    pre.remove()
    model(lucid.ones(1, 2))
    assert len(seen) == 1
    assert model.get_submodule("2") is model[2]
    assert model.get_parameter("0.weight") is model[0].weight


def test_rounding_and_reductions_on_tensors():
    x = lucid.tensor([0.5, 1.5, 2.5, -0.5, -1.5, 1.25, -2.6])
    assert x.round().tolist() == [0.0, 2.0, 2.0, -0.0, -2.0, 1.0, -3.0]
    assert x.round(decimals=1).tolist() == pytest.approx([0.5, 1.5, 2.5, -0.5, -1.5, 1.2, -2.6])
    y = RNG.standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(_t(y).prod(1).numpy(), y.prod(1), rtol=1e-5)
    assert lucid.tensor([[1.0, 0.0, -2.0]]).prod().item() == 0.0
    assert lucid.arange(1, 6).prod().item() == 120
    assert lucid.tensor([1, 5, 3]).isin([3, 4]).tolist() == [False, False, True]
    seq = lucid.tensor([1.0, 2.0, 3.0])
    assert lucid.searchsorted(seq, lucid.tensor([0.5, 2.0, 3.5])).tolist() == [0, 1, 3]
    assert lucid.searchsorted(seq, lucid.tensor([2.0]), right=True).tolist() == [2]
    assert lucid.tensor([[1, 0], [0, 3]]).nonzero().tolist() == [[0, 0], [1, 1]]
    assert lucid.tensor([3, 1, 3]).unique(return_counts=True)[1].tolist() == [1, 2]
    assert lucid.tensor([0, 1, 1, 3]).bincount().tolist() == [1, 2, 0, 1]
    assert _t(y).median().item() == np.sort(y.reshape(-1))[5]
    assert [t.shape for t in _t(y).unbind(1)] == [(3,)] * 4
    assert _t(y).sum(dtype=lucid.float64).dtype == np.float64
    a, b = lucid.meshgrid(lucid.arange(2), lucid.arange(3), indexing="ij")
    assert a.shape == (2, 3) and b.tolist() == [[0, 1, 2], [0, 1, 2]]
    np.testing.assert_allclose(lucid.cdist(_t(y), _t(y[:2])).numpy(),
                               np.sqrt(((y[:, None] - y[None, :2]) ** 2).sum(-1)), rtol=1e-5,
                               atol=1e-6)


def _ref_bags(w, inp, offsets, mode, padding_idx=None):
    """Bags by loops: rows inp[offsets[b]:offsets[b+1]], padding entries left out."""
    bounds = list(offsets) + [len(inp)]
    out = []
    for b in range(len(offsets)):
        idx = [i for i in inp[bounds[b]:bounds[b + 1]] if i != padding_idx]
        rows = w[idx] if idx else np.zeros((0, w.shape[1]), w.dtype)
        if not idx:
            out.append(np.zeros(w.shape[1], w.dtype))
        else:
            out.append({"sum": rows.sum(0), "mean": rows.mean(0), "max": rows.max(0)}[mode])
    return np.stack(out)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_against_loops(mode):
    lucid.manual_seed(0)
    bag = nn.EmbeddingBag(10, 3, mode=mode, padding_idx=4)
    inp, offsets = np.array([1, 2, 4, 5, 4, 3, 2, 9]), np.array([0, 4, 4, 6])
    out = bag(lucid.tensor(inp), lucid.tensor(offsets))
    np.testing.assert_allclose(out.numpy(), _ref_bags(bag.weight.numpy(), inp, offsets, mode, 4),
                               rtol=1e-6)
    assert not out.numpy()[1].any()  # the empty bag
    fixed = bag(lucid.tensor(inp.reshape(2, 4)))
    np.testing.assert_allclose(fixed.numpy(), _ref_bags(bag.weight.numpy(), inp, [0, 4], mode,
                                                        4), rtol=1e-6)


def test_a_compiled_text_classifier_follows_the_offsets():
    lucid.manual_seed(1)
    bag, head = nn.EmbeddingBag(20, 4, mode="mean"), nn.Linear(4, 3)

    def forward(text, offsets):
        return head(bag(text, offsets))

    fast = lucid.compile(forward, fullgraph=True)
    text = lucid.tensor([3, 7, 1, 19, 2, 5])
    for offsets in ([0, 2, 5], [0, 1, 3], [0, 4, 4]):  # new values, same shapes: one entry
        off = lucid.tensor(offsets)
        np.testing.assert_allclose(fast(text, off).numpy(), forward(text, off).numpy(),
                                   rtol=1e-5, atol=1e-6)
    assert len(fast.entries) == 1
