"""embedding: rows of a weight matrix picked by integer indices (a gather, so its gradient is a
scatter-add into the picked rows)."""

from __future__ import annotations

import math

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


def embedding_bag(input: Tensor, weight: Tensor, offsets: Tensor | None = None,
                  max_norm=None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                  mode: str = "mean", sparse: bool = False,
                  per_sample_weights: Tensor | None = None, include_last_offset: bool = False,
                  padding_idx: int | None = None) -> Tensor:
    """Sums, means or maxima of bags of embedding rows: each row of a 2-d `input`, or the runs
    of a 1-d `input` that start at `offsets`. Entries equal to `padding_idx` are left out of
    their bag; an empty bag gives zeros. Bag membership is computed in tensor ops (from the
    offsets' values), so the op traces into compiled functions."""
    import lucid

    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"mode has to be one of sum, mean or max, not {mode!r}")
    if max_norm is not None or scale_grad_by_freq:
        raise NotImplementedError("embedding_bag: max_norm and scale_grad_by_freq are not "
                                  "supported (docs/DIFFERENCES.md)")
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(f"embedding_bag: per_sample_weights was not None. "
                                  f"per_sample_weights is only supported for mode='sum' "
                                  f"(got mode='{mode}'). Please open a feature request on "
                                  "GitHub.")
    if input.ndim == 2:
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None, as input is treated "
                             "is a mini-batch of fixed length sequences.")
        n_bags, size = input.shape
        flat = input.reshape(-1)
        bag = Tensor(np.repeat(np.arange(n_bags, dtype=np.int64), size), device=weight.device)
    elif input.ndim == 1:
        if offsets is None or offsets.ndim != 1:
            raise ValueError("offsets has to be a 1D Tensor")
        starts = offsets[:-1] if include_last_offset else offsets
        if isinstance(offsets.data, np.ndarray) and offsets.numel() and \
                int(offsets.data[0]) != 0:
            raise RuntimeError(f"offsets[0] has to be 0, i.e., the first sequence in the "
                               f"mini-batch has to start from position 0. However, got "
                               f"{int(offsets.data[0])}")
        n_bags = starts.shape[0]
        flat = input
        positions = lucid.arange(flat.shape[0], device=weight.device)
        bag = (positions.unsqueeze(1) >= starts.unsqueeze(0)).cast(dtypes.int64).sum(1) - 1
        if include_last_offset:  # entries past the last offset belong to no bag
            bag = where(positions < offsets[-1], bag, -1)
    else:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension "
                         f"{input.ndim}")
    rows = embedding(flat, weight)
    member = bag >= 0
    if padding_idx is not None:
        member = member.logical_and(flat != padding_idx % weight.shape[0])
    if per_sample_weights is not None:
        rows = rows * per_sample_weights.reshape(-1, 1)
    dim = weight.shape[1]
    if mode == "max":
        hit = (bag.unsqueeze(0) == lucid.arange(n_bags, device=weight.device).unsqueeze(1))
        hit = hit.logical_and(member.unsqueeze(0))  # (bags, entries)
        best = where(hit.unsqueeze(-1), rows.unsqueeze(0), -math.inf).amax(1)
        return where(hit.any(1, keepdim=True), best, 0.0)
    bag = where(member, bag, 0)
    rows = where(member.unsqueeze(-1), rows, 0.0)
    total = lucid.zeros(n_bags, dim, dtype=weight.dtype, device=weight.device).index_add(
        0, bag, rows)
    if mode == "sum":
        return total
    count = lucid.zeros(n_bags, dtype=weight.dtype, device=weight.device).index_add(
        0, bag, member.cast(weight.dtype))
    return total / count.clamp(min=1.0).unsqueeze(-1)
