"""Guards compiled to one Python function per cache entry.

`CompiledEntry.check` runs on every call, so instead of walking guard objects it is generated:
straight-line code that fetches each graph input through its source, compares shape, dtype and
requires_grad with what was traced, reads the lifted floats, evaluates the float guards and the
other guards as inline expressions, and returns the forward graph's input arrays (or None). Any
lookup that fails (a missing optimizer state, a `.grad` that is None) also means None.
"""

from __future__ import annotations

import numpy as np

from lucid.nn.modules.module import STATE_EPOCH
from lucid_jit.guards import module_fingerprint
from lucid_jit.trace import _ARITH, _UNARY, TracedFloat

_OPS = {"add": "+", "sub": "-", "mul": "*", "truediv": "/", "pow": "**"}
_CMP = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


class _Namespace:
    """Objects the generated code refers to, each bound to a short global name."""

    def __init__(self) -> None:
        self.globals: dict = {}
        self._names: dict[int, str] = {}

    def bind(self, obj) -> str:
        name = self._names.get(id(obj))
        if name is None:
            name = f"_g{len(self._names)}"
            self._names[id(obj)] = name
            self.globals[name] = obj
        return name


def compile_check(entry):
    """The generated `check(flat)` of a CompiledEntry (see the module docstring)."""
    ns = _Namespace()
    bind = ns.bind
    lines = ["def check(flat):", "    try:"]
    body = []
    if entry.modules:
        body.append(f"if {bind(STATE_EPOCH)}[0] != {bind(entry)}.epoch and not "
                    f"{bind(_modules_unchanged)}({bind(entry)}):")
        body.append("    return None")
    slots = {}
    for k, src in enumerate(entry.slot_sources):
        slots[k] = f"s{k}"
        body.append(f"s{k} = {bind(float)}({src.code(bind)})")
    results = []
    for i, (src, check) in enumerate(zip(entry.input_sources, entry.input_checks, strict=True)):
        if check is None:  # a lifted float, as a 0-d float64 array
            body.append(f"a{i} = {bind(np.array)}({slots[src[1]]}, {bind(np.float64)})")
            results.append(f"a{i}")
            continue
        shape, dtype, requires_grad = check
        body.append(f"t{i} = {src.code(bind)}")
        body.append(f"a{i} = t{i}.data")
        d = bind(np.dtype(dtype))
        body.append(f"if a{i}.shape != {shape!r} or (a{i}.dtype is not {d} and a{i}.dtype != {d})"
                    f" or t{i}.requires_grad is not {requires_grad}:")
        body.append("    return None")
        results.append(f"a{i}")
    conditions = [_float_guard_code(g, slots) for g in entry.float_guards]
    for g in entry.guards:
        conditions.append(f"({g.code(bind)})" if g.code is not None
                          else f"{bind(g)}.holds(flat)")
    for k, src in entry.alias_checks:
        conditions.append(f"{src.code(bind)}.data is a{k}")
    for cond in conditions:
        body.append(f"if not {cond}:")
        body.append("    return None")
    arrays = [r for r, c in zip(results, entry.input_checks, strict=True) if c is not None]
    if len(arrays) > 1:
        body.append(f"if len({{{', '.join(f'id({a})' for a in arrays)}}}) != {len(arrays)}:")
        body.append("    return None  # inputs distinct when traced now share an array")
    body.append(f"return [{', '.join(results)}]")
    lines.extend("        " + line for line in body)
    lines.append("    except (LookupError, AttributeError, TypeError, ValueError):")
    lines.append("        return None")
    source = "\n".join(lines) + "\n"
    namespace = dict(ns.globals)
    exec(compile(source, f"<lucid_jit guards of {entry.name}>", "exec"), namespace)  # noqa: S102
    check = namespace["check"]
    check.source = source
    return check


def _modules_unchanged(entry) -> bool:
    """The slow half of the module guard: only runs after some module changed anywhere."""
    for m, fp in entry.modules:
        if module_fingerprint(m) != fp:
            return False
    entry.epoch = STATE_EPOCH[0]
    return True


def _float_guard_code(g, slots) -> str:
    value = _expr_code(g.expr, slots)
    if g.op == "pinned":
        return f"({value} == {g.other!r})"
    return f"(({value} {_CMP[g.op]} {g.other!r}) is {g.result})"


def _expr_code(expr, slots) -> str:
    if isinstance(expr, TracedFloat):
        expr = expr.expr
    if not isinstance(expr, tuple):
        return repr(float(expr))
    if expr[0] == "slot":
        return slots[expr[1]]
    if expr[0] in _UNARY:
        inner = _expr_code(expr[1], slots)
        return f"abs({inner})" if expr[0] == "abs" else f"(-{inner})"
    assert expr[0] in _ARITH
    return f"({_expr_code(expr[1], slots)} {_OPS[expr[0]]} {_expr_code(expr[2], slots)})"
