"""Training steps with no host ops on the cpu backend: every node of the seed MLP's, the seed-004
CNN's (with a linear head), a small transformer block's and the large MLP's compiled steps runs
in native code (dropout's random draws too), and the steps give eager's losses and parameters.

Also the native kernels' edges: an index tensor out of range raises NumPy's IndexError from
native code and leaves the parameters as they were; a basic slice returned from a compiled
function is a view of its input, as eagerly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import lucid
import lucid.nn as nn
import lucid.nn.functional as F  # noqa: N812
from lucid.optim import SGD, Adam
from lucid_jit.codegen.cpu.backend import Program
from tests.helpers import assert_close_scaled
from tests.models import NeuralNetwork, SimpleCNN, train_step


class CnnClassifier(nn.Module):
    """Seed 004's SimpleCNN with a linear head: 3x32x32 images to 10 classes."""

    def __init__(self):
        super().__init__()
        self.features = SimpleCNN()
        self.head = nn.Linear(4096, 10)

    def forward(self, x):
        return self.head(self.features(x).reshape(x.shape[0], -1))


class TinyBlock(nn.Module):
    """Embedding, one pre-norm causal self-attention block with a GELU MLP, a vocabulary head."""

    def __init__(self, vocab=11, seq=6, dim=16, heads=2):
        super().__init__()
        self.heads, self.dim = heads, dim
        self.embed = nn.Embedding(vocab, dim)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.up, self.down = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        self.head = nn.Linear(dim, vocab)
        mask = np.triu(np.full((seq, seq), -1e9, np.float32), 1)
        self.mask = lucid.tensor(mask)

    def forward(self, tokens):
        b, t = tokens.shape
        h, d = self.heads, self.dim // self.heads
        x = self.embed(tokens)
        q, k, v = self.qkv(self.norm1(x)).reshape(b, t, 3, h, d).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d)) + self.mask
        y = (F.softmax(att, dim=-1) @ v).permute(0, 2, 1, 3).reshape(b, t, self.dim)
        x = x + self.proj(y)
        x = x + self.down(F.gelu(self.up(self.norm2(x))))
        return self.head(x)


def _tokens_loss(logits, target):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))


# name: (model, optimizer, loss, input, target)
STEPS = {
    "seed_mlp": (lambda: NeuralNetwork(64, 128, 2), lambda p: Adam(p, lr=0.01), nn.BCELoss(),
                 lambda: lucid.randn(32, 64),
                 lambda: lucid.randint(0, 2, (32, 2), dtype=lucid.float32)),
    "cnn": (CnnClassifier, lambda p: SGD(p, lr=0.01, momentum=0.9), nn.CrossEntropyLoss(),
            lambda: lucid.randn(4, 3, 32, 32), lambda: lucid.randint(0, 10, (4,))),
    # (SGD: the key bias's gradient is zero up to rounding, which Adam would scale up to lr)
    "transformer_block": (TinyBlock, lambda p: SGD(p, lr=0.05, momentum=0.9), _tokens_loss,
                          lambda: lucid.randint(0, 11, (3, 6)),
                          lambda: lucid.randint(0, 11, (3, 6))),
    "large_mlp": (lambda: nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024),
                                        nn.ReLU(), nn.Linear(1024, 10)),
                  lambda p: SGD(p, lr=0.01, momentum=0.9), nn.CrossEntropyLoss(),
                  lambda: lucid.randn(8, 784), lambda: lucid.randint(0, 10, (8,))),
    # dropout's masks: Philox kernels drawing eager's numbers (the same seed before each step)
    "dropout_mlp": (lambda: nn.Sequential(nn.Linear(20, 33), nn.ReLU(), nn.Dropout(0.3),
                                          nn.Linear(33, 3)),
                    lambda p: Adam(p, lr=0.01), nn.CrossEntropyLoss(),
                    lambda: lucid.randn(7, 20), lambda: lucid.randint(0, 3, (7,))),
}


def _host_nodes(compiled) -> list[str]:
    """The host ops of every entry's programs."""
    out = []
    for entry in compiled.entries:
        for graph in (entry.forward, entry.backward):
            if graph is not None:
                out += entry.backend.program(graph).emitted.host_nodes
    return out


@pytest.mark.parametrize("name", list(STEPS))
def test_training_step_has_no_host_ops_and_matches_eager(name, monkeypatch):
    # The Python tier runs the same kernels the native tier inlines; staying on it keeps the
    # test free of the large native compile.
    monkeypatch.setattr(Program, "NATIVE_AFTER", 1 << 30)
    make, make_opt, loss_fn, make_x, make_y = STEPS[name]
    models = []
    for _ in range(2):
        lucid.manual_seed(1)
        models.append(make())
    steps = [train_step(m, make_opt(m.parameters()), loss_fn) for m in models]
    compiled = lucid.compile(steps[1])
    for k in range(3):
        x, y = make_x(), make_y()
        lucid.manual_seed(100 + k)
        want = steps[0](x, y)
        lucid.manual_seed(100 + k)
        got = compiled(x, y)
        assert_close_scaled(got, want, f"{name} loss, step {k}", 1e-5)
    assert _host_nodes(compiled) == []
    # (Adam's first step, before its state exists, is an entry of its own)
    assert len(compiled.entries) <= 2
    assert all(e.kind == "compiled" for e in compiled.entries)
    for (pname, p), q in zip(models[0].named_parameters(), models[1].parameters(), strict=True):
        assert_close_scaled(q, p, f"{name} {pname}", 1e-4)


def test_index_out_of_range_raises_numpys_error_and_changes_nothing():
    """A gather whose index tensor is out of range, run natively after the optimizer's update:
    NumPy's IndexError, as eagerly; the parameters untouched, on both tiers."""
    lucid.manual_seed(2)
    w = nn.Parameter(lucid.randn(5, 3))
    opt = SGD([w], lr=0.1)

    def step(i):
        loss = (w * 2.0).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return w[i] * 3.0

    compiled = lucid.compile(step)
    good, bad = lucid.tensor(np.array([0, 4, 2])), lucid.tensor(np.array([1, 7, 0]))
    compiled(good)
    for call in range(4):
        before = w.numpy().copy()
        with pytest.raises(IndexError, match="index 7 is out of bounds for axis 0 with size 5"):
            compiled(bad)
        np.testing.assert_array_equal(w.numpy(), before)
        out = compiled(good)
        np.testing.assert_allclose(out.numpy(), w.numpy()[[0, 4, 2]] * 3.0, rtol=1e-6)
        assert not np.array_equal(w.numpy(), before), call
    assert _host_nodes(compiled) == []


def test_negative_indices_count_from_the_end_natively():
    x = lucid.tensor(np.arange(12.0, dtype=np.float32).reshape(4, 3))
    i = lucid.tensor(np.array([-1, 0, -4]))
    compiled = lucid.compile(lambda x, i: x[i] * 2.0)
    np.testing.assert_array_equal(compiled(x, i).numpy(), x.numpy()[[-1, 0, -4]] * 2.0)


def test_basic_slice_of_an_input_is_returned_as_a_view():
    x = lucid.randn(4, 5)
    compiled = lucid.compile(lambda x: (x[1:3], x[:, 0] * 2.0))
    view, doubled = compiled(x)
    np.testing.assert_array_equal(doubled.numpy(), x.numpy()[:, 0] * 2.0)
    assert np.shares_memory(view.numpy(), x.numpy())
    np.testing.assert_array_equal(view.numpy(), x.numpy()[1:3])
    # an input that is itself a view of a larger tensor (NumPy's base is then the larger one)
    x = lucid.randn(8, 5)[2:6]
    view, _ = compiled(x)
    assert np.shares_memory(view.numpy(), x.numpy())
    view[0, 0] = 100.0
    assert x.numpy()[1, 0] == 100.0


def test_max_pool_gradient_with_ties_and_nans_matches_eager():
    """The first maximum of a window takes its gradient (ties), the first NaN if there is one;
    both kernel forms: windows inside the input, and padded ones."""
    x0 = np.array([[1.0, 1.0, 0.5, 2.0], [1.0, 0.0, 2.0, 2.0],
                   [np.nan, 3.0, 4.0, 4.0], [3.0, np.nan, 4.0, 4.0]], np.float32)
    x0 = np.broadcast_to(x0, (2, 3, 4, 4)).copy()
    for kwargs in ({"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1},
                   {"kernel_size": 2, "stride": 1}):
        def f(x, kwargs=kwargs):
            return (F.max_pool2d(x, **kwargs) * 1.5).sum()

        compiled = lucid.compile(f)
        for _ in range(3):  # both tiers
            xs = [lucid.tensor(x0, requires_grad=True) for _ in range(2)]
            compiled(xs[0]).backward()
            f(xs[1]).backward()
            np.testing.assert_array_equal(xs[0].grad.numpy(), xs[1].grad.numpy(), str(kwargs))


def test_convolution_lowered_before_fusion_shares_its_unfold_with_the_weight_gradient():
    conv = nn.Conv2d(3, 4, 3, padding=1)
    opt = SGD(conv.parameters(), lr=0.1)
    step = lucid.compile(train_step(conv, opt, F.mse_loss))
    x, y = lucid.randn(2, 3, 8, 8), lucid.randn(2, 4, 8, 8)
    step(x, y)
    graph = step.last_entry.forward
    assert not any(n.op.name == "conv2d" for n in graph.nodes)
    assert sum(n.op.name == "unfold" for n in graph.nodes) == 1  # forward and dW: one
