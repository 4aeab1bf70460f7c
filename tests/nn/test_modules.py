"""Layers and the Module API: shapes, PyTorch's reprs and parameter counts, state dicts,
BatchNorm's train/eval behaviour, Dropout's modes."""

import numpy as np
import pytest

import lucid
import lucid.nn as nn
from lucid import LucidError, ShapeError, Tensor
from tests.helpers import assert_close

REPRS = [
    (lambda: nn.ReLU(), "ReLU()"),
    (lambda: nn.ReLU(inplace=True), "ReLU(inplace=True)"),
    (lambda: nn.LeakyReLU(), "LeakyReLU(negative_slope=0.01)"),
    (lambda: nn.LeakyReLU(0.2, inplace=True), "LeakyReLU(negative_slope=0.2, inplace=True)"),
    (lambda: nn.ELU(), "ELU(alpha=1.0)"),
    (lambda: nn.GELU(), "GELU(approximate='none')"),
    (lambda: nn.GELU("tanh"), "GELU(approximate='tanh')"),
    (lambda: nn.Sigmoid(), "Sigmoid()"),
    (lambda: nn.Tanh(), "Tanh()"),
    (lambda: nn.SiLU(), "SiLU()"),
    (lambda: nn.Softmax(dim=1), "Softmax(dim=1)"),
    (lambda: nn.Softmax(), "Softmax(dim=None)"),
    (lambda: nn.LogSoftmax(dim=-1), "LogSoftmax(dim=-1)"),
    (lambda: nn.Linear(3, 5), "Linear(in_features=3, out_features=5, bias=True)"),
    (lambda: nn.Linear(3, 5, bias=False), "Linear(in_features=3, out_features=5, bias=False)"),
    (lambda: nn.Identity(), "Identity()"),
    (lambda: nn.Flatten(), "Flatten(start_dim=1, end_dim=-1)"),
    (lambda: nn.Dropout(), "Dropout(p=0.5, inplace=False)"),
    (lambda: nn.BatchNorm2d(16),
     "BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"),
    (lambda: nn.BatchNorm1d(4, momentum=None, affine=False),
     "BatchNorm1d(4, eps=1e-05, momentum=None, affine=False, track_running_stats=True)"),
    (lambda: nn.LayerNorm(8), "LayerNorm((8,), eps=1e-05, elementwise_affine=True)"),
    (lambda: nn.LayerNorm([2, 3], elementwise_affine=False),
     "LayerNorm((2, 3), eps=1e-05, elementwise_affine=False)"),
    (lambda: nn.Embedding(10, 3), "Embedding(10, 3)"),
    (lambda: nn.Embedding(10, 3, padding_idx=0), "Embedding(10, 3, padding_idx=0)"),
    (lambda: nn.MSELoss(), "MSELoss()"),
    (lambda: nn.L1Loss(), "L1Loss()"),
    (lambda: nn.BCELoss(), "BCELoss()"),
    (lambda: nn.BCEWithLogitsLoss(), "BCEWithLogitsLoss()"),
    (lambda: nn.CrossEntropyLoss(label_smoothing=0.1), "CrossEntropyLoss()"),
    (lambda: nn.NLLLoss(), "NLLLoss()"),
]


@pytest.mark.parametrize("make,expected", REPRS, ids=[r[1] for r in REPRS])
def test_repr_matches_pytorch(make, expected):
    assert repr(make()) == expected


def test_nested_repr():
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 2), nn.Sigmoid())
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=64, out_features=128, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Linear(in_features=128, out_features=2, bias=True)\n"
        "  (3): Sigmoid()\n)")


def _count(m):
    return sum(p.numel() for p in m.parameters())


def test_parameter_counts_match_pytorch():
    assert _count(nn.Linear(64, 128)) == 8320
    bn = nn.BatchNorm2d(16)
    assert _count(bn) == 32
    assert [name for name, _ in bn.named_buffers()] == [
        "running_mean", "running_var", "num_batches_tracked"]
    assert bn.num_batches_tracked.dtype == lucid.int64
    assert _count(nn.LayerNorm(8)) == 16
    assert _count(nn.Embedding(10, 3)) == 30
    assert _count(nn.Linear(3, 5, bias=False)) == 15
    assert list(nn.BatchNorm1d(4, track_running_stats=False).buffers()) == []


def test_linear_init_bounds_and_shapes():
    m = nn.Linear(100, 50)
    bound = 1 / np.sqrt(100)
    for p in (m.weight, m.bias):
        assert p.dtype == lucid.float32 and p.requires_grad
        a = p.numpy()
        assert np.abs(a).max() <= bound and np.abs(a).max() > 0.9 * bound
    assert m(lucid.randn(7, 100)).shape == (7, 50)
    assert m(lucid.randn(2, 3, 100)).shape == (2, 3, 50)
    assert nn.Linear(3, 2, dtype=lucid.float64).weight.dtype == lucid.float64


def test_layer_shapes():
    x = lucid.randn(2, 3, 4, 5)
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0, 1)(x).shape == (6, 4, 5)
    assert nn.Identity(3, foo=1)(x) is x
    assert nn.BatchNorm2d(3)(x).shape == x.shape
    assert nn.LayerNorm(5)(x).shape == x.shape
    assert nn.Softmax(dim=-1)(x).shape == x.shape
    emb = nn.Embedding(10, 3)
    assert emb(Tensor([[1, 2], [3, 9]])).shape == (2, 2, 3)
    with pytest.raises(ShapeError, match="BatchNorm2d: expected 4D input"):
        nn.BatchNorm2d(3)(lucid.randn(2, 3))
    with pytest.raises(ShapeError, match="BatchNorm1d: expected 2D or 3D input"):
        nn.BatchNorm1d(3)(x)


def test_embedding_init_and_padding_row():
    emb = nn.Embedding(2000, 8, padding_idx=-1)
    assert emb.padding_idx == 1999
    w = emb.weight.numpy()
    assert (w[1999] == 0).all()
    assert abs(w[:1999].mean()) < 0.03 and abs(w[:1999].std() - 1) < 0.03
    emb(Tensor([1999, 3])).sum().backward()
    assert (emb.weight.grad.numpy()[1999] == 0).all()
    assert (emb.weight.grad.numpy()[3] == 1).all()


def ref_bn_stats(x, axes):
    return x.mean(axis=axes), x.var(axis=axes), x.var(axis=axes, ddof=1)


def test_batchnorm_train_then_eval_against_numpy():
    bn = nn.BatchNorm2d(3, momentum=0.3)
    with lucid.no_grad():
        bn.weight.copy_(Tensor([1.0, 2.0, 0.5]))
        bn.bias.copy_(Tensor([0.0, -1.0, 1.0]))
    rm, rv = np.zeros(3), np.ones(3)
    for step in range(3):
        x = (np.random.default_rng(step).standard_normal((4, 3, 2, 2)) * 2 + step)
        out = bn(Tensor(x.astype(np.float32)))
        mean, var, unbiased = ref_bn_stats(x, (0, 2, 3))
        shape = (1, 3, 1, 1)
        expected = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + 1e-5)
        expected = expected * np.array([1.0, 2.0, 0.5]).reshape(shape) + \
            np.array([0.0, -1.0, 1.0]).reshape(shape)
        assert_close(out, expected, rtol=1e-4, atol=1e-5)
        rm, rv = 0.7 * rm + 0.3 * mean, 0.7 * rv + 0.3 * unbiased
        assert_close(bn.running_mean, rm, rtol=1e-5)
        assert_close(bn.running_var, rv, rtol=1e-5)
    assert int(bn.num_batches_tracked) == 3
    bn.eval()
    x = np.random.default_rng(9).standard_normal((2, 3, 2, 2))
    out = bn(Tensor(x.astype(np.float32)))
    expected = (x - rm.reshape(1, 3, 1, 1)) / np.sqrt(rv.reshape(1, 3, 1, 1) + 1e-5)
    expected = expected * np.array([1.0, 2.0, 0.5]).reshape(1, 3, 1, 1) + \
        np.array([0.0, -1.0, 1.0]).reshape(1, 3, 1, 1)
    assert_close(out, expected, rtol=1e-4, atol=1e-5)
    assert int(bn.num_batches_tracked) == 3  # eval does not count batches
    assert_close(bn.running_mean, rm, rtol=1e-5)


def test_batchnorm_cumulative_average_and_no_running_stats():
    bn = nn.BatchNorm1d(2, momentum=None)
    xs = [np.random.default_rng(i).standard_normal((5, 2)) for i in range(3)]
    for x in xs:
        bn(Tensor(x.astype(np.float32)))
    assert_close(bn.running_mean, np.mean([x.mean(0) for x in xs], axis=0), rtol=1e-5)
    free = nn.BatchNorm1d(2, track_running_stats=False).eval()
    x = xs[0]
    assert_close(free(Tensor(x.astype(np.float32))),
                 (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5), rtol=1e-4, atol=1e-5)


def test_dropout_train_and_eval():
    drop = nn.Dropout(p=0.4)
    x = lucid.ones(100, 100)
    out = drop(x).numpy()
    assert abs((out == 0).mean() - 0.4) < 0.03
    assert_close(np.unique(out), np.array([0.0, 1 / 0.6], np.float32))
    drop.eval()
    assert drop(x) is x
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(-0.1)


def test_loss_modules_match_functional():
    import lucid.nn.functional as F

    x, t = lucid.randn(4, 3), Tensor([0, 2, 1, 2])
    w = Tensor([1.0, 2.0, 0.5])
    m = nn.CrossEntropyLoss(weight=w, ignore_index=1, reduction="sum", label_smoothing=0.1)
    assert_close(m(x, t), F.cross_entropy(x, t, w, 1, "sum", 0.1))
    assert "weight" in m.state_dict()
    assert_close(nn.NLLLoss(reduction="none")(x, t), F.nll_loss(x, t, reduction="none"))
    p, y = lucid.rand(5), lucid.rand(5)
    assert_close(nn.BCELoss()(p, y), F.binary_cross_entropy(p, y))
    pw = Tensor([2.0])
    assert_close(nn.BCEWithLogitsLoss(pos_weight=pw)(x[:, 0], y[:4]),
                 F.binary_cross_entropy_with_logits(x[:, 0], y[:4], pos_weight=pw))
    assert_close(nn.MSELoss(reduction="sum")(p, y), ((p - y) ** 2).sum())
    assert_close(nn.L1Loss()(p, y), (p - y).abs().mean())
    with pytest.raises(ValueError, match="MSELoss: reduction"):
        nn.MSELoss(reduction="avg")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 6)
        self.bn = nn.BatchNorm1d(6)
        self.block = nn.Sequential(nn.ReLU(), nn.Dropout(0.5), nn.Linear(6, 2))
        self.register_buffer("scratch", lucid.zeros(2), persistent=False)

    def forward(self, x):
        return self.block(self.bn(self.fc1(x))) + self.scratch


def test_named_parameters_children_and_modules():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == [
        "fc1.weight", "fc1.bias", "bn.weight", "bn.bias", "block.2.weight", "block.2.bias"]
    assert [type(m).__name__ for m in net.children()] == ["Linear", "BatchNorm1d", "Sequential"]
    assert [type(m).__name__ for m in net.modules()] == [
        "Net", "Linear", "BatchNorm1d", "Sequential", "ReLU", "Dropout", "Linear"]
    seen = []
    assert net.apply(lambda m: seen.append(type(m).__name__)) is net
    assert seen[-1] == "Net" and len(seen) == 7


def test_train_eval_propagate():
    net = Net()
    assert all(m.training for m in net.modules())
    net.eval()
    assert not any(m.training for m in net.modules())
    x = lucid.randn(3, 4)
    assert_close(net(x), net(x), rtol=0, atol=0)  # eval: dropout off, running stats used
    net.train()
    assert net.block[1].training and net.bn.training


def test_zero_grad_and_backward_reach_every_parameter():
    net = Net()
    net(lucid.randn(5, 4)).sum().backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net(lucid.randn(5, 4)).sum().backward()
    net.zero_grad(set_to_none=False)
    assert all((p.grad.numpy() == 0).all() for p in net.parameters())


def test_state_dict_round_trip():
    net = Net()
    net(lucid.randn(8, 4))  # moves the running stats
    state = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    assert "scratch" not in state
    assert list(state) == ["fc1.weight", "fc1.bias", "bn.weight", "bn.bias", "bn.running_mean",
                           "bn.running_var", "bn.num_batches_tracked", "block.2.weight",
                           "block.2.bias"]
    other = Net()
    with lucid.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    assert not np.array_equal(other.fc1.weight.numpy(), state["fc1.weight"])
    other.load_state_dict(net.state_dict())
    for k, v in other.state_dict().items():
        assert np.array_equal(v.numpy(), state[k]), k
    other.eval()
    net.eval()
    x = lucid.randn(3, 4)
    assert_close(other(x), net(x), rtol=0, atol=0)


def test_load_state_dict_strict_errors():
    net = Net()
    state = net.state_dict()
    del state["fc1.bias"]
    state["extra.weight"] = lucid.zeros(1)
    with pytest.raises(LucidError, match="fc1.bias.*extra.weight"):
        net.load_state_dict(state)
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert missing == ["fc1.bias"] and unexpected == ["extra.weight"]
    bad = net.state_dict()
    bad["fc1.weight"] = lucid.zeros(2, 2)
    with pytest.raises(LucidError, match="fc1.weight"):
        net.load_state_dict(bad)
