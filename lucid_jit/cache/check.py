"""Guards compiled to one Python function per cache entry.

`CompiledEntry.check` runs on every call, so instead of walking guard objects it is generated:
straight-line code that fetches each graph input through its source, compares shape, dtype and
requires_grad with what was traced, reads the lifted floats, evaluates the float guards and the
other guards as inline expressions, and returns the forward graph's input arrays (or None). Any
lookup that fails (a missing optimizer state, a `.grad` that is None) also means None.
"""

from __future__ import annotations

import math

import numpy as np

from lucid import device
from lucid.nn.modules.module import STATE_EPOCH
from lucid_jit.cache.guards import module_fingerprint
from lucid_jit.tracing.tracer import _ARITH, _UNARY, TracedFloat

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
    if entry.device == "cpu":
        body.append(f"dev = {bind(device)}.DEVICE_TYPES")
    slots = {}
    for k, src in enumerate(entry.slot_sources):
        slots[k] = f"s{k}"
        body.append(f"s{k} = {bind(float)}({src.code(bind)})")
    results = []
    for i, (src, check) in enumerate(zip(entry.input_sources, entry.input_checks, strict=True)):
        if check is None:  # a lifted float, as a 0-d float64 array (kept while it holds)
            last = bind([None, None])
            s = slots[src[1]]
            body.append(f"if {s} == {last}[0] and {s} != 0.0:")
            body.append(f"    a{i} = {last}[1]")
            body.append("else:")
            body.append(f"    a{i} = {last}[1] = {bind(np.array)}({s}, {bind(np.float64)})")
            body.append(f"    {last}[0] = {s}")
            results.append(f"a{i}")
            continue
        shape, dtype, requires_grad = check
        body.append(f"t{i} = {src.code(bind)}")
        body.append(f"a{i} = t{i}.data")
        d = bind(np.dtype(dtype))
        if entry.device == "cpu":  # a device array fails (checked once the device is in use)
            where = f"(dev and {bind(isinstance)}(a{i}, dev))"
        else:  # each input where it was traced: a device array, or a 0-d host scalar
            host = entry.input_hosts.get(i, True)
            where = f"{bind(isinstance)}(a{i}, {bind(np.ndarray)}) is not {host}"
        body.append(f"if a{i}.shape != {shape!r} or (a{i}.dtype is not {d} and a{i}.dtype != {d})"
                    f" or t{i}.requires_grad is not {requires_grad} or {where}:")
        body.append("    return None")
        results.append(f"a{i}")
    conditions = [_float_guard_code(g, slots, bind) for g in entry.float_guards]
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


def _float_guard_code(g, slots, bind) -> str:
    """A float guard as an expression. Every constant is bound as an object, never spelled: a
    float's repr is not always Python (`inf`, `nan`)."""
    value = _expr_code(g.expr, slots, bind)
    if g.op == "pinned":
        if math.isnan(g.other):  # the exact value was nan: nan again, not `== nan` (never true)
            return f"({value} != {value})"
        return f"({value} == {bind(g.other)})"
    return f"(({value} {_CMP[g.op]} {bind(g.other)}) is {g.result})"


def _expr_code(expr, slots, bind) -> str:
    if isinstance(expr, TracedFloat):
        expr = expr.expr
    if not isinstance(expr, tuple):
        return bind(float(expr))
    if expr[0] == "slot":
        return slots[expr[1]]
    if expr[0] in _UNARY:
        inner = _expr_code(expr[1], slots, bind)
        return f"abs({inner})" if expr[0] == "abs" else f"(-{inner})"
    assert expr[0] in _ARITH
    return (f"({_expr_code(expr[1], slots, bind)} {_OPS[expr[0]]} "
            f"{_expr_code(expr[2], slots, bind)})")


def compile_run(entry):
    """A generated `run(flat, arrays)` for an entry whose write-backs are all simple, or None.

    Simple: every data write-back was done in place by the native code (only the tensor's
    version counter is left to bump); every `.grad`, optimizer state and output is a fresh
    buffer of its own (wrapped as is); no output needs a gradient (no autograd context to build).
    Everything else takes `CompiledEntry.run`, the general path."""
    from lucid.tensor import Tensor
    from lucid_jit.tracing import pytree

    backend = entry.backend
    program = backend.program(entry.forward) if hasattr(backend, "program") else None
    if program is None or program.owned is None:
        return None
    owned, inplace = program.owned, program.emitted.inplace
    ns = _Namespace()
    bind = ns.bind
    share = bind(Tensor._share)
    used: set[int] = set()

    def fresh(i):
        if i in used or not owned[i]:
            raise _NotSimple
        used.add(i)
        return f"{share}(outs[{i}])"

    body = [f"outs = {bind(program)}(arrays)"]
    try:
        for eff in entry.effects:
            if eff.kind == "data":
                if eff.index not in inplace:
                    return None
                body.append(f"{eff.source.code(bind)}._version[0] += 1")
        for eff in entry.effects:
            if eff.kind == "grad":
                value = "None" if eff.index is None else fresh(eff.index)
                body.append(f"{eff.source.code(bind)}.grad = {value}")
            elif eff.kind == "state":
                src = eff.source
                body.append(f"{bind(src.opt)}.state[{bind(src.param)}][{bind(src.key)}] = "
                            f"{fresh(eff.index)}")
        leaves = []
        for leaf in entry.out_leaves:
            if leaf[0] == "const":
                leaves.append(bind(leaf[1]))
            elif leaf[0] == "alias":
                leaves.append(leaf[1].code(bind))
            else:
                _, index, grad = leaf
                if grad is None:
                    leaves.append(fresh(index))
                elif grad in ("freed", "leaf"):
                    leaves.append(f"{bind(_freed if grad == 'freed' else _leaf)}({fresh(index)})")
                else:
                    return None
    except _NotSimple:
        return None
    if entry.out_spec is pytree.LEAF and len(leaves) == 1:
        body.append(f"return {leaves[0]}")
    else:
        body.append(f"return {bind(pytree.unflatten)}({bind(entry.out_spec)}, "
                    f"[{', '.join(leaves)}])")
    source = "def run(flat, arrays):\n" + "".join(f"    {line}\n" for line in body)
    namespace = dict(ns.globals)
    exec(compile(source, f"<lucid_jit write-backs of {entry.name}>", "exec"), namespace)  # noqa: S102
    run = namespace["run"]
    run.source = source
    return run


class _NotSimple(Exception):
    pass


def _freed(t):
    """An output whose graph a backward inside the function already freed (as eagerly)."""
    from lucid.autograd import _FREED

    t.requires_grad, t._ctx = True, _FREED
    return t


def _leaf(t):
    t.requires_grad = True
    return t
