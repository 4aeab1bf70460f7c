"""Transformer pieces in lucid ops: scaled_dot_product_attention, one_hot, normalize."""

from __future__ import annotations

import math

import numpy as np

from lucid import dtypes
from lucid.ops.registry import DTypeError, ShapeError, op_error
from lucid.tensor import Tensor


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask=None,
                                 dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """softmax(q k^T * scale + mask) v over the last two dims (PyTorch's semantics): a bool
    `attn_mask` keeps the positions where it is True, a float one is added; `is_causal` keeps
    j <= i (the mask of a square, top-left aligned lower triangle); dropout on the weights when
    `dropout_p` > 0. With `enable_gqa`, key and value heads are shared by groups of query heads."""
    from lucid.functions import where
    from lucid.nn.functional import dropout, softmax

    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise op_error("scaled_dot_product_attention", [query.aval, key.aval, value.aval],
                       "query, key and value must be at least 2-d", ShapeError)
    if is_causal and attn_mask is not None:
        raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be set "
                           "when is_causal=True")
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        groups = query.shape[-3] // key.shape[-3]
        key = key.repeat_interleave(groups, -3)
        value = value.repeat_interleave(groups, -3)
    L, S = query.shape[-2], key.shape[-2]  # noqa: N806
    factor = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    scores = query.matmul(key.transpose(-2, -1)) * factor
    if is_causal:
        keep = np.tril(np.ones((L, S), dtype=np.bool_))
        scores = where(Tensor(keep, device=scores.device), scores, -math.inf)
    if attn_mask is not None:
        if attn_mask.dtype == dtypes.bool_:
            scores = where(attn_mask, scores, -math.inf)
        else:
            scores = scores + attn_mask
    weights = softmax(scores, -1)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p, training=True)
    return weights.matmul(value)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 one-hot rows: out[..., k] = (tensor[...] == k). Without `num_classes`, the largest
    index + 1 (which reads the values: a graph break in a compiled function)."""
    if tensor.dtype.kind not in "iu":
        raise op_error("one_hot", [tensor.aval], "one_hot is only applicable to index tensor",
                       DTypeError)
    if num_classes == -1:
        num_classes = int(tensor.max().item()) + 1 if tensor.numel() else 0
    elif num_classes < 1:
        raise RuntimeError("Class values must be smaller than num_classes.")
    classes = Tensor(np.arange(num_classes, dtype=tensor.dtype), device=tensor.device)
    return (tensor.unsqueeze(-1) == classes).cast(dtypes.int64)


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12,  # noqa: A002
              out=None) -> Tensor:
    """input / max(||input||_p over dim, eps)."""
    if out is not None:
        raise TypeError("normalize: out= is not supported (lucid has no out arguments)")
    return input / input.norm(p, dim, keepdim=True).clamp(min=eps)
