"""lucid.autograd.functional: jacobian, hessian, vjp, jvp, hvp and vhp against central finite
differences and closed forms."""

from __future__ import annotations

import numpy as np
import pytest

import lucid
from lucid.autograd import functional as AF


def _f(x, w):
    return (x @ w).tanh().sum(0) * x.sum()


def _fd_jacobian(fn, args, i, eps=1e-6):
    base = [a.copy() for a in args]
    out_shape = fn(*[lucid.tensor(a) for a in base]).shape
    jac = np.zeros(out_shape + args[i].shape)
    for idx in np.ndindex(args[i].shape):
        plus = [a.copy() for a in base]
        minus = [a.copy() for a in base]
        plus[i][idx] += eps
        minus[i][idx] -= eps
        d = (fn(*[lucid.tensor(a) for a in plus]).numpy()
             - fn(*[lucid.tensor(a) for a in minus]).numpy()) / (2 * eps)
        jac[(...,) + idx] = d
    return jac


def test_jacobian_against_finite_differences():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((3, 2)), rng.standard_normal((2, 4))
    jx, jw = AF.jacobian(_f, (lucid.tensor(x), lucid.tensor(w)))
    assert jx.shape == (4, 3, 2) and jw.shape == (4, 2, 4)
    np.testing.assert_allclose(jx.numpy(), _fd_jacobian(_f, [x, w], 0), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(jw.numpy(), _fd_jacobian(_f, [x, w], 1), rtol=1e-6, atol=1e-8)
    single = AF.jacobian(lambda t: t * t, lucid.tensor([1.0, 2.0], dtype=lucid.float64))
    assert single.tolist() == [[2.0, 0.0], [0.0, 4.0]]


def test_hessian_and_its_products():
    x = np.array([1.0, 2.0, 3.0])
    fn = lambda t: (t ** 3).sum() * t[0]  # noqa: E731
    s = (x ** 3).sum()
    # d2/dxi dxj of x0 * sum(x^3) = [i=0] 3 xj^2 + [j=0] 3 xi^2 + [i=j] 6 x0 xi
    h = np.diag(6 * x[0] * x)
    h[0, :] += 3 * x ** 2
    h[:, 0] += 3 * x ** 2
    t = lucid.tensor(x, dtype=lucid.float64)
    np.testing.assert_allclose(AF.hessian(fn, t).numpy(), h, rtol=1e-12)
    v = np.array([0.5, -1.0, 2.0])
    value, hv = AF.hvp(fn, t, lucid.tensor(v))
    np.testing.assert_allclose(hv.numpy(), h @ v, rtol=1e-12)
    assert value.item() == pytest.approx(x[0] * s)
    np.testing.assert_allclose(AF.vhp(fn, t, lucid.tensor(v))[1].numpy(), v @ h, rtol=1e-12)


def test_vjp_and_jvp_are_products_with_the_jacobian():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(4)
    fn = lambda t: t.sin() * t[1]  # noqa: E731
    jac = _fd_jacobian(fn, [x], 0)
    u, v = rng.standard_normal(4), rng.standard_normal(4)
    t = lucid.tensor(x)
    out, uj = AF.vjp(fn, t, lucid.tensor(u))
    np.testing.assert_allclose(out.numpy(), np.sin(x) * x[1], rtol=1e-12)
    np.testing.assert_allclose(uj.numpy(), u @ jac, rtol=1e-6)
    np.testing.assert_allclose(AF.jvp(fn, t, lucid.tensor(v))[1].numpy(), jac @ v, rtol=1e-6)
    assert not uj.requires_grad and not t.requires_grad
    with pytest.raises(RuntimeError, match="independent of input 1"):
        AF.jacobian(lambda a, b: a * 2.0, (lucid.ones(2), lucid.ones(2)), strict=True)
