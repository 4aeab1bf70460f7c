"""Device tensors: moving data, factories, modules, errors, and eager ops and autograd on cuda."""

from __future__ import annotations

import numpy as np
import pytest

import lucid
import lucid.nn as nn
import lucid.nn.functional as F  # noqa: N812
from lucid import LucidError, Tensor
from lucid.device import is_device_array


def test_is_available_and_moving_a_tensor_there_and_back():
    assert lucid.cuda.is_available()
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = Tensor(a)
    c = t.to("cuda")
    assert c.device == "cuda" and c.is_cuda and is_device_array(c.data)
    assert (c.shape, c.dtype) == ((2, 3), np.float32)
    assert t.device == "cpu" and t.cuda().device == "cuda" and c.cpu().device == "cpu"
    assert c.to("cuda") is c and t.to("cpu") is t
    back = c.cpu()
    assert isinstance(back.data, np.ndarray)
    np.testing.assert_array_equal(back.numpy(), a)
    np.testing.assert_array_equal(c.numpy(), a)  # numpy() copies to the host
    assert c.numpy() is not c.numpy()
    assert lucid.tensor([1.0, 2.0], device="cuda:0").device == "cuda"
    assert c.to("cuda", lucid.float64).dtype == np.float64


def test_repr_copies_to_the_host_and_names_the_device():
    t = lucid.tensor([[0.0, -0.01, 3.0]], device="cuda", requires_grad=True)
    assert repr(t) == "Tensor([[0.0, -0.01, 3.0]], device='cuda', grad=None)"
    assert repr(lucid.tensor([1, 2], device="cuda")) == "Tensor([1, 2], device='cuda')"
    assert f"{lucid.tensor(2.5, device='cuda'):.1f}" == "2.5"
    assert lucid.tensor(3.0, device="cuda").item() == 3.0


def test_factories_take_a_device():
    for t in (lucid.zeros(2, 3, device="cuda"), lucid.ones(2, 3, device="cuda"),
              lucid.full((2, 3), 7.0, device="cuda"), lucid.randn(2, 3, device="cuda"),
              lucid.rand(2, 3, device="cuda"), lucid.arange(6, device="cuda"),
              lucid.eye(3, device="cuda"), lucid.linspace(0, 1, 5, device="cuda"),
              lucid.tensor([1.0], device="cuda"), Tensor([1.0, 2.0], device="cuda")):
        assert t.device == "cuda", t
    np.testing.assert_array_equal(lucid.full((2, 3), 7.0, device="cuda").numpy(),
                                  np.full((2, 3), 7.0, np.float32))
    x = lucid.randn(3, device="cuda")
    assert lucid.zeros_like(x).device == "cuda" and lucid.ones_like(x).device == "cuda"
    assert lucid.zeros_like(x, device="cpu").device == "cpu"
    lucid.manual_seed(3)
    a = lucid.randn(4, 5).numpy()
    lucid.manual_seed(3)
    np.testing.assert_array_equal(lucid.randn(4, 5, device="cuda").numpy(), a)
    with pytest.raises(LucidError, match="unknown device 'tpu'"):
        lucid.zeros(2, device="tpu")


def test_ops_on_device_tensors_match_the_cpu():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal((4, 5)).astype(np.float32)
    x, w = lucid.tensor(a, device="cuda"), lucid.tensor(b, device="cuda")
    checks = {
        "chain": ((x * 2.0 + 1.0).relu().exp(), np.exp(np.maximum(a * 2 + 1, 0))),
        "broadcast": (x + lucid.tensor(a[0], device="cuda"), a + a[0]),
        "scalar tensor": (x * lucid.tensor(3.0), a * 3),
        "matmul": (x @ w, a @ b),
        "sum": (x.sum(dim=1), a.sum(1)),
        "mean": (x.mean(), a.mean()),
        "max": (x.amax(dim=0, keepdim=True), a.max(0, keepdims=True)),
        "argmax": (x.argmax(dim=1), a.argmax(1)),
        "transpose": (x.T, a.T),
        "reshape": (x.reshape(6, 2), a.reshape(6, 2)),
        "slice": (x[1:, ::2], a[1:, ::2]),
        "softmax": (F.softmax(x, dim=1), np.exp(a) / np.exp(a).sum(1, keepdims=True)),
        "compare": (x > 0, a > 0),
        "cast": (x.long(), a.astype(np.int64)),
        "cat": (lucid.cat([x, x], dim=0), np.concatenate([a, a])),
    }
    for name, (got, want) in checks.items():
        assert got.device == "cuda", name
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6, err_msg=name)


def test_mixing_devices_is_a_clear_error():
    x = lucid.ones(2, 3, device="cuda")
    y = lucid.ones(2, 3)
    with pytest.raises(LucidError) as info:
        x + y
    message = str(info.value)
    assert "add" in message and "f32[2,3] on cuda" in message and "f32[2,3] on cpu" in message
    assert "different devices" in message and "test_device.py" in message
    with pytest.raises(LucidError, match="different devices"):
        lucid.ones(2, 3) @ lucid.ones(3, 2, device="cuda")
    np.testing.assert_array_equal((x * lucid.tensor(2.0)).numpy(), np.full((2, 3), 2.0))


def test_in_place_updates_write_the_device_array():
    x = lucid.zeros(2, 3, device="cuda")
    data = x.data
    x.add_(1.5)
    x[0, 1] = 4.0
    assert x.data is data and x.device == "cuda"
    np.testing.assert_array_equal(x.numpy(), [[1.5, 4.0, 1.5], [1.5, 1.5, 1.5]])
    x.zero_()
    np.testing.assert_array_equal(x.numpy(), np.zeros((2, 3)))


def _twins(shape=(4, 6)):
    a = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    return lucid.tensor(a), lucid.tensor(a, device="cuda")


VIEWS = [
    ("rows", lambda t: t[1:3]),
    ("column", lambda t: t[:, 2]),
    ("strided", lambda t: t[::2, 1::3]),
    ("element", lambda t: t[1, 4]),
    ("new axis", lambda t: t[None, 2]),
    ("ellipsis", lambda t: t[..., 1:]),
    ("transpose", lambda t: t.T),
    ("reshape", lambda t: t.reshape(3, 8)),
    ("view of a view", lambda t: t.T[2:, ::2].unsqueeze(0)),
]


@pytest.mark.parametrize("name,make", VIEWS, ids=[v[0] for v in VIEWS])
def test_device_views_share_memory_with_their_base_as_on_the_cpu(name, make):
    cpu, dev = _twins()
    vc, vd = make(cpu), make(dev)
    assert vd.device == "cuda" and vd.shape == vc.shape
    np.testing.assert_array_equal(vd.numpy(), vc.numpy())
    for t, v in ((cpu, vc), (dev, vd)):  # writes through the view reach the base ...
        v.mul_(-1.0)
        v.add_(0.5)
        assert v._version is t._version and t._version[0] == 2
    np.testing.assert_array_equal(dev.numpy(), cpu.numpy())
    np.testing.assert_array_equal(vd.numpy(), vc.numpy())
    for t in (cpu, dev):  # ... and writes into the base show through the view
        t.sub_(1.0)
    np.testing.assert_array_equal(vd.numpy(), vc.numpy())
    # ops read strided device views (and views of them) correctly
    np.testing.assert_allclose((vd * 2 + vd.exp().log()).sum().numpy(),
                               (vc * 2 + vc.exp().log()).sum().numpy(), rtol=1e-6)
    np.testing.assert_array_equal(vd.cpu().numpy(), vc.numpy())
    before = dev.numpy()
    c = vd.clone()  # a clone is its own memory
    c.add_(1.0)
    np.testing.assert_array_equal(dev.numpy(), before)
    np.testing.assert_array_equal(c.numpy(), vc.numpy() + 1)


def test_setitem_writes_through_strided_device_views():
    cpu, dev = _twins((3, 4, 5))
    for t in (cpu, dev):
        t.permute(2, 0, 1)[1:4, :, ::2] = 7.0
        t[:, 1][0, ::-1] = t[0, 0, 0] * 0  # (a reversed slice assigned through setitem)
        col = t[:, :, 3]
        col.copy_(lucid.full((3, 4), 9.0).to(t.device))
    np.testing.assert_array_equal(dev.numpy(), cpu.numpy())


def test_device_views_that_cannot_take_writes_are_clear_errors():
    x = lucid.arange(6, device="cuda").float()
    before = x.numpy()
    b = x.reshape(1, 6).expand(3, 6)
    np.testing.assert_array_equal(b.numpy(), np.broadcast_to(before, (3, 6)))
    with pytest.raises(LucidError, match=r"in-place: this cuda tensor of shape \(3, 6\) is a "
                                         r"read-only broadcast view .*test_device.py"):
        b.add_(1.0)
    r = x[::-1]  # device arrays have no negative strides: a copy, which must not take writes
    np.testing.assert_array_equal(r.numpy(), before[::-1])
    with pytest.raises(LucidError, match="negative step"):
        r.mul_(2.0)
    np.testing.assert_array_equal(x.numpy(), before)  # nothing was written
    y = x.reshape(2, 3).T.reshape(6)  # NumPy copies here too: writes stay in the copy
    y.zero_()
    np.testing.assert_array_equal(x.numpy(), before)


def test_backward_through_device_views():
    a = np.random.default_rng(2).standard_normal((4, 6)).astype(np.float32)
    grads = []
    for device in ("cpu", "cuda"):
        w = lucid.tensor(a, device=device, requires_grad=True)
        (w[1:3, ::2].T.exp() * w[1:4, 1:2]).sum().backward()
        grads.append(w.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-5)


def test_compiled_functions_take_device_views():
    @lucid.compile
    def f(x, y):
        return (x * y).relu() + x.sum(dim=0)

    cpu, dev = _twins((5, 4))
    for args in ((dev[1:4], dev.T[:3, :4]), (dev[:3], dev[2:])):
        want = f.__wrapped__(*(lucid.tensor(a.numpy()) for a in args))
        np.testing.assert_allclose(f(*args).numpy(), want.numpy(), rtol=1e-6)


def test_autograd_on_the_device_and_through_a_transfer():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, 3)).astype(np.float32)
    w = lucid.tensor(a, device="cuda", requires_grad=True)
    loss = (w * w).sum()
    loss.backward()
    assert w.grad.device == "cuda"
    np.testing.assert_allclose(w.grad.numpy(), 2 * a, rtol=1e-6)
    cpu = lucid.tensor(a, requires_grad=True)
    (cpu.cuda().sigmoid() * 3).sum().backward()
    assert cpu.grad.device == "cpu"
    s = 1 / (1 + np.exp(-a))
    np.testing.assert_allclose(cpu.grad.numpy(), 3 * s * (1 - s), rtol=1e-5)


def test_module_to_moves_parameters_in_place_and_back():
    lucid.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    params = list(model.parameters())
    before = [p.numpy().copy() for p in params]
    assert model.to("cuda") is model
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]
    assert all(p.device == "cuda" for p in model.parameters())
    x = lucid.randn(5, 4, device="cuda")
    out = model(x)
    assert out.device == "cuda"
    model.cpu()
    assert all(p.device == "cpu" for p in model.parameters())
    for p, b in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(p.numpy(), b)
    np.testing.assert_allclose(model(x.cpu()).numpy(), out.numpy(), rtol=1e-5, atol=1e-6)
    model.cuda()
    state = {k: v.numpy() * 0 + 1 for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    assert all(p.device == "cuda" for p in model.parameters())
    np.testing.assert_array_equal(model[0].weight.numpy(), np.ones((8, 4), np.float32))


def test_an_eager_training_step_on_the_device_matches_the_cpu():
    lucid.manual_seed(0)
    cpu = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 1), nn.Sigmoid())
    dev = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 1), nn.Sigmoid())
    dev.load_state_dict(cpu.state_dict())
    dev.to("cuda")
    opts = [lucid.optim.Adam(cpu.parameters(), lr=0.05),
            lucid.optim.Adam(dev.parameters(), lr=0.05)]
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 6)).astype(np.float32)
    y = (rng.random((5, 1)) > 0.5).astype(np.float32)
    for _ in range(3):
        for model, opt, device in ((cpu, opts[0], "cpu"), (dev, opts[1], "cuda")):
            loss = F.binary_cross_entropy(model(lucid.tensor(x, device=device)),
                                          lucid.tensor(y, device=device))
            opt.zero_grad()
            loss.backward()
            opt.step()
    for p in dev.parameters():
        assert p.device == "cuda" and p.grad.device == "cuda"
        assert all(s.device == "cuda" for s in opts[1].state[p].values())
    for p, q in zip(cpu.parameters(), dev.parameters(), strict=True):
        np.testing.assert_allclose(q.numpy(), p.numpy(), rtol=1e-5, atol=1e-6)


def test_optimizer_state_loads_onto_the_parameters_device():
    p = lucid.randn(3, device="cuda", requires_grad=True)
    opt = lucid.optim.Adam([p], lr=0.1)
    (p * p).sum().backward()
    opt.step()
    saved = opt.state_dict()
    fresh = lucid.optim.Adam([p], lr=0.1)
    fresh.load_state_dict(saved)
    assert all(v.device == "cuda" for v in fresh.state[p].values())
    for key, value in opt.state[p].items():
        np.testing.assert_array_equal(fresh.state[p][key].numpy(), value.numpy())
    fresh.step()  # the state mixes with the parameter without a device error
