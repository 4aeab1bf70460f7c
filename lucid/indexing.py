"""Turning a Python index (`t[1:, idx, None]`) into getitem's hashable spec and index tensors."""

from __future__ import annotations

import numpy as np

from lucid import device, dtypes
from lucid.ops.movement import Slice, Slot
from lucid.ops.registry import LucidError, user_location


def index_spec(tensor, key) -> tuple[tuple, list]:
    """(spec, arrays): spec holds ints, Slice, None, Ellipsis and Slot(k) for arrays[k].

    Integer lists, arrays and tensors gather; boolean masks become the integer indices of their
    true elements (which needs the mask's values, so it is a graph break under a trace).
    """
    from lucid.tensor import Tensor

    items = key if isinstance(key, tuple) else (key,)
    spec, arrays = [], []
    for item in items:
        if item is None or item is Ellipsis:
            spec.append(item)
        elif isinstance(item, slice):
            spec.append(Slice(*(None if v is None else _int(v) for v in
                                (item.start, item.stop, item.step))))
        elif isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            spec.append(int(item))
        else:
            index = item if isinstance(item, Tensor) else Tensor(np.asarray(item),
                                                                 device=_on(tensor))
            if index.dtype == dtypes.bool_:
                for axis_index in np.nonzero(index.numpy()):
                    spec.append(Slot(len(arrays)))
                    arrays.append(device.like(tensor,
                                              Tensor._wrap(axis_index.astype(np.int64))))
                continue
            if index.dtype not in (dtypes.int32, dtypes.int64):
                raise LucidError(f"getitem: tensors used as indices must be integer or bool, "
                                 f"not {index.dtype} ({user_location()})")
            spec.append(Slot(len(arrays)))
            arrays.append(index)
    return tuple(spec), arrays


def _int(v) -> int:
    try:
        return int(v.__index__())
    except AttributeError:
        raise LucidError(f"getitem: slice bounds must be integers, not {v!r} "
                         f"({user_location()})") from None


def _on(tensor) -> str:
    """The device for an index array made from a Python list: the indexed tensor's, eagerly
    (under a trace it is a constant of the graph, whatever its device)."""
    return "cuda" if device.is_device_array(tensor.data) else "cpu"
