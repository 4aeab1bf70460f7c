"""SGD with momentum, dampening, weight decay, Nesterov and maximize: PyTorch's update rule."""

from __future__ import annotations

from typing import Any

from lucid.optim.optimizer import Optimizer, ParamsT
from lucid.tensor import Tensor


class SGD(Optimizer):
    """Stochastic gradient descent, step by step as `torch.optim.SGD` computes it::

        g = -grad if maximize else grad
        g = g + weight_decay * p                          (if weight_decay != 0)
        buf = g                                           (first step, if momentum != 0)
        buf = momentum * buf + (1 - dampening) * g        (later steps)
        g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 *, maximize: bool = False) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def _update(self, group: dict[str, Any], p: Tensor, state: dict[str, Any]) -> None:
        momentum, weight_decay = group["momentum"], group["weight_decay"]
        g = -p.grad if group["maximize"] else p.grad
        if weight_decay != 0:
            g = g + p * weight_decay
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                # The first buffer is the gradient itself (not dampened), as in PyTorch. A copy:
                # later steps update it in place and must not write into p.grad.
                buf = state["momentum_buffer"] = g.detach().clone()
            else:
                buf.mul_(momentum).add_(g, alpha=1 - group["dampening"])
            g = g + buf * momentum if group["nesterov"] else buf
        p.sub_(g * group["lr"])
