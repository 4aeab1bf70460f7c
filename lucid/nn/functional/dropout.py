"""dropout: zero each element with probability p and scale the rest by 1 / (1 - p).

The mask comes from the `uniform` primitive, which is impure: every call (eager or compiled) draws
a fresh mask from lucid's generator, so `lucid.manual_seed` makes it reproducible.
"""

from __future__ import annotations

from lucid import device, dtypes, ops
from lucid.arguments import tensor_args
from lucid.ops.registry import op_error
from lucid.tensor import Tensor


def _check_p(name: str, p: float) -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: dropout probability has to be between 0 and 1, but got {p}")
    return float(p)


@tensor_args
def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """In training, input * mask / (1 - p) with mask ~ Bernoulli(1 - p); identity otherwise."""
    p = _check_p("dropout", p)
    if not dtypes.is_floating(input.dtype):
        raise op_error("dropout", [input.aval], "needs a floating input")
    if not training or p == 0.0:
        return input

    def apply(x: Tensor) -> Tensor:
        if p == 1.0:
            return x * 0.0
        u = device.like(x, ops.uniform(shape=x.shape, low=0.0, high=1.0, dtype=x.dtype))
        keep = u >= p
        return x * (keep.cast(x.dtype) * (1.0 / (1.0 - p)))

    return input._inplace(apply) if inplace else apply(input)


@tensor_args
def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole channels: (N, C, H, W) or (C, H, W) inputs lose each channel with
    probability p, and the rest are scaled by 1 / (1 - p)."""
    p = _check_p("dropout2d", p)
    if input.ndim not in (3, 4):
        raise op_error("dropout2d", [input.aval], "expects a 3-d (C, H, W) or 4-d (N, C, H, W) "
                       "input")
    if not training or p == 0.0:
        return input

    def apply(x: Tensor) -> Tensor:
        if p == 1.0:
            return x * 0.0
        mask_shape = x.shape[:-2] + (1, 1)
        u = device.like(x, ops.uniform(shape=mask_shape, low=0.0, high=1.0, dtype=x.dtype))
        return x * ((u >= p).cast(x.dtype) * (1.0 / (1.0 - p)))

    return input._inplace(apply) if inplace else apply(input)
