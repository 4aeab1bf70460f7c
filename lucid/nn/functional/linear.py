"""linear: y = x @ W.T + b, the composition fusion later turns into one matmul with an epilogue."""

from __future__ import annotations

from lucid.arguments import same_dtype, tensor_args
from lucid.functions import matmul
from lucid.ops.registry import ShapeError, op_error
from lucid.tensor import Tensor


@tensor_args
def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """input (..., in) @ weight (out, in).T + bias (out,)."""
    if weight.ndim not in (1, 2):
        raise op_error("linear", [input.aval, weight.aval],
                       f"weight must be 1-d or 2-d, not {weight.ndim}-d")
    if input.ndim == 0 or input.shape[-1] != weight.shape[-1]:
        raise op_error("linear", [input.aval, weight.aval],
                       f"input's last dimension must be in_features={weight.shape[-1]}",
                       ShapeError)
    same_dtype("linear", input, weight=weight, bias=bias)
    out = matmul(input, weight.T)
    if bias is not None:
        out = out + bias
    return out
