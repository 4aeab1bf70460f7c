"""The CUDA device for lucid: device arrays, copies, and launch settings.

Importing this module imports numba's CUDA target (numba-cuda). `available()` says whether a GPU
and driver are there, or numba's simulator is on (NUMBA_ENABLE_CUDASIM=1, read when numba is
first imported). `lucid.device` loads this module the first time something asks for the device;
`available()` then calls `install()`, which registers this runtime with lucid
(`lucid.device.register_runtime`): the device array types, the copies, and the hook through which
`bind` runs eager ops on device tensors.
"""

from __future__ import annotations

import os
import sys
import weakref

import numpy as np
from numba import cuda
from numba.core import types as numba_types

SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM", "") not in ("", "0")

if SIMULATOR:
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray as _DeviceArray

    DEVICE_TYPES: tuple[type, ...] = (_DeviceArray,)
else:
    from numba.cuda.cudadrv.devicearray import DeviceNDArray
    from numba.cuda.cudadrv.devicearray import DeviceNDArrayBase as _DeviceArray

    DEVICE_TYPES = (_DeviceArray,)

def _patch_simulator_shared() -> None:
    """The simulator gives a block's threads one shared array per `cuda.shared.array` line, made
    by the first thread to get there, but it checks and creates without a lock: two threads
    arriving together each make their own, and a block reduction then combines partial sums
    from different arrays (seen here as rare wrong sums). Serialize the check."""
    import threading

    from numba.cuda.simulator import kernelapi
    from numba.np import numpy_support

    original = kernelapi.FakeCUDAShared.array
    if getattr(original, "_lucid_locked", False):
        return
    lock = threading.Lock()

    def array(self, shape, dtype, alignment=None):
        if alignment is not None or shape == 0:  # (not used by lucid's kernels)
            return original(self, shape, dtype, alignment)
        if isinstance(dtype, numba_types.Type):
            dtype = numpy_support.as_dtype(dtype)
        frame = sys._getframe(1)
        caller = (frame.f_code.co_filename, frame.f_lineno)  # one array per source line
        with lock:
            res = self._allocations.get(caller)
            if res is None:
                res = self._allocations[caller] = np.empty(shape, dtype)
        return res

    array._lucid_locked = True
    kernelapi.FakeCUDAShared.array = array


# Launch settings. The simulator runs every thread as a Python thread, so it gets small blocks
# and few of them (the kernels are grid-stride loops: any grid covers any size).
if SIMULATOR:
    ELEM_BLOCK, REDUCE_BLOCK, TILE, RB, MAX_BLOCKS = 8, 8, 4, 2, 4
    # The simulator's block manager polls its threads in a loop that holds the GIL; at Python's
    # default 5 ms switch interval every syncthreads costs milliseconds (measured: a 4x64x128
    # matmul 21 s; at 10 us, 1.4 s).
    sys.setswitchinterval(1e-5)
    _patch_simulator_shared()
else:
    ELEM_BLOCK, REDUCE_BLOCK, TILE, RB, MAX_BLOCKS = 256, 256, 16, 4, 0  # MAX_BLOCKS: below
TM = TILE * RB  # the matmul's block tile: TM x TM outputs, RB x RB per thread

_STATE = {"available": None, "installed": False}


def available() -> bool:
    """Whether there is a device (a GPU with a driver, or the simulator); installs the runtime
    into lucid the first time it says yes."""
    if _STATE["available"] is None:
        try:
            ok = bool(cuda.is_available())
        except Exception:  # noqa: BLE001 (a broken driver install means no device)
            ok = False
        _STATE["available"] = ok
        if ok:
            install()
    return _STATE["available"]


def install() -> None:
    global MAX_BLOCKS
    if _STATE["installed"]:
        return
    _STATE["installed"] = True
    if not SIMULATOR:
        sms = cuda.get_current_device().MULTIPROCESSOR_COUNT
        MAX_BLOCKS = 32 * sms
    from lucid import device
    from lucid_jit.codegen.cuda import eager

    device.register_runtime(device.DeviceRuntime(
        name="cuda", array_types=DEVICE_TYPES, run=eager.run, to_device=to_device,
        to_host=to_host, copy_into=copy_into, shares_memory=shares_memory,
        write_error=write_error, synchronize=synchronize, simulator=SIMULATOR))


def to_device(array: np.ndarray):
    array = np.asarray(array)
    if not array.flags.c_contiguous:  # (np.ascontiguousarray would make a 0-d array 1-d)
        array = array.copy()
    return cuda.to_device(array)


def to_host(data) -> np.ndarray:
    return data.copy_to_host()


def empty(shape, dtype):
    return cuda.device_array(tuple(shape), dtype=np.dtype(dtype))


def copy_into(dst, src) -> None:
    """Copy device array `src` into device array `dst` of the same shape. Either may be a strided
    view, and the dtypes may differ (the copy kernel casts); two contiguous arrays of one dtype
    are a plain device-to-device copy."""
    if tuple(src.shape) != tuple(dst.shape):
        raise ValueError(f"copy_into: shapes {src.shape} and {dst.shape} differ")
    if src.dtype == dst.dtype and src.is_c_contiguous() and dst.is_c_contiguous():
        dst.copy_to_device(src)
        return
    from lucid_jit.codegen.cuda.program import copy_array

    copy_array(dst, src)


# ----------------------------------------------------------------------------- views

# What `view` answers for a slice with a negative step: NumPy makes a view, but a device array
# cannot have negative strides (numba copies device memory to the host in one forward span), so
# the result is a copy, and `DETACHED` remembers it so that an in-place write into it is an error
# instead of an update that silently misses the tensor it was sliced from.
REVERSED = "reversed"
# (keyed by id: the simulator's arrays compare elementwise, so they cannot be hashed)
DETACHED: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def view(data, fn):
    """`fn(data)` as a view of the same device memory, as NumPy would make it: `fn` is a reshape
    (with copy=False), transpose, broadcast or basic slice applied to an array of data's shape and
    strides. None where NumPy would copy (the caller copies too); REVERSED for negative strides."""
    layout = _view_layout(data, fn)
    if layout is None or layout is REVERSED:
        return layout
    shape, strides, offset = layout
    if SIMULATOR:  # the real view of the wrapped array, checked against the layout a GPU uses
        host = data._ary
        res = fn(host)
        got = (res.shape, res.strides,
               res.__array_interface__["data"][0] - host.__array_interface__["data"][0])
        assert got == layout, (got, layout)
        return _DeviceArray(res)
    memory = data.gpu_data.view(offset) if offset else data.gpu_data
    return DeviceNDArray(shape, strides, data.dtype, stream=data.stream, gpu_data=memory)


def _view_layout(data, fn):
    """(shape, strides, byte offset) of `fn`'s view of device array `data`, found by applying fn
    to a host stand-in with data's layout (views only compute shapes and strides: the stand-in's
    bytes are never read); None or REVERSED as `view` says."""
    if not data.size:
        return None
    itemsize = data.dtype.itemsize
    extent = itemsize + sum((n - 1) * st for n, st in zip(data.shape, data.strides, strict=True))
    span = np.empty(extent, np.uint8)  # (its pages are never touched: nothing is committed)
    host = np.ndarray(tuple(data.shape), data.dtype, buffer=span, strides=tuple(data.strides))
    try:
        res = fn(host)
    except ValueError:  # a reshape that needs a copy
        return None
    if not isinstance(res, np.ndarray) or not res.size or not np.may_share_memory(res, host):
        return None
    if min(res.strides, default=0) < 0:
        return REVERSED
    offset = res.__array_interface__["data"][0] - host.__array_interface__["data"][0]
    return tuple(res.shape), tuple(res.strides), offset


def shares_memory(a, b) -> bool:
    """Whether two device arrays may overlap (one is a view of the other, or both of a third)."""
    if SIMULATOR:
        return np.may_share_memory(a._ary, b._ary)
    if not a.size or not b.size:
        return False
    pa, pb = a.device_ctypes_pointer.value, b.device_ctypes_pointer.value
    return pa < pb + b.alloc_size and pb < pa + a.alloc_size


def write_error(data) -> str | None:
    """Why an in-place write into device array `data` would be wrong (None: it is fine)."""
    if any(st == 0 and n > 1 for st, n in zip(data.strides, data.shape, strict=True)):
        return "a read-only broadcast view"
    if DETACHED.get(id(data)) is data:
        return ("a slice with a negative step, which on the device is a copy: the write would "
                "not reach the tensor it was sliced from")
    return None


def synchronize() -> None:
    cuda.synchronize()


def elem_config(n: int) -> tuple[int, int]:
    """(blocks, threads) for a grid-stride loop over n elements."""
    blocks = max(1, min((n + ELEM_BLOCK - 1) // ELEM_BLOCK, MAX_BLOCKS))
    return blocks, ELEM_BLOCK


def reduce_config(rows: int) -> tuple[int, int]:
    """(blocks, threads) for block reductions of `rows` independent rows (one block per row)."""
    return max(1, min(rows, MAX_BLOCKS if not SIMULATOR else MAX_BLOCKS)), REDUCE_BLOCK


def reduce_split(rows: int, n: int) -> int:
    """How many blocks share each of `rows` block-reduction rows of `n` elements: 1 (a block per
    row) where the rows fill the device or are short, else enough that each block's threads
    take about 8 elements each (a full sum of a large tensor then runs on many blocks)."""
    if rows >= MAX_BLOCKS:
        return 1
    per_thread = 2 if SIMULATOR else 8  # (small under the simulator, so that tests split rows)
    return max(1, min(-(-n // (REDUCE_BLOCK * per_thread)), MAX_BLOCKS // rows))


def matmul_config(m: int, n: int, batch: int) -> tuple[tuple[int, int, int], tuple[int, int]]:
    """(grid, block) for the tiled matmul: TILE x TILE threads per TM x TM output tile."""
    return ((n + TM - 1) // TM, (m + TM - 1) // TM, batch), (TILE, TILE)
