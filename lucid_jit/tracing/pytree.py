"""Nested tuples, lists and dicts of leaves: flatten to a list and a hashable structure."""

from __future__ import annotations

from typing import Any

LEAF = None


def flatten(obj, leaves: list, names: list | None = None, path: str = "") -> Any:
    """Append obj's leaves to `leaves` (and their paths to `names`); return the structure."""
    t = type(obj)
    if t is tuple or t is list:
        return (t, tuple(flatten(x, leaves, names, f"{path}[{i}]") for i, x in enumerate(obj)))
    if t is dict:
        return (dict, tuple(obj), tuple(flatten(v, leaves, names, f"{path}[{k!r}]")
                                         for k, v in obj.items()))
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a namedtuple
        return (t, tuple(flatten(x, leaves, names, f"{path}.{f}")
                         for f, x in zip(obj._fields, obj, strict=True)))
    leaves.append(obj)
    if names is not None:
        names.append(path or "output")
    return LEAF


def unflatten(spec, leaves) -> Any:
    return _build(spec, iter(leaves))


def _build(spec, it):
    if spec is LEAF:
        return next(it)
    t = spec[0]
    if t is dict:
        return {k: _build(s, it) for k, s in zip(spec[1], spec[2], strict=True)}
    items = [_build(s, it) for s in spec[1]]
    if t is tuple or t is list:
        return t(items)
    return t(*items)
