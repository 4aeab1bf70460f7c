"""embedding: rows of a weight matrix picked by integer indices (a gather, so its gradient is a
scatter-add into the picked rows)."""

from __future__ import annotations

import numpy as np

from lucid import dtypes
from lucid.arguments import tensor_args
from lucid.functions import where
from lucid.ops.registry import DTypeError, ShapeError, op_error
from lucid.tensor import Tensor


@tensor_args
def embedding(input, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """weight[input]: shape input.shape + (embedding_dim,). Rows at padding_idx get no gradient."""
    idx = input if isinstance(input, Tensor) else Tensor(np.asarray(input), device=weight.device)
    if idx.dtype not in (dtypes.int32, dtypes.int64):
        raise op_error("embedding", [idx.aval, weight.aval],
                       "indices must be an integer tensor", DTypeError)
    if weight.ndim != 2:
        raise op_error("embedding", [idx.aval, weight.aval], "weight must be 2-d", ShapeError)
    n = weight.shape[0]
    if isinstance(idx.data, np.ndarray) and idx.data.size:
        # Checked eagerly only: NumPy would otherwise wrap negative indices around silently.
        low, high = int(idx.data.min()), int(idx.data.max())
        if low < 0 or high >= n:
            raise op_error("embedding", [idx.aval, weight.aval],
                           f"index {low if low < 0 else high} is out of range for "
                           f"{n} embeddings", ShapeError)
    out = weight[idx]
    if padding_idx is not None:
        padding_idx = padding_idx % n
        keep = (idx != padding_idx).unsqueeze(-1)
        out = where(keep, out, out.detach())
    return out
