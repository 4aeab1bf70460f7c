"""Batched matrix multiply.

`matmul(a, b)` takes a of shape (..., M, K) and b of shape (K, N) or (..., K, N) with the same
batch dimensions; Tensor's `@` inserts the explicit broadcasts and the reshapes for 1-d operands.
A 2-d b shared across a batch is common (a Linear layer on a 3-d input), so it is accepted
directly: its gradient is then one (K, M*batch) @ (M*batch, N) product instead of a batched one.
"""

from __future__ import annotations

import numpy as np

from lucid import dtypes
from lucid.ops.movement import permute, reshape
from lucid.ops.registry import Aval, DTypeError, ShapeError, defop, op_error


def _matmul_infer(a: Aval, b: Aval) -> Aval:
    if len(a.shape) < 2 or len(b.shape) < 2:
        raise op_error("matmul", (a, b), "operands must have at least 2 dimensions", ShapeError)
    if a.dtype != b.dtype:
        raise op_error("matmul", (a, b), "dtypes differ (cast explicitly)", DTypeError)
    if a.dtype == dtypes.bool_:
        raise op_error("matmul", (a, b), "needs a numeric dtype, got bool", DTypeError)
    if a.shape[-1] != b.shape[-2]:
        raise op_error("matmul", (a, b),
                       f"inner dimensions {a.shape[-1]} and {b.shape[-2]} differ", ShapeError)
    if len(b.shape) > 2 and a.shape[:-2] != b.shape[:-2]:
        raise op_error("matmul", (a, b), "batch dimensions differ (broadcast explicitly)",
                       ShapeError)
    return Aval(a.shape[:-1] + (b.shape[-1],), a.dtype)


def transpose_last(t):
    """Swap the last two axes."""
    n = len(t.shape)
    return permute(t, axes=tuple(range(n - 2)) + (n - 1, n - 2))


def _matmul_vjp(g, out, a, b):
    ga = matmul(g, transpose_last(b))
    if len(b.shape) == 2:
        k, n = b.shape
        a2 = reshape(a, shape=(int(np.prod(a.shape[:-1])), k))
        g2 = reshape(g, shape=(a2.shape[0], n))
        gb = matmul(transpose_last(a2), g2)
    else:
        gb = matmul(transpose_last(a), g)
    return ga, gb


matmul = defop("matmul", kind="matmul", impl=np.matmul, infer=_matmul_infer, vjp=_matmul_vjp,
               save={0: (1,), 1: (0,)})
