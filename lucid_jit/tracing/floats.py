"""Lifted floats: Python floats a compiled function reads afresh on every call (float arguments,
optimizers' learning rates and betas), and the expressions and guards built on them.

A `TracedFloat` stands for such a float while tracing. Arithmetic on it builds a `FloatExpr`
over the call's slot values, so `1 - beta1` reaches tensor ops as graph computation on an input,
not as a baked number. Comparisons answer from the traced value and record a `FloatGuard`, so a
call where the answer would differ retraces.

`FloatExpr` is the one expression type: `fold` walks it, and its value (`evaluate`), its text for
people (`describe`), its Python code in generated guards (`code`) and its graph ops (the tracer's
`float_value`) are all folds.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

COMPARE = {"eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le,
           "gt": operator.gt, "ge": operator.ge}
COMPARE_SYMBOL = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
ARITH = {"add": operator.add, "sub": operator.sub, "mul": operator.mul,
         "truediv": operator.truediv, "pow": operator.pow}
ARITH_SYMBOL = {"add": "+", "sub": "-", "mul": "*", "truediv": "/", "pow": "**"}
UNARY = {"abs": abs, "neg": operator.neg}
_NUMBERS = (int, float, np.integer, np.floating)


# ----------------------------------------------------------------------------- expressions


class FloatFold(Protocol):
    """What a fold of a FloatExpr does at each kind of node (children already folded)."""

    def slot(self, index: int) -> Any: ...
    def const(self, value: float) -> Any: ...
    def unary(self, op: str, x: Any) -> Any: ...
    def binary(self, op: str, a: Any, b: Any) -> Any: ...


class FloatExpr:
    """A lifted float's expression: `Slot(i)` (the i-th lifted float of the call), `Const`,
    `Unary` ("neg", "abs") and `Binary` ("add", "sub", "mul", "truediv", "pow"). Frozen
    dataclasses: equal expressions are equal and hash alike."""

    def fold(self, f: FloatFold):
        raise NotImplementedError

    def evaluate(self, slots) -> float:
        """The value for this call's slot values."""
        return self.fold(_Evaluate(slots))

    def describe(self, slot_sources) -> str:
        """For people: `(1 - opt.param_groups[0]['betas'][0])`."""
        return self.fold(_Describe(slot_sources))

    def code(self, slots: list[str], bind) -> str:
        """A Python expression over the slot variables `slots`; constants are bound objects
        (`bind(obj)` names them), never spelled: a float's repr is not always Python (`inf`)."""
        return self.fold(_Code(slots, bind))


@dataclass(frozen=True)
class Slot(FloatExpr):
    index: int

    def fold(self, f):
        return f.slot(self.index)


@dataclass(frozen=True)
class Const(FloatExpr):
    value: float | int

    def fold(self, f):
        return f.const(self.value)


@dataclass(frozen=True)
class Unary(FloatExpr):
    op: str
    x: FloatExpr

    def fold(self, f):
        return f.unary(self.op, self.x.fold(f))


@dataclass(frozen=True)
class Binary(FloatExpr):
    op: str
    a: FloatExpr
    b: FloatExpr

    def fold(self, f):
        return f.binary(self.op, self.a.fold(f), self.b.fold(f))


class _Evaluate:
    def __init__(self, slots) -> None:
        self.slots = slots

    def slot(self, index):
        return self.slots[index]

    def const(self, value):
        return value

    def unary(self, op, x):
        return UNARY[op](x)

    def binary(self, op, a, b):
        return ARITH[op](a, b)


class _Describe:
    def __init__(self, slot_sources) -> None:
        self.sources = slot_sources

    def slot(self, index):
        return self.sources[index].describe()

    def const(self, value):
        return repr(value)

    def unary(self, op, x):
        return f"abs({x})" if op == "abs" else f"-{x}"

    def binary(self, op, a, b):
        return f"({a} {ARITH_SYMBOL[op]} {b})"


class _Code:
    def __init__(self, slots, bind) -> None:
        self.slots, self.bind = slots, bind

    def slot(self, index):
        return self.slots[index]

    def const(self, value):
        return self.bind(float(value))

    def unary(self, op, x):
        return f"abs({x})" if op == "abs" else f"(-{x})"

    def binary(self, op, a, b):
        return f"({a} {ARITH_SYMBOL[op]} {b})"


# ----------------------------------------------------------------------------- guards


@dataclass(frozen=True)
class FloatGuard:
    """`expr <op> other` must give `result` again; op "pinned" is an exact-value guard (the
    function used the number itself)."""

    expr: FloatExpr
    op: str
    other: float
    result: bool

    def holds(self, slots) -> bool:
        value = self.expr.evaluate(slots)
        if self.op == "pinned":  # the same value (nan included, which equals nothing)
            return value == self.other or (value != value and self.other != self.other)
        return COMPARE[self.op](value, self.other) == self.result

    def code(self, slots: list[str], bind) -> str:
        """The guard as a Python expression (generated checks)."""
        value = self.expr.code(slots, bind)
        if self.op == "pinned":
            if math.isnan(self.other):  # nan again, not `== nan` (never true)
                return f"({value} != {value})"
            return f"({value} == {bind(self.other)})"
        return f"(({value} {COMPARE_SYMBOL[self.op]} {bind(self.other)}) is {self.result})"

    def describe(self) -> str:
        """What was observed while tracing, for people."""
        if self.op == "pinned":
            return f"its exact value {self.other!r} was used"
        return f"`{COMPARE_SYMBOL[self.op]} {self.other!r}` was {self.result}"


# ----------------------------------------------------------------------------- the traced float


def is_float(v) -> bool:
    """A plain Python float (one a trace lifts), not a TracedFloat."""
    return isinstance(v, float) and not isinstance(v, TracedFloat)



class TracedFloat:
    """A Python float that is a runtime input of the graph (a float argument, a learning rate).

    Arithmetic on it builds an expression, so a float derived from it (`1 - beta1`,
    `lr * weight_decay`, `abs(s)`) reaches tensor ops as graph computation on the input, not as a
    baked number. Comparisons and truth tests answer from the traced value and record a guard, so
    a call where the answer would differ retraces. Every other way of reading the number
    (`float(s)`, `math.exp(s)`, `np.float64(s)`, `int(s)`, `s // 1`) goes through `__float__` and
    friends, which pin it: the entry then only runs for that exact value.

    It is deliberately not a float subclass: CPython reads a float subclass's value directly in
    `math` and NumPy, so such uses could not be seen. `tracer` is the trace it belongs to (its
    `pin` and `float_guard` record guards, its `float_value` makes graph values of it).
    """

    __slots__ = ("value", "expr", "tracer", "__weakref__")

    def __init__(self, value: float, expr: FloatExpr, tracer) -> None:
        self.value = float(value)
        self.expr = expr
        self.tracer = tracer

    def _arith(self, other, name: str, reverse: bool):
        if isinstance(other, TracedFloat):
            plain_other, other_expr = other.value, other.expr
        elif isinstance(other, _NUMBERS) and not isinstance(other, bool):
            plain_other = float(other)
            other_expr = Const(other)  # (as written: `lr * 10` prints as such)
        else:
            return NotImplemented
        fn = ARITH[name]
        value = fn(plain_other, self.value) if reverse else fn(self.value, plain_other)
        if isinstance(value, complex):
            self.tracer.pin(self)
            return value
        expr = Binary(name, other_expr, self.expr) if reverse else \
            Binary(name, self.expr, other_expr)
        return TracedFloat(value, expr, self.tracer)

    def __add__(self, o): return self._arith(o, "add", False)
    def __radd__(self, o): return self._arith(o, "add", True)
    def __sub__(self, o): return self._arith(o, "sub", False)
    def __rsub__(self, o): return self._arith(o, "sub", True)
    def __mul__(self, o): return self._arith(o, "mul", False)
    def __rmul__(self, o): return self._arith(o, "mul", True)
    def __truediv__(self, o): return self._arith(o, "truediv", False)
    def __rtruediv__(self, o): return self._arith(o, "truediv", True)
    def __pow__(self, o, mod=None): return self._arith(o, "pow", False)
    def __rpow__(self, o, mod=None): return self._arith(o, "pow", True)
    def __neg__(self): return TracedFloat(-self.value, Unary("neg", self.expr), self.tracer)
    def __abs__(self): return TracedFloat(abs(self.value), Unary("abs", self.expr), self.tracer)
    def __pos__(self): return self

    def _compare(self, other, name: str):
        if isinstance(other, TracedFloat):
            self.tracer.pin(other)
            other = other.value
        if isinstance(other, _NUMBERS):
            result = COMPARE[name](self.value, float(other))
            self.tracer.float_guard(self, name, other, result)
            return result
        return NotImplemented

    def __eq__(self, o): return self._compare(o, "eq")
    def __ne__(self, o): return self._compare(o, "ne")
    def __lt__(self, o): return self._compare(o, "lt")
    def __le__(self, o): return self._compare(o, "le")
    def __gt__(self, o): return self._compare(o, "gt")
    def __ge__(self, o): return self._compare(o, "ge")

    def __hash__(self):
        return hash(self.value)

    def __bool__(self):
        result = self.value != 0.0
        self.tracer.float_guard(self, "ne", 0.0, result)
        return result

    def pinned(self) -> float:
        """The plain value, guarded: the entry only runs while the value stays the same."""
        self.tracer.pin(self)
        return self.value

    def __float__(self): return self.pinned()
    def __int__(self): return int(self.pinned())
    def __round__(self, ndigits=None): return round(self.pinned(), ndigits)
    def __floor__(self): return math.floor(self.pinned())
    def __ceil__(self): return math.ceil(self.pinned())
    def __trunc__(self): return math.trunc(self.pinned())
    def __floordiv__(self, o): return self.pinned() // o
    def __rfloordiv__(self, o): return o // self.pinned()
    def __mod__(self, o): return self.pinned() % o
    def __rmod__(self, o): return o % self.pinned()
    def __divmod__(self, o): return divmod(self.pinned(), o)
    def __rdivmod__(self, o): return divmod(o, self.pinned())

    def __repr__(self) -> str:
        return repr(self.value)

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    def __reduce__(self):
        return (float, (self.pinned(),))
