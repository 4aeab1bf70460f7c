"""Adam and AdamW: PyTorch's formulas, bias correction included.

The step count is a 0-d float32 tensor in each parameter's state, incremented in place, and the
bias corrections are tensor ops on it. A traced step therefore reads the count as a graph input
instead of baking a Python number into the graph, and needs no retrace as the count grows.
"""

from __future__ import annotations

from typing import Any

from lucid import dtypes
from lucid.factories import zeros, zeros_like
from lucid.optim.optimizer import Optimizer, ParamsT
from lucid.tensor import Tensor


class Adam(Optimizer):
    """Adam (Kingma & Ba), as `torch.optim.Adam` computes it::

        g = -grad if maximize else grad
        g = g + weight_decay * p                       (Adam; AdamW instead does p *= 1 - lr * wd)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v)                          (amsgrad; then v_max replaces v below)
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)
    """

    # AdamW sets this: weight decay shrinks the parameter instead of joining the gradient.
    _decoupled_weight_decay = False

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize))

    def _init_state(self, group: dict[str, Any], p: Tensor, state: dict[str, Any]) -> None:
        state["step"] = zeros((), dtype=dtypes.float32, device=p.device)
        state["exp_avg"] = zeros_like(p)
        state["exp_avg_sq"] = zeros_like(p)
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = zeros_like(p)

    def _update(self, group: dict[str, Any], p: Tensor, state: dict[str, Any]) -> None:
        lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        step, exp_avg, exp_avg_sq = state["step"], state["exp_avg"], state["exp_avg_sq"]
        grad = -p.grad if group["maximize"] else p.grad

        step.add_(1)
        if weight_decay != 0:
            if self._decoupled_weight_decay:
                p.mul_(1 - lr * weight_decay)
            else:
                grad = grad + p * weight_decay
        exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
        exp_avg_sq.mul_(beta2).add_(grad * grad, alpha=1 - beta2)
        if group["amsgrad"]:
            if "max_exp_avg_sq" not in state:  # amsgrad switched on after the first step
                state["max_exp_avg_sq"] = zeros_like(p)
            second = state["max_exp_avg_sq"]
            second.copy_(second.maximum(exp_avg_sq))
        else:
            second = exp_avg_sq

        # PyTorch computes the corrections as Python doubles; doing them in float64 keeps
        # 1 - beta2**t exact enough (in float32 it loses ~4 digits when beta2 = 0.999).
        t = step.double()
        step_size = (lr / (1 - beta1 ** t)).cast(p.dtype)
        bias_correction2_sqrt = (1 - beta2 ** t).sqrt().cast(p.dtype)
        denom = (second.sqrt() / bias_correction2_sqrt).add_(eps)
        p.sub_(exp_avg / denom * step_size)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): `p *= 1 - lr * weight_decay`
    before the Adam update, instead of adding `weight_decay * p` to the gradient."""

    _decoupled_weight_decay = True

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize)
