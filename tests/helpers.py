"""Small assertions shared by the tests."""

from __future__ import annotations

import numpy as np

from lucid import Tensor


def to_numpy(x) -> np.ndarray:
    return x.numpy() if isinstance(x, Tensor) else np.asarray(x)


def assert_close(actual, expected, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    a, e = to_numpy(actual), to_numpy(expected)
    assert a.shape == e.shape, f"shape {a.shape} != expected {e.shape}"
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol)
