"""Guards: what a cache entry checks before it runs, and the call key.

A call's key is the arguments' structure and each leaf's shape, dtype, requires_grad or value.
Beyond the key, an entry holds `Guard`s (a name, how to observe something at call time, and the
value it must equal) and `FloatGuard`s on lifted floats; this module builds them and prints them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lucid import dtypes
from lucid.nn.modules.module import Module
from lucid.ops.registry import GRAD_ENABLED
from lucid.tensor import Tensor
from lucid_jit.tracing.floats import TracedFloat, is_float
from lucid_jit.tracing.sources import Source

# ----------------------------------------------------------------------------- guards


@dataclass
class Guard:
    """A condition an entry needs beyond its inputs' avals. `code(bind)` is the condition, as a
    Python expression over the call's flattened arguments `flat` (`bind(obj)` names an object
    the code refers to): the generated check (check.py) is the only place it is decided.
    `observe(flat)` is what it looks at, traced as `expected`, for the message when it fails."""

    name: str
    observe: Any
    expected: Any
    code: Any

    def current(self, flat):
        try:
            return self.observe(flat)
        except Exception as exc:
            return f"<{type(exc).__name__}: {exc}>"


def module_fingerprint(m: Module):
    simple = (bool, int, float, str, type(None))
    attrs = tuple((k, v if isinstance(v, simple) else ("object", id(v)))
                  for k, v in m.__dict__.items()
                  if k not in ("_parameters", "_buffers", "_modules", "_non_persistent"))
    return (attrs,
            tuple((k, id(v)) for k, v in m._parameters.items()),
            tuple((k, id(v)) for k, v in m._buffers.items()),
            tuple((k, id(v)) for k, v in m._modules.items()))


def call_key(flat: list, spec) -> tuple:
    keys = []
    storages = []
    for x in flat:
        if isinstance(x, Tensor):
            d = x.data
            storages.append(id(d))
            if isinstance(d, np.ndarray):
                keys.append((d.shape, d.dtype.str, x.requires_grad))
            else:  # a device array
                keys.append((tuple(d.shape), d.dtype.str, x.requires_grad, "cuda"))
        elif isinstance(x, float) and not isinstance(x, TracedFloat):
            keys.append(float)
        elif x is None or isinstance(x, (bool, int, str, bytes)):
            keys.append((type(x), x))
        else:
            keys.append(("object", id(x)))
    # Which tensor arguments share an array (the same tensor passed twice): the graph differs.
    shared = None
    if len(storages) > 1 and len(set(storages)) != len(storages):
        shared = tuple(storages.index(i) for i in storages)
    return (spec, tuple(keys), GRAD_ENABLED.get(), shared, dtypes.DEFAULT_FLOAT)


def describe_key_field(part) -> str:
    if part is float:
        return "float (lifted)"
    if isinstance(part, tuple) and len(part) in (3, 4) and isinstance(part[0], tuple):
        shape, dtype, rg = part[:3]
        where = " on cuda" if len(part) == 4 else ""
        return f"{np.dtype(dtype).name}{list(shape)}{' requires_grad' if rg else ''}{where}"
    if isinstance(part, tuple) and part and part[0] == "object":
        return f"object id {part[1]}"
    if isinstance(part, tuple) and len(part) == 2 and isinstance(part[0], type):
        return repr(part[1])
    return repr(part)


def fmt_check(check) -> str:
    shape, dtype, rg = check
    return f"{np.dtype(dtype).name}{list(shape)}{' requires_grad' if rg else ''}"


def dedupe_float_guards(guards) -> list:
    """One guard per distinct comparison (an optimizer compares `1 - beta1` once per parameter)."""
    seen, out = set(), []
    for g in guards:
        key = (g.expr, g.op, g.other, g.result)
        if key not in seen:
            seen.add(key)
            out.append(g)
    return out


def binding_guard(src: Source, expected) -> Guard:
    """A closure or global variable: a simple value by value, anything else by identity."""
    from lucid_jit.tracing.sources import _binding_value

    obj = src.get(None)

    def observe(flat):
        return _binding_value(src.get(flat))

    if isinstance(expected, tuple) and expected == ("object", id(obj)):
        def code(bind):
            return f"{src.code(bind)} is {bind(obj)}"
    elif _is_nan(expected):  # nan equals nothing, not even itself: guard "is still nan"
        def is_nan(flat):
            return _is_nan(src.get(flat))

        def code(bind):
            return f"{bind(_is_nan)}({src.code(bind)})"
        return Guard(f"variable {src.describe()} is nan", is_nan, True, code)
    else:
        def code(bind):
            return f"{src.code(bind)} == {bind(expected)}"
    return Guard(f"variable {src.describe()}", observe, expected, code)


def _is_nan(value) -> bool:
    return isinstance(value, float) and value != value


def grad_guard(src: Source, is_none: bool) -> Guard:
    def observe(flat):
        return src.get(flat).grad is None

    def code(bind):
        return f"{src.code(bind)}.grad is {'' if is_none else 'not '}None"
    return Guard(f"{src.describe()}.grad is None", observe, is_none, code)


def structure_guards(reach) -> list[Guard]:
    """Per optimizer: its parameter lists, each parameter's state keys, its non-float settings."""
    guards = []
    for opt, name in reach.optimizers.values():
        def params(flat, opt=opt):
            return tuple(tuple(id(p) for p in g["params"]) for g in opt.param_groups)

        def state_keys(flat, opt=opt):
            return tuple(tuple(opt.state[p]) if p in opt.state else ()
                         for g in opt.param_groups for p in g["params"])

        def settings(flat, opt=opt):
            return tuple(tuple((k, v) for k, v in g.items() if k != "params" and not _lifted(v))
                         for g in opt.param_groups)

        def params_code(bind, opt=opt):
            groups = f"{bind(opt)}.param_groups"
            parts = [f"len({groups}) == {len(opt.param_groups)}"]
            for i, g in enumerate(opt.param_groups):
                lst = g["params"]
                parts.append(f"{groups}[{i}]['params'] is {bind(lst)}")
                parts.append(f"len({groups}[{i}]['params']) == {len(lst)}")
            return " and ".join(parts)

        def state_code(bind, opt=opt):
            st = f"{bind(opt)}.state"
            return " and ".join(f"len({st}.get({bind(p)}, ())) == "
                                f"{len(opt.state[p]) if p in opt.state else 0}"
                                for g in opt.param_groups for p in g["params"]) or "True"

        def settings_code(bind, opt=opt):
            parts = []
            for i, g in enumerate(opt.param_groups):
                group = f"{bind(opt)}.param_groups[{i}]"
                parts.append(f"len({group}) == {len(g)}")
                parts.extend(f"{group}[{bind(k)}] == {bind(v)}" for k, v in g.items()
                             if k != "params" and not _lifted(v))
            return " and ".join(parts) or "True"

        guards.append(Guard(f"{name}: parameters", params, params(None), params_code))
        guards.append(Guard(f"{name}: state keys", state_keys, state_keys(None), state_code))
        guards.append(Guard(f"{name}: non-float settings", settings, settings(None),
                            settings_code))
    return guards


def _lifted(v) -> bool:
    """A hyperparameter the trace lifts to a runtime input (a float, or a tuple of floats)."""
    return is_float(v) or (isinstance(v, tuple) and bool(v) and all(map(is_float, v)))
