"""The op registry: `Op`, `defop`, and `bind`, the one function every tensor operation goes through.

An op is one record holding everything about a primitive: its eager NumPy implementation, its shape
and dtype rule, its backward rule (written in lucid ops, so it runs eagerly and records while
tracing), and, for elementwise ops, the scalar expression the compiler inlines into fused loops.

`bind` runs `impl` eagerly, or hands the op to the current tracer (a ContextVar that `lucid_jit`
sets while tracing). Either way it records the same autograd context on the output, so the one
chain-rule loop in `lucid.autograd` yields eager gradients and, under a trace, the backward graph.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from lucid import dtypes

# Eager ops give IEEE results silently, as PyTorch's do (log(0) = -inf, 0/0 = nan): NumPy's
# floating-point RuntimeWarnings from the primitives' impls are not shown. The filter matches only
# warnings raised in lucid.ops modules and costs nothing until one is raised.
warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"lucid\.ops(\.|$)")


class Aval(NamedTuple):
    """An abstract value: what a tensor is without its numbers (shape and dtype)."""

    shape: tuple[int, ...]
    dtype: np.dtype

    def __str__(self) -> str:
        return f"{dtypes.short_name(self.dtype)}[{','.join(map(str, self.shape))}]"


class LucidError(Exception):
    """Base of lucid's own errors."""


class ShapeError(LucidError, ValueError):
    """An op was given shapes it cannot combine."""


class DTypeError(LucidError, TypeError):
    """An op was given dtypes it does not accept."""


_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_CONTEXTLIB = os.path.abspath(contextlib.__file__)
_PACKAGE_DIRS = tuple(os.path.join(_ROOT, name) + os.sep for name in ("lucid", "lucid_jit"))


def _is_lucid(frame) -> bool:
    """Whether a frame runs lucid's own code: its packages, the Python it generates (guards and
    runs of compiled functions, named "<lucid_jit ...>", and graph modules), or the import
    machinery."""
    name = frame.f_code.co_filename
    if name.startswith("<"):
        return name.startswith(("<lucid_jit", "<frozen"))
    if frame.f_globals.get("__name__", "").startswith("lucid_jit_generated"):
        return True
    return os.path.abspath(name).startswith(_PACKAGE_DIRS)


def user_location() -> str:
    """`file.py:line` of the innermost stack frame outside lucid and lucid_jit (the user's line)."""
    frame = sys._getframe(1)
    while frame is not None:
        if not _is_lucid(frame):
            return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"
        frame = frame.f_back
    return "<unknown>"


def user_stacklevel() -> int:
    """The `stacklevel` that makes `warnings.warn`, called by the caller of this function, point
    at the user's line (the innermost frame outside lucid and lucid_jit)."""
    level, frame = 1, sys._getframe(1)
    while frame is not None:
        # (contextlib: lucid's own `with` blocks go through it)
        if not _is_lucid(frame) and os.path.abspath(frame.f_code.co_filename) != _CONTEXTLIB:
            return level
        frame = frame.f_back
        level += 1
    return level


def op_error(op: str, avals, message: str, cls: type[LucidError] = ShapeError) -> LucidError:
    """An error naming the op, the operands' shapes and dtypes, and the user's line."""
    operands = ", ".join(str(a) for a in avals)
    return cls(f"{op}: {operands}: {message} ({user_location()})")


# Which operands a vjp reads: indices of inputs, and OUT for the op's output. Backward checks that
# none of them was modified in place since the forward ran (the version counter).
OUT = "out"
ALL = "all"


@dataclass(frozen=True, eq=False)
class Op:
    """One primitive. See the module docstring; `kind` groups ops for the compiler's passes."""

    name: str
    kind: str
    impl: Callable[..., np.ndarray]
    infer: Callable[..., Aval]
    vjp: Callable[..., tuple] | None = None
    scalar: str | None = None
    save: tuple | dict | str = ALL
    pure: bool = True
    attrs: tuple[str, ...] = field(default=())

    def __call__(self, *args, **attrs):
        return bind(self, *args, **attrs)

    def __repr__(self) -> str:
        return f"<op {self.name}>"

    @property
    def differentiable(self) -> bool:
        return self.vjp is not None

    def saved(self, inputs) -> tuple[tuple[int, ...], bool]:
        """What the vjp reads to give the gradients wanted of these inputs (those that require
        grad): input indices, and whether it reads the output. `save` is ALL, a tuple for every
        gradient, or per input a tuple for that input's gradient (`mul`'s gradient for x reads
        only y, so `x *= 3` on a tensor that autograd saw still differentiates)."""
        save = self.save
        if save == ALL:
            return tuple(range(len(inputs))), True
        if isinstance(save, dict):
            needed: set = set()
            for i, x in enumerate(inputs):
                if x.requires_grad:
                    needed.update(save.get(i, ()))
            save = tuple(sorted(needed, key=str))
        # Variadic ops (getitem's index tensors) declare more slots than a call may use.
        return tuple(i for i in save if i != OUT and i < len(inputs)), OUT in save


REGISTRY: dict[str, Op] = {}

KINDS = ("elementwise", "reduction", "movement", "matmul", "conv", "creation", "random", "index",
         "collective", "linalg")


def defop(name: str, *, kind: str, impl, infer, vjp=None, scalar=None, save=ALL, pure=True,
          attrs=()) -> Op:
    """Define and register a primitive. `attrs` names its keyword attributes (for the IR)."""
    if name in REGISTRY:
        raise ValueError(f"op {name!r} is already registered")
    if kind not in KINDS:
        raise ValueError(f"op {name!r}: unknown kind {kind!r}")
    if save != ALL:
        save = {i: tuple(v) for i, v in save.items()} if isinstance(save, dict) else tuple(save)
    op = Op(name, kind, impl, infer, vjp, scalar, save, pure, tuple(attrs))
    REGISTRY[name] = op
    return op


# The trace hook: lucid_jit sets this to its tracer while tracing; None means eager.
CURRENT_TRACER: ContextVar[Any] = ContextVar("lucid_current_tracer", default=None)
# Whether ops record autograd contexts (no_grad / enable_grad flip it).
GRAD_ENABLED: ContextVar[bool] = ContextVar("lucid_grad_enabled", default=True)

# Set by lucid.tensor at import: wrap a new array as a Tensor (under a trace, a constant), and the
# same without the tracer check, for bind's eager results.
_wrap: Callable[[Any], Any] = None  # type: ignore[assignment]
_wrap_eager: Callable[[Any], Any] = None  # type: ignore[assignment]
# Set by the CUDA runtime when it loads: runs an op whose operands include device arrays (as a
# one-node graph on the device) and returns its output array, or returns None when every operand
# is a NumPy array. None until a tensor has been on a device, so eager CPU code pays one check.
device_run: Callable[[Op, tuple, dict], Any] | None = None


class Context(NamedTuple):
    """What an op's output remembers for backward: the op, its inputs and attrs, and the versions of
    the inputs (and of the output) when the op ran."""

    op: Op
    inputs: tuple
    attrs: dict
    versions: tuple[int, ...]
    out_version: int


def bind(op: Op, *args, **attrs):
    """Apply a primitive to tensors: run it eagerly, or record it when a tracer is active."""
    tracer = CURRENT_TRACER.get()
    if tracer is not None:
        out = tracer.emit(op, args, attrs)
    elif device_run is not None and (data := device_run(op, args, attrs)) is not None:
        out = _wrap_eager(data)
    else:
        try:
            # The common arities are spelled out: this is the hot path of every eager op.
            if attrs:
                data = op.impl(*[a.data for a in args], **attrs)
            elif len(args) == 2:
                data = op.impl(args[0].data, args[1].data)
            elif len(args) == 1:
                data = op.impl(args[0].data)
            else:
                data = op.impl(*[a.data for a in args])
        except LucidError:
            raise
        except Exception as exc:
            try:  # the shape rule raises the clear error if it sees what went wrong
                op.infer(*[a.aval for a in args], **attrs)
            except LucidError:
                raise
            except Exception:  # e.g. a misspelled attribute: report the impl's own error below
                pass
            avals = ", ".join(str(a.aval) for a in args)
            raise op_error(op.name, [avals] if avals else [], f"{type(exc).__name__}: {exc}",
                           LucidError) from exc
        out = _wrap_eager(data)
    # Integer and bool results carry no gradient (d int(x)/dx is 0 almost everywhere), as in
    # PyTorch: `x.long()` of a tensor that requires grad does not require grad.
    if op.vjp is not None and GRAD_ENABLED.get() and out.dtype.kind == "f":
        for a in args:
            if a.requires_grad:
                out.requires_grad = True
                out._ctx = Context(op, args, attrs, tuple(x._version[0] for x in args), 0)
                break
    return out


def check_infer(op: Op, *args, **attrs) -> Aval:
    """Run an op's shape rule on tensors' avals (used by tests and the tracer)."""
    return op.infer(*[a.aval for a in args], **attrs)
