"""`lucid.autograd.Function` (lucid/autograd/function.py): PyTorch's custom-backward API, eagerly
and under lucid.compile, checked against finite differences and PyTorch's documented rules."""

from __future__ import annotations

import numpy as np
import pytest

import lucid
from lucid import Tensor
from lucid.autograd import Function, once_differentiable
from tests.helpers import check_vjp


class Cube(Function):
    """x^3 with its true derivative, saved through ctx."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3.0 * g * x * x


class Mix(Function):
    """Two outputs from a matrix and a broadcast row, a non-tensor scale, the new-style
    forward/setup_context split, and a gradient for w returned at the broadcast shape."""

    @staticmethod
    def forward(x, w, scale):
        return x * w * scale, (x + w).exp()

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, w, scale = inputs
        ctx.scale = scale
        ctx.save_for_backward(x, w, output[1])

    @staticmethod
    def backward(ctx, ga, gb):
        x, w, e = ctx.saved_tensors
        return ga * w * ctx.scale + gb * e, ga * x * ctx.scale + gb * e, None


class StraightThrough(Function):
    """Rounds forward, passes the gradient through unchanged (its forward ops have gradient 0)."""

    @staticmethod
    def forward(ctx, x):
        return x.round()

    @staticmethod
    def backward(ctx, g):
        return g


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    check_vjp(lambda x: Cube.apply(x), [rng.uniform(-2, 2, (3, 4))], [0], rng, what="Cube")

    def mixed(x, w):
        a, b = Mix.apply(x, w, 1.5)
        return a * 2.0 + b
    check_vjp(mixed, [rng.uniform(-1, 1, (3, 4)), rng.uniform(-1, 1, (4,))], [0, 1], rng,
              per_input=True, what="Mix")


def test_one_output_unused_is_seeded_with_zeros_or_none():
    seen = []

    class Probe(Function):
        @staticmethod
        def forward(ctx, x, materialize):
            ctx.set_materialize_grads(materialize)
            return x * 2.0, x * 3.0

        @staticmethod
        def backward(ctx, ga, gb):
            seen.append(gb if gb is None else gb.tolist())
            return ga * 2.0, None

    for materialize in (True, False):
        x = Tensor([1.0, 2.0], requires_grad=True)
        a, _b = Probe.apply(x, materialize)
        a.sum().backward()
        assert x.grad.tolist() == [2.0, 2.0]
    assert seen == [[0.0, 0.0], None]


def test_backward_runs_once_for_all_outputs():
    calls = []

    class Split(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0, x * 1.0

        @staticmethod
        def backward(ctx, ga, gb):
            calls.append((ga.tolist(), gb.tolist()))
            return ga + 2.0 * gb

    x = Tensor([1.0, 2.0], requires_grad=True)
    a, b = Split.apply(x)
    (a * 3.0 + b).sum().backward()
    assert calls == [([3.0, 3.0], [1.0, 1.0])] and x.grad.tolist() == [5.0, 5.0]


def _ste_loss(x):
    return (StraightThrough.apply(x * 3.0) * x).sum()


@pytest.mark.parametrize("how", ["eager", "compiled forward", "compiled step"])
def test_the_users_backward_is_used_not_the_forwards_ops(how):
    data = np.array([[0.2, -1.3, 0.7], [2.4, -0.1, 1.6]], np.float32)
    expected = np.round(data * 3.0) + 3.0 * data  # d/dx (round(3x) x) with round' taken as 1
    x = Tensor(data, requires_grad=True)
    if how == "compiled step":
        @lucid.compile(fullgraph=True)
        def step(x):
            loss = _ste_loss(x)
            loss.backward()
            return loss
    else:
        fn = _ste_loss if how == "eager" else lucid.compile(_ste_loss, fullgraph=True)

        def step(x):
            loss = fn(x)
            loss.backward()
            return loss
    for _ in range(4):  # through the interpreter and the native tier
        x.grad = None
        loss = step(x)
        np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6)
        np.testing.assert_allclose(loss.item(), float(np.sum(np.round(data * 3) * data)),
                                   rtol=1e-6)


def test_double_backward_and_once_differentiable():
    x = Tensor([3.0, -2.0], requires_grad=True)
    (gx,) = lucid.grad(Cube.apply(x).sum(), x, create_graph=True)
    gx.sum().backward()
    assert gx.tolist() == [27.0, 12.0] and x.grad.tolist() == [18.0, -12.0]

    class Once(Cube):
        @staticmethod
        @once_differentiable
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3.0 * g * x * x

    x = Tensor([3.0], requires_grad=True)
    (gx,) = lucid.grad(Once.apply(x).sum(), x, create_graph=True)
    assert gx.tolist() == [27.0] and not gx.requires_grad


def test_outputs_inputs_and_grad_mode():
    class Identity(Function):
        @staticmethod
        def forward(ctx, x, y):
            assert not lucid.is_grad_enabled()
            ctx.flags = ctx.needs_input_grad
            ctx.mark_non_differentiable(y)
            return x, y

        @staticmethod
        def backward(ctx, gx, gy):
            return 5.0 * gx, None

    x = Tensor([1.0, 2.0], requires_grad=True)
    h = x * 1.0  # a tensor with a history: returning it must not rewrite that history
    y = Tensor([4.0], requires_grad=True)
    a, b = Identity.apply(h, y)
    assert a is not h and a.requires_grad and not b.requires_grad
    (a.sum() + h.sum()).backward()
    assert x.grad.tolist() == [6.0, 6.0]
    with lucid.no_grad():
        out = Cube.apply(x)
    assert not out.requires_grad
    ints = Cube.apply(Tensor([2]))
    assert ints.tolist() == [8] and not ints.requires_grad


def test_mistakes_are_clear_errors():
    class TooFew(Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, g):
            return g

    x, y = Tensor([1.0], requires_grad=True), Tensor([2.0], requires_grad=True)
    with pytest.raises(lucid.LucidError, match="TooFew.backward returned an incorrect number "
                                               "of gradients \\(expected 2, got 1\\)"):
        TooFew.apply(x, y).sum().backward()

    class WrongShape(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2.0

        @staticmethod
        def backward(ctx, g):
            return lucid.ones(3)

    with pytest.raises(lucid.LucidError, match="WrongShape.backward returned a gradient of "
                                               "shape \\(3,\\) for argument 0, of shape \\(2,\\)"):
        WrongShape.apply(Tensor([1.0, 2.0], requires_grad=True)).sum().backward()

    class ForAnInt(Function):
        @staticmethod
        def forward(ctx, x, k):
            return x * k

        @staticmethod
        def backward(ctx, g):
            return g, g

    with pytest.raises(lucid.LucidError, match="argument 1, which is not a tensor"):
        ForAnInt.apply(Tensor([1.0], requires_grad=True), 2).sum().backward()

    z = Tensor([1.0, 2.0], requires_grad=True)
    w = z * 1.0
    out = Cube.apply(w)
    w.add_(1.0)
    with pytest.raises(lucid.LucidError, match="Cube: saved tensor 0 .* modified in place"):
        out.sum().backward()
    with pytest.raises(RuntimeError, match="Cube.apply"):
        Cube()
