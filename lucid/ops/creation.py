"""Creation and random primitives: ops with no tensor inputs.

`full` is a primitive so that zeros, ones and constants made inside a compiled function are graph
nodes the compiler can fold or fill, not arrays baked in. `uniform` and `normal` draw from lucid's
generator (seeded by `lucid.manual_seed`); they are impure, so a compiled function draws fresh
numbers on every call.
"""

from __future__ import annotations

import numpy as np

from lucid import device, dtypes
from lucid.ops import rules
from lucid.ops.registry import Aval, DTypeError, defop, op_error


class _Generator:
    """The process-wide random generator (like torch's default generator)."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng()

    def seed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)


GENERATOR = _Generator()


def _creation_infer(name):
    def rule(*, shape, dtype, **_):
        dtype = dtypes.as_dtype(dtype)
        if name != "full" and not dtypes.is_floating(dtype):
            raise op_error(name, [Aval(tuple(shape), dtype)], "needs a floating dtype", DTypeError)
        return Aval(rules.check_shape(name, shape), dtype)
    return rule


full = defop("full", kind="creation",
             impl=lambda *, shape, value, dtype: np.full(shape, value, dtype=dtype),
             infer=_creation_infer("full"), attrs=("shape", "value", "dtype"))


def _uniform(*, shape, low, high, dtype):
    return GENERATOR.rng.uniform(low, high, size=shape).astype(dtype, copy=False)


def _normal(*, shape, mean, std, dtype):
    if dtypes.as_dtype(dtype) == dtypes.float32:
        out = GENERATOR.rng.standard_normal(size=shape, dtype=np.float32)
    else:
        out = GENERATOR.rng.standard_normal(size=shape)
    if std != 1.0:
        out *= std
    if mean != 0.0:
        out += mean
    return out


uniform = defop("uniform", kind="random", impl=_uniform, infer=_creation_infer("uniform"),
                pure=False, attrs=("shape", "low", "high", "dtype"))
normal = defop("normal", kind="random", impl=_normal, infer=_creation_infer("normal"),
               pure=False, attrs=("shape", "mean", "std", "dtype"))


def zeros_like(t):
    return device.like(t, full(shape=t.shape, value=0, dtype=t.dtype))


def ones_like(t):
    return device.like(t, full(shape=t.shape, value=1, dtype=t.dtype))
