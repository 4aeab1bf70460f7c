"""Tensor: printing, dtypes, factories, methods, in-place ops and the version counter."""

from __future__ import annotations

import numpy as np
import pytest

import lucid
from lucid import Tensor
from tests.helpers import assert_close

# ------------------------------------------------------------------------------------ repr


def test_repr_requires_grad_shows_grad_field():
    t = Tensor([[0.0, 2.0, 0.0, 3.0]], requires_grad=True)
    assert repr(t) == "Tensor([[0.0, 2.0, 0.0, 3.0]], grad=None)"


def test_repr_float32_shortest_round_trip():
    t = Tensor([[-0.01, 2.0, -0.005, 3.0]], requires_grad=True)
    assert repr(t) == "Tensor([[-0.01, 2.0, -0.005, 3.0]], grad=None)"


def test_repr_without_requires_grad_has_no_grad_field():
    assert repr(Tensor([[0.0, 1.0, 0.0, 1.0]])) == "Tensor([[0.0, 1.0, 0.0, 1.0]])"


def test_repr_shows_grad_after_backward():
    t = Tensor([1.0, 2.0], requires_grad=True)
    (t * 3.0).sum().backward()
    assert repr(t) == "Tensor([1.0, 2.0], grad=[3.0, 3.0])"


def test_repr_float64_shows_dtype_and_ints_do_not():
    assert repr(Tensor([0.1], dtype=lucid.float64)) == "Tensor([0.1], dtype=float64)"
    assert repr(Tensor([1, 2])) == "Tensor([1, 2])"
    assert repr(Tensor(2.5)) == "Tensor(2.5)"


def test_repr_large_tensor_is_summarized():
    text = repr(lucid.arange(5000).float())
    assert "..." in text
    assert text.startswith("Tensor([0.0, 1.0, 2.0, ...") and text.endswith("4999.0])")
    assert len(text) < 200


# ------------------------------------------------------------------------------------ dtypes


def test_dtype_inference():
    assert Tensor([1.0, 2.0]).dtype == lucid.float32
    assert Tensor([1, 2]).dtype == lucid.int64
    assert Tensor(3).dtype == lucid.int64
    assert Tensor([True]).dtype == lucid.bool_
    assert Tensor(np.zeros(2, np.float64)).dtype == lucid.float64
    assert Tensor([1, 2], dtype=lucid.float32).dtype == lucid.float32


@pytest.mark.parametrize("a, b, expected", [
    (Tensor([1, 2]), 0.5, lucid.float32),
    (Tensor([1.0], dtype=lucid.float32), Tensor([1.0], dtype=lucid.float64), lucid.float64),
    (Tensor([1], dtype=lucid.int32), Tensor([1.0]), lucid.float32),
    (Tensor([1], dtype=lucid.int32), Tensor([1]), lucid.int64),
    (Tensor([1.0]), 2, lucid.float32),
    (Tensor([1.0], dtype=lucid.float64), 2.5, lucid.float64),
    (Tensor([1]), 3, lucid.int64),
], ids=["i64*0.5", "f32+f64", "i32+f32", "i32+i64", "f32*int", "f64*float", "i64*int"])
def test_promotion(a, b, expected):
    assert (a * b).dtype == expected
    assert (b * a).dtype == expected


def test_int_tensor_times_half_values():
    assert (Tensor([1, 3]) * 0.5).tolist() == [0.5, 1.5]
    assert (Tensor([1, 3]) / 2).tolist() == [0.5, 1.5]


# ------------------------------------------------------------------------------------ factories


def test_factories():
    assert lucid.zeros(2, 3).tolist() == [[0.0] * 3] * 2
    assert lucid.zeros((2, 3)).dtype == lucid.float32
    assert lucid.ones(2, dtype=lucid.int64).tolist() == [1, 1]
    assert lucid.full((2,), 7.5).tolist() == [7.5, 7.5]
    assert lucid.arange(4).tolist() == [0, 1, 2, 3] and lucid.arange(4).dtype == lucid.int64
    assert lucid.arange(1, 2, 0.5).tolist() == [1.0, 1.5]
    assert lucid.arange(1, 2, 0.5).dtype == lucid.float32
    assert_close(lucid.linspace(0, 1, 5), np.array([0, 0.25, 0.5, 0.75, 1.0], np.float32))
    assert lucid.eye(3).tolist() == np.eye(3).tolist() and lucid.eye(2, 3).shape == (2, 3)
    x = Tensor([[1, 2]], dtype=lucid.float64)
    assert lucid.zeros_like(x).dtype == lucid.float64 and lucid.zeros_like(x).tolist() == [[0, 0]]
    assert lucid.ones_like(x).tolist() == [[1.0, 1.0]] and lucid.ones_like(x).shape == (1, 2)
    r = lucid.rand(100, 10)
    assert r.shape == (100, 10) and r.dtype == lucid.float32
    assert 0 <= r.numpy().min() and r.numpy().max() < 1 and abs(r.numpy().mean() - 0.5) < 0.05
    n = lucid.randn(2000, dtype=lucid.float64)
    assert n.dtype == lucid.float64 and abs(n.numpy().std() - 1) < 0.1
    assert lucid.zeros(2, requires_grad=True).requires_grad


def test_manual_seed_reproducible():
    lucid.manual_seed(123)
    a, b = lucid.rand(5), lucid.randn(3)
    lucid.manual_seed(123)
    c, d = lucid.rand(5), lucid.randn(3)
    assert a.tolist() == c.tolist() and b.tolist() == d.tolist()
    assert lucid.rand(5).tolist() != a.tolist()


# ------------------------------------------------------------------------------------ methods


def test_reductions():
    x = Tensor([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]])
    assert x.sum().item() == 21.0
    assert x.sum(dim=0).tolist() == [5.0, 7.0, 9.0]
    assert x.sum(1, keepdim=True).shape == (2, 1)
    assert x.mean().item() == 3.5 and x.mean(dim=1).tolist() == [3.0, 4.0]
    assert x.max().item() == 6.0 and x.min().item() == 1.0
    assert x.argmax().item() == 5 and x.argmax(dim=1).tolist() == [1, 2]
    values, indices = x.max(dim=1)
    assert values.tolist() == [5.0, 6.0] and indices.tolist() == [1, 2]
    values, indices = x.min(dim=0, keepdim=True)
    assert values.tolist() == [[1.0, 2.0, 3.0]] and indices.tolist() == [[0, 1, 0]]
    assert x.max(dim=1).values.dtype == lucid.float32
    assert x.max(dim=1).indices.dtype == lucid.int64


def test_movement_methods():
    x = lucid.arange(24).reshape(2, 3, 4)
    assert x.shape == (2, 3, 4) and x.view(6, -1).shape == (6, 4)
    assert x.permute(2, 0, 1).shape == (4, 2, 3)
    assert x.permute(2, 0, 1).numpy().tolist() == np.arange(24).reshape(2, 3, 4).transpose(
        2, 0, 1).tolist()
    assert x.transpose(0, 2).shape == (4, 3, 2)
    y = lucid.arange(6).reshape(2, 3)
    assert y.T.tolist() == [[0, 3], [1, 4], [2, 5]]
    assert x.flatten().shape == (24,) and x.flatten(1).shape == (2, 12)
    z = lucid.zeros(1, 3, 1)
    assert z.squeeze().shape == (3,) and z.squeeze(0).shape == (3, 1)
    assert z.unsqueeze(0).shape == (1, 1, 3, 1) and z.unsqueeze(-1).shape == (1, 3, 1, 1)
    e = Tensor([[1.0], [2.0]]).expand(2, 3)
    assert e.tolist() == [[1.0] * 3, [2.0] * 3]
    assert Tensor([1.0]).expand(-1).shape == (1,)


def test_math_methods():
    x = Tensor([-1.0, 0.5, 2.0])
    assert_close(x.exp(), np.exp([-1.0, 0.5, 2.0]).astype(np.float32))
    assert_close(x.abs().log(), np.log([1.0, 0.5, 2.0]).astype(np.float32))
    assert x.relu().tolist() == [0.0, 0.5, 2.0]
    assert_close(x.sigmoid(), 1 / (1 + np.exp(-np.array([-1.0, 0.5, 2.0], np.float32))))
    assert_close(x.tanh(), np.tanh(np.array([-1.0, 0.5, 2.0], np.float32)))
    assert x.clamp(-0.5, 1.0).tolist() == [-0.5, 0.5, 1.0]
    assert x.clamp(min=0.0).tolist() == [0.0, 0.5, 2.0]
    assert Tensor([1, 4]).exp().dtype == lucid.float32


def test_leaving_the_graph():
    x = Tensor([[1.5, 2.0]], requires_grad=True)
    assert Tensor(3.5).item() == 3.5 and isinstance(Tensor(3).item(), int)
    with pytest.raises(ValueError):
        x.item()
    assert isinstance(x.numpy(), np.ndarray) and x.tolist() == [[1.5, 2.0]]
    d = x.detach()
    assert not d.requires_grad and d.tolist() == [[1.5, 2.0]]
    c = x.clone()
    assert c.requires_grad and c.tolist() == [[1.5, 2.0]]
    c2 = x.detach().clone()
    c2.data[0, 0] = 9.0
    assert x.tolist() == [[1.5, 2.0]]  # clone copies
    y = Tensor([1.0])
    assert y.requires_grad_() is y and y.requires_grad


def test_attributes():
    x = lucid.zeros(2, 3, 4)
    assert x.shape == (2, 3, 4) and x.ndim == 3 and x.dtype == lucid.float32
    assert x.device == "cpu" and x.size() == (2, 3, 4) and x.size(1) == 3 and x.numel() == 24


def test_requires_grad_on_int_raises():
    with pytest.raises(lucid.LucidError, match="floating"):
        Tensor([1, 2], requires_grad=True)


# ------------------------------------------------------------------------------------ in place


def test_inplace_ops_values():
    x = Tensor([1.0, -2.0, 3.0])
    assert x.add_(1.0) is x and x.tolist() == [2.0, -1.0, 4.0]
    x.sub_(Tensor([1.0, 1.0, 1.0]))
    assert x.tolist() == [1.0, -2.0, 3.0]
    x.mul_(2.0)
    assert x.tolist() == [2.0, -4.0, 6.0]
    x.relu_()
    assert x.tolist() == [2.0, 0.0, 6.0]
    x.fill_(7.0)
    assert x.tolist() == [7.0, 7.0, 7.0]
    x.zero_()
    assert x.tolist() == [0.0, 0.0, 0.0]
    x.copy_(Tensor([4.0, 5.0, 6.0]))
    assert x.tolist() == [4.0, 5.0, 6.0]
    x.add_(Tensor([1.0, 1.0, 1.0]), alpha=2)
    assert x.tolist() == [6.0, 7.0, 8.0]


def test_inplace_bumps_version_shared_by_views():
    x = lucid.zeros(2, 3)
    v = x.reshape(6)
    before = x._version[0]
    v.add_(1.0)
    assert x._version[0] == before + 1
    assert x.tolist() == [[1.0] * 3] * 2  # the view writes through


def test_indexing_one_element_is_a_0d_view_as_in_pytorch():
    x = lucid.zeros(2, 3)
    e = x[1, 2]
    assert e.shape == () and e._version is x._version
    e.add_(5.0)
    x[0, 0].fill_(-1.0)
    assert x.tolist() == [[-1.0, 0.0, 0.0], [0.0, 0.0, 5.0]]
    assert e.item() == 5.0


def test_modifying_a_saved_tensor_raises_at_backward():
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = a * 2.0
    c = b * b  # saves b
    b.add_(1.0)
    with pytest.raises(lucid.LucidError, match=r"mul.*modified in place.*test_tensor\.py:\d+"):
        c.sum().backward()


def test_modifying_a_saved_output_raises_at_backward():
    a = Tensor([1.0, 2.0], requires_grad=True)
    e = (a * 1.0).exp()  # exp's vjp reads its own output
    e.mul_(2.0)
    with pytest.raises(lucid.LucidError, match="modified in place"):
        e.sum().backward()


def test_modifying_an_unsaved_tensor_is_fine():
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = a * 2.0
    c = b + 1.0  # add saves nothing
    b.add_(10.0)
    c.sum().backward()
    assert a.grad.tolist() == [2.0, 2.0]


def test_inplace_on_leaf_requiring_grad_raises():
    w = Tensor([1.0], requires_grad=True)
    with pytest.raises(lucid.LucidError, match="leaf"):
        w.add_(1.0)
    with lucid.no_grad():
        w.add_(1.0)
    assert w.tolist() == [2.0]


def test_relu_inplace_on_non_leaf_keeps_gradients():
    x = Tensor([-1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2.0
    y.relu_()
    (y * Tensor([1.0, 10.0, 100.0])).sum().backward()
    assert x.grad.tolist() == [0.0, 20.0, 200.0]
    assert y.tolist() == [0.0, 4.0, 6.0]


# ------------------------------------------------------------------- augmented assignment


def test_augmented_assignment_writes_in_place():
    w = Tensor([1.0, 2.0, 3.0])
    storage, version = w.data, w._version[0]
    ident = w
    w += 1.0
    w -= Tensor([0.5, 0.5, 0.5])
    w *= 2.0
    w /= Tensor([1.0, 2.0, 4.0])
    w **= 2.0
    assert w is ident and w.data is storage
    assert w.tolist() == [9.0, 6.25, 3.0625]  # ((x + 1 - 0.5) * 2 / d) ** 2
    assert w._version[0] == version + 5


def test_manual_sgd_with_augmented_assignment_trains_the_parameter():
    """The tutorial loop: `w -= lr * w.grad` under no_grad must update w itself."""
    x = Tensor([[1.0, 2.0], [3.0, 4.0]])
    w = Tensor([[0.5], [-0.5]], requires_grad=True)
    before = w.numpy().copy()
    loss = (x @ w).sum()
    loss.backward()
    with lucid.no_grad():
        w -= 0.1 * w.grad
    assert w.requires_grad and w.is_leaf
    np.testing.assert_allclose(w.numpy(), before - 0.1 * np.array([[4.0], [6.0]]), rtol=1e-6)


def test_augmented_assignment_through_views_and_subscripts():
    t = lucid.zeros(2, 3)
    v = t[0]
    v += 5.0  # the view writes through
    t[1, 1:] += Tensor([1.0, 2.0])  # getitem, in-place add, setitem
    assert t.tolist() == [[5.0, 5.0, 5.0], [0.0, 1.0, 2.0]]
    assert v._version is t._version


def test_augmented_assignment_on_a_leaf_requiring_grad_raises():
    w = Tensor([1.0], requires_grad=True)
    with pytest.raises(lucid.LucidError, match=r"leaf tensor that requires grad.*in-place.*"
                                              r"test_tensor\.py:\d+"):
        w -= 1.0
    assert w.tolist() == [1.0]


def test_augmented_assignment_keeps_the_dtype_rules_of_in_place_ops():
    i = Tensor([1, 2])
    with pytest.raises(lucid.LucidError, match="float32 cannot be written into .* int64"):
        i /= 2
    i *= 3
    assert i.dtype == lucid.int64 and i.tolist() == [3, 6]


def test_augmented_assignment_is_differentiable_on_non_leaves():
    x = Tensor([1.0, 2.0], requires_grad=True)
    h = x * 2.0
    h += 1.0
    h *= 3.0  # the gradient for h reads only 3.0: h's old value is not needed
    h /= 2.0
    h.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0], rtol=1e-6)


def test_an_in_place_write_still_raises_where_the_gradient_needs_the_old_value():
    x = Tensor([1.0, 2.0], requires_grad=True)
    h = x * 2.0
    y = h * x  # the gradient for x reads h
    h += 1.0
    with pytest.raises(lucid.LucidError, match=r"mul\(f32\[2\], f32\[2\]\): input 0 needed"):
        y.sum().backward()
