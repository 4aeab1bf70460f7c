"""What generated modules import besides the math functions (vmath.py): the few kernels that are
the same for every graph."""

from __future__ import annotations

import numba
import numpy as np
from numba.extending import overload


@numba.njit(cache=True, error_model="numpy")
def argmax3(x, out):
    """out[p, q] = argmax over j of x[p, j, q]: the first maximum, or the first nan (NumPy's)."""
    P, N, Q = x.shape
    for p in range(P):
        for q in range(Q):
            best = x[p, 0, q]
            at = 0
            for j in range(1, N):
                v = x[p, j, q]
                if best == best and (v > best or v != v):
                    best = v
                    at = j
            out[p, q] = at
    return out


def writeback(dst, src):
    """Copy src into dst unless they are one array: after an in-place update of a C-contiguous
    input (the usual case) nothing is copied; numba decides this from the layout when it
    compiles."""
    if dst is not src:
        dst[...] = src


@overload(writeback, jit_options={"cache": True})
def _writeback(dst, src):
    if getattr(dst, "layout", None) == "C":
        return lambda dst, src: None

    def copy(dst, src):
        dst[...] = src

    return copy


__all__ = ["argmax3", "np", "writeback"]
