"""The five dtypes lucid supports and how they promote.

Promotion follows NumPy's rules within a category and PyTorch's across categories: an integer never
widens a float (`f32 + i64 -> f32`), and a Python scalar takes the tensor's dtype unless it is of a
higher category (`i64 tensor * 0.5 -> f32`, the default float dtype).
"""

from __future__ import annotations

import numpy as np

float32 = np.dtype("float32")
float64 = np.dtype("float64")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
bool_ = np.dtype("bool")

SUPPORTED = (float32, float64, int32, int64, bool_)
DEFAULT_FLOAT = float32
DEFAULT_INT = int64

_SHORT = {float32: "f32", float64: "f64", int32: "i32", int64: "i64", bool_: "bool"}
_CATEGORY = {bool_: 0, int32: 1, int64: 1, float32: 2, float64: 2}
_ALIASES = {
    float: DEFAULT_FLOAT, int: DEFAULT_INT, bool: bool_,
    "float": float32, "float32": float32, "float64": float64, "double": float64,
    "int": int64, "int32": int32, "int64": int64, "long": int64, "bool": bool_,
}


def set_default_float(dtype) -> None:
    """Make `dtype` (float32 or float64) what float data, Python floats and the factories give
    (lucid.set_default_dtype)."""
    global DEFAULT_FLOAT
    d = as_dtype(dtype)
    if not is_floating(d):
        raise TypeError(f"only floating-point types are supported as the default type, not {d}")
    DEFAULT_FLOAT = float64 if d == float64 else float32  # (the module's own objects: `is` holds)
    _ALIASES[float] = DEFAULT_FLOAT


def as_dtype(dtype) -> np.dtype:
    """Normalize anything naming a dtype (np.float32, "float32", float, np.dtype) to np.dtype."""
    if isinstance(dtype, np.dtype) and dtype in _CATEGORY:
        return dtype
    d = _ALIASES.get(dtype) if isinstance(dtype, (str, type)) else None
    if d is None:
        try:
            d = np.dtype(dtype)
        except TypeError:
            d = None
    if d is None or d not in _CATEGORY:
        raise TypeError("lucid supports dtypes float32, float64, int32, int64 and bool, "
                        f"not {dtype!r}")
    return d


def short_name(dtype: np.dtype) -> str:
    """The IR's spelling of a dtype: f32, f64, i32, i64, bool."""
    return _SHORT.get(dtype, str(dtype))


def is_floating(dtype: np.dtype) -> bool:
    return _CATEGORY[dtype] == 2


def promote(a: np.dtype, b: np.dtype) -> np.dtype:
    """The result dtype of a binary op between tensors of dtypes a and b."""
    if a == b:
        return a
    ca, cb = _CATEGORY[a], _CATEGORY[b]
    if ca != cb:
        return a if ca > cb else b
    return np.promote_types(a, b)


def scalar_dtype(tensor_dtype: np.dtype, value) -> np.dtype:
    """The dtype a Python scalar takes when combined with a tensor of tensor_dtype (weak typing)."""
    if isinstance(value, bool):
        cat = 0
    elif isinstance(value, (int, np.integer)):
        cat = 1
    else:
        cat = 2
    if cat <= _CATEGORY[tensor_dtype]:
        return tensor_dtype
    return DEFAULT_FLOAT if cat == 2 else DEFAULT_INT


def infer_from_data(data) -> np.dtype:
    """The dtype Tensor(data) takes when none is given: Python floats -> float32, ints -> int64."""
    if isinstance(data, np.ndarray):
        if data.dtype in _CATEGORY:
            return data.dtype
        if data.dtype.kind == "f":
            return float64 if data.dtype.itemsize > 4 else float32
        if data.dtype.kind in "iu":
            return int64
        raise TypeError(f"lucid cannot hold an array of dtype {data.dtype}")
    if isinstance(data, np.generic):
        return infer_from_data(np.asarray(data))
    arr = np.asarray(data)
    if arr.dtype.kind == "f":
        return DEFAULT_FLOAT
    if arr.dtype.kind in "iu":
        return DEFAULT_INT
    if arr.dtype.kind == "b":
        return bool_
    raise TypeError(f"lucid cannot make a tensor from {type(data).__name__} "
                    f"(numpy dtype {arr.dtype})")
