"""Elementwise primitives: unary math, binary arithmetic, comparisons, where, cast, copy.

Binary ops take operands of one shape and one dtype; `Tensor`'s operators insert `broadcast_to` and
`cast` explicitly, so every vjp here is exact and sees no implicit broadcasting.

`scalar` is the op's math on one element, which every compiler backend inlines into its loops:
`{0}`, `{1}` are the operands, `{zero}` and `{one}` typed constants of the first operand's dtype,
and `{exp}`, `{sqrt}`, ... math functions each backend maps to its own implementation (its
`MATH` table). It gives NumPy's results: nan wins in maximum/minimum, relu keeps -0.0 and nan.
`cast`'s conversion depends on the target dtype, so the emitter writes it.
"""

from __future__ import annotations

import math

import numpy as np

from lucid import dtypes
from lucid.ops import rules
from lucid.ops.creation import ones_like, zeros_like
from lucid.ops.registry import OUT, Aval, DTypeError, ShapeError, defop, op_error


def _erf(x: np.ndarray) -> np.ndarray:
    from scipy.special import (
        erf,  # scipy is a dependency; imported late to keep `import lucid` light
    )

    return erf(x)


# ----------------------------------------------------------------------------- unary

neg = defop("neg", kind="elementwise", impl=np.negative, infer=rules.same("neg"),
            vjp=lambda g, out, x: (-g,), save=(), scalar="(-{0})")

exp = defop("exp", kind="elementwise", impl=np.exp, infer=rules.floating("exp"),
            vjp=lambda g, out, x: (g * out,), save=(OUT,), scalar="{exp}({0})")

log = defop("log", kind="elementwise", impl=np.log, infer=rules.floating("log"),
            vjp=lambda g, out, x: (g / x,), save=(0,), scalar="{log}({0})")

log1p = defop("log1p", kind="elementwise", impl=np.log1p, infer=rules.floating("log1p"),
              vjp=lambda g, out, x: (g / (x + 1.0),), save=(0,), scalar="{log1p}({0})")

sqrt = defop("sqrt", kind="elementwise", impl=np.sqrt, infer=rules.floating("sqrt"),
             vjp=lambda g, out, x: (g / (out * 2.0),), save=(OUT,), scalar="{sqrt}({0})")

def _abs(x: np.ndarray) -> np.ndarray:
    if x.dtype == np.bool_:  # NumPy accepts it; PyTorch and the compiler do not
        raise TypeError("abs of bool")
    return np.abs(x)


abs = defop("abs", kind="elementwise", impl=_abs, infer=rules.same("abs"),
            vjp=lambda g, out, x: (g * x.sign(),), save=(0,), scalar="abs({0})")

sin = defop("sin", kind="elementwise", impl=np.sin, infer=rules.floating("sin"),
            vjp=lambda g, out, x: (g * x.cos(),), save=(0,), scalar="{sin}({0})")

cos = defop("cos", kind="elementwise", impl=np.cos, infer=rules.floating("cos"),
            vjp=lambda g, out, x: (-(g * x.sin()),), save=(0,), scalar="{cos}({0})")

tanh = defop("tanh", kind="elementwise", impl=np.tanh, infer=rules.floating("tanh"),
             vjp=lambda g, out, x: (g * (1.0 - out * out),), save=(OUT,),
             scalar="{tanh}({0})")

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
erf = defop("erf", kind="elementwise", impl=_erf, infer=rules.floating("erf"),
            vjp=lambda g, out, x: (g * ((x * x).neg().exp() * _TWO_OVER_SQRT_PI),), save=(0,),
            scalar="{erf}({0})")

# sign is piecewise constant: its derivative is zero wherever it exists, so it does not propagate.
sign = defop("sign", kind="elementwise", impl=np.sign, infer=rules.same("sign"),
             scalar="({one} if {0} > {zero} else (-{one} if {0} < {zero} else "
                       "({zero} if {0} == {zero} else {0})))")

reciprocal = defop("reciprocal", kind="elementwise", impl=np.reciprocal,
                   infer=rules.floating("reciprocal"),
                   vjp=lambda g, out, x: (-(g * out * out),), save=(OUT,), scalar="({one} / {0})")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # Stable for large |x|: exp only ever sees non-positive arguments.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


sigmoid = defop("sigmoid", kind="elementwise", impl=_sigmoid, infer=rules.floating("sigmoid"),
                vjp=lambda g, out, x: (g * (out * (1.0 - out)),), save=(OUT,),
                scalar="{sigmoid}({0})")


def _relu(x: np.ndarray) -> np.ndarray:
    if x.dtype == np.bool_:  # NumPy accepts it; PyTorch and the compiler do not
        raise TypeError("relu of bool")
    return np.maximum(x, x.dtype.type(0))


# d relu / dx is 1 for x > 0 and 0 otherwise (0 at x == 0, as the seed documents and PyTorch say).
relu = defop("relu", kind="elementwise", impl=_relu, infer=rules.same("relu"),
             vjp=lambda g, out, x: (_where(out > 0, g, zeros_like(g)),), save=(OUT,),
             scalar="({0} if ({0} >= {zero} or {0} != {0}) else {zero})")

copy = defop("copy", kind="elementwise", impl=np.array, infer=lambda x: x,
             vjp=lambda g, out, x: (g,), save=(), scalar="{0}")


def _cast_infer(x: Aval, *, dtype) -> Aval:
    return Aval(x.shape, dtypes.as_dtype(dtype))


def _cast_vjp(g, out, x, *, dtype):
    if not dtypes.is_floating(x.dtype):
        return (None,)
    return (g.cast(x.dtype),)


cast = defop("cast", kind="elementwise", impl=lambda x, *, dtype: x.astype(dtype),
             infer=_cast_infer, vjp=_cast_vjp, save=(), scalar="{0}", attrs=("dtype",))

# ----------------------------------------------------------------------------- binary

add = defop("add", kind="elementwise", impl=np.add, infer=rules.binary("add", logical=True),
            vjp=lambda g, out, x, y: (g, g), save=(), scalar="({0} + {1})")

sub = defop("sub", kind="elementwise", impl=np.subtract, infer=rules.binary("sub"),
            vjp=lambda g, out, x, y: (g, -g), save=(), scalar="({0} - {1})")

mul = defop("mul", kind="elementwise", impl=np.multiply, infer=rules.binary("mul", logical=True),
            vjp=lambda g, out, x, y: (g * y, g * x), save={0: (1,), 1: (0,)}, scalar="({0} * {1})")

div = defop("div", kind="elementwise", impl=np.true_divide,
            infer=rules.binary("div", float_only=True),
            vjp=lambda g, out, x, y: (g / y, -(g * out / y)), save={0: (1,), 1: (1, OUT)},
            scalar="({0} / {1})")


def _pow_vjp(g, out, x, y):
    gx = g * y * x.pow(y - 1.0)
    # d/dy x**y = x**y log x; defined as 0 where x <= 0 (where x**y is 0 or not real).
    positive = x > 0
    safe_x = _where(positive, x, ones_like(x))
    gy = _where(positive, g * out * safe_x.log(), zeros_like(g))
    return gx, gy


pow = defop("pow", kind="elementwise", impl=np.power, infer=rules.binary("pow", float_only=True),
            vjp=_pow_vjp, save={0: (0, 1), 1: (0, OUT)}, scalar="({0} ** {1})")


def _atan2_vjp(g, out, y, x):
    # d/dy = x / r2, d/dx = -y / r2; 0 at the origin (where r2 is 0), as PyTorch gives.
    r2 = x * x + y * y
    origin = r2 == 0
    scale = _where(origin, zeros_like(g), g / _where(origin, ones_like(r2), r2))
    return scale * x, -(scale * y)


# atan2(y, x): the angle of the point (x, y), in [-pi, pi] (NumPy's arctan2; PyTorch's argument
# order). atan, asin and acos are written with it (lucid/methods.py).
atan2 = defop("atan2", kind="elementwise", impl=np.arctan2,
              infer=rules.binary("atan2", float_only=True), vjp=_atan2_vjp, save=(0, 1),
              scalar="{atan2}({0}, {1})")

# Ties send the gradient to the first operand, as PyTorch's clamp does at the boundary.
maximum = defop("maximum", kind="elementwise", impl=np.maximum,
                infer=rules.binary("maximum", logical=True),
                vjp=lambda g, out, x, y: (_where(x >= y, g, zeros_like(g)),
                                          _where(x >= y, zeros_like(g), g)),
                save=(0, 1), scalar="({0} if ({0} >= {1} or {0} != {0}) else {1})")

minimum = defop("minimum", kind="elementwise", impl=np.minimum,
                infer=rules.binary("minimum", logical=True),
                vjp=lambda g, out, x, y: (_where(x <= y, g, zeros_like(g)),
                                          _where(x <= y, zeros_like(g), g)),
                save=(0, 1), scalar="({0} if ({0} <= {1} or {0} != {0}) else {1})")

# ----------------------------------------------------------------------------- bitwise


def _bits_rule(op: str, *, bool_ok: bool = True):
    """Operands of one shape and an integer (or bool) dtype: bits, not numbers."""
    def rule(*xs: Aval) -> Aval:
        if len(xs) == 2:
            rules.binary(op, logical=True)(*xs)
        x = xs[0]
        if dtypes.is_floating(x.dtype) or (x.dtype == dtypes.bool_ and not bool_ok):
            need = "an integer or bool dtype" if bool_ok else "an integer dtype"
            raise op_error(op, xs, f"needs {need}, got {x.dtype}", DTypeError)
        return x
    return rule


bitwise_and = defop("bitwise_and", kind="elementwise", impl=np.bitwise_and,
                    infer=_bits_rule("bitwise_and"), scalar="({0} & {1})")
bitwise_or = defop("bitwise_or", kind="elementwise", impl=np.bitwise_or,
                   infer=_bits_rule("bitwise_or"), scalar="({0} | {1})")
bitwise_xor = defop("bitwise_xor", kind="elementwise", impl=np.bitwise_xor,
                    infer=_bits_rule("bitwise_xor"), scalar="({0} ^ {1})")
# (integers only: a bool tensor's `~` is logical_not, see lucid/methods.py)
bitwise_not = defop("bitwise_not", kind="elementwise", impl=np.invert,
                    infer=_bits_rule("bitwise_not", bool_ok=False), scalar="(~{0})")

# ----------------------------------------------------------------------------- compare

eq = defop("eq", kind="elementwise", impl=np.equal, infer=rules.compare("eq"),
           scalar="({0} == {1})")
ne = defop("ne", kind="elementwise", impl=np.not_equal, infer=rules.compare("ne"),
           scalar="({0} != {1})")
lt = defop("lt", kind="elementwise", impl=np.less, infer=rules.compare("lt"),
           scalar="({0} < {1})")
le = defop("le", kind="elementwise", impl=np.less_equal, infer=rules.compare("le"),
           scalar="({0} <= {1})")
gt = defop("gt", kind="elementwise", impl=np.greater, infer=rules.compare("gt"),
           scalar="({0} > {1})")
ge = defop("ge", kind="elementwise", impl=np.greater_equal, infer=rules.compare("ge"),
           scalar="({0} >= {1})")

# ----------------------------------------------------------------------------- where


def _where_infer(c: Aval, x: Aval, y: Aval) -> Aval:
    if c.dtype != dtypes.bool_:
        raise op_error("where", (c, x, y), "the condition must be bool", DTypeError)
    if not c.shape == x.shape == y.shape:
        raise op_error("where", (c, x, y), "shapes differ (broadcast explicitly)", ShapeError)
    if x.dtype != y.dtype:
        raise op_error("where", (c, x, y), "the two branches' dtypes differ", DTypeError)
    return x


def _where_vjp(g, out, c, x, y):
    zeros = zeros_like(g)
    return None, _where(c, g, zeros), _where(c, zeros, g)


where = defop("where", kind="elementwise", impl=np.where, infer=_where_infer, vjp=_where_vjp,
              save=(0,), scalar="({1} if {0} else {2})")
_where = where
