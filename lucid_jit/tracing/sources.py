"""Where a compiled function finds, on every call, the things its graph reads from outside.

A `Source` fetches one object from the call's flattened arguments or from the objects the function
closes over (a module's parameter, a parameter's `.grad`, an optimizer's state tensor, a
hyperparameter in a param group). The tracer records a source for every graph input, so captured
tensors are read afresh on every call and never baked in. `scan` finds the modules, optimizers and
tensors a function can reach, so that the tracer knows their sources before it meets them.
"""

from __future__ import annotations

import types
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from lucid.nn.modules.module import Module
from lucid.optim.optimizer import Optimizer
from lucid.tensor import Tensor

MISSING = object()


class Source(ABC):
    """Fetches an object at call time: `get(flat_args)`; `describe()` names it for people."""

    @abstractmethod
    def get(self, flat: list) -> Any:
        """The object for this call (flat: the call's flattened arguments)."""

    @abstractmethod
    def describe(self) -> str:
        """A name for people: `model.0.weight`, `opt.state[model.0.weight]['exp_avg']`."""

    @abstractmethod
    def code(self, bind) -> str:
        """A Python expression fetching the object from `flat` in generated guard code;
        `bind(obj)` returns the name under which an object is available there."""

    def __repr__(self) -> str:
        return self.describe()


@dataclass(frozen=True, eq=False)
class ArgSource(Source):
    index: int
    name: str

    def get(self, flat):
        return flat[self.index]

    def describe(self):
        return self.name

    def code(self, bind):
        return f"flat[{self.index}]"


@dataclass(frozen=True, eq=False)
class ObjSource(Source):
    """An object held by reference (a module's parameter, a tensor the function closes over)."""

    obj: Any
    name: str

    def get(self, flat):
        return self.obj

    def describe(self):
        return self.name

    def code(self, bind):
        return bind(self.obj)


@dataclass(frozen=True, eq=False)
class GradSource(Source):
    parent: Source

    def get(self, flat):
        owner = self.parent.get(flat)
        return None if owner is None else owner.grad

    def describe(self):
        return f"{self.parent.describe()}.grad"

    def code(self, bind):
        return f"{self.parent.code(bind)}.grad"


@dataclass(frozen=True, eq=False)
class OptStateSource(Source):
    opt: Optimizer
    param: Tensor
    key: str
    name: str

    def get(self, flat):
        state = self.opt.state.get(self.param)
        return None if state is None else state.get(self.key)

    def describe(self):
        return f"{self.name}[{self.key!r}]"

    def code(self, bind):
        return f"{bind(self.opt)}.state[{bind(self.param)}][{bind(self.key)}]"


@dataclass(frozen=True, eq=False)
class GroupSource(Source):
    """A hyperparameter: `opt.param_groups[group][key]`, or one element of a tuple there."""

    opt: Optimizer
    group: int
    key: str
    item: int | None
    name: str

    def get(self, flat):
        value = self.opt.param_groups[self.group].get(self.key, MISSING)
        return value if self.item is None or value is MISSING else value[self.item]

    def describe(self):
        item = "" if self.item is None else f"[{self.item}]"
        return f"{self.name}.param_groups[{self.group}][{self.key!r}]{item}"

    def code(self, bind):
        return (f"{bind(self.opt)}.param_groups[{self.group}][{bind(self.key)}]"
                + ("" if self.item is None else f"[{self.item}]"))


@dataclass(frozen=True, eq=False)
class CellSource(Source):
    """A closure variable of the function (read on every call: rebinding it is seen)."""

    cell: Any
    name: str

    def get(self, flat):
        return self.cell.cell_contents

    def describe(self):
        return self.name

    def code(self, bind):
        return f"{bind(self.cell)}.cell_contents"


@dataclass(frozen=True, eq=False)
class GlobalSource(Source):
    """A global variable the function's code names."""

    namespace: dict
    name: str

    def get(self, flat):
        return self.namespace[self.name]

    def describe(self):
        return self.name

    def code(self, bind):
        return f"{bind(self.namespace)}[{bind(self.name)}]"


# Graph inputs that no Source fetches from the call (what the graph's caller passes itself).


@dataclass(frozen=True)
class SlotInput:
    """A lifted float (slot `slot`): its current value as a 0-d float64 array."""

    slot: int

    def describe(self) -> str:
        return f"(lifted float {self.slot})"


@dataclass(frozen=True, eq=False)
class ResidualInput:
    """An input of a backward trace: a value of the forward trace (saved by the forward call)."""

    value: Any

    def describe(self) -> str:
        return "(a saved forward value)"


@dataclass(frozen=True)
class SeedInput:
    """An input of a backward graph: the gradient of differentiable output `index`."""

    index: int

    def describe(self) -> str:
        return f"grad_output{self.index}"


@dataclass(frozen=True)
class SavedInput:
    """An input of a backward graph: forward output `index` of the same call (a residual)."""

    index: int

    def describe(self) -> str:
        return f"(forward output {self.index})"


_SIMPLE = (bool, int, float, str, bytes, type(None))


def _binding_value(value):
    """What a guard on a closure or global variable compares: simple values by value, tensors not
    at all (they are read afresh), anything else by identity."""
    if isinstance(value, _SIMPLE) or (isinstance(value, tuple) and
                                       all(isinstance(v, _SIMPLE) for v in value)):
        return value
    return ("object", id(value))


@dataclass
class Reach:
    """What a function can reach: modules, optimizers, and a source for every tensor found."""

    modules: dict[int, tuple[Module, str]] = field(default_factory=dict)
    optimizers: dict[int, tuple[Optimizer, str]] = field(default_factory=dict)
    tensors: dict[int, tuple[Tensor, Source]] = field(default_factory=dict)
    # Further sources of a tensor already found (an argument that is also a closure variable).
    aliases: dict[int, list[Source]] = field(default_factory=dict)
    # Closure and global variables the function reads: (source, the value a guard expects).
    bindings: list[tuple[Source, Any]] = field(default_factory=list)

    def add_tensor(self, t: Tensor, source: Source) -> None:
        if id(t) in self.tensors:
            if isinstance(source, ArgSource) or isinstance(self.tensors[id(t)][1], ArgSource):
                self.aliases.setdefault(id(t), []).append(source)
        else:
            self.tensors[id(t)] = (t, source)
            if t.grad is not None:
                self.add_tensor(t.grad, GradSource(source))


def scan(fn, flat_args: list, arg_names: list[str]) -> Reach:
    """Modules, optimizers and tensors reachable from fn's closure, the globals its code names
    (following helper functions a few levels deep) and its arguments."""
    reach = Reach()
    seen: set[int] = set()
    for i, (value, name) in enumerate(zip(flat_args, arg_names, strict=True)):
        if isinstance(value, Tensor):
            reach.add_tensor(value, ArgSource(i, name))
        else:
            _visit(value, name, reach, seen, depth=0)
    _visit_function(fn, getattr(fn, "__name__", "fn"), reach, seen, depth=0)
    for module, name in list(reach.modules.values()):
        for pname, p in module.named_parameters(recurse=False):
            reach.add_tensor(p, ObjSource(p, f"{name}.{pname}"))
        for bname, b in module.named_buffers(recurse=False):
            reach.add_tensor(b, ObjSource(b, f"{name}.{bname}"))
    for opt, name in list(reach.optimizers.values()):
        _scan_optimizer(opt, name, reach)
    return reach


def _scan_optimizer(opt: Optimizer, name: str, reach: Reach) -> None:
    for gi, group in enumerate(opt.param_groups):
        for pi, p in enumerate(group["params"]):
            reach.add_tensor(p, ObjSource(p, f"{name}.param_groups[{gi}]['params'][{pi}]"))
    for p, state in opt.state.items():
        pname = reach.tensors[id(p)][1].describe() if id(p) in reach.tensors else "param"
        for key, value in state.items():
            if isinstance(value, Tensor):
                reach.add_tensor(value, OptStateSource(opt, p, key, f"{name}.state[{pname}]"))


_MAX_DEPTH = 3
_LIBRARIES = frozenset({"lucid", "lucid_jit", "numpy", "scipy"})


def _visit(value, name: str, reach: Reach, seen: set[int], depth: int) -> None:
    if id(value) in seen or depth > _MAX_DEPTH:
        return
    if isinstance(value, Tensor):
        reach.add_tensor(value, ObjSource(value, name))
        return
    if isinstance(value, (str, bytes, int, float, type(None), types.ModuleType, type)):
        return
    seen.add(id(value))
    if isinstance(value, Module):
        for mname, m in value.named_modules(prefix=name):
            reach.modules.setdefault(id(m), (m, mname))
        # A module's forward may call helpers that close over more state.
        forward = getattr(type(value), "forward", None)
        if isinstance(forward, types.FunctionType):
            _visit_function(forward, f"{type(value).__name__}.forward", reach, seen, depth + 1)
    elif isinstance(value, Optimizer):
        reach.optimizers.setdefault(id(value), (value, name))
    elif isinstance(value, (list, tuple)) and len(value) <= 64:
        for i, item in enumerate(value):
            _visit(item, f"{name}[{i}]", reach, seen, depth + 1)
    elif isinstance(value, dict) and len(value) <= 64:
        for k, item in value.items():
            _visit(item, f"{name}[{k!r}]", reach, seen, depth + 1)
    elif isinstance(value, (types.FunctionType, types.MethodType)):
        _visit_function(value, name, reach, seen, depth + 1)
    elif hasattr(value, "__dict__") and not isinstance(value, types.BuiltinFunctionType):
        if callable(value) or depth == 0:
            for k, item in list(vars(value).items())[:64]:
                _visit(item, f"{name}.{k}", reach, seen, depth + 1)


def _visit_function(fn, name: str, reach: Reach, seen: set[int], depth: int) -> None:
    if isinstance(fn, types.MethodType):
        _visit(fn.__self__, "self", reach, seen, depth)
        fn = fn.__func__
    if isinstance(fn, Module):
        _visit(fn, name, reach, seen, depth)
        return
    if not isinstance(fn, types.FunctionType):
        if hasattr(fn, "__call__") and hasattr(fn, "__dict__"):  # noqa: B004 (a callable object)
            _visit(fn, name, reach, seen, depth)
        return
    if id(fn) in seen or depth > _MAX_DEPTH:
        return
    seen.add(id(fn))
    if depth > 0 and (fn.__module__ or "").split(".")[0] in _LIBRARIES:
        return  # lucid's own functions hold no user state
    code = fn.__code__
    for var, cell in zip(code.co_freevars, fn.__closure__ or (), strict=True):
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        _bind(CellSource(cell, var), value, reach)
        _visit(value, var, reach, seen, depth)
    for gname in _global_names(code):
        value = fn.__globals__.get(gname, MISSING)
        if value is not MISSING:
            _bind(GlobalSource(fn.__globals__, gname), value, reach)
            _visit(value, gname, reach, seen, depth)
    for d in fn.__defaults__ or ():
        _visit(d, "default", reach, seen, depth)


def _bind(source: Source, value, reach: Reach) -> None:
    if isinstance(value, (types.ModuleType, type)):
        return
    if isinstance(value, Tensor):
        reach.add_tensor(value, source)  # read through the variable on every call
        return
    reach.bindings.append((source, _binding_value(value)))


def _global_names(code: types.CodeType) -> list[str]:
    """The names code and the functions nested in it (comprehensions, lambdas) may read."""
    names: set[str] = set()
    stack = [code]
    while stack:
        c = stack.pop()
        names.update(c.co_names)
        stack += [k for k in c.co_consts if isinstance(k, types.CodeType)]
    return sorted(names)
