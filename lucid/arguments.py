"""Argument checks for the functional API: a list or None where a tensor belongs is a clear error
naming the function, the argument, what was expected and the user's line, not an
AttributeError from deep inside the function."""

from __future__ import annotations

import functools
import inspect

from lucid.ops.registry import DTypeError, LucidError, user_location
from lucid.tensor import Tensor

_MISSING = object()


class ArgumentError(LucidError, TypeError):
    """A function got an argument of the wrong type."""


def tensor_args(fn):
    """Check the parameters annotated `Tensor` (a tensor required) and `Tensor | None` (a tensor
    or None) on every call; the annotations are the declaration, so they cannot drift apart."""
    params = list(inspect.signature(fn).parameters.values())
    checks = []
    for i, p in enumerate(params):
        note = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation,
                                                                          "__name__", "")
        note = note.replace(" ", "")
        if note in ("Tensor", "Tensor|None", "None|Tensor"):
            positional = p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            checks.append((i if positional else None, p.name, note != "Tensor"))
    if not checks:
        raise TypeError(f"tensor_args: {fn.__qualname__} has no parameter annotated Tensor")
    name = fn.__name__

    @functools.wraps(fn)
    def checked(*args, **kwargs):
        for i, arg, optional in checks:
            x = args[i] if i is not None and i < len(args) else kwargs.get(arg, _MISSING)
            if type(x) is Tensor or x is _MISSING or (x is None and optional) \
                    or isinstance(x, Tensor):
                continue
            where = f" (position {i + 1})" if i is not None and i < len(args) else ""
            want = "a Tensor or None" if optional else "a Tensor"
            raise ArgumentError(f"{name}(): argument {arg!r}{where} must be {want}, not "
                                f"{type(x).__name__} ({user_location()})")
        return fn(*args, **kwargs)

    return checked


def same_dtype(op: str, input: Tensor, **params: Tensor | None) -> None:
    """PyTorch's rule for layers: the input and the layer's tensors (weights, bias, running
    statistics) share one dtype. A float64 or int64 batch through float32 weights is an error
    naming the op, the operands and the user's line, not a silent promotion."""
    for name, t in params.items():
        if t is not None and t.dtype != input.dtype:
            raise DTypeError(f"{op}: input {input.aval} and {name} {t.aval} must have the same "
                             f"dtype, got {input.dtype} and {t.dtype}; convert the input "
                             f"(.to({str(t.dtype)!r})) or the layer ({user_location()})")
