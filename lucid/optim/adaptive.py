"""RMSprop, Adagrad, Adadelta, Adamax, NAdam and RAdam: PyTorch's formulas and defaults.

As in Adam, every quantity that changes from step to step (the step count, NAdam's momentum
product) is a 0-d tensor in the parameter's state, updated in place, and the per-step scalars are
tensor ops on it (in float64, as PyTorch computes them in Python doubles): a compiled training
step reads them as graph inputs and never retraces as they change. Branches on the step (RAdam's
rectification) are `where`s, not Python `if`s, for the same reason.
"""

from __future__ import annotations

from typing import Any

from lucid import dtypes
from lucid.factories import full_like, zeros, zeros_like
from lucid.functions import where
from lucid.optim.optimizer import Optimizer, ParamsT
from lucid.tensor import Tensor


def _check(lr=None, eps=None, weight_decay=None, betas=None, **named) -> None:
    if lr is not None and lr < 0.0:
        raise ValueError(f"Invalid learning rate: {lr}")
    if eps is not None and eps < 0.0:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if weight_decay is not None and weight_decay < 0.0:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")
    if betas is not None:
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
    for name, (value, lo, hi) in named.items():
        if not lo <= value <= hi:
            raise ValueError(f"Invalid {name} value: {value}")


def _grad(group: dict[str, Any], p: Tensor) -> Tensor:
    grad = -p.grad if group.get("maximize") else p.grad
    if group["weight_decay"] != 0 and not group.get("decoupled_weight_decay", False):
        grad = grad + p * group["weight_decay"]
    return grad


def _step(p: Tensor) -> Tensor:
    return zeros((), dtype=dtypes.float32, device=p.device)


class RMSprop(Optimizer):
    """RMSprop: v = alpha v + (1 - alpha) g^2; p -= lr g / (sqrt(v) + eps) (centered: v minus
    the squared running mean of g; with momentum, through a buffer)."""

    def __init__(self, params: ParamsT, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
                 capturable: bool = False, foreach=None, maximize: bool = False,
                 differentiable: bool = False) -> None:
        _check(lr, eps, weight_decay, alpha=(alpha, 0.0, float("inf")),
               momentum=(momentum, 0.0, float("inf")))
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def _init_state(self, group, p, state) -> None:
        state["step"] = _step(p)
        state["square_avg"] = zeros_like(p)
        if group["momentum"] > 0:
            state["momentum_buffer"] = zeros_like(p)
        if group["centered"]:
            state["grad_avg"] = zeros_like(p)

    def _update(self, group, p, state) -> None:
        grad = _grad(group, p)
        alpha, eps, lr = group["alpha"], group["eps"], group["lr"]
        state["step"].add_(1)
        square_avg = state["square_avg"]
        square_avg.mul_(alpha).add_(grad * grad, alpha=1 - alpha)
        if group["centered"]:
            if "grad_avg" not in state:
                state["grad_avg"] = zeros_like(p)
            grad_avg = state["grad_avg"]
            grad_avg.mul_(alpha).add_(grad, alpha=1 - alpha)
            avg = (square_avg - grad_avg * grad_avg).sqrt() + eps
        else:
            avg = square_avg.sqrt() + eps
        if group["momentum"] > 0:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = zeros_like(p)
            buf = state["momentum_buffer"]
            buf.mul_(group["momentum"]).add_(grad / avg)
            p.sub_(buf * lr)
        else:
            p.sub_(grad / avg * lr)


class Adagrad(Optimizer):
    """Adagrad: s += g^2; p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)."""

    def __init__(self, params: ParamsT, lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, foreach=None, *, maximize: bool = False,
                 differentiable: bool = False, fused=None) -> None:
        _check(lr, eps, weight_decay, lr_decay=(lr_decay, 0.0, float("inf")),
               initial_accumulator_value=(initial_accumulator_value, 0.0, float("inf")))
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, eps=eps,
                                      weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      maximize=maximize))

    def _init_state(self, group, p, state) -> None:
        state["step"] = _step(p)
        state["sum"] = full_like(p, group["initial_accumulator_value"])

    def _update(self, group, p, state) -> None:
        grad = _grad(group, p)
        step = state["step"]
        step.add_(1)
        clr = (group["lr"] / ((step.double() - 1) * group["lr_decay"] + 1)).cast(p.dtype)
        state["sum"].add_(grad * grad)
        p.sub_(grad / (state["sum"].sqrt() + group["eps"]) * clr)


class Adadelta(Optimizer):
    """Adadelta (Zeiler): v = rho v + (1 - rho) g^2; d = sqrt(u + eps) / sqrt(v + eps) * g;
    u = rho u + (1 - rho) d^2; p -= lr d."""

    def __init__(self, params: ParamsT, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0, foreach=None, *, capturable: bool = False,
                 maximize: bool = False, differentiable: bool = False) -> None:
        _check(lr, eps, weight_decay, rho=(rho, 0.0, 1.0))
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize))

    def _init_state(self, group, p, state) -> None:
        state["step"] = _step(p)
        state["square_avg"] = zeros_like(p)
        state["acc_delta"] = zeros_like(p)

    def _update(self, group, p, state) -> None:
        grad = _grad(group, p)
        rho, eps = group["rho"], group["eps"]
        state["step"].add_(1)
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        square_avg.mul_(rho).add_(grad * grad, alpha=1 - rho)
        delta = (acc_delta + eps).sqrt() / (square_avg + eps).sqrt() * grad
        acc_delta.mul_(rho).add_(delta * delta, alpha=1 - rho)
        p.sub_(delta * group["lr"])


class Adamax(Optimizer):
    """Adamax: Adam with the infinity norm: u = max(beta2 u, |g| + eps);
    p -= lr / (1 - beta1^t) * m / u."""

    def __init__(self, params: ParamsT, lr: float = 2e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, foreach=None, *, maximize: bool = False,
                 differentiable: bool = False, capturable: bool = False) -> None:
        _check(lr, eps, weight_decay, betas)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, maximize=maximize))

    def _init_state(self, group, p, state) -> None:
        state["step"] = _step(p)
        state["exp_avg"] = zeros_like(p)
        state["exp_inf"] = zeros_like(p)

    def _update(self, group, p, state) -> None:
        grad = _grad(group, p)
        beta1, beta2 = group["betas"]
        step = state["step"]
        step.add_(1)
        exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
        exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
        exp_inf.copy_((exp_inf * beta2).maximum(grad.abs() + group["eps"]))
        clr = (group["lr"] / (1 - beta1 ** step.double())).cast(p.dtype)
        p.sub_(exp_avg / exp_inf * clr)


class NAdam(Optimizer):
    """NAdam (Dozat): Adam with Nesterov momentum, its momentum warmed up by
    mu_t = beta1 (1 - 0.5 * 0.96^(t momentum_decay))."""

    def __init__(self, params: ParamsT, lr: float = 2e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, foreach=None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False) -> None:
        _check(lr, eps, weight_decay, betas,
               momentum_decay=(momentum_decay, 0.0, float("inf")))
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, momentum_decay=momentum_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize))

    def _init_state(self, group, p, state) -> None:
        state["step"] = _step(p)
        state["mu_product"] = full_like(_step(p), 1.0)
        state["exp_avg"] = zeros_like(p)
        state["exp_avg_sq"] = zeros_like(p)

    def _update(self, group, p, state) -> None:
        grad = _grad(group, p)
        lr, eps, decay = group["lr"], group["eps"], group["momentum_decay"]
        beta1, beta2 = group["betas"]
        step, mu_product = state["step"], state["mu_product"]
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        step.add_(1)
        if group["weight_decay"] != 0 and group["decoupled_weight_decay"]:
            p.mul_(1 - lr * group["weight_decay"])
        t = step.double()
        bias_correction2 = 1 - beta2 ** t
        mu = (1.0 - 0.5 * 0.96 ** (t * decay)) * beta1
        mu_next = (1.0 - 0.5 * 0.96 ** ((t + 1) * decay)) * beta1
        mu_product.mul_(mu)  # (kept in float32, as PyTorch keeps it)
        product = mu_product.double()
        exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
        exp_avg_sq.mul_(beta2).add_(grad * grad, alpha=1 - beta2)
        denom = (exp_avg_sq / bias_correction2.cast(p.dtype)).sqrt() + eps
        p.sub_(grad / denom * (lr * (1 - mu) / (1 - product)).cast(p.dtype))
        p.sub_(exp_avg / denom * (lr * mu_next / (1 - product * mu_next)).cast(p.dtype))


class RAdam(Optimizer):
    """RAdam (Liu et al.): Adam whose adaptive step is rectified by the variance of its
    second-moment estimate, and plain momentum SGD while that estimate is too young
    (rho_t <= 5)."""

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, decoupled_weight_decay: bool = False, *,
                 foreach=None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False) -> None:
        _check(lr, eps, weight_decay, betas)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize))

    def _init_state(self, group, p, state) -> None:
        state["step"] = _step(p)
        state["exp_avg"] = zeros_like(p)
        state["exp_avg_sq"] = zeros_like(p)

    def _update(self, group, p, state) -> None:
        grad = _grad(group, p)
        lr, eps = group["lr"], group["eps"]
        beta1, beta2 = group["betas"]
        step, exp_avg, exp_avg_sq = state["step"], state["exp_avg"], state["exp_avg_sq"]
        step.add_(1)
        if group["weight_decay"] != 0 and group["decoupled_weight_decay"]:
            p.mul_(1 - lr * group["weight_decay"])
        exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
        exp_avg_sq.mul_(beta2).add_(grad * grad, alpha=1 - beta2)
        t = step.double()
        bias_correction1 = 1 - beta1 ** t
        bias_correction2 = 1 - beta2 ** t
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * t * beta2 ** t / bias_correction2
        rect = ((rho_t - 4).clamp(min=0) * (rho_t - 2) * rho_inf
                / ((rho_inf - 4) * (rho_inf - 2) * rho_t)).sqrt()
        adaptive = (bias_correction2.sqrt() * rect).cast(p.dtype) / (exp_avg_sq.sqrt() + eps)
        scale = where(rho_t > 5, adaptive, 1.0)
        p.sub_(exp_avg * scale * (lr / bias_correction1).cast(p.dtype))
