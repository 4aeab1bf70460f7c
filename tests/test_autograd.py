"""The chain-rule loop: seeding, accumulation, graph freeing, grad mode, lucid.grad."""

from __future__ import annotations

import numpy as np
import pytest

import lucid
from lucid import Tensor


def test_backward_on_non_scalar_seeds_ones():
    x = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    (x * x).backward()
    assert x.grad.tolist() == [[2.0, 4.0], [6.0, 8.0]]
    assert isinstance(x.grad, Tensor)


def test_backward_with_explicit_gradient():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * 3.0).backward(Tensor([1.0, 0.0, -2.0]))
    assert x.grad.tolist() == [3.0, 0.0, -6.0]
    y = Tensor([1.0, 2.0], requires_grad=True)
    (y * y).backward([1.0, 1.0])  # a plain list also works
    assert y.grad.tolist() == [2.0, 4.0]


def test_backward_gradient_shape_mismatch_raises():
    x = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(lucid.LucidError, match="shape"):
        (x * 2.0).backward(Tensor([1.0, 2.0, 3.0]))


def test_gradients_accumulate_across_backward_calls():
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    assert x.grad.tolist() == [5.0, 7.0]


def test_retain_graph_allows_second_backward():
    x = Tensor([2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [8.0]


def test_second_backward_through_freed_graph_raises():
    x = Tensor([2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(lucid.LucidError, match=r"freed.*retain_graph.*test_autograd\.py:\d+"):
        y.backward()


def test_backward_without_graph_raises():
    with pytest.raises(lucid.LucidError, match="does not require grad"):
        Tensor([1.0]).sum().backward()


def test_no_grad_and_enable_grad():
    x = Tensor([1.0], requires_grad=True)
    with lucid.no_grad():
        y = x * 2.0
        assert not lucid.is_grad_enabled()
        with lucid.enable_grad():
            z = x * 2.0
    assert not y.requires_grad and y._ctx is None
    assert z.requires_grad
    assert lucid.is_grad_enabled()


def test_grad_mode_decorators():
    @lucid.no_grad()
    def f(t):
        return t * 2.0

    @lucid.enable_grad()
    def g(t):
        return t * 2.0

    x = Tensor([1.0], requires_grad=True)
    assert not f(x).requires_grad and f.__name__ == "f"
    with lucid.no_grad():
        assert g(x).requires_grad


def test_grad_returns_without_accumulating():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = Tensor([3.0, 4.0], requires_grad=True)
    gx, gy = lucid.grad((x * y).sum(), [x, y])
    assert gx.tolist() == [3.0, 4.0] and gy.tolist() == [1.0, 2.0]
    assert x.grad is None and y.grad is None


def test_grad_unused_input():
    x = Tensor([1.0], requires_grad=True)
    u = Tensor([1.0], requires_grad=True)
    with pytest.raises(lucid.LucidError, match="not used"):
        lucid.grad((x * 2.0).sum(), [x, u])
    gx, gu = lucid.grad((x * 2.0).sum(), [x, u], allow_unused=True)
    assert gx.tolist() == [2.0] and gu is None


def test_second_derivative_with_create_graph():
    x = Tensor([2.0, -1.0], requires_grad=True, dtype=lucid.float64)
    y = (x ** 3).sum()
    (dx,) = lucid.grad(y, x, create_graph=True)
    np.testing.assert_allclose(dx.numpy(), 3 * np.array([2.0, -1.0]) ** 2)
    assert dx.requires_grad
    (d2x,) = lucid.grad(dx.sum(), x)
    np.testing.assert_allclose(d2x.numpy(), 6 * np.array([2.0, -1.0]))


def test_double_backward_via_backward_create_graph():
    x = Tensor([1.5], requires_grad=True, dtype=lucid.float64)
    (x.sin() * x).sum().backward(create_graph=True)
    g = x.grad  # sin x + x cos x
    x.grad = None
    g.sum().backward()
    v = 1.5
    np.testing.assert_allclose(x.grad.numpy(), [2 * np.cos(v) - v * np.sin(v)])


def test_broadcasting_gradients_reduce_to_operand_shape():
    a = Tensor(np.ones((3, 1)), requires_grad=True)
    b = Tensor(np.arange(4.0).reshape(1, 4), requires_grad=True)
    c = Tensor(2.0, requires_grad=True)
    ((a + b) * c).sum().backward()
    assert a.grad.shape == (3, 1) and a.grad.tolist() == [[8.0]] * 3
    assert b.grad.shape == (1, 4) and b.grad.tolist() == [[6.0] * 4]
    assert c.grad.shape == () and c.grad.item() == pytest.approx(3 * 4 + 3 * 6)


def test_gradient_dtype_equals_leaf_dtype():
    x32 = Tensor([1.0, 2.0], requires_grad=True)
    x64 = Tensor([1.0, 2.0], dtype=lucid.float64, requires_grad=True)
    (x32 * x64).sum().backward()  # promoted to float64 in the forward
    assert x32.grad.dtype == lucid.float32 and x64.grad.dtype == lucid.float64
    assert x32.grad.tolist() == [1.0, 2.0]
    y = Tensor([1.0], requires_grad=True)
    (y * 2).sum().backward()  # int scalar does not widen
    assert y.grad.dtype == lucid.float32


def test_shared_subexpression_gradients_add():
    x = Tensor([3.0], requires_grad=True)
    y = x * x
    (y + y * x).sum().backward()  # x^2 + x^3
    assert x.grad.tolist() == [2 * 3.0 + 3 * 9.0]


def test_leaf_grads_do_not_alias():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = Tensor([1.0, 2.0], requires_grad=True)
    (x + y).sum().backward()
    x.grad.mul_(10.0)
    assert y.grad.tolist() == [1.0, 1.0]


def test_integer_cast_does_not_carry_gradient():
    # d floor(x) / dx is 0 almost everywhere: an integer result must not pass gradient back.
    x = Tensor([1.7, 2.2], requires_grad=True)
    i = x.long()
    assert not i.requires_grad
    y = (x * 2.0).sum() + i.float().sum()
    y.backward()
    assert x.grad.tolist() == [2.0, 2.0]
