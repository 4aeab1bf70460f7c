"""Tensor.__setitem__: values as NumPy's assignment gives them, and gradients routed by position."""

import numpy as np
import pytest

import lucid
from tests.helpers import assert_close


@pytest.mark.parametrize("key", [
    (slice(None), 1),
    (0,),
    (slice(1, 3), slice(None, None, 2)),
    (np.array([0, 2]),),
    (Ellipsis, -1),
])
def test_setitem_matches_numpy(key):
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = lucid.tensor(base.copy())
    expected = base.copy()
    index = tuple(lucid.tensor(k) if isinstance(k, np.ndarray) else k for k in key)
    t[index] = -5.0
    expected[key] = -5.0
    assert_close(t, expected)


def test_setitem_with_tensor_value_and_bool_mask():
    t = lucid.tensor([[1.0, -2.0], [-3.0, 4.0]])
    t[t < 0] = 0.0
    assert_close(t, np.array([[1.0, 0.0], [0.0, 4.0]], np.float32))
    t[1] = lucid.tensor([7.0, 8.0])
    assert_close(t, np.array([[1.0, 0.0], [7.0, 8.0]], np.float32))


def test_setitem_keeps_dtype_and_bumps_version():
    t = lucid.zeros(2, 3, dtype=lucid.int64)
    version = t._version[0]
    t[:, 0] = 3
    assert t.dtype == lucid.int64
    assert t.tolist() == [[3, 0, 0], [3, 0, 0]]
    assert t._version[0] == version + 1


def test_setitem_gradients():
    x = lucid.randn(3, 4, requires_grad=True)
    v = lucid.randn(3, requires_grad=True)
    y = x * 2.0
    y[:, 1] = v
    (y * lucid.arange(12).reshape(3, 4).float()).sum().backward()
    weights = np.arange(12, dtype=np.float32).reshape(3, 4)
    expected_x = 2.0 * weights
    expected_x[:, 1] = 0.0
    assert_close(x.grad, expected_x)
    assert_close(v.grad, weights[:, 1])


def test_setitem_on_leaf_requiring_grad_raises():
    x = lucid.randn(3, requires_grad=True)
    with pytest.raises(lucid.LucidError, match="leaf"):
        x[0] = 1.0
