"""Devices: where a tensor's array lives ("cpu": a NumPy array; "cuda": a device array).

lucid itself stays NumPy-only. A device is a plugin: its runtime (lucid_jit provides the CUDA one,
with numba-cuda) is loaded the first time something asks for the device (`lucid._jit`, the one
place lucid names the compiler), and registers itself here as a `DeviceRuntime`: the device's
array types, the copies, and `run`, through which `bind` runs an op with a device operand.
Until then every check below is one tuple test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lucid.ops import registry
from lucid.ops.registry import LucidError


@dataclass(frozen=True)
class DeviceRuntime:
    """What a device's runtime provides to lucid."""

    name: str  # "cuda"
    array_types: tuple[type, ...]  # the device's array types
    # An op whose operands include device arrays -> its output array; None when none does.
    run: Callable[[Any, tuple, dict], Any]
    to_device: Callable[[np.ndarray], Any]
    to_host: Callable[[Any], np.ndarray]
    copy_into: Callable[[Any, Any], None]  # (dst, src): same shape; either may be strided
    shares_memory: Callable[[Any, Any], bool]
    # Why an in-place write into this array would be wrong (a broadcast view...), or None.
    write_error: Callable[[Any], str | None]
    synchronize: Callable[[], None]
    simulator: bool = False  # (numba's CUDA simulator: kernels run as Python)


# The array types of device memory (empty until a runtime registers).
DEVICE_TYPES: tuple[type, ...] = ()
_RUNTIME: list[DeviceRuntime | None] = [None]


def register_runtime(rt: DeviceRuntime) -> None:
    """Called by a device runtime when it loads and its device is there."""
    global DEVICE_TYPES
    _RUNTIME[0] = rt
    DEVICE_TYPES = tuple(rt.array_types)
    registry.device_run = rt.run


def normalize(device) -> str:
    """"cpu" or "cuda" (also accepts "cuda:0" and objects whose str() is one of those)."""
    name = str(getattr(device, "type", device))
    if name == "cpu":
        return "cpu"
    if name in ("cuda", "cuda:0"):
        return "cuda"
    raise LucidError(f"unknown device {device!r}: lucid has 'cpu' and 'cuda' "
                     f"({registry.user_location()})")


def available(name: str = "cuda") -> bool:
    """Whether device `name` is there (its runtime loads, and finds it)."""
    if _RUNTIME[0] is not None:
        return True
    from lucid import _jit

    try:
        return _jit.load_device_runtime(name) and _RUNTIME[0] is not None
    except ImportError:
        return False


def runtime() -> DeviceRuntime:
    """The CUDA runtime, loaded on first use; a clear error where there is no device."""
    rt = _RUNTIME[0]
    if rt is None:
        from lucid import _jit

        try:
            _jit.load_device_runtime("cuda")
        except ImportError as exc:
            raise LucidError("device 'cuda' needs numba-cuda (pip install numba-cuda): "
                             f"{exc} ({registry.user_location()})") from None
        rt = _RUNTIME[0]
        if rt is None:
            raise LucidError("device 'cuda' is not available: no CUDA GPU or driver was found "
                             "(set NUMBA_ENABLE_CUDASIM=1 before importing lucid to use numba's "
                             f"CUDA simulator) ({registry.user_location()})")
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


class Device:
    """What `lucid.device("cuda")` returns (PyTorch's torch.device): `type` ("cpu" or "cuda")
    and `index`; it equals its name as a string, and every `device=` argument takes it."""

    __slots__ = ("type", "index")

    def __init__(self, type: str, index: int | None = None) -> None:  # noqa: A002
        name = str(type)
        if ":" in name:
            name, _, idx = name.partition(":")
            index = int(idx)
        if name not in ("cpu", "cuda"):
            raise RuntimeError(f"Expected one of cpu, cuda device type at start of device "
                               f"string: {type}")
        if index not in (None, 0):
            raise LucidError(f"lucid has one device of each type: {name}:{index} is not one")
        self.type, self.index = name, index

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        return f"device(type='{self.type}'" + ("" if self.index is None else
                                               f", index={self.index}") + ")"

    def __eq__(self, other) -> bool:
        if isinstance(other, Device):
            return self.type == other.type
        if isinstance(other, str):
            return self.type == normalize(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.type)


class _DeviceModule(type(np)):
    """This module, callable: `lucid.device("cuda")` makes a Device."""

    def __call__(self, type, index: int | None = None) -> Device:  # noqa: A002
        return Device(type, index)


import sys as _sys  # noqa: E402

_sys.modules[__name__].__class__ = _DeviceModule
