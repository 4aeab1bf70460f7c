"""What generated modules import: the vectorizable transcendentals and the few kernels that are
the same for every graph."""

from __future__ import annotations

import numba
import numpy as np

from lucid_jit.codegen.vmath import (  # noqa: F401 (re-exported for generated modules)
    erf_f32,
    erf_f64,
    exp_f32,
    exp_f64,
    log_f32,
    log_f64,
    sigmoid_f32,
    sigmoid_f64,
    tanh_f32,
    tanh_f64,
)


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


__all__ = ["argmax3", "np"]
