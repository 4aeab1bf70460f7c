"""Module and Parameter: the base of every layer, with PyTorch's API and printing."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

import numpy as np

from lucid import dtypes
from lucid.autograd import no_grad
from lucid.ops.registry import LucidError
from lucid.tensor import Tensor


class Parameter(Tensor):
    """A tensor that a Module registers as a learnable parameter (requires grad by default)."""

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            data = np.zeros((0,), dtypes.float32)
        arr = data.data if isinstance(data, Tensor) else np.asarray(data)
        if not isinstance(data, Tensor) and arr.dtype == np.float64 and not isinstance(
                data, np.ndarray):
            arr = arr.astype(dtypes.float32)
        self.data = arr
        self.grad = None
        self._ctx = None
        self._version = data._version if isinstance(data, Tensor) else [0]
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


def _addindent(text: str, spaces: int) -> str:
    lines = text.split("\n")
    return lines[0] if len(lines) == 1 else lines[0] + "\n" + "\n".join(
        " " * spaces + line for line in lines[1:])


# Bumped by every change to any module's attributes, registrations or training flag. Compiled
# functions compare it to decide whether the modules they captured need to be re-checked.
STATE_EPOCH = [0]


class _HookHandle:
    """What register_*_hook returns: `remove()` unregisters the hook."""

    def __init__(self, table: dict, key: int) -> None:
        self._table, self._key = table, key

    def remove(self) -> None:
        self._table.pop(self._key, None)


class Module:
    """Base class of all layers. Subclasses define `forward`; attributes that are Parameters,
    Modules or registered buffers are tracked automatically, in assignment order."""

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------------ attributes

    def __setattr__(self, name: str, value) -> None:
        STATE_EPOCH[0] += 1
        if "_parameters" not in self.__dict__:
            if isinstance(value, (Parameter, Module)):
                raise LucidError(f"{type(self).__name__}: call super().__init__() before "
                                 f"assigning {name!r}")
            object.__setattr__(self, name, value)
            return
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if isinstance(value, Parameter):
            self._forget(name)
            params[name] = value
        elif isinstance(value, Module):
            self._forget(name)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to parameter {name!r} "
                                "(expected a Parameter or None)")
            params[name] = None
        elif name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} to buffer {name!r}")
            buffers[name] = value
        elif name in modules and value is None:
            modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str) -> None:
        STATE_EPOCH[0] += 1
        for store in (self._parameters, self._buffers, self._modules):
            store.pop(name, None)
        self.__dict__.pop(name, None)

    def __getattr__(self, name: str):
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        STATE_EPOCH[0] += 1
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None")
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: {name!r} must be a Tensor or None")
        self._forget(name)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        self._forget(name)
        self._modules[name] = module

    register_module = add_module

    # ------------------------------------------------------------------ calling

    def forward(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        hooks = self.__dict__.get("_hooks")
        if not hooks:
            return self.forward(*args, **kwargs)
        for hook in list(hooks["pre"].values()):
            changed = hook(self, args)
            if changed is not None:
                args = changed if isinstance(changed, tuple) else (changed,)
        out = self.forward(*args, **kwargs)
        for hook in list(hooks["post"].values()):
            changed = hook(self, args, out)
            if changed is not None:
                out = changed
        return out

    def _hook_table(self) -> dict:
        hooks = self.__dict__.get("_hooks")
        if hooks is None:
            hooks = {"pre": {}, "post": {}, "next": 0}
            object.__setattr__(self, "_hooks", hooks)
        return hooks

    def _add_hook(self, kind: str, hook):
        table = self._hook_table()
        key = table["next"]
        table["next"] += 1
        table[kind][key] = hook
        return _HookHandle(table[kind], key)

    def register_forward_hook(self, hook):
        """hook(module, args, output) after each forward; a value it returns replaces the
        output. (In a compiled module the hook runs while tracing.)"""
        return self._add_hook("post", hook)

    def register_forward_pre_hook(self, hook):
        """hook(module, args) before each forward; a value it returns replaces the args."""
        return self._add_hook("pre", hook)

    def get_submodule(self, target: str) -> Module:
        """The submodule at a dotted path ("encoder.layers.0")."""
        module = self
        for name in target.split(".") if target else ():
            if name not in module._modules:
                raise AttributeError(f"{module._get_name()} has no attribute `{name}`")
            module = module._modules[name]
        return module

    def get_parameter(self, target: str) -> Parameter:
        path, _, name = target.rpartition(".")
        module = self.get_submodule(path)
        if name not in module._parameters:
            raise AttributeError(f"{module._get_name()} has no parameter `{name}`")
        return module._parameters[name]

    # ------------------------------------------------------------------ traversal

    def named_modules(self, memo=None, prefix: str = "") -> Iterator[tuple[str, Module]]:
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(memo, f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def _named_members(self, store: str, prefix: str, recurse: bool):
        seen = set()
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mod_prefix, mod in mods:
            for name, value in getattr(mod, store).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True):
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn) -> Module:
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ modes and grads

    def train(self, mode: bool = True) -> Module:
        STATE_EPOCH[0] += 1
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad = p.grad.detach()
                p.grad.zero_()

    def to(self, *args, dtype=None, device=None, non_blocking: bool = False) -> Module:
        """Move parameters, their gradients and buffers to `device` and cast floating ones to
        `dtype`, in place (the tensors keep their identity, so optimizers built on them still
        see them, as in PyTorch)."""
        from lucid import device as _device

        for a in args:
            if isinstance(a, str) and a.split(":")[0] in ("cpu", "cuda"):
                device = a
            elif isinstance(a, _device.Device):
                device = a.type
            else:
                dtype = a
        if device is not None:
            device = _device.normalize(device)
            if device == "cuda":
                _device.runtime()  # the clear error where there is no device
        dtype = None if dtype is None else dtypes.as_dtype(dtype)
        tensors = list(self.parameters()) + list(self.buffers())
        tensors += [t.grad for t in tensors if t.grad is not None]
        for t in tensors:
            data = t.data
            if dtype is not None and dtypes.is_floating(t.dtype) and t.dtype != dtype:
                data = _device.to_host(data).astype(dtype)
                if _device.is_device_array(t.data) and device is None:
                    data = _device.to_device(data)
            if device is not None:
                data = _device.move(data, device)
            if data is not t.data:
                t.data = data
                t._version[0] += 1
        return self

    def cuda(self, device=None) -> Module:
        return self.to("cuda")

    def float(self) -> Module:
        return self.to(dtypes.float32)

    def double(self) -> Module:
        return self.to(dtypes.float64)

    def half(self) -> Module:
        raise TypeError(f"{type(self).__name__}.half(): lucid computes in float32 and float64 "
                        "only (no float16 arithmetic); keep the model in float32 (lucid.autocast "
                        "blocks run unchanged)")

    bfloat16 = half

    def cpu(self) -> Module:
        return self.to("cpu")

    # ------------------------------------------------------------------ state

    def state_dict(self, prefix: str = "") -> OrderedDict:
        """Parameters and persistent buffers by dotted name (detached; they share memory)."""
        out = OrderedDict()
        for mod_prefix, mod in self.named_modules(prefix=prefix.rstrip(".")):
            dot = f"{mod_prefix}." if mod_prefix else ""
            for name, p in mod._parameters.items():
                if p is not None:
                    out[dot + name] = p.detach()
            for name, b in mod._buffers.items():
                if b is not None and name not in mod._non_persistent:
                    out[dot + name] = b.detach()
        return out

    def load_state_dict(self, state_dict, strict: bool = True):
        """Copy values into this module's tensors in place; shapes must match."""
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise LucidError(f"load_state_dict for {type(self).__name__}: missing keys "
                             f"{missing}, unexpected keys {unexpected}")
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            arr = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
            if arr.shape != target.shape:
                raise LucidError(f"load_state_dict: {key} has shape {arr.shape} in the state "
                                 f"dict but {target.shape} in the module")
        with no_grad():
            for key, target in own.items():
                if key in state_dict:
                    value = state_dict[key]
                    arr = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
                    arr = arr.astype(target.dtype, copy=False)
                    if isinstance(target.data, np.ndarray):
                        np.copyto(target.data, arr)
                    else:  # a device tensor
                        from lucid import device as _device

                        _device.runtime().copy_into(target.data, _device.to_device(arr))
                    target._version[0] += 1
        return missing, unexpected

    # ------------------------------------------------------------------ printing

    def extra_repr(self) -> str:
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        lines = []
        extra = self.extra_repr()
        if extra:
            lines.extend(extra.split("\n"))
        for name, child in self._modules.items():
            lines.append(f"({name}): " + _addindent(repr(child), 2))
        if not self._modules:
            return f"{self._get_name()}({extra})"
        body = "\n  ".join(lines)
        return f"{self._get_name()}(\n  {body}\n)"

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))
