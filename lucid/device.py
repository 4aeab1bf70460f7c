"""Devices: where a tensor's array lives ("cpu": a NumPy array; "cuda": a CUDA device array).

lucid itself stays NumPy-only. The CUDA runtime (`lucid_jit.cuda`, which imports numba-cuda) is
loaded the first time something asks for the cuda device; it registers its device array types
here and installs the hook through which `bind` runs ops on device tensors (each as a one-node
graph compiled by lucid_jit's CUDA backend).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lucid.ops import registry
from lucid.ops.registry import LucidError

# The array types of device memory, set by the CUDA runtime when it loads (empty until then, so
# every check below is one tuple test while no tensor has been on a device).
DEVICE_TYPES: tuple[type, ...] = ()
_RUNTIME: list[Any] = [None]


def normalize(device) -> str:
    """"cpu" or "cuda" (also accepts "cuda:0" and objects whose str() is one of those)."""
    name = str(getattr(device, "type", device))
    if name == "cpu":
        return "cpu"
    if name in ("cuda", "cuda:0"):
        return "cuda"
    raise LucidError(f"unknown device {device!r}: lucid has 'cpu' and 'cuda' "
                     f"({registry.user_location()})")


def runtime():
    """The CUDA runtime module, loaded on first use; a clear error where there is no device."""
    rt = _RUNTIME[0]
    if rt is None:
        try:
            from lucid_jit.cuda import runtime as rt
        except ImportError as exc:
            raise LucidError("device 'cuda' needs numba-cuda (pip install numba-cuda): "
                             f"{exc} ({registry.user_location()})") from None
        if not rt.available():
            raise LucidError("device 'cuda' is not available: no CUDA GPU or driver was found "
                             "(set NUMBA_ENABLE_CUDASIM=1 before importing lucid to use numba's "
                             f"CUDA simulator) ({registry.user_location()})")
        _RUNTIME[0] = rt
    return rt


def is_device_array(data) -> bool:
    return bool(DEVICE_TYPES) and isinstance(data, DEVICE_TYPES)


def is_array(data) -> bool:
    """Whether data is a concrete array (NumPy or device), not a traced value."""
    return isinstance(data, np.ndarray) or (bool(DEVICE_TYPES) and isinstance(data,
                                                                              DEVICE_TYPES))


def device_of(data) -> str:
    if DEVICE_TYPES and isinstance(data, DEVICE_TYPES):
        return "cuda"
    return "cpu"


def to_device(array: np.ndarray):
    return runtime().to_device(array)


def to_host(data) -> np.ndarray:
    if DEVICE_TYPES and isinstance(data, DEVICE_TYPES):
        return _RUNTIME[0].to_host(data)
    return data


def move(data, device: str):
    """`data` on `device` (the same object if it is there already)."""
    if device == "cuda":
        return data if is_device_array(data) else to_device(np.asarray(data))
    return to_host(data)


def like(reference, t):
    """`t` (a new eager tensor) moved to `reference`'s device: creation ops have no tensor inputs,
    so helpers that make a tensor "like" another call this."""
    if DEVICE_TYPES and isinstance(reference.data, DEVICE_TYPES) and \
            isinstance(t.data, np.ndarray):
        t.data = to_device(t.data)
    return t
