"""lucid.linalg: the norms (PyTorch's torch.linalg.norm, vector_norm, matrix_norm) in lucid ops;
inv, solve, det, slogdet and cholesky on the linear-algebra primitives (lucid/ops/linalg.py);
matrix_power and multi_dot as matmuls. Eigen-, singular-value and QR decompositions are not
there (docs/DIFFERENCES.md)."""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from lucid import ops
from lucid.tensor import Tensor

SlogdetResult = namedtuple("SlogdetResult", ["sign", "logabsdet"])


def vector_norm(x: Tensor, ord=2, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A002
    return x.norm(ord, dim, keepdim)


def matrix_norm(x: Tensor, ord="fro", dim=(-2, -1), keepdim: bool = False) -> Tensor:  # noqa: A002
    if ord != "fro":
        raise NotImplementedError(f"matrix_norm(ord={ord!r}): lucid has the Frobenius norm")
    return x.norm("fro", dim, keepdim)


def norm(x: Tensor, ord=None, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A002
    """The 2-norm of the flattened tensor by default; `ord` a vector order (with a vector dim)
    or "fro"."""
    if ord is None:
        return x.norm(2, dim, keepdim)
    if ord == "fro":
        return x.norm("fro", dim if dim is not None else (-2, -1), keepdim)
    return x.norm(ord, dim, keepdim)


def inv(A: Tensor) -> Tensor:  # noqa: N803 (PyTorch's argument name)
    """The inverse of (a batch of) square matrices; a singular one is an error."""
    return ops.inv(A)


def solve(A: Tensor, B: Tensor, *, left: bool = True) -> Tensor:  # noqa: N803
    """X with A X = B (or X A = B with left=False). B is a batch of vectors where it has one
    dimension fewer than A, else of matrices; batch dimensions broadcast."""
    if not left:
        return solve(A.transpose(-2, -1), B.transpose(-2, -1)).transpose(-2, -1)
    vector = B.ndim == A.ndim - 1 or B.ndim == 1
    b = B.unsqueeze(-1) if vector else B
    batch = tuple(np.broadcast_shapes(A.shape[:-2], b.shape[:-2]))
    a = A.broadcast_to(batch + A.shape[-2:])
    b = b.broadcast_to(batch + b.shape[-2:])
    if a.dtype != b.dtype:
        from lucid import dtypes

        target = dtypes.promote(a.dtype, b.dtype)
        a, b = a.cast(target), b.cast(target)
    x = ops.solve(a, b)
    return x.squeeze(-1) if vector else x


def slogdet(A: Tensor) -> SlogdetResult:  # noqa: N803
    """(sign, log |det|) of (a batch of) square matrices: the determinant without overflow."""
    return SlogdetResult(ops.detsign(A), ops.logabsdet(A))


def det(A: Tensor) -> Tensor:  # noqa: N803
    """The determinant, as sign * exp(log |det|)."""
    sign, logabs = slogdet(A)
    return sign * logabs.exp()


def logdet(A: Tensor) -> Tensor:  # noqa: N803
    """log det A: nan where the determinant is negative, -inf where it is zero."""
    sign, logabs = slogdet(A)
    from lucid.functions import where

    return where(sign < 0, float("nan"), logabs)


def cholesky(A: Tensor, *, upper: bool = False) -> Tensor:  # noqa: N803
    """The Cholesky factor of (a batch of) symmetric positive-definite matrices: lower L with
    A = L L^T (or upper U = L^T with A = U^T U)."""
    low = ops.cholesky(A)
    return low.transpose(-2, -1) if upper else low


def matrix_power(A: Tensor, n: int) -> Tensor:  # noqa: N803
    """A^n by repeated squaring (n < 0: of the inverse; n = 0: the identity)."""
    if n < 0:
        return matrix_power(inv(A), -n)
    if n == 0:
        eye = Tensor(np.eye(A.shape[-1], dtype=A.dtype), device=A.device)
        return eye.broadcast_to(A.shape)
    result, square = None, A
    while n:
        if n & 1:
            result = square if result is None else result @ square
        n >>= 1
        if n:
            square = square @ square
    return result


def multi_dot(tensors) -> Tensor:
    """The product of the matrices, left to right (the first may be a vector, as the last)."""
    tensors = list(tensors)
    if len(tensors) < 2:
        raise RuntimeError("multi_dot(): expected at least 2 tensors but got "
                           f"{len(tensors)}")
    out = tensors[0]
    for t in tensors[1:]:
        out = out @ t
    return out
