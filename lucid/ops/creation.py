"""Creation and random primitives: ops with no tensor inputs.

`full` is a primitive so that zeros, ones and constants made inside a compiled function are graph
nodes the compiler can fold or fill, not arrays baked in. `uniform` and `normal` draw from lucid's
generator (seeded by `lucid.manual_seed`), and `randint` integers from it; they are impure, so a
compiled function draws fresh numbers on every call. The generator is counter-based (philox.py):
compiled kernels compute the same numbers from the same (key, counter).
"""

from __future__ import annotations

import math

import numpy as np

from lucid import device, dtypes
from lucid.ops import philox, rules
from lucid.ops.registry import Aval, DTypeError, ShapeError, defop, op_error

GENERATOR = philox.Generator()  # the process-wide generator (like torch's default one)


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


def _draw(name):
    def impl(*, shape, dtype, **attrs):
        # (checked first: a draw the shape rule rejects must not take from the generator)
        (_randint_infer if name == "randint" else _creation_infer(name))(
            shape=shape, dtype=dtype, **attrs)
        n = math.prod(shape)
        key, counter = GENERATOR.take(philox.blocks(name, dtype, n))
        return philox.draw(name, tuple(shape), dtype, key, counter, **attrs)
    return impl


def _randint_infer(*, shape, low, high, dtype):
    dtype = dtypes.as_dtype(dtype)
    if dtype.kind not in "iu":
        raise op_error("randint", [Aval(tuple(shape), dtype)], "needs an integer dtype",
                       DTypeError)
    if not high > low:
        raise op_error("randint", [], f"needs low < high, got low={low}, high={high}",
                       ShapeError)
    return Aval(rules.check_shape("randint", shape), dtype)


uniform = defop("uniform", kind="random", impl=_draw("uniform"), infer=_creation_infer("uniform"),
                pure=False, attrs=("shape", "low", "high", "dtype"))
normal = defop("normal", kind="random", impl=_draw("normal"), infer=_creation_infer("normal"),
               pure=False, attrs=("shape", "mean", "std", "dtype"))
randint = defop("randint", kind="random", impl=_draw("randint"), infer=_randint_infer,
                pure=False, attrs=("shape", "low", "high", "dtype"))


def zeros_like(t):
    return device.like(t, full(shape=t.shape, value=0, dtype=t.dtype))


def ones_like(t):
    return device.like(t, full(shape=t.shape, value=1, dtype=t.dtype))
