"""Random small lucid programs for the compiler's differential tests (`test_fuzz.py`).

`programs()` is a hypothesis strategy for a `Program`: parameters (tensors of ranks 0-3 and dims
1-4, mostly float32, some float64, int64 and int32; maybe a Python float, which lucid.compile
lifts) and up to ten steps, each one line of Python applying a lucid operation (elementwise,
comparison, where, cast, reduction, movement) to earlier values chosen so that shapes and dtypes
fit. A program is its source text: `Program.function()` execs it, and its repr is that text, so a
failing example prints as code to paste:

    def program(x0, x1, s0):  # x0: f32[3,1] grad, x1: f64[4] grad, s0: float; data seed 7
        v3 = x0.exp()                                             # f32[3,1]
        v4 = v3 > (s0 * 0.5)                                      # bool[3,1]
        v5 = lucid.where(v4, v3, x1)                              # f64[3,4]
        return v5,

Each value carries the aval lucid's rules give it (restated here, and checked) and a bound on its
magnitude; a step whose bound would pass `MAX_BOUND` is squashed by a `tanh`, so exp-of-exp chains
stay finite and comparisons stay meaningful.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import lucid
from lucid import Tensor

F32, F64, I32, I64, BOOL, PY = "float32", "float64", "int32", "int64", "bool", "py"
SHORT = {F32: "f32", F64: "f64", I32: "i32", I64: "i64", BOOL: "bool"}
MAX_RANK, MAX_DIM, MAX_CONCAT = 3, 4, 8
MAX_BOUND = 1e3
INPUT_BOUND = 2.0
SCALAR_LOW = 0.5
# Python scalars a program may use. Those of a float argument s stay positive for s in
# [SCALAR_LOW, INPUT_BOUND], so `c + 0.5` is never zero, and at most 2 * INPUT_BOUND. The first
# ones stay graph computation on the lifted s; PINNED ones read its value, which ties the compiled
# entry to it (a new value retraces).
SCALAR_EXPRS = ("{s}", "({s} * 0.5)", "(3.0 - {s})", "({s} + {s})", "(2.0 / {s})", "({s} ** 2)",
                "abs({s} - 1.0)")
PINNED_EXPRS = ("float({s})", "math.exp({s} - 1.0)", "({s} // 0.5)")
SCALARS = (0.0, 1.0, 2.0, 0.5, -1.5, 3)


@dataclass(frozen=True)
class Var:
    """A value of the program: its name, the aval lucid should give it, a magnitude bound.
    dtype PY is a Python float argument (lifted by lucid.compile, so not baked into the graph)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    bound: float = 1.0

    @property
    def is_float(self) -> bool:
        return self.dtype in (F32, F64)

    @property
    def is_numeric(self) -> bool:
        return self.dtype in (F32, F64, I32, I64)

    @property
    def is_tensor(self) -> bool:
        return self.dtype != PY

    @property
    def aval(self) -> str:
        if self.dtype == PY:
            return "float"
        return f"{SHORT[self.dtype]}[{','.join(map(str, self.shape))}]"


@dataclass(frozen=True)
class Step:
    out: Var
    expr: str


@dataclass(frozen=True)
class Program:
    """inputs: the parameters (tensors, then Python floats); `aliases[i]` is the parameter whose
    tensor parameter i receives on the calls in `alias_calls` (i itself: its own tensor)."""

    inputs: tuple[Var, ...]
    requires_grad: tuple[bool, ...]
    steps: tuple[Step, ...]
    outputs: tuple[Var, ...]
    seed: int
    aliases: tuple[int, ...]
    alias_calls: tuple[int, ...]

    def source(self, return_all: bool = False) -> str:
        """The program's text (`return_all`: it returns every step's value, to check avals)."""
        described = ", ".join(f"{x.name}: {x.aval}{' grad' if g else ''}"
                              for x, g in zip(self.inputs, self.requires_grad, strict=True))
        lines = [f"def program({', '.join(x.name for x in self.inputs)}):  "
                 f"# {described}; data seed {self.seed}"]
        if self.alias_calls:
            names = ", ".join(self.inputs[j].name for j in self.aliases)
            lines.append(f"    # calls {list(self.alias_calls)} are program({names})")
        for s in self.steps:
            code = f"    {s.out.name} = {s.expr}"
            lines.append(f"{code:<60}  # {s.out.aval}")
        returned = [s.out for s in self.steps] if return_all else self.outputs
        lines.append(f"    return {', '.join(o.name for o in returned)},")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return "\n" + self.source() + "\n"

    def _repr_pretty_(self, printer, cycle) -> None:  # how hypothesis prints a failing example
        printer.text(repr(self))

    @property
    def rtol(self) -> float:
        """float64 tolerance only where no value is float32: a float64 input's gradient may
        pass through float32 values, whose rounding depends on where gradients are summed."""
        values = self.inputs + tuple(s.out for s in self.steps)
        return 1e-5 if any(v.dtype == F32 for v in values) else 1e-10

    @property
    def pins(self) -> bool:
        """Whether the program reads a float argument's value (so each new value retraces)."""
        return any(mark in step.expr for step in self.steps
                   for mark in ("float(s", "math.exp(s", "// 0.5"))

    def function(self, return_all: bool = False):
        namespace = {"lucid": lucid, "math": math}
        exec(compile(self.source(return_all), "<program>", "exec"), namespace)  # noqa: S102
        return namespace["program"]

    def arguments(self, call: int) -> list:
        """Fresh arguments for the call-th call: tensors uniform in [-INPUT_BOUND, INPUT_BOUND],
        floats in [SCALAR_LOW, INPUT_BOUND]."""
        rng = np.random.default_rng([self.seed, call])
        args = []
        for x, grad in zip(self.inputs, self.requires_grad, strict=True):
            if x.dtype == PY:
                args.append(float(rng.uniform(SCALAR_LOW, INPUT_BOUND)))
            elif not x.is_float:
                data = rng.integers(-2, 2, x.shape, endpoint=True)
                args.append(lucid.tensor(data.astype(x.dtype)))
            else:
                data = rng.uniform(-INPUT_BOUND, INPUT_BOUND, x.shape).astype(x.dtype)
                args.append(lucid.tensor(data, requires_grad=grad))
        if call in self.alias_calls:
            args = [args[j] for j in self.aliases]
        return args


# ----------------------------------------------------------------------------- dtypes
# lucid's rules (lucid/dtypes.py), restated so the tests check lucid against them.

_CATEGORY = {BOOL: 0, I32: 1, I64: 1, F32: 2, F64: 2}


def _promote(*dtypes: str) -> str:
    top = max(_CATEGORY[d] for d in dtypes)
    return str(np.result_type(*(d for d in dtypes if _CATEGORY[d] == top)))


def _floating(dtype: str) -> str:
    """The dtype of a float-only op (exp, division, mean) on this dtype."""
    return dtype if _CATEGORY[dtype] == 2 else F32


def _with_scalar(dtype: str, pytype: str) -> str:
    """A tensor's dtype combined with a Python scalar's: the scalar is weakly typed."""
    if pytype == "float":
        return _floating(dtype)
    return dtype if _CATEGORY[dtype] >= 1 else I64


# ----------------------------------------------------------------------------- helpers


def _broadcast(*shapes) -> tuple[int, ...] | None:
    try:
        out = tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        return None
    return out if len(out) <= MAX_RANK else None


def _dim(draw, rank: int, extra: int = 0) -> int:
    """An axis of a rank-`rank` tensor (rank + extra for unsqueeze/stack), maybe negative."""
    n = rank + extra
    return draw(st.integers(-n, n - 1)) if n else 0


def _normal(d: int, n: int) -> int:
    return d % n if n else 0


def _args(values) -> str:
    return ", ".join(map(str, values))


# ----------------------------------------------------------------------------- steps
# Each builder draws the rest of a step given its first operand `a` (of a dtype and rank its
# BUILDERS entry accepts) and the pool of earlier values, and returns (expr, bound, shape, dtype),
# or None when it does not apply to `a`.


def _unary(draw, a: Var, pool):
    name = draw(st.sampled_from(["neg", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs",
                                 "sin"]))
    b, same, fl = a.bound, a.dtype, _floating(a.dtype)
    return {
        "neg": (f"-{a.name}", b, a.shape, same),
        "exp": (f"{a.name}.exp()", math.exp(min(b, 50.0)), a.shape, fl),
        "log": (f"({a.name}.abs() + 1).log()", math.log1p(b), a.shape, fl),
        "sqrt": (f"{a.name}.abs().sqrt()", math.sqrt(b), a.shape, fl),
        "tanh": (f"{a.name}.tanh()", 1.0, a.shape, fl),
        "sigmoid": (f"{a.name}.sigmoid()", 1.0, a.shape, fl),
        "relu": (f"{a.name}.relu()", b, a.shape, same),
        "abs": (f"{a.name}.abs()", b, a.shape, same),
        "sin": (f"{a.name}.sin()", 1.0, a.shape, fl),
    }[name]


def _scalar(draw, pool) -> tuple[str, float, str]:
    """A Python number: a literal, or an expression of a float argument. (code, bound, type)"""
    args = [v for v in pool if v.dtype == PY]
    if args and draw(st.booleans()):
        s = draw(st.sampled_from(args))
        exprs = SCALAR_EXPRS + PINNED_EXPRS
        return draw(st.sampled_from(exprs)).format(s=s.name), 2 * INPUT_BOUND, "float"
    c = draw(st.sampled_from(SCALARS))
    return repr(c), float(abs(c)), type(c).__name__


def _other(draw, a: Var, pool, allow_scalar: bool = True):
    """A second operand for `a`: a pool value whose shape broadcasts with a's, a Python scalar,
    or a constant tensor made inside the program. Returns (kind, code, shape, dtype, bound);
    dtype is the one the operand takes next to `a` (a scalar's is weak)."""
    kind = draw(st.sampled_from(["var", "var", "scalar", "const"] if allow_scalar
                                else ["var", "var", "const"]))
    if kind == "scalar":
        code, bound, pytype = _scalar(draw, pool)
        return kind, code, a.shape, _with_scalar(a.dtype, pytype), bound
    if kind == "const":
        rank = draw(st.integers(0, len(a.shape)))
        shape = a.shape[len(a.shape) - rank:]
        fill = draw(st.sampled_from(["zeros", "ones", "full", "tensor"]))
        if fill == "tensor":  # a literal: a constant that is not one value repeated
            values = draw(st.lists(st.sampled_from((1.0, 0.0, 2.0, -1.0)),
                                   min_size=math.prod(shape), max_size=math.prod(shape)))
            literal = np.array(values).reshape(shape).tolist()
            return kind, f"lucid.tensor({literal!r})", shape, F32, 2.0
        if fill == "full":
            c = float(draw(st.sampled_from(SCALARS[2:])))
            return kind, f"lucid.full({shape!r}, {c!r})", shape, F32, abs(c)
        return kind, f"lucid.{fill}({_args(shape)})", shape, F32, 1.0
    fits = [v for v in pool if v.is_numeric and _broadcast(a.shape, v.shape) is not None]
    v = draw(st.sampled_from(fits))
    return kind, v.name, v.shape, v.dtype, v.bound


def _binary(draw, a: Var, pool):
    name = draw(st.sampled_from(["add", "sub", "mul", "div", "maximum", "minimum", "pow",
                                 "rsub", "rmul", "rdiv"]))
    if name in ("rsub", "rmul", "rdiv"):
        c, cb, pytype = _scalar(draw, pool)
        expr, bound, dtype = {
            "rsub": (f"{c} - {a.name}", cb + a.bound, _with_scalar(a.dtype, pytype)),
            "rmul": (f"{c} * {a.name}", cb * a.bound, _with_scalar(a.dtype, pytype)),
            "rdiv": (f"{c} / ({a.name}.abs() + 0.5)", 2 * cb, _floating(a.dtype)),
        }[name]
        return expr, bound, a.shape, dtype
    base = f"({a.name}.abs() + 0.5)"  # positive, and floating (0.5 is a float)
    if name == "pow" and draw(st.booleans()):
        c = draw(st.sampled_from((2.0, 0.5, 3, -1.0, 1.5)))
        return (f"{base} ** {c!r}", max((a.bound + 0.5) ** c, 0.5 ** c), a.shape,
                _floating(a.dtype))
    kind, code, shape, dtype, bound = _other(draw, a, pool, allow_scalar=name != "pow")
    out_shape, out_dtype = _broadcast(a.shape, shape), _promote(a.dtype, dtype)
    if name == "pow":  # a positive base, a bounded exponent
        exponent, e = (code, bound) if bound <= 3 else (f"{code}.tanh()", 1.0)
        e_dtype = dtype if bound <= 3 else _floating(dtype)
        return (f"{base} ** {exponent}", max((a.bound + 0.5) ** e, 2.0 ** e), out_shape,
                _promote(_floating(a.dtype), e_dtype))
    if name == "div":
        if kind == "scalar":
            return f"{a.name} / ({code} + 0.5)", 2 * a.bound, out_shape, _floating(a.dtype)
        return (f"{a.name} / ({code}.abs() + 0.5)", 2 * a.bound, out_shape,
                _promote(_floating(a.dtype), _floating(dtype)))
    expr, out_bound = {
        "add": (f"{a.name} + {code}", a.bound + bound),
        "sub": (f"{a.name} - {code}", a.bound + bound),
        "mul": (f"{a.name} * {code}", a.bound * bound),
        "maximum": (f"{a.name}.maximum({code})", max(a.bound, bound)),
        "minimum": (f"lucid.minimum({a.name}, {code})", max(a.bound, bound)),
    }[name]
    return expr, out_bound, out_shape, out_dtype


def _compare(draw, a: Var, pool):
    op = draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
    _, code, shape, dtype, _ = _other(draw, a, pool)
    return f"{a.name} {op} {code}", 1.0, _broadcast(a.shape, shape), BOOL


def _where(draw, a: Var, pool):
    conds = [c for c in pool if c.dtype == BOOL and _broadcast(a.shape, c.shape) is not None]
    if not conds:
        return None
    c = draw(st.sampled_from(conds))
    a_shape = _broadcast(a.shape, c.shape)
    fits = [v for v in pool if v.is_numeric and _broadcast(a_shape, v.shape) is not None]
    if draw(st.booleans()):
        other, shape, dtype, bound = "0.0", (), _floating(a.dtype), 0.0
    else:
        v = draw(st.sampled_from(fits))
        other, shape, dtype, bound = v.name, v.shape, v.dtype, v.bound
    out_shape = _broadcast(a_shape, shape)
    if out_shape is None:
        return None
    method = draw(st.booleans()) and other != "0.0"
    expr = (f"{a.name}.where({c.name}, {other})" if method
            else f"lucid.where({c.name}, {a.name}, {other})")
    return expr, max(a.bound, bound), out_shape, _promote(a.dtype, dtype)


_CAST_METHODS = {"float": F32, "double": F64, "long": I64, "int": I32, "bool": BOOL}


def _cast(draw, a: Var, pool):
    """Casts between the five dtypes (float to integer truncates; no gradient flows through an
    integer or bool value). `a` may be a bool."""
    form = draw(st.sampled_from(["method", "cast", "to"]))
    if form == "method":
        method = draw(st.sampled_from(list(_CAST_METHODS)))
        expr, target = f"{a.name}.{method}()", _CAST_METHODS[method]
    else:
        target = draw(st.sampled_from([F32, F64, I64, I32, BOOL]))
        expr = f"{a.name}.{form}(lucid.{'bool_' if target == BOOL else target})"
    return expr, a.bound, a.shape, target


def _draw_dims(draw, rank: int):
    """dim for a reduction: None, one axis, or a tuple of distinct axes (maybe negative)."""
    kind = draw(st.sampled_from(["all", "one", "many"]))
    if kind == "all":
        return None, None
    if kind == "one" or rank == 0:
        d = _dim(draw, max(rank, 1))
        return d, (_normal(d, rank),) if rank else ()
    axes = draw(st.lists(st.integers(0, rank - 1), min_size=1, max_size=rank, unique=True))
    signed = tuple(a - rank if draw(st.booleans()) else a for a in axes)
    return signed, tuple(sorted(axes))


def _reduce(draw, a: Var, pool):
    name = draw(st.sampled_from(["sum", "mean", "amax", "amin", "max", "min"]))
    rank = len(a.shape)
    keepdim = draw(st.booleans())
    if name in ("max", "min") and draw(st.booleans()):  # the (values, indices) form
        d = _dim(draw, max(rank, 1))
        axes = (_normal(d, rank),) if rank else ()
        expr = f"{a.name}.{name}({d}, keepdim={keepdim}).values"
    elif name in ("max", "min"):
        expr, axes, keepdim = f"{a.name}.{name}()", None, False
    else:
        dim, axes = _draw_dims(draw, rank)
        if dim is None and not keepdim:
            expr = f"{a.name}.{name}()"
        else:
            expr = f"{a.name}.{name}({dim!r}, keepdim={keepdim})"
    axes = range(rank) if axes is None else axes
    shape = tuple(1 if i in axes else s for i, s in enumerate(a.shape) if keepdim or i not in axes)
    count = math.prod(a.shape[i] for i in axes)
    dtype = {"sum": F64 if a.dtype == F64 else F32 if a.dtype == F32 else I64,
             "mean": _floating(a.dtype)}.get(name, a.dtype)
    return expr, a.bound * (count if name == "sum" else 1), shape, dtype


def _reshape(draw, a: Var, pool):
    n = math.prod(a.shape)
    rank = draw(st.integers(0 if n == 1 else 1, MAX_RANK))
    shape, rest = [], n
    for _ in range(rank - 1):
        d = draw(st.sampled_from([k for k in range(1, rest + 1) if rest % k == 0]))
        shape.append(d)
        rest //= d
    if rank:
        shape.append(rest)
    shape = tuple(shape)
    shown = list(shape)
    if rank and draw(st.booleans()):
        shown[draw(st.integers(0, rank - 1))] = -1
    method = draw(st.sampled_from(["reshape", "view"]))
    arg = "()" if not rank else _args(shown) if draw(st.booleans()) else repr(tuple(shown))
    return f"{a.name}.{method}({arg})", a.bound, shape, a.dtype


def _permute(draw, a: Var, pool):
    rank = len(a.shape)
    kind = draw(st.sampled_from(["permute", "transpose", "T"]))
    if kind == "T":
        perm = tuple(reversed(range(rank)))
        expr = f"{a.name}.T"
    elif kind == "transpose":
        i, j = _dim(draw, rank), _dim(draw, rank)
        perm = list(range(rank))
        perm[i], perm[j] = perm[j], perm[i]
        expr = f"{a.name}.transpose({i}, {j})"
    else:
        perm = draw(st.permutations(range(rank)))
        expr = f"{a.name}.permute({_args(perm)})"
    return expr, a.bound, tuple(a.shape[p] for p in perm), a.dtype


def _expand(draw, a: Var, pool):
    rank = len(a.shape)
    if draw(st.booleans()):  # unsqueeze, then expand the new axis (and any other 1s)
        d = _dim(draw, rank, extra=1)
        d_n = _normal(d, rank + 1)
        src = a.shape[:d_n] + (1,) + a.shape[d_n:]
        prefix, lead = f"{a.name}.unsqueeze({d})", ()
    else:  # new leading axes
        lead = (draw(st.integers(1, MAX_DIM)),)
        src, prefix = a.shape, a.name
    shape, shown = list(lead), list(lead)
    for s in src:
        if s == 1:
            k = draw(st.integers(1, MAX_DIM))
            shape.append(k)
            shown.append(-1 if k == 1 and draw(st.booleans()) else k)
        else:
            shape.append(s)
            shown.append(-1 if draw(st.booleans()) else s)
    return f"{prefix}.expand({_args(shown)})", a.bound, tuple(shape), a.dtype


def _index_item(draw, d: int):
    """(code, length or None for an integer index) for one axis of size d."""
    kind = draw(st.sampled_from(["slice", "int", "full"]))
    if kind == "full":
        return ":", d
    if kind == "int":
        i = draw(st.integers(-d, d - 1))
        return str(i), None
    start = draw(st.none() | st.integers(-d, d))
    stop = draw(st.none() | st.integers(-d, d))
    step = draw(st.sampled_from([None, 1, 2, -1]))
    length = len(range(d)[slice(start, stop, step)])
    if length == 0:
        return ":", d
    text = ("" if start is None else str(start)) + ":" + ("" if stop is None else str(stop))
    if step is not None:
        text += f":{step}"
    return text, length


def _getitem(draw, a: Var, pool):
    rank = len(a.shape)
    n = draw(st.integers(0, rank))
    ellipsis = n < rank and draw(st.booleans())
    dims = a.shape[rank - n:] if ellipsis else a.shape[:n]
    items, shape = [], []
    for d in dims:
        code, length = _index_item(draw, d)
        items.append(code)
        if length is not None:
            shape.append(length)
    shape = tuple(shape)
    if ellipsis:
        items.insert(0, "...")
        shape = a.shape[:rank - n] + shape
    else:
        shape = shape + a.shape[n:]
    key = ", ".join(items) if items else "..."
    return f"{a.name}[{key}]", a.bound, shape, a.dtype


def _flatten(draw, a: Var, pool):
    rank = len(a.shape)
    if rank == 0 or draw(st.booleans()):
        return f"{a.name}.flatten()", a.bound, (math.prod(a.shape),), a.dtype
    s, e = sorted((draw(st.integers(0, rank - 1)), draw(st.integers(0, rank - 1))))
    shown_s = s - rank if draw(st.booleans()) else s
    shown_e = e - rank if draw(st.booleans()) else e
    shape = a.shape[:s] + (math.prod(a.shape[s:e + 1]),) + a.shape[e + 1:]
    return f"{a.name}.flatten({shown_s}, {shown_e})", a.bound, shape, a.dtype


def _squeeze(draw, a: Var, pool):
    rank = len(a.shape)
    kind = draw(st.sampled_from(["squeeze", "squeeze_dim", "unsqueeze"]))
    if kind == "unsqueeze":
        if rank >= MAX_RANK:
            return None
        d = _dim(draw, rank, extra=1)
        d_n = _normal(d, rank + 1)
        return f"{a.name}.unsqueeze({d})", a.bound, a.shape[:d_n] + (1,) + a.shape[d_n:], a.dtype
    if kind == "squeeze":
        return f"{a.name}.squeeze()", a.bound, tuple(s for s in a.shape if s != 1), a.dtype
    d = _dim(draw, max(rank, 1))
    d_n = _normal(d, rank)
    shape = tuple(s for i, s in enumerate(a.shape) if i != d_n or s != 1) if rank else ()
    return f"{a.name}.squeeze({d})", a.bound, shape, a.dtype


def _concat(draw, a: Var, pool):
    rank = len(a.shape)
    d = _dim(draw, rank)
    axis = _normal(d, rank)

    def fits(v):
        return v.is_tensor and len(v.shape) == rank and all(
            x == y for i, (x, y) in enumerate(zip(v.shape, a.shape, strict=True)) if i != axis)

    parts = [a]
    for _ in range(draw(st.integers(1, 2))):
        room = MAX_CONCAT - sum(p.shape[axis] for p in parts)
        options = [v for v in pool if fits(v) and v.shape[axis] <= room]
        if options:
            parts.append(draw(st.sampled_from(options)))
    if len(parts) == 1:
        return None
    shape = a.shape[:axis] + (sum(p.shape[axis] for p in parts),) + a.shape[axis + 1:]
    fn = draw(st.sampled_from(["cat", "concat"]))
    expr = f"lucid.{fn}([{', '.join(p.name for p in parts)}], dim={d})"
    return expr, max(p.bound for p in parts), shape, _promote(*(p.dtype for p in parts))


def _stack(draw, a: Var, pool):
    rank = len(a.shape)
    same = [v for v in pool if v.is_tensor and v.shape == a.shape]
    parts = [a] + draw(st.lists(st.sampled_from(same), min_size=1, max_size=2))
    d = _dim(draw, rank, extra=1)
    d_n = _normal(d, rank + 1)
    shape = a.shape[:d_n] + (len(parts),) + a.shape[d_n:]
    expr = f"lucid.stack([{', '.join(p.name for p in parts)}], dim={d})"
    return expr, max(p.bound for p in parts), shape, _promote(*(p.dtype for p in parts))


# Builders, simplest first (hypothesis shrinks towards the front), with the dtypes and ranks of
# `a` each accepts: arithmetic takes numbers, casts and movement any tensor (bool included).
NUMERIC, TENSOR = (F32, F64, I32, I64), (F32, F64, I32, I64, BOOL)
ANY_RANK = tuple(range(MAX_RANK + 1))
BUILDERS = {
    "unary": (_unary, NUMERIC, ANY_RANK), "binary": (_binary, NUMERIC, ANY_RANK),
    "compare": (_compare, NUMERIC, ANY_RANK), "where": (_where, NUMERIC, ANY_RANK),
    "cast": (_cast, TENSOR, ANY_RANK), "reduce": (_reduce, NUMERIC, ANY_RANK),
    "reshape": (_reshape, TENSOR, ANY_RANK), "permute": (_permute, TENSOR, (2, 3)),
    "expand": (_expand, TENSOR, (0, 1, 2)), "getitem": (_getitem, TENSOR, ANY_RANK),
    "flatten": (_flatten, TENSOR, ANY_RANK), "squeeze": (_squeeze, TENSOR, ANY_RANK),
    "concat": (_concat, TENSOR, (1, 2, 3)), "stack": (_stack, TENSOR, (0, 1, 2)),
}


def _squash(expr: str, bound: float, dtype: str) -> tuple[str, float, str]:
    """Keep magnitudes bounded: wrap a step whose values could grow past MAX_BOUND in tanh."""
    if bound <= MAX_BOUND or dtype == BOOL:
        return expr, bound, dtype
    return f"({expr}).tanh()", 1.0, _floating(dtype)


# ----------------------------------------------------------------------------- programs


@st.composite
def input_vars(draw, max_inputs: int = 3) -> list[Var]:
    """Tensor inputs whose shapes are suffixes of one base shape with some axes set to 1, so that
    most pairs broadcast; then maybe a Python float."""
    # 1 is last: it makes the data order of many movement ops trivial, so it should not be the
    # most common draw
    dims = st.sampled_from(tuple(range(2, MAX_DIM + 1)) + (1,))
    base = tuple(draw(st.lists(dims, min_size=MAX_RANK, max_size=MAX_RANK)))
    inputs = []
    for i in range(draw(st.integers(1, max_inputs))):
        rank = draw(st.integers(0, MAX_RANK))
        shape = tuple(1 if draw(st.integers(0, 4)) == 0 else d for d in base[MAX_RANK - rank:])
        # the first input is a float: every program has one to start from
        dtype = draw(st.sampled_from([F32, F32, F32, F64, F64, I64, I32] if i else [F32, F64]))
        inputs.append(Var(f"x{i}", shape, dtype, INPUT_BOUND))
    if draw(st.integers(0, 3)) == 0:
        inputs.append(Var("s0", (), PY, INPUT_BOUND))
    return inputs


@st.composite
def programs(draw, max_steps: int = 10, kinds=tuple(BUILDERS)) -> Program:
    inputs = draw(input_vars())
    requires_grad = tuple(x.is_float and draw(st.integers(0, 4)) > 0 for x in inputs)
    aliases = list(range(len(inputs)))
    for i, x in enumerate(inputs):  # pass one tensor for two parameters of one signature
        same = [j for j in range(i) if aliases[j] == j and x.dtype != PY and
                (inputs[j].shape, inputs[j].dtype, requires_grad[j]) ==
                (x.shape, x.dtype, requires_grad[i])]
        if same and draw(st.booleans()):
            aliases[i] = draw(st.sampled_from(same))
    alias_calls = ()
    if aliases != list(range(len(inputs))):
        alias_calls = draw(st.sampled_from([(0, 1), (0,), (1,)]))
    pool: list[Var] = list(inputs)
    steps = []
    # sampled_from rather than integers(): as many long programs as short ones
    for _ in range(draw(st.sampled_from(range(1, max_steps + 1)))):
        name = f"v{len(pool)}"
        builder, dtypes, ranks = BUILDERS[draw(st.sampled_from(kinds))]
        fits = [v for v in reversed(pool) if v.dtype in dtypes and len(v.shape) in ranks]
        if not fits:
            builder, fits = _cast, [v for v in reversed(pool) if v.is_tensor]
        # Half the time the newest value that fits: long chains (a permute of a permute).
        a = fits[0] if draw(st.booleans()) else draw(st.sampled_from(fits))
        built = builder(draw, a, pool)
        if built is None:  # the kind does not apply to a: cast it instead
            built = _cast(draw, a, pool)
        expr, bound, shape, dtype = built
        expr, bound, dtype = _squash(expr, bound, dtype)
        var = Var(name, tuple(shape), dtype, bound)
        steps.append(Step(var, expr))
        pool.append(var)
    returnable = [v for v in pool if v.dtype != PY]  # a returned float would be pinned
    outputs = [pool[-1]]
    if draw(st.integers(0, 3)):  # mostly every value no later step reads: little dead code
        read = {name for step in steps for name in re.findall(r"\b[xsv]\d+\b", step.expr)}
        outputs += [v.out for v in steps[:-1] if v.out.name not in read]
    outputs += draw(st.lists(st.sampled_from(returnable), max_size=2))
    seed = draw(st.integers(0, 2**16))
    return Program(tuple(inputs), requires_grad, tuple(steps), tuple(outputs), seed,
                   tuple(aliases), alias_calls)


# ----------------------------------------------------------------------------- running them

EXAMPLES = int(os.environ.get("LUCID_FUZZ_EXAMPLES", "800"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                derandomize=os.environ.get("LUCID_FUZZ_RANDOM") != "1", database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


def run_program(fn, program: Program, call: int, device: str = "cpu"):
    """fn's outputs on the call-th arguments (moved to `device`), and the tensor arguments'
    gradients after backward of a fixed random weighting of the outputs (for the device:
    through the transfers, back on the CPU)."""
    args = program.arguments(call)
    outs = fn(*[a.to_device(device) if isinstance(a, Tensor) else a for a in args])
    rng = np.random.default_rng(program.seed)
    total = None
    for out in outs:
        assert out.device == device
        if not out.requires_grad:
            continue
        weights = lucid.tensor(rng.standard_normal(out.shape).astype(out.dtype), device=device)
        term = (out * weights).sum()
        total = term if total is None else total + term
    if total is not None:
        total.backward()
    return outs, [a.grad if isinstance(a, Tensor) else None for a in args]


def assert_same(actual, expected, what: str, rtol: float = 0.0) -> None:
    """Same dtype and shape; equal where exact (bool, integers), else close (NaNs match)."""
    a, e = actual.numpy(), expected.numpy()
    assert (a.dtype, a.shape) == (e.dtype, e.shape), \
        f"{what}: compiled gives {a.dtype}{list(a.shape)}, eager {e.dtype}{list(e.shape)}"
    if e.dtype.kind != "f":
        np.testing.assert_array_equal(a, e, err_msg=what)
        return
    finite = np.abs(e[np.isfinite(e)])
    rtol = max(rtol, 1e-5 if e.dtype == np.float32 else 1e-10)
    atol = rtol * max(1.0, float(finite.max()) if finite.size else 1.0)
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=what)
