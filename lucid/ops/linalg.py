"""Linear-algebra primitives on (batches of) square matrices: inv, solve, the log of the
absolute determinant and its sign, and the Cholesky factor. Each runs NumPy's LAPACK routine
(on the host: a compiled graph runs them between its native segments) and has a vjp written in
lucid ops (matmuls and these primitives themselves)."""

from __future__ import annotations

import numpy as np

from lucid import dtypes
from lucid.ops.registry import OUT, Aval, DTypeError, ShapeError, defop, op_error


def _square(op: str, a: Aval) -> None:
    if not dtypes.is_floating(a.dtype):
        raise op_error(op, [a], "needs a floating dtype (float32 or float64)", DTypeError)
    if len(a.shape) < 2 or a.shape[-1] != a.shape[-2]:
        raise op_error(op, [a], "needs (a batch of) square matrices (..., n, n)", ShapeError)


def _square_infer(op: str):
    def rule(a: Aval) -> Aval:
        _square(op, a)
        return a
    return rule


def _mT(x):
    return x.transpose(-2, -1)


def _inv_impl(a: np.ndarray) -> np.ndarray:
    return np.linalg.inv(a).astype(a.dtype, copy=False)


# d(A^-1) = -A^-1 dA A^-1, so the gradient is -A^-T g A^-T.
inv = defop("inv", kind="linalg", impl=_inv_impl, infer=_square_infer("inv"),
            vjp=lambda g, out, a: (-(_mT(out) @ g @ _mT(out)),), save=(OUT,))


def _solve_infer(a: Aval, b: Aval) -> Aval:
    _square("solve", a)
    if a.dtype != b.dtype:
        raise op_error("solve", [a, b], "the two operands' dtypes differ", DTypeError)
    if len(b.shape) != len(a.shape) or b.shape[:-2] != a.shape[:-2] \
            or b.shape[-2] != a.shape[-1]:
        raise op_error("solve", [a, b], "B must be (..., n, k) with A's batch dims and n",
                       ShapeError)
    return b


def _solve_vjp(g, out, a, b):
    gb = solve(_mT(a), g)  # A^-T g
    return -(gb @ _mT(out)), gb


# X = A^-1 B (B a batch of matrices: the Python API adds and drops a vector's column).
solve = defop("solve", kind="linalg",
              impl=lambda a, b: np.linalg.solve(a, b).astype(b.dtype, copy=False),
              infer=_solve_infer, vjp=_solve_vjp, save=(0, OUT))


def _det_infer(op: str):
    def rule(a: Aval) -> Aval:
        _square(op, a)
        return Aval(a.shape[:-2], a.dtype)
    return rule


# log |det A|; its gradient is A^-T (times g per matrix).
logabsdet = defop("logabsdet", kind="linalg",
                  impl=lambda a: np.asarray(np.linalg.slogdet(a)[1], a.dtype),
                  infer=_det_infer("logabsdet"),
                  vjp=lambda g, out, a: (g.unsqueeze(-1).unsqueeze(-1) * _mT(inv(a)),),
                  save=(0,))

# sign(det A): piecewise constant, so it has no gradient.
detsign = defop("detsign", kind="linalg",
                impl=lambda a: np.asarray(np.linalg.slogdet(a)[0], a.dtype),
                infer=_det_infer("detsign"))


def _cholesky_impl(a: np.ndarray) -> np.ndarray:
    return np.linalg.cholesky(a).astype(a.dtype, copy=False)


def _cholesky_vjp(g, out, a):
    # For A = L L^T: gA = sym(L^-T Phi(L^T gL) L^-1), Phi taking the lower triangle with the
    # diagonal halved (the gradient with respect to a symmetric A's independent entries,
    # spread evenly over the two triangles).
    n = out.shape[-1]
    lower = _const(np.tril(np.ones((n, n), out.dtype)) - 0.5 * np.eye(n, dtype=out.dtype), out)
    phi = (_mT(out) @ g) * lower
    l_inv = inv(out)
    s = _mT(l_inv) @ phi @ l_inv
    return ((s + _mT(s)) * 0.5,)


def _const(array: np.ndarray, like):
    from lucid.tensor import Tensor

    return Tensor(array, device=like.device)


cholesky = defop("cholesky", kind="linalg", impl=_cholesky_impl,
                 infer=_square_infer("cholesky"), vjp=_cholesky_vjp, save=(OUT,))
