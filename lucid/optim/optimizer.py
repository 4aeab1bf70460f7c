"""Optimizer: the base of every optimizer, with PyTorch's param_groups, state and state_dict.

Subclasses implement `_update(group, p, state)` for one parameter; the base class loops over the
groups, skips parameters without a gradient and runs the loop under `no_grad`. Updates are written
with in-place lucid tensor ops (never NumPy on `.data`) so that `lucid.compile` can trace a training
step and functionalize the writes. Hyperparameters are read from `param_groups` at every step, so
changing `opt.param_groups[0]["lr"]` between steps takes effect at the next one.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from lucid import dtypes
from lucid.autograd import enable_grad, no_grad
from lucid.ops.registry import LucidError
from lucid.tensor import Tensor

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]


class _Required:
    """Marks a hyperparameter that has no default and must be given (PyTorch's `required`)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _Required()


class Optimizer(ABC):
    """Holds parameter groups and per-parameter state; `step()` updates the parameters."""

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        # Keyed by the parameter itself: Tensor hashes by identity, as PyTorch's does.
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got a {type(params).__name__}")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ------------------------------------------------------------------ groups

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyperparameters (missing ones take defaults)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, not {type(param_group).__name__}")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters must be an ordered iterable (a set's order "
                            "changes between runs, and state_dict indexes parameters by order)")
        params = list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor (detach() it, or optimize the "
                                 "leaf it was computed from)")
            if not dtypes.is_floating(p.dtype):
                raise ValueError(f"optimizer parameters must be floating tensors, not {p.dtype}")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("a parameter appears more than once in the parameter group")
        group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            group.setdefault(name, default)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    # ------------------------------------------------------------------ the update

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every parameter's gradient, or with set_to_none=False zero it in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    # A gradient built with create_graph has a history; zeroing must not join it.
                    if p.grad._ctx is not None:
                        p.grad = p.grad.detach()
                    p.grad.zero_()

    def step(self, closure: Callable[[], Any] | None = None):
        """One update of every parameter that has a gradient. Returns closure() if one is given
        (the closure re-evaluates the loss with gradients enabled, as PyTorch's does)."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                self._prepare_group(group)
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    if not state:
                        self._init_state(group, p, state)
                    self._update(group, p, state)
        return loss

    def _prepare_group(self, group: dict[str, Any]) -> None:  # noqa: B027 (optional hook)
        """Per-group work done once per step before its parameters are updated (optional)."""

    def _init_state(self, group: dict[str, Any], p: Tensor, state: dict[str, Any]) -> None:  # noqa: B027
        """Fill a parameter's empty state before its first update (optional). Kept apart from
        `_update` so that state can be created eagerly, outside a traced step."""

    @abstractmethod
    def _update(self, group: dict[str, Any], p: Tensor, state: dict[str, Any]) -> None:
        """Apply one step's update to p in place (each optimizer defines its rule here)."""

    # ------------------------------------------------------------------ state_dict

    def state_dict(self) -> dict[str, Any]:
        """PyTorch's format: parameters are replaced by their index over all groups in order.

        Like PyTorch, state tensors are returned by reference (not copied); load_state_dict copies.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)]: s for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Take hyperparameters and state from a state_dict, copying every value."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter groups, this "
                             f"optimizer has {len(self.param_groups)}")
        for i, (mine, saved) in enumerate(zip(self.param_groups, saved_groups, strict=True)):
            if len(mine["params"]) != len(saved["params"]):
                raise ValueError(f"loaded state dict's parameter group {i} has "
                                 f"{len(saved['params'])} parameters, this optimizer's has "
                                 f"{len(mine['params'])}")
        by_index = {}
        for mine, saved in zip(self.param_groups, saved_groups, strict=True):
            by_index.update(zip(saved["params"], mine["params"], strict=True))
        new_state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        for key, values in state_dict["state"].items():
            if key not in by_index:
                raise ValueError(f"loaded state dict has state for parameter {key}, which no "
                                 "parameter group lists")
            p = by_index[key]
            new_state[p] = {name: _copy_state(name, v, p) for name, v in values.items()}
        self.state = new_state
        self.param_groups = [
            {**{k: copy.deepcopy(v) for k, v in saved.items() if k != "params"},
             "params": mine["params"]}
            for mine, saved in zip(self.param_groups, saved_groups, strict=True)]

    # ------------------------------------------------------------------ printing

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {group[k]}" for k in sorted(group) if k != "params")
        lines.append(")")
        return "\n".join(lines)


def _copy_state(name: str, value: Any, p: Tensor) -> Any:
    """A fresh copy of one saved state value. Floating tensors take the parameter's dtype (as in
    PyTorch), except the step count, which keeps its own."""
    if isinstance(value, np.ndarray):
        value = Tensor(value)
    if not isinstance(value, Tensor):
        return copy.deepcopy(value)
    if value.shape != p.shape and name != "step" and value.ndim != 0:
        raise LucidError(f"load_state_dict: state {name!r} has shape {value.shape}, but its "
                         f"parameter has shape {p.shape}")
    dtype = p.dtype if name != "step" and dtypes.is_floating(value.dtype) else value.dtype
    # Tensor() copies the array; the state lives where its parameter does (as in PyTorch).
    return Tensor(value.numpy(), dtype=dtype, device=p.device)
