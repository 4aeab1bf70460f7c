"""What a call must satisfy for a cache entry to run, written once as conditions and rendered
twice as generated Python:

- `check(flat)` runs on every call: straight-line code that fetches each graph input through its
  source, compares its shape, dtype and requires_grad with what was traced, reads the lifted
  floats, evaluates the float guards and the other guards inline, and returns the forward
  graph's input arrays, or None at the first condition that fails (or lookup: a missing
  optimizer state, a `.grad` that is None);
- `failures(flat)` runs only to say why a call retraced: the same setup and conditions, each
  failed one giving a line with what was traced and what the call has now.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lucid import device
from lucid.nn.modules.module import STATE_EPOCH
from lucid.tensor import Tensor
from lucid_jit.cache.guards import fmt_check, module_fingerprint

# Exceptions a fetch raises when what it reads is gone (a key, an attribute, a None).
_LOOKUP = "(LookupError, AttributeError, TypeError, ValueError)"


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


@dataclass(frozen=True)
class Setup:
    """Lines that fetch what later conditions read; `what` names it when a fetch fails."""

    lines: tuple[str, ...]
    what: str


@dataclass(frozen=True)
class Condition:
    """`code` is true when the condition holds; `why` is an expression giving the line that says
    what changed (evaluated only when it fails)."""

    code: str
    why: str


def compile_check(entry):
    """The generated `check(flat)` of a CompiledEntry (see the module docstring)."""
    ns = _Namespace()
    steps, results = _entry_steps(entry, ns.bind)
    return _render_check(ns, steps, f"[{', '.join(results)}]", entry.name)


def compile_failures(entry):
    """The generated `failures(flat)` of a CompiledEntry: the lines saying why a call does not
    run it (its traced and current values)."""
    ns = _Namespace()
    steps, _ = _entry_steps(entry, ns.bind)
    return _render_failures(ns, steps, entry.name)


def compile_guards(guards, name: str):
    """`(check, failures)` for an entry that only has named guards (an eager entry): check
    returns () when they hold."""
    ns = _Namespace()
    steps = [_guard_condition(g, ns.bind) for g in guards]
    return _render_check(ns, steps, "()", name), _render_failures(ns, steps, name)


# ----------------------------------------------------------------------------- the conditions


def _entry_steps(entry, bind) -> tuple[list, list[str]]:
    """The setup and conditions of a compiled entry, in the order `check` tests them (cheap and
    likely failures first), and the names of the input arrays it returns."""
    steps: list = []
    if entry.modules:
        steps.append(Condition(f"({bind(STATE_EPOCH)}[0] == {bind(entry)}.epoch or "
                               f"{bind(_modules_unchanged)}({bind(entry)}))",
                               f"{bind(_modules_why)}({bind(entry)})"))
    if entry.device == "cpu":
        steps.append(Setup((f"dev = {bind(device)}.DEVICE_TYPES",), "the device types"))
    slots = [f"s{k}" for k in range(len(entry.slot_sources))]
    for k, src in enumerate(entry.slot_sources):
        steps.append(Setup((f"s{k} = {bind(float)}({src.code(bind)})",),
                           f"lifted float {src.describe()}"))
    results = []
    for i, (src, check) in enumerate(zip(entry.input_sources, entry.input_checks, strict=True)):
        results.append(f"a{i}")
        if check is None:  # a lifted float, as a 0-d float64 array (kept while it holds)
            last = bind([None, None])
            s = slots[src.slot]
            steps.append(Setup((f"if {s} == {last}[0] and {s} != 0.0:",
                                f"    a{i} = {last}[1]",
                                "else:",
                                f"    a{i} = {last}[1] = {bind(np.array)}({s}, "
                                f"{bind(np.float64)})",
                                f"    {last}[0] = {s}"), f"lifted float {src.describe()}"))
            continue
        shape, dtype, requires_grad = check
        steps.append(Setup((f"t{i} = {src.code(bind)}", f"a{i} = t{i}.data"), src.describe()))
        d = bind(np.dtype(dtype))
        if entry.device == "cpu":  # a device array fails (checked once the device is in use)
            where = f"not (dev and {bind(isinstance)}(a{i}, dev))"
        else:  # each input where it was traced: a device array, or a 0-d host scalar
            host = entry.input_hosts.get(i, True)
            where = f"{bind(isinstance)}(a{i}, {bind(np.ndarray)}) is {host}"
        steps.append(Condition(
            f"(a{i}.shape == {bind(tuple(shape))} and (a{i}.dtype is {d} or a{i}.dtype == {d}) "
            "and "
            f"t{i}.requires_grad is {requires_grad} and {where})",
            f"{bind(src.describe())} + ': ' + {bind(fmt_check(check))} + ' -> ' + "
            f"{bind(_describe_now)}(t{i})"))
    traced_slots = list(entry._traced_slots)
    for g in entry.float_guards:
        was = g.expr.evaluate(traced_slots) if traced_slots else "?"
        text = f"lifted float {g.expr.describe(entry.slot_sources)}: {was!r} -> "
        steps.append(Condition(g.code(slots, bind),
                               f"{bind(text)} + repr({g.expr.code(slots, bind)}) + "
                               f"{bind(f' ({g.describe()})')}"))
    steps += [_guard_condition(g, bind) for g in entry.guards]
    for k, src in entry.alias_checks:
        steps.append(Condition(f"({src.code(bind)}.data is a{k})",
                               bind(f"{src.describe()} is no longer the array of input %{k}")))
    arrays = [r for r, c in zip(results, entry.input_checks, strict=True) if c is not None]
    if len(arrays) > 1:
        steps.append(Condition(f"(len({{{', '.join(f'id({a})' for a in arrays)}}}) == "
                               f"{len(arrays)})",
                               bind("inputs that were distinct when traced now share storage")))
    return steps, results


def _guard_condition(g, bind) -> Condition:
    return Condition(f"({g.code(bind)})",
                     f"{bind(g.name + ': ' + repr(g.expected) + ' -> ')} + "
                     f"repr({bind(g.current)}(flat))")


def _describe_now(t) -> str:
    if not isinstance(t, Tensor):
        return type(t).__name__
    where = "" if isinstance(t.data, np.ndarray) else " on cuda"
    return fmt_check((tuple(t.data.shape), t.data.dtype, t.requires_grad)) + where


def _modules_unchanged(entry) -> bool:
    """The slow half of the module guard: only runs after some module changed anywhere."""
    for m, fp in entry.modules:
        if module_fingerprint(m) != fp:
            return False
    entry.epoch = STATE_EPOCH[0]
    return True


def _modules_why(entry) -> str:
    lines = []
    for m, fp in entry.modules:
        now = module_fingerprint(m)
        if now != fp:
            changed = [k for (k, v) in fp[0] if dict(now[0]).get(k) != v]
            detail = f" (attributes {', '.join(changed)})" if changed else ""
            lines.append(f"module {type(m).__name__} changed{detail}: training="
                         f"{dict(fp[0]).get('training')} -> {m.training}")
    return "; ".join(lines) or "a module changed"


# ----------------------------------------------------------------------------- the renderings


def _render_check(ns: _Namespace, steps: list, result: str, name: str):
    body = []
    for step in steps:
        if isinstance(step, Setup):
            body += step.lines
        else:
            body += [f"if not {step.code}:", "    return None"]
    body.append(f"return {result}")
    lines = ["def check(flat):", "    try:"] + ["        " + ln for ln in body]
    lines += [f"    except {_LOOKUP}:", "        return None"]
    return _define(ns, lines, "check", f"<lucid_jit guards of {name}>")


def _render_failures(ns: _Namespace, steps: list, name: str):
    body = ["out = []"]
    for step in steps:
        if isinstance(step, Setup):
            body += ["try:"] + ["    " + ln for ln in step.lines]
            body += [f"except {_LOOKUP} as exc:",
                     f"    out.append({ns.bind(step.what)} + ' no longer resolves: ' + "
                     "repr(exc))",
                     "    return out"]
        else:
            body += ["try:", f"    ok = {step.code}", f"except {_LOOKUP}:", "    ok = False",
                     "if not ok:", f"    out.append({step.why})"]
    body.append("return out or ['a new input signature']")
    lines = ["def failures(flat):"] + ["    " + ln for ln in body]
    return _define(ns, lines, "failures", f"<lucid_jit guard failures of {name}>")


# Compiled generated code by its text: sizes and objects are bound names, not literals, so an
# entry traced again at a new batch size renders the same text and skips Python's compiler.
_CODE: dict[tuple[str, str], object] = {}


def define(source: str, filename: str, names: dict, fn: str):
    """Run generated `source` (compiled once per text) in a namespace of `names`; its `fn`."""
    code = _CODE.get((source, filename))
    if code is None:
        if len(_CODE) > 2048:
            _CODE.clear()
        code = _CODE[source, filename] = compile(source, filename, "exec")
    namespace = dict(names)
    exec(code, namespace)  # noqa: S102 (our own generated code)
    return namespace[fn]


def _define(ns: _Namespace, lines: list[str], fn: str, filename: str):
    source = "\n".join(lines) + "\n"
    result = define(source, filename, ns.globals, fn)
    result.source = source
    return result
