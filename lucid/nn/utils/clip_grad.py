"""clip_grad_norm_ and clip_grad_value_: gradients scaled or clamped in place."""

from __future__ import annotations

import math

from lucid.autograd import no_grad
from lucid.tensor import Tensor


def _grads(parameters) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """Scale the gradients in place so that their joint `norm_type`-norm (over all of them, as
    if concatenated) is at most `max_norm`; returns that norm, before clipping. The scale is
    `max_norm / (norm + 1e-6)`, capped at 1. `error_if_nonfinite` raises when the norm is
    nan or inf (it reads the norm's value: in a compiled step, a graph break)."""
    import lucid

    grads = _grads(parameters)
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not grads:
        return lucid.tensor(0.0)
    with no_grad():
        if math.isinf(norm_type):
            norms = [g.abs().max() for g in grads]
            total = norms[0] if len(norms) == 1 else lucid.stack(norms).max()
        else:
            norms = [(g.abs() ** norm_type).sum() for g in grads]
            total = norms[0] if len(norms) == 1 else lucid.stack(norms).sum()
            total = total ** (1.0 / norm_type)
        if error_if_nonfinite and not math.isfinite(total.item()):
            raise RuntimeError(f"The total norm of order {norm_type} for gradients from "
                               "`parameters` is non-finite, so it cannot be clipped. To disable "
                               "this error and scale the gradients by the non-finite norm "
                               "anyway, set `error_if_nonfinite=False`")
        scale = lucid.clamp(max_norm / (total + 1e-6), max=1.0)
        for g in grads:
            g.mul_(scale.to(g.dtype) if scale.dtype != g.dtype else scale)
    return total


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient element into [-clip_value, clip_value], in place."""
    clip_value = float(clip_value)
    with no_grad():
        for g in _grads(parameters):
            g.clamp_(-clip_value, clip_value)
