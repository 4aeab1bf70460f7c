"""How tensors print: `Tensor([[0.0, 2.0, 0.0, 3.0]], grad=None)`.

Numbers print in the shortest form that round-trips in the tensor's own dtype (float32 -0.01 prints
`-0.01`, not `-0.009999999776482582`). A tensor that requires grad shows its `grad=` field; one that
does not, doesn't. Large tensors are summarized with `...` like NumPy's printing.
"""

from __future__ import annotations

import numpy as np

from lucid import dtypes

SUMMARIZE_OVER = 1000  # elements
EDGE_ITEMS = 3
LINE_WIDTH = 80


def _number(x) -> str:
    if isinstance(x, (np.bool_, bool)):
        return "True" if x else "False"
    return str(x)  # numpy scalars print shortest-round-trip in their own precision


def _nested(arr: np.ndarray, summarize: bool, indent: int) -> str:
    if arr.ndim == 0:
        return _number(arr[()])
    n = arr.shape[0]
    if summarize and n > 2 * EDGE_ITEMS:
        parts = [_nested(arr[i], summarize, indent + 1) for i in range(EDGE_ITEMS)] + ["..."] + \
            [_nested(arr[i], summarize, indent + 1) for i in range(n - EDGE_ITEMS, n)]
    else:
        parts = [_nested(arr[i], summarize, indent + 1) for i in range(n)]
    one_line = "[" + ", ".join(parts) + "]"
    if arr.ndim == 1 or len(one_line) + indent <= LINE_WIDTH:
        return one_line
    sep = "," + "\n" * (arr.ndim - 1) + " " * (indent + 1)
    return "[" + sep.join(parts) + "]"


def format_data(arr: np.ndarray, indent: int = 0) -> str:
    return _nested(arr, arr.size > SUMMARIZE_OVER, indent)


def tensor_repr(t) -> str:
    from lucid.device import is_device_array, to_host

    data = t.data
    if is_device_array(data):
        data = to_host(data)
    if not isinstance(data, np.ndarray):
        return f"Tensor(<traced {t.aval}>{', grad=...' if t.requires_grad else ''})"
    prefix = "Tensor("
    body = format_data(data, len(prefix))
    extras = []
    if t.dtype not in (dtypes.DEFAULT_FLOAT, dtypes.int64, dtypes.bool_):
        extras.append(f"dtype={t.dtype}")
    if t.device != "cpu":
        extras.append(f"device='{t.device}'")
    if data.size == 0:
        extras.append(f"size={t.shape}")
    if t.requires_grad:
        grad = t.grad
        if grad is None:
            extras.append("grad=None")
        else:
            gdata = to_host(grad.data)
            extras.append("grad=" + (format_data(gdata, len(prefix) + 5)
                                     if isinstance(gdata, np.ndarray) else "<traced>"))
    return prefix + body + "".join(", " + e for e in extras) + ")"
