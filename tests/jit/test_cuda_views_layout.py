"""The GPU branch of `lucid_jit.codegen.cuda.runtime.view`, run without a GPU: numba's DeviceNDArray
over a stand-in for device memory whose "pointers" are addresses in a host buffer, so each view
the runtime builds (shape, strides, offset into the same memory) can be read back on the host and
compared with NumPy's own view. (Under the simulator `view` takes the other branch, and checks
the same layout against the simulator's real NumPy views.)"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

runtime = pytest.importorskip("lucid_jit.codegen.cuda.runtime")
pytestmark = pytest.mark.skipif(runtime.SIMULATOR, reason="the simulator takes the other branch")


class _Memory:
    """What DeviceNDArray needs of device memory: a pointer, and views at a byte offset."""

    def __init__(self, ptr: int, size: int) -> None:
        self.ptr, self.size = ptr, size

    def view(self, start: int):
        return _Memory(self.ptr + start, self.size - start)

    @property
    def device_ctypes_pointer(self):
        return ctypes.c_void_p(self.ptr)


def _device(host: np.ndarray):
    memory = _Memory(host.ctypes.data, host.nbytes)
    return runtime.DeviceNDArray(host.shape, host.strides, host.dtype, gpu_data=memory)


def _read(dev, keep: np.ndarray) -> np.ndarray:
    """The host array the device array describes (its memory is `keep`'s)."""
    start = dev.gpu_data.ptr - keep.ctypes.data
    assert 0 <= start and start + dev.alloc_size <= keep.nbytes
    flat = keep.reshape(-1).view(np.uint8)
    return np.ndarray(dev.shape, dev.dtype, buffer=flat, offset=start, strides=dev.strides)


CASES = [
    ("rows", lambda h: h[1:3]),
    ("column", lambda h: h[:, 2, ...]),
    ("strided", lambda h: h[::2, 1::3]),
    ("element", lambda h: h[1, 4, ...]),
    ("new axis", lambda h: h[None, 2]),
    ("transpose", lambda h: np.transpose(h, (1, 0))),
    ("reshape", lambda h: np.reshape(h, (3, 8), copy=False)),
    ("broadcast", lambda h: np.broadcast_to(h[1:2, :], (5, 6))),
    ("view of a view", lambda h: np.transpose(h, (1, 0))[2:, ::2][None]),
]


@pytest.mark.parametrize("name,fn", CASES, ids=[c[0] for c in CASES])
def test_views_of_device_memory_match_numpys(name, fn):
    host = np.arange(24, dtype=np.float32).reshape(4, 6)
    base = _device(host)
    for dev_base, host_base in ((base, host), (runtime.view(base, lambda h: h[1:, 1:]),
                                               host[1:, 1:])):
        try:
            want = fn(host_base)
        except (IndexError, ValueError):  # (a shape that only fits the full base)
            continue
        got = runtime.view(dev_base, fn)
        assert isinstance(got, runtime.DeviceNDArray)
        np.testing.assert_array_equal(_read(got, host), want)
        assert runtime.shares_memory(got, dev_base)


def test_views_numpy_would_copy_are_none_and_negative_steps_reversed():
    host = np.arange(24, dtype=np.float64).reshape(4, 6)
    base = _device(host)
    t = runtime.view(base, lambda h: h.T)
    assert runtime.view(t, lambda h: np.reshape(h, (24,), copy=False)) is None
    assert runtime.view(base, lambda h: h[::-1]) is runtime.REVERSED
    assert runtime.view(base, lambda h: h[[0, 2]]) is None  # a gather copies
    other = _device(np.zeros(3))
    assert not runtime.shares_memory(base, other)
    assert runtime.write_error(runtime.view(base, lambda h: np.broadcast_to(h, (2, 4, 6))))
    assert runtime.write_error(base) is None
