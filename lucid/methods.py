"""Tensor methods and lucid functions written in lucid's own ops (composites): PyTorch's names,
defaults and errors. Each is a few primitives (where, comparisons, sum, matmul, getitem,
reshape, broadcast_to), so under `lucid.compile` the compiler sees through them and fuses what
follows; none reads a tensor's values unless its result depends on them (`one_hot` without
`num_classes`, `allclose`).

Installed on `Tensor` when lucid is imported; `lucid.<name>(t, ...)` forms are in FUNCTIONS.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Sequence

import numpy as np

from lucid import dtypes, ops
from lucid.ops.registry import CURRENT_TRACER, DTypeError, ShapeError, op_error
from lucid.tensor import Tensor

_INSTALLED: dict[str, object] = {}


def method(fn):
    """Install `fn` as a Tensor method of the same name."""
    _INSTALLED[fn.__name__] = fn
    setattr(Tensor, fn.__name__, fn)
    return fn


def _dim(t: Tensor, dim: int, what: str) -> int:
    n = max(t.ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{what}: dimension out of range (expected to be in range of "
                         f"[{-n}, {n - 1}], but got {dim})")
    return dim % n


def _const(array: np.ndarray, like: Tensor) -> Tensor:
    """A constant on `like`'s device (under a trace: a constant of the graph)."""
    return Tensor(array, device=like.device)


# ----------------------------------------------------------------------------- about a tensor


@method
def dim(self) -> int:
    return self.ndim


@method
def nelement(self) -> int:
    return self.numel()


@method
def element_size(self) -> int:
    return self.dtype.itemsize


@method
def is_floating_point(self) -> bool:
    return dtypes.is_floating(self.dtype)


@method
def is_contiguous(self) -> bool:
    data = self.data
    return bool(data.flags.c_contiguous) if isinstance(data, np.ndarray) else True


_TYPE_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor",
               "int64": "LongTensor", "int32": "IntTensor", "int16": "ShortTensor",
               "int8": "CharTensor", "uint8": "ByteTensor", "bool": "BoolTensor"}


@method
def type(self, dtype=None):  # noqa: A001 (PyTorch's name)
    """The type's name ("lucid.FloatTensor") without an argument; with one, a cast to it."""
    if dtype is None:
        prefix = "lucid.cuda." if self.device == "cuda" else "lucid."
        return prefix + _TYPE_NAMES.get(self.dtype.name, self.dtype.name)
    return self.cast(dtypes.as_dtype(dtype))


# ----------------------------------------------------------------------------- shapes


@method
def t(self) -> Tensor:
    if self.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is "
                           f"{self.ndim}D")
    return self if self.ndim < 2 else self.transpose(0, 1)


Tensor.mT = property(lambda self: self.transpose(-2, -1), doc="The last two dims swapped.")


@method
def contiguous(self) -> Tensor:
    """Self when its elements are in C order already, else a C-ordered copy."""
    if self.is_contiguous():
        return self
    out = self.clone()
    if isinstance(out.data, np.ndarray):  # (the copy keeps the layout; the values are its own)
        out.data = np.ascontiguousarray(out.data)
    return out


@method
def view_as(self, other: Tensor) -> Tensor:
    return self.reshape(other.shape)


@method
def reshape_as(self, other: Tensor) -> Tensor:
    return self.reshape(other.shape)


@method
def unflatten(self, dim: int, sizes: Sequence[int]) -> Tensor:
    d = _dim(self, dim, "unflatten")
    return self.reshape(*self.shape[:d], *sizes, *self.shape[d + 1:])


@method
def narrow(self, dim: int, start: int, length: int) -> Tensor:
    d = _dim(self, dim, "narrow")
    if start < 0:
        start += self.shape[d]
    if not (0 <= start and start + length <= self.shape[d]) or length < 0:
        raise IndexError(f"narrow(): start ({start}) + length ({length}) exceeds dimension "
                         f"size ({self.shape[d]}).")
    return self[(slice(None),) * d + (slice(start, start + length),)]


@method
def repeat(self, *sizes) -> Tensor:
    """The tensor tiled `sizes[i]` times along each dim (PyTorch's repeat, NumPy's tile): a
    reshape, a broadcast and a reshape."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < self.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number "
                           "of dimensions of tensor")
    x = self.reshape((1,) * (len(sizes) - self.ndim) + self.shape)
    inter = tuple(v for d in x.shape for v in (1, d))
    wide = tuple(v for r, d in zip(sizes, x.shape, strict=True) for v in (r, d))
    return x.reshape(inter).broadcast_to(wide).reshape(
        tuple(r * d for r, d in zip(sizes, x.shape, strict=True)))


@method
def repeat_interleave(self, repeats: int, dim: int | None = None) -> Tensor:
    """Each element repeated `repeats` times along `dim` (of the flattened tensor without one):
    an unsqueeze, a broadcast and a reshape."""
    if isinstance(repeats, Tensor):
        if repeats.numel() != 1:
            raise NotImplementedError("repeat_interleave: lucid takes one repeat count (an int)")
        repeats = int(repeats.item())
    if repeats < 0:
        raise RuntimeError("repeats can not be negative")
    x = self.reshape(-1) if dim is None else self
    d = 0 if dim is None else _dim(x, dim, "repeat_interleave")
    shape = x.shape
    wide = shape[:d + 1] + (repeats,) + shape[d + 1:]
    return x.unsqueeze(d + 1).broadcast_to(wide).reshape(
        shape[:d] + (shape[d] * repeats,) + shape[d + 1:])


@method
def split(self, split_size_or_sections, dim: int = 0) -> tuple[Tensor, ...]:
    d = _dim(self, dim, "split")
    n = self.shape[d]
    if isinstance(split_size_or_sections, int):
        size = split_size_or_sections
        if size <= 0 and n:
            raise ValueError(f"split expects split_size be non-negative, but got "
                             f"split_size={size}")
        sizes = [min(size, n - i) for i in range(0, n, size)] if n else [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n:
            raise ValueError(f"split_with_sizes expects split_sizes to sum exactly to {n} "
                             f"(input tensor's size at dimension {d}), but got "
                             f"split_sizes={sizes}")
    out, start = [], 0
    for s in sizes:
        out.append(self[(slice(None),) * d + (slice(start, start + s),)])
        start += s
    return tuple(out)


@method
def chunk(self, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    if chunks <= 0:
        raise RuntimeError("chunk expects `chunks` to be greater than 0, got: " + str(chunks))
    n = self.shape[_dim(self, dim, "chunk")]
    return self.split(max(1, -(-n // chunks)), dim)


@method
def flip(self, dims) -> Tensor:
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    index = [slice(None)] * self.ndim
    for d in dims:
        index[_dim(self, d, "flip")] = slice(None, None, -1)
    return self[tuple(index)]


@method
def roll(self, shifts, dims=None) -> Tensor:
    if dims is None:
        return self.reshape(-1).roll(shifts, 0).reshape(self.shape)
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shifts) != len(dims):
        raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:"
                           f"{len(dims)}")
    from lucid.functions import cat

    x = self
    for s, d in zip(shifts, dims, strict=True):
        d = _dim(x, d, "roll")
        n = x.shape[d]
        s = s % n if n else 0
        if s:
            pre = (slice(None),) * d
            x = cat([x[pre + (slice(n - s, n),)], x[pre + (slice(0, n - s),)]], d)
    return x


# ----------------------------------------------------------------------------- comparisons, logic


for _name, _sym in (("eq", "__eq__"), ("ne", "__ne__"), ("lt", "__lt__"), ("le", "__le__"),
                    ("gt", "__gt__"), ("ge", "__ge__")):
    setattr(Tensor, _name, getattr(Tensor, _sym))
    _INSTALLED[_name] = getattr(Tensor, _sym)
Tensor.greater, Tensor.less = Tensor.gt, Tensor.lt


def _as_bool(t: Tensor) -> Tensor:
    return t if t.dtype == dtypes.bool_ else t != 0


@method
def logical_not(self) -> Tensor:
    return _as_bool(self) == False  # noqa: E712 (an elementwise comparison)


@method
def logical_and(self, other) -> Tensor:
    from lucid.functions import where

    return where(_as_bool(self), _as_bool(_lift(self, other)), False)


@method
def logical_or(self, other) -> Tensor:
    from lucid.functions import where

    return where(_as_bool(self), True, _as_bool(_lift(self, other)))


@method
def logical_xor(self, other) -> Tensor:
    return _as_bool(self) != _as_bool(_lift(self, other))


def _lift(self: Tensor, other) -> Tensor:
    return other if isinstance(other, Tensor) else self._lift(other)


def _bitwise(name: str, logical):
    """`&`, `|`, `^`: logical on two bool tensors, bitwise on integers (a bool operand is
    promoted, as in PyTorch); a float operand is an error naming the op."""
    op = getattr(ops, "bitwise_" + name)

    def fn(self, other):
        other = _lift(self, other)
        if self.dtype == dtypes.bool_ and other.dtype == dtypes.bool_:
            return logical(self, other)
        return self._binary(op, other)
    fn.__name__ = "bitwise_" + name
    return fn


def _invert(self) -> Tensor:
    return self.logical_not() if self.dtype == dtypes.bool_ else ops.bitwise_not(self)


Tensor.bitwise_and = Tensor.__and__ = Tensor.__rand__ = _bitwise("and", Tensor.logical_and)
Tensor.bitwise_or = Tensor.__or__ = Tensor.__ror__ = _bitwise("or", Tensor.logical_or)
Tensor.bitwise_xor = Tensor.__xor__ = Tensor.__rxor__ = _bitwise("xor", Tensor.logical_xor)
Tensor.bitwise_not = Tensor.__invert__ = _invert


@method
def isnan(self) -> Tensor:
    if not dtypes.is_floating(self.dtype):
        return self != self  # all False, of this shape
    return self != self


@method
def isinf(self) -> Tensor:
    if not dtypes.is_floating(self.dtype):
        return self != self
    return self.abs() == math.inf


@method
def isfinite(self) -> Tensor:
    if not dtypes.is_floating(self.dtype):
        return self == self
    from lucid.functions import where

    return where(self == self, self.abs() != math.inf, False)


@method
def any(self, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    return _as_bool(self).cast(dtypes.int64).sum(dim, keepdim) > 0


@method
def all(self, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    return self.logical_not().cast(dtypes.int64).sum(dim, keepdim) == 0


@method
def masked_fill(self, mask, value) -> Tensor:
    from lucid.functions import where

    if not isinstance(mask, Tensor) or mask.dtype != dtypes.bool_:
        raise op_error("masked_fill", [self.aval], "expects a bool tensor as the mask",
                       DTypeError)
    if isinstance(value, Tensor) and value.ndim != 0:
        raise RuntimeError(f"masked_fill only supports a 0-dimensional value tensor, but got "
                           f"tensor with {value.ndim} dimension(s).")
    value = value.cast(self.dtype) if isinstance(value, Tensor) else self._lift(value, self.dtype)
    return where(mask, value, self).broadcast_to(self.shape)


@method
def masked_fill_(self, mask, value) -> Tensor:
    return self._inplace(lambda x: x.masked_fill(mask, value))


# ----------------------------------------------------------------------------- math


@method
def square(self) -> Tensor:
    return self * self


@method
def rsqrt(self) -> Tensor:
    return self._float_operand().sqrt().reciprocal()


@method
def lerp(self, end, weight) -> Tensor:
    return self + weight * (end - self)


@method
def softmax(self, dim: int) -> Tensor:
    from lucid.nn.functional import softmax

    return softmax(self, dim)


@method
def log_softmax(self, dim: int) -> Tensor:
    from lucid.nn.functional import log_softmax

    return log_softmax(self, dim)


@method
def logsumexp(self, dim, keepdim: bool = False) -> Tensor:
    """log(sum(exp(x))) over `dim`, shifted by the max so that it never overflows."""
    from lucid.functions import where

    x = self._float_operand()
    m = x.amax(dim, keepdim=True).detach()
    m = where(m.abs() != math.inf, m, 0.0)
    out = (x - m).exp().sum(dim, keepdim=True).log() + m
    if keepdim:
        return out
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    for d in sorted((_dim(x, d, "logsumexp") for d in dims), reverse=True):
        out = out.squeeze(d)
    return out


@method
def norm(self, p="fro", dim=None, keepdim: bool = False) -> Tensor:
    """The vector p-norm over `dim` (all elements by default): "fro" and 2 the Euclidean norm,
    inf and -inf the largest and smallest magnitude, 0 the count of non-zeros."""
    x = self._float_operand()
    if p in ("fro", 2, 2.0):
        return (x * x).sum(dim, keepdim).sqrt()
    if p == 1:
        return x.abs().sum(dim, keepdim)
    if p == math.inf:
        return x.abs().amax(dim, keepdim)
    if p == -math.inf:
        return x.abs().amin(dim, keepdim)
    if p == 0:
        return (x != 0).cast(x.dtype).sum(dim, keepdim)
    if isinstance(p, str):
        raise ValueError(f"norm: p must be a number or 'fro', got {p!r}")
    return (x.abs() ** float(p)).sum(dim, keepdim) ** (1.0 / float(p))


@method
def std_mean(self, dim=None, keepdim: bool = False, unbiased: bool = True):
    return self.std(dim, keepdim=keepdim, unbiased=unbiased), self.mean(dim, keepdim=keepdim)


@method
def var_mean(self, dim=None, keepdim: bool = False, unbiased: bool = True):
    return self.var(dim, keepdim=keepdim, unbiased=unbiased), self.mean(dim, keepdim=keepdim)


# ----------------------------------------------------------------------------- rounding, division


def _trunc(x: Tensor) -> Tensor:
    """x rounded toward zero (through int64: exact for |x| < 2**63; inf and nan kept)."""
    from lucid.functions import where

    small = x.abs() < 2.0 ** 62  # (False for inf and nan: they pass through)
    t = where(small, x, 0.0).cast(dtypes.int64).cast(x.dtype)
    return where(small, t, x)


@method
def trunc(self) -> Tensor:
    return self if not dtypes.is_floating(self.dtype) else _trunc(self)


@method
def floor(self) -> Tensor:
    if not dtypes.is_floating(self.dtype):
        return self
    t = _trunc(self)
    return t - (self < t).cast(self.dtype)


@method
def ceil(self) -> Tensor:
    if not dtypes.is_floating(self.dtype):
        return self
    t = _trunc(self)
    return t + (self > t).cast(self.dtype)


@method
def frac(self) -> Tensor:
    return self - self.trunc()


@method
def floor_divide(self, other) -> Tensor:
    """Division rounded down (Python's and PyTorch's `//`): exact for integers below 2**53."""
    other = _lift(self, other)
    dtype = dtypes.promote(self.dtype, other.dtype)
    if dtypes.is_floating(dtype):
        return (self.cast(dtype) / other.cast(dtype)).floor()
    a, b = self.cast(dtype), other.cast(dtype)
    q = (a.cast(dtypes.float64) / b.cast(dtypes.float64)).cast(dtypes.int64).cast(dtype)
    inexact = (q * b) != a
    return q - (inexact.logical_and((a < 0) != (b < 0))).cast(dtype)


@method
def remainder(self, other) -> Tensor:
    """a - (a // b) * b: the sign of the divisor (Python's and PyTorch's `%`)."""
    other = _lift(self, other)
    return self - self.floor_divide(other) * other


@method
def fmod(self, other) -> Tensor:
    """a - trunc(a / b) * b: the sign of the dividend (C's fmod)."""
    other = _lift(self, other)
    dtype = dtypes.promote(self.dtype, other.dtype)
    a, b = self.cast(dtype), other.cast(dtype)
    if dtypes.is_floating(dtype):
        return a - (a / b).trunc() * b
    q = (a.cast(dtypes.float64) / b.cast(dtypes.float64)).cast(dtypes.int64).cast(dtype)
    return a - q * b


Tensor.__floordiv__ = Tensor.floor_divide
Tensor.__rfloordiv__ = lambda self, other: self._lift(other).floor_divide(self)
Tensor.__mod__ = Tensor.remainder
Tensor.__rmod__ = lambda self, other: self._lift(other).remainder(self)


@method
def round(self, decimals: int = 0) -> Tensor:  # noqa: A001
    """To the nearest integer, halves to even (as PyTorch and NumPy round); with `decimals`,
    to that many decimal places."""
    if not dtypes.is_floating(self.dtype):
        return self
    if decimals:
        scale = 10.0 ** decimals
        return (self * scale).round() / scale
    from lucid.functions import where

    f = self.floor()
    d = self - f
    odd = (f - 2.0 * (f * 0.5).floor()) != 0
    up = where(d == 0.5, odd, d > 0.5)
    return f + up.cast(self.dtype)


Tensor.clip = Tensor.clamp
_INSTALLED["clip"] = Tensor.clamp


@method
def clamp_min(self, min) -> Tensor:  # noqa: A002
    return self.clamp(min=min)


@method
def clamp_max(self, max) -> Tensor:  # noqa: A002
    return self.clamp(max=max)


def _unary_inplace(name: str):
    def fn(self, *args, **kwargs):
        return self._inplace(lambda x: getattr(x, name)(*args, **kwargs))
    fn.__name__ = name + "_"
    fn.__doc__ = f"`{name}` written into self."
    return fn


for _name in ("abs", "exp", "neg", "sqrt", "sigmoid", "tanh", "log", "sin", "cos", "floor",
              "ceil", "round", "trunc", "reciprocal", "square", "sign", "clamp_min", "clamp_max",
              "log1p", "rsqrt", "frac", "lerp", "masked_scatter"):
    if hasattr(Tensor, _name) and not hasattr(Tensor, _name + "_"):
        setattr(Tensor, _name + "_", _unary_inplace(_name))
Tensor.clip_ = Tensor.clamp_


@method
def uniform_(self, a: float = 0.0, b: float = 1.0) -> Tensor:
    import lucid

    return self._inplace(lambda x: lucid.rand(x.shape, dtype=x.dtype, device=x.device)
                         * (b - a) + a)


@method
def normal_(self, mean: float = 0.0, std: float = 1.0) -> Tensor:
    import lucid

    return self._inplace(lambda x: lucid.randn(x.shape, dtype=x.dtype, device=x.device)
                         * std + mean)


@method
def bernoulli_(self, p: float = 0.5) -> Tensor:
    import lucid

    return self._inplace(lambda x: (lucid.rand(x.shape, dtype=dtypes.float32, device=x.device)
                                    < p).cast(x.dtype))


@method
def log2(self) -> Tensor:
    return self._float_operand().log() * (1.0 / math.log(2.0))


@method
def log10(self) -> Tensor:
    return self._float_operand().log() * (1.0 / math.log(10.0))


@method
def exp2(self) -> Tensor:
    return (self._float_operand() * math.log(2.0)).exp()


@method
def expm1(self) -> Tensor:
    """exp(x) - 1, by its series near 0 (where exp(x) - 1 loses digits)."""
    from lucid.functions import where

    x = self._float_operand()
    small = x.abs() < 1e-3
    return where(small, x * (1.0 + x * (0.5 + x * (1.0 / 6.0))), x.exp() - 1.0)


@method
def sinh(self) -> Tensor:
    x = self._float_operand()
    return (x.exp() - (-x).exp()) * 0.5


@method
def cosh(self) -> Tensor:
    x = self._float_operand()
    return (x.exp() + (-x).exp()) * 0.5


@method
def tan(self) -> Tensor:
    x = self._float_operand()
    return x.sin() / x.cos()


@method
def atan2(self, other) -> Tensor:
    """The angle of the point (other, self) in [-pi, pi] (self is y, as in PyTorch)."""
    y = self._float_operand()
    x = other._float_operand() if isinstance(other, Tensor) else other
    from lucid import ops

    return y._binary(ops.atan2, x)


@method
def atan(self) -> Tensor:
    return self._float_operand().atan2(1.0)


def _one_minus_square(x: Tensor) -> Tensor:
    return ((1.0 - x) * (1.0 + x)).sqrt()  # sqrt(1 - x^2), exact near |x| = 1


@method
def asin(self) -> Tensor:
    x = self._float_operand()
    return x.atan2(_one_minus_square(x))  # nan outside [-1, 1], as 1 - x^2 < 0 there


@method
def acos(self) -> Tensor:
    x = self._float_operand()
    return _one_minus_square(x).atan2(x)


_LN2 = math.log(2.0)
_HUGE = 1e8  # past it asinh(a) and acosh(a) are log(2 a) to rounding, and a^2 may overflow


def _log_twice(a: Tensor, huge: Tensor) -> Tensor:
    from lucid.functions import where

    return where(huge, a, 1.0).log() + _LN2


@method
def asinh(self) -> Tensor:
    """log(|x| + sqrt(x^2 + 1)) with x's sign, written as log1p(a + a^2 / (1 + sqrt(1 + a^2)))
    (no cancellation near 0) and log(2 a) for huge a; the sign is taken by a where, so the
    gradient at 0 is 1. (Each branch sees only its own inputs, so neither sends nan back.)"""
    from lucid.functions import where

    x = self._float_operand()
    negative = x < 0
    a = where(negative, -x, x)
    huge = a > _HUGE
    s = where(huge, 1.0, a)
    magnitude = where(huge, _log_twice(a, huge),
                      (s + s * s / (1.0 + (s * s + 1.0).sqrt())).log1p())
    return where(negative, -magnitude, magnitude)


@method
def acosh(self) -> Tensor:
    """log1p(t + sqrt(t (t + 2))) with t = x - 1 (exact near 1, nan below it), and log(2 x) for
    huge x."""
    from lucid.functions import where

    x = self._float_operand()
    huge = x > _HUGE
    t = where(huge, 1.0, x) - 1.0
    return where(huge, _log_twice(x, huge), (t + (t * (t + 2.0)).sqrt()).log1p())


@method
def atanh(self) -> Tensor:
    x = self._float_operand()
    return (2.0 * x / (1.0 - x)).log1p() * 0.5


for _name in ("atan2", "atan", "asin", "acos", "asinh", "acosh", "atanh"):
    setattr(Tensor, "arc" + _name[1:], getattr(Tensor, _name))
for _name in ("atan2", "atan", "asin", "acos", "asinh", "acosh", "atanh", "sinh", "cosh", "tan",
              "expm1", "log2", "log10", "exp2"):
    if hasattr(Tensor, _name) and not hasattr(Tensor, _name + "_"):
        setattr(Tensor, _name + "_", _unary_inplace(_name))


@method
def ndimension(self) -> int:
    return self.ndim


@method
def select(self, dim: int, index: int) -> Tensor:
    d = _dim(self, dim, "select")
    return self[(slice(None),) * d + (index,)]


@method
def unbind(self, dim: int = 0) -> tuple[Tensor, ...]:
    d = _dim(self, dim, "unbind")
    return tuple(self.select(d, i) for i in range(self.shape[d]))


@method
def count_nonzero(self, dim=None) -> Tensor:
    return (self != 0).cast(dtypes.int64).sum(dim)


@method
def prod(self, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """The product of the elements (over `dim`) by a tree of pairwise products: exact to the
    dtype's rounding, integer products wrap as PyTorch's do, and the gradient at an exact zero
    is the product of the other elements."""
    x = _product_operand(self, dtype)
    if dim is None:
        out = _prod_last(x.reshape(-1))
        return out.reshape((1,) * self.ndim) if keepdim else out
    d = _dim(x, dim, "prod")
    if x.ndim == 0:
        return x
    out = _prod_last(x.permute(*(i for i in range(x.ndim) if i != d), d))
    return out.unsqueeze(d) if keepdim else out


def _product_operand(x: Tensor, dtype) -> Tensor:
    """The operand of prod and cumprod: cast to `dtype`, else bool and integers to int64."""
    if dtype is not None:
        return x.cast(dtypes.as_dtype(dtype))
    return x if dtypes.is_floating(x.dtype) else x.cast(dtypes.int64)


def _prod_last(x: Tensor) -> Tensor:
    """Products over the last axis: halve it by pairwise products until one element is left
    (an odd length gets a one appended first)."""
    lead = x.shape[:-1]
    n = x.shape[-1]
    if n == 0:
        return _const(np.ones(lead, x.dtype), x)
    while n > 1:
        if n % 2:
            x = _pad_last(x, 1, value=1)
            n += 1
        pairs = x.reshape(*lead, n // 2, 2)
        x = pairs[..., 0] * pairs[..., 1]
        n //= 2
    return x[..., 0]


@method
def isin(self, test_elements, invert: bool = False) -> Tensor:
    test = test_elements if isinstance(test_elements, Tensor) else Tensor(
        np.asarray(test_elements), device=self.device)
    hit = (self.unsqueeze(-1) == test.reshape(-1)).any(-1)
    return hit.logical_not() if invert else hit


def _host_only(what: str) -> None:
    tracer = CURRENT_TRACER.get()
    if tracer is not None:
        tracer.graph_break(f"{what} inside a compiled function (its result's shape depends on "
                           "the values: the function runs eagerly)")


@method
def nonzero(self, *, as_tuple: bool = False):
    _host_only("nonzero")
    idx = np.nonzero(self.detach().numpy())
    if as_tuple:
        return tuple(Tensor(i.astype(np.int64), device=self.device) for i in idx)
    return Tensor(np.stack(idx, 1).astype(np.int64).reshape(-1, max(self.ndim, 1)),
                  device=self.device)


@method
def masked_select(self, mask) -> Tensor:
    """The elements where mask is True, as a 1-d tensor (gradients flow to them)."""
    _host_only("masked_select")
    mask = mask.broadcast_to(self.shape) if mask.shape != self.shape else mask
    return self.reshape(-1)[Tensor(np.flatnonzero(mask.numpy()).astype(np.int64),
                                   device=self.device)]


@method
def unique(self, sorted: bool = True, return_inverse: bool = False,  # noqa: A002
           return_counts: bool = False, dim=None):
    _host_only("unique")
    if dim is not None:
        raise NotImplementedError("unique(dim=...) is not supported (docs/DIFFERENCES.md)")
    values, inverse, counts = np.unique(self.detach().numpy(), return_inverse=True,
                                        return_counts=True)
    out = [Tensor(values, device=self.device)]
    if return_inverse:
        out.append(Tensor(inverse.reshape(self.shape).astype(np.int64), device=self.device))
    if return_counts:
        out.append(Tensor(counts.astype(np.int64), device=self.device))
    return out[0] if len(out) == 1 else tuple(out)


@method
def bincount(self, weights=None, minlength: int = 0) -> Tensor:
    _host_only("bincount")
    if self.ndim != 1 or self.dtype.kind not in "iu":
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    w = None if weights is None else weights.detach().numpy()
    out = np.bincount(self.numpy(), w, minlength)
    return Tensor(out if w is not None else out.astype(np.int64), device=self.device)


@method
def median(self, dim=None, keepdim: bool = False):
    """The lower median (PyTorch's): of all elements, or (values, indices) along dim."""
    from lucid.tensor import MinMax

    if dim is None:
        flat = self.reshape(-1)
        return flat.sort().values[(flat.shape[0] - 1) // 2]
    d = _dim(self, dim, "median")
    values, indices = self.sort(d)
    k = (self.shape[d] - 1) // 2
    key = (slice(None),) * d + (slice(k, k + 1),)
    v, i = values[key], indices[key]
    return MinMax(v if keepdim else v.squeeze(d), i if keepdim else i.squeeze(d))


def searchsorted(sorted_sequence: Tensor, values, *, right: bool = False, side=None) -> Tensor:
    """For each value, the index where it would go in the (last dim of the) sorted sequence:
    the count of elements below it (or not above it, with right=True)."""
    if side is not None:
        right = side == "right"
    values = values if isinstance(values, Tensor) else Tensor(np.asarray(values),
                                                              device=sorted_sequence.device)
    if sorted_sequence.ndim == 1:
        below = sorted_sequence <= values.unsqueeze(-1) if right else \
            sorted_sequence < values.unsqueeze(-1)
    else:
        seq = sorted_sequence.unsqueeze(-2)
        v = values.unsqueeze(-1)
        below = seq <= v if right else seq < v
    return below.cast(dtypes.int64).sum(-1)


def bucketize(input, boundaries: Tensor, *, right: bool = False) -> Tensor:
    return searchsorted(boundaries, input, right=right)


# ----------------------------------------------------------------------------- triangles, products


def _triangle(t: Tensor, diagonal: int, lower: bool, what: str) -> Tensor:
    from lucid.functions import where

    if t.ndim < 2:
        raise RuntimeError(f"{what}: input tensor must have at least 2 dimensions")
    rows, cols = t.shape[-2:]
    i = np.arange(rows)[:, None]
    j = np.arange(cols)[None, :]
    keep = (j - i <= diagonal) if lower else (j - i >= diagonal)
    return where(_const(keep, t), t, Tensor._wrap(np.zeros((), t.dtype)))


@method
def tril(self, diagonal: int = 0) -> Tensor:
    return _triangle(self, diagonal, True, "tril")


@method
def triu(self, diagonal: int = 0) -> Tensor:
    return _triangle(self, diagonal, False, "triu")


@method
def tril_(self, diagonal: int = 0) -> Tensor:
    return self._inplace(lambda x: x.tril(diagonal))


@method
def triu_(self, diagonal: int = 0) -> Tensor:
    return self._inplace(lambda x: x.triu(diagonal))


def _ranks(op: str, ndim: int, a: Tensor, b: Tensor) -> None:
    if a.ndim != ndim or b.ndim != ndim:
        raise op_error(op, [a.aval, b.aval], f"both operands must be {ndim}-d", ShapeError)


@method
def mm(self, mat2: Tensor) -> Tensor:
    _ranks("mm", 2, self, mat2)
    return self.matmul(mat2)


@method
def bmm(self, mat2: Tensor) -> Tensor:
    _ranks("bmm", 3, self, mat2)
    if self.shape[0] != mat2.shape[0]:
        raise op_error("bmm", [self.aval, mat2.aval], "the batch sizes differ", ShapeError)
    return self.matmul(mat2)


@method
def outer(self, vec2: Tensor) -> Tensor:
    _ranks("outer", 1, self, vec2)
    return self.reshape(-1, 1) * vec2.reshape(1, -1)


@method
def dot(self, other: Tensor) -> Tensor:
    if self.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {self.ndim}D and {other.ndim}D "
                           "tensors")
    if self.shape != other.shape:
        raise RuntimeError(f"inconsistent tensor size, expected tensor [{self.shape[0]}] and "
                           f"src [{other.shape[0]}] to have the same number of elements, but "
                           "got different.")
    return (self * other).sum()


@method
def addmm(self, mat1: Tensor, mat2: Tensor, *, beta=1, alpha=1) -> Tensor:
    product = mat1.mm(mat2)
    return (product if alpha == 1 else alpha * product) + (self if beta == 1 else beta * self)


@method
def baddbmm(self, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    product = batch1.bmm(batch2)
    return (product if alpha == 1 else alpha * product) + (self if beta == 1 else beta * self)


# ----------------------------------------------------------------------------- indexing


def _index_tensor(index, what: str) -> Tensor:
    if not isinstance(index, Tensor):
        index = Tensor(np.asarray(index))
    if index.dtype.kind not in "iu":
        raise op_error(what, [index.aval], "index must be an integer tensor", DTypeError)
    return index


@method
def index_select(self, dim: int, index) -> Tensor:
    index = _index_tensor(index, "index_select")
    if index.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    d = _dim(self, dim, "index_select")
    return self[(slice(None),) * d + (index.reshape(-1),)]


@method
def gather(self, dim: int, index) -> Tensor:
    """out[i][j][k] = self[index[i][j][k]][j][k] (for dim 0; likewise for the others)."""
    index = _index_tensor(index, "gather")
    d = _dim(self, dim, "gather")
    if index.ndim != self.ndim:
        raise RuntimeError("Index tensor must have the same number of dimensions as input "
                           "tensor")
    for k, (n, m) in enumerate(zip(index.shape, self.shape, strict=True)):
        if k != d and n > m:
            raise RuntimeError(f"Size does not match at dimension {k} expected index "
                               f"{list(index.shape)} to be smaller than self {list(self.shape)} "
                               f"apart from dimension {d}")
    return self[_along_key(self, d, index)]


def _along_key(self: Tensor, d: int, index: Tensor) -> tuple:
    """The advanced-indexing key addressing self[..., index[i][j], ...] (index at dim d, the
    other dims by position): what gather reads and scatter writes."""
    key = []
    for k in range(self.ndim):
        if k == d:
            key.append(index)
        else:
            shape = [1] * self.ndim
            shape[k] = index.shape[k]
            key.append(_const(np.arange(index.shape[k]).reshape(shape), self))
    return tuple(key)


def _scatter_key(self: Tensor, dim: int, index: Tensor, what: str):
    """The advanced-indexing key that addresses self[.., index[i][j], ..] (gather's key)."""
    index = _index_tensor(index, what)
    d = _dim(self, dim, what)
    if index.ndim != self.ndim:
        raise RuntimeError("Index tensor must have the same number of dimensions as self "
                           "tensor")
    return _along_key(self, d, index), index


def _scattered(self: Tensor, dim: int, index, src, what: str, add: bool) -> Tensor:
    from lucid import ops
    from lucid.indexing import index_spec

    key, index = _scatter_key(self, dim, index, what)
    spec, arrays = index_spec(self, key)
    if isinstance(src, Tensor):
        values = src.cast(self.dtype)
        if values.shape != index.shape:
            values = values[tuple(slice(0, n) for n in index.shape)]
    else:
        values = self._lift(src, self.dtype).broadcast_to(index.shape)
    summed = ops.scatter_add(values, *arrays, index=spec, shape=self.shape)
    if add:
        return self + summed
    from lucid.functions import where

    hit = Tensor(np.ones(index.shape, np.int64), device=self.device)
    written = ops.scatter_add(hit, *arrays, index=spec, shape=self.shape) > 0
    return where(written, summed, self)


@method
def scatter_add(self, dim: int, index, src) -> Tensor:
    """self with src[i][j] added at [index[i][j]][j] (for dim 0; likewise for the others)."""
    return _scattered(self, dim, index, src, "scatter_add", True)


@method
def scatter_add_(self, dim: int, index, src) -> Tensor:
    return self._inplace(lambda x: x.scatter_add(dim, index, src))


@method
def scatter(self, dim: int, index, src=None, *, value=None, reduce=None) -> Tensor:
    """self with src[i][j] (or `value`) written at [index[i][j]][j] (for dim 0). An index that
    repeats gets the sum of what is written there (PyTorch leaves which one wins unspecified);
    reduce="add" adds to self instead."""
    if src is None:
        src = value
    if src is None:
        raise TypeError("scatter() needs src or value")
    if reduce not in (None, "add"):
        raise NotImplementedError(f"scatter(reduce={reduce!r}): lucid has reduce='add'")
    return _scattered(self, dim, index, src, "scatter", reduce == "add")


@method
def scatter_(self, dim: int, index, src=None, *, value=None, reduce=None) -> Tensor:
    return self._inplace(lambda x: x.scatter(dim, index, src, value=value, reduce=reduce))


@method
def diagonal(self, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    a, b = _dim(self, dim1, "diagonal"), _dim(self, dim2, "diagonal")
    if a == b:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    rest = [k for k in range(self.ndim) if k not in (a, b)]
    x = self.permute(*rest, a, b)
    rows, cols = x.shape[-2:]
    n = max(0, min(rows, cols - offset) if offset >= 0 else min(rows + offset, cols))
    i = np.arange(n) + max(0, -offset)
    j = np.arange(n) + max(0, offset)
    lead = (slice(None),) * len(rest)
    return x[lead + (_const(i, x), _const(j, x))]


@method
def diag(self, diagonal: int = 0) -> Tensor:
    """A 1-d tensor's square matrix with it on the `diagonal`-th diagonal; a 2-d tensor's
    diagonal."""
    from lucid.functions import where

    if self.ndim == 2:
        return self.diagonal(diagonal)
    if self.ndim != 1:
        raise RuntimeError("diag(): Supports 1D or 2D tensors. Got " + f"{self.ndim}D")
    n = self.shape[0] + abs(diagonal)
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    on = (j - i == diagonal)
    # row i of a matrix with x on the diagonal reads x[min(i, j)] where it is on it
    src = np.clip(np.minimum(i, j), 0, self.shape[0] - 1) * np.ones((1, n), np.int64)
    values = self[_const(src.astype(np.int64), self)]
    return where(_const(on, self), values, Tensor._wrap(np.zeros((), self.dtype)))


# ----------------------------------------------------------------------------- new tensors


def _new_like(factory: str):
    """Tensor.new_<factory>(*size, dtype=None, device=None, requires_grad=False): lucid.<factory>
    with self's dtype and device unless given."""
    def fn(self, *size, dtype=None, device=None, requires_grad=False) -> Tensor:
        import lucid

        if len(size) == 1 and isinstance(size[0], (tuple, list)):
            size = tuple(size[0])
        return getattr(lucid, factory)(*size, dtype=dtype or self.dtype,
                                       device=device or self.device,
                                       requires_grad=requires_grad)
    fn.__name__ = f"new_{factory}"
    return fn


for _factory in ("zeros", "ones", "empty"):
    method(_new_like(_factory))


@method
def new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    import lucid

    return lucid.full(tuple(size), fill_value, dtype=dtype or self.dtype,
                      device=device or self.device, requires_grad=requires_grad)


@method
def new_tensor(self, data, dtype=None, device=None, requires_grad=False) -> Tensor:
    if isinstance(data, Tensor):
        data = data.detach().numpy()
    return Tensor(data, dtype=dtype or self.dtype, device=device or self.device,
                  requires_grad=requires_grad)


# ----------------------------------------------------------------------------- order statistics


def _order_break(what: str) -> None:
    tracer = CURRENT_TRACER.get()
    if tracer is not None:
        tracer.graph_break(f"{what} inside a compiled function (lucid sorts on the host: the "
                           "function runs eagerly)")


def _sort_indices(t: Tensor, dim: int, descending: bool, stable: bool) -> np.ndarray:
    arr = t.numpy()
    if descending:
        # a stable descending order: sort the reversed axis ascending by negated keys
        keys = -arr if arr.dtype.kind in "fi" else ~arr if arr.dtype == np.bool_ else -arr
        return np.argsort(keys, axis=dim, kind="stable")
    return np.argsort(arr, axis=dim, kind="stable" if stable else "quicksort")


@method
def sort(self, dim: int = -1, descending: bool = False, stable: bool = False):
    """(values, indices) along dim. The indices are found on the host (no gradient); the values
    are a gather of self by them, so gradients flow to the sorted elements."""
    from lucid.tensor import MinMax

    _order_break("sort")
    if self.ndim == 0:
        return MinMax(self, Tensor(np.zeros((), np.int64), device=self.device))
    d = _dim(self, dim, "sort")
    idx = Tensor(_sort_indices(self.detach(), d, descending, stable).astype(np.int64),
                 device=self.device)
    return MinMax(self.gather(d, idx), idx)


@method
def argsort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    return self.sort(dim, descending, stable).indices


@method
def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):  # noqa: A002
    """The k largest (or smallest) elements along dim and their indices, largest first."""
    from lucid.tensor import MinMax

    d = _dim(self, dim, "topk")
    n = self.shape[d] if self.ndim else 1
    if not 0 <= k <= n:
        raise RuntimeError(f"selected index k out of range (k={k}, size {n})")
    values, indices = self.sort(d, descending=largest, stable=True)
    key = (slice(None),) * d + (slice(0, k),)
    return MinMax(values[key], indices[key])


@method
def cumsum(self, dim: int, dtype=None) -> Tensor:
    """Running sums along dim, written as matrix products with a triangle of ones: blocks of
    64 summed by one product, the blocks' totals by the same method one level up (so the work
    grows as n log n, and the compiler sees matmuls)."""
    x = self.cast(dtypes.as_dtype(dtype)) if dtype is not None else self
    if not dtypes.is_floating(x.dtype):
        return _cumsum_last(x.cast(dtypes.float64).transpose(_dim(x, dim, "cumsum"), -1)) \
            .transpose(_dim(x, dim, "cumsum"), -1).cast(x.dtype if dtype is not None
                                                        else dtypes.int64)
    if x.ndim == 0:
        return x
    d = _dim(x, dim, "cumsum")
    return _cumsum_last(x.transpose(d, -1)).transpose(d, -1)


_BLOCK = 64


def _cumsum_last(x: Tensor) -> Tensor:
    n = x.shape[-1]
    if n <= _BLOCK:
        upper = Tensor(np.triu(np.ones((n, n), x.dtype)), device=x.device)
        return x.matmul(upper)
    m = -(-n // _BLOCK)
    lead = x.shape[:-1]
    padded = x if m * _BLOCK == n else _pad_last(x, m * _BLOCK - n)
    blocks = padded.reshape(*lead, m, _BLOCK)
    within = _cumsum_last(blocks)
    totals = within[..., -1]
    offsets = _cumsum_last(totals) - totals
    out = (within + offsets.unsqueeze(-1)).reshape(*lead, m * _BLOCK)
    return out[..., :n]


def _pad_last(x: Tensor, extra: int, value=0) -> Tensor:
    from lucid.functions import cat

    return cat([x, _const(np.full(x.shape[:-1] + (extra,), value, x.dtype), x)], -1)


@method
def cumprod(self, dim: int, *, dtype=None) -> Tensor:
    """Running products by doubling shifts (each element times the running product `shift`
    places back, for shift = 1, 2, 4, ...): exact to the dtype's rounding, and the gradient at an
    exact zero is right, as in `prod`."""
    from lucid.functions import cat

    x = _product_operand(self, dtype)
    if x.ndim == 0:
        return x
    d = _dim(x, dim, "cumprod")
    x = x.transpose(d, -1)
    n = x.shape[-1]
    shift = 1
    while shift < n:
        ones = _const(np.ones(x.shape[:-1] + (shift,), x.dtype), x)
        x = x * cat([ones, x[..., :n - shift]], -1)
        shift *= 2
    return x.transpose(d, -1)


@method
def multinomial(self, num_samples: int, replacement: bool = False, *, generator=None):
    from lucid.random import multinomial

    return multinomial(self, num_samples, replacement, generator=generator)


# ----------------------------------------------------------------------------- threads

_THREADS: list[int] = []


def set_num_threads(n: int) -> None:
    """The number of threads compiled code's parallel loops use (numba's; lucid's eager ops are
    NumPy's and follow its BLAS's own setting)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads expects a positive integer, got {n!r}")
    _THREADS[:] = [n]
    import sys

    if "numba" in sys.modules:  # (lucid_jit applies it when it loads numba otherwise)
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


def get_num_threads() -> int:
    import os
    import sys

    if "numba" in sys.modules:
        import numba

        return numba.get_num_threads()
    return _THREADS[0] if _THREADS else (os.cpu_count() or 1)


# ----------------------------------------------------------------------------- hooks


class RemovableHandle:
    """What register_hook returns: `remove()` unregisters the hook."""

    def __init__(self, hooks: list, hook) -> None:
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def _add_hook(table: dict, t, hook) -> RemovableHandle:
    import weakref

    key = id(t)
    if key not in table:
        table[key] = []
        weakref.finalize(t, table.pop, key, None)
    table[key].append(hook)
    return RemovableHandle(table[key], hook)


@method
def register_post_accumulate_grad_hook(self, hook) -> RemovableHandle:
    """Call hook(tensor) once backward has accumulated this leaf's gradient into `.grad`. In a
    compiled function the hook runs while tracing: its tensor ops become part of the graph."""
    from lucid.autograd import POST_ACCUMULATE

    if not self.requires_grad or self._ctx is not None:
        raise RuntimeError("post accumulate grad hooks can only be registered on leaf tensors "
                           "that require grad")
    return _add_hook(POST_ACCUMULATE, self, hook)


@method
def register_hook(self, hook) -> RemovableHandle:
    """Call hook(grad) each time backward computes this tensor's gradient; a tensor the hook
    returns replaces the gradient (for what flows on, and what a leaf accumulates). In a
    compiled function the hook runs while tracing: its tensor ops become part of the graph."""
    from lucid.autograd import HOOKS

    if not self.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    return _add_hook(HOOKS, self, hook)


@method
def retain_grad(self) -> None:
    """Keep this non-leaf tensor's gradient in `.grad` when backward computes it (accumulated
    over backward passes, as a leaf's is). A no-op on leaves, which keep theirs anyway."""
    import weakref

    if not self.requires_grad:
        raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
    if self._ctx is None or _RETAINS.get(id(self)) is not None:
        return
    ref = weakref.ref(self)

    def keep(g):
        t = ref()
        if t is not None:
            g = g.detach()
            t.grad = g if t.grad is None else t.grad + g
    _RETAINS[id(self)] = _add_hook(_hooks_table(), self, keep)
    weakref.finalize(self, _RETAINS.pop, id(self), None)


_RETAINS: dict[int, RemovableHandle] = {}


def _hooks_table() -> dict:
    from lucid.autograd import HOOKS

    return HOOKS


Tensor.retains_grad = property(lambda self: id(self) in _RETAINS or False)


@method
def detach_(self) -> Tensor:
    """Make this tensor a leaf that does not require grad (it leaves the graph it was made in)."""
    self._ctx = None
    self.requires_grad = False
    return self


class _GradFn:
    """What `Tensor.grad_fn` shows: the backward of the op that made the tensor."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx) -> None:
        self._ctx = ctx

    def name(self) -> str:
        op = getattr(self._ctx, "op", None)
        if op is None:
            return "Backward0"  # (its graph was freed by a backward)
        if op.name.endswith(".backward"):  # an autograd.Function's node
            return op.name[:-len(".backward")] + "Backward"
        if op.name == "autograd.Function output":
            return _GradFn(self._ctx.inputs[0]._ctx).name()
        return "".join(w.capitalize() for w in op.name.replace(".", "_").split("_")) + \
            "Backward0"

    @property
    def next_functions(self) -> tuple:
        inputs = getattr(self._ctx, "inputs", ())
        return tuple((_grad_fn_of(x) if x._ctx is not None else
                      ("AccumulateGrad" if x.requires_grad else None), 0) for x in inputs)

    def __repr__(self) -> str:
        return f"<{self.name()} object at {id(self):#x}>"


def _grad_fn_of(t) -> _GradFn | None:
    return None if t._ctx is None else _GradFn(t._ctx)


Tensor.grad_fn = property(_grad_fn_of)


# ----------------------------------------------------------------------------- more shapes


@method
def type_as(self, other: Tensor) -> Tensor:
    """self with other's dtype (and device)."""
    return self.to(other)


@method
def movedim(self, source, destination) -> Tensor:
    """Dimensions `source` moved to the positions `destination`, the others kept in order."""
    src = (source,) if isinstance(source, int) else tuple(source)
    dst = (destination,) if isinstance(destination, int) else tuple(destination)
    if len(src) != len(dst):
        raise RuntimeError(f"movedim: Invalid source or destination dims: source ({list(src)} "
                           f"dims) should contain the same number of dims as destination "
                           f"({list(dst)} dims)")
    src = tuple(_dim(self, d, "movedim") for d in src)
    dst = tuple(_dim(self, d, "movedim") for d in dst)
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise RuntimeError("movedim: repeated dim in source or destination")
    rest = iter(d for d in range(self.ndim) if d not in src)
    placed = dict(zip(dst, src, strict=True))
    return self.permute(*(placed[k] if k in placed else next(rest) for k in range(self.ndim)))


Tensor.moveaxis = Tensor.movedim
Tensor.swapaxes = Tensor.swapdims = Tensor.transpose


@method
def tile(self, dims) -> Tensor:
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    return self.repeat(*((1,) * (self.ndim - len(dims)) + dims))


@method
def fliplr(self) -> Tensor:
    if self.ndim < 2:
        raise RuntimeError("Input must be >= 2-d.")
    return self.flip(1)


@method
def flipud(self) -> Tensor:
    if self.ndim < 1:
        raise RuntimeError("Input must be >= 1-d.")
    return self.flip(0)


@method
def stride(self, dim: int | None = None):
    """Steps in elements between neighbours along each dimension (NumPy's strides for host
    arrays; row-major ones for a compiled or device value)."""
    data = self.data
    if isinstance(data, np.ndarray):
        steps = tuple(s // data.itemsize for s in data.strides)
    else:
        steps, step = [], 1
        for n in reversed(self.shape):
            steps.insert(0, step)
            step *= max(n, 1)
        steps = tuple(steps)
    return steps if dim is None else steps[_dim(self, dim, "stride")]


Tensor.itemsize = property(lambda self: self.dtype.itemsize)
Tensor.nbytes = property(lambda self: self.numel() * self.dtype.itemsize)


@method
def take(self, index) -> Tensor:
    """Elements of the flattened tensor at `index` (an integer tensor of any shape)."""
    return self.reshape(-1)[_index_tensor(index, "take")]


def _along(index: Tensor, dim: int, like_shape: tuple) -> Tensor:
    """A 1-d index for `dim`, broadcast to `like_shape` (as scatter and gather want it)."""
    shape = [1] * len(like_shape)
    shape[dim] = index.shape[0]
    return index.reshape(shape).broadcast_to(like_shape)


def _index_for(self, dim: int, index, what: str) -> tuple[int, Tensor]:
    d = _dim(self, dim, what)
    index = _index_tensor(index, what)
    if index.ndim > 1:
        raise IndexError(f"{what}(): Index is supposed to be a vector")
    return d, index.reshape(-1)


@method
def index_add(self, dim: int, index, source, *, alpha=1) -> Tensor:
    """self with source's slices added at `index` along `dim` (repeated indices add up)."""
    d, index = _index_for(self, dim, index, "index_add")
    source = source if alpha == 1 else source * alpha
    return self.scatter_add(d, _along(index, d, source.shape), source)


@method
def index_copy(self, dim: int, index, source) -> Tensor:
    d, index = _index_for(self, dim, index, "index_copy")
    return self.scatter(d, _along(index, d, source.shape), source)


@method
def index_fill(self, dim: int, index, value) -> Tensor:
    d, index = _index_for(self, dim, index, "index_fill")
    import lucid

    hit = (lucid.arange(self.shape[d], device=self.device).unsqueeze(-1) == index).any(-1)
    shape = [1] * self.ndim
    shape[d] = self.shape[d]
    return self.masked_fill(hit.reshape(shape).broadcast_to(self.shape), value)


@method
def diff(self, n: int = 1, dim: int = -1, prepend=None, append=None) -> Tensor:
    from lucid.functions import cat

    d = _dim(self, dim, "diff")
    parts = [t for t in (prepend, self, append) if t is not None]
    x = cat(parts, d) if len(parts) > 1 else self
    for _ in range(n):
        k = x.shape[d]
        hi = x.narrow(d, 1, max(k - 1, 0))
        lo = x.narrow(d, 0, max(k - 1, 0))
        x = hi.logical_xor(lo) if x.dtype == dtypes.bool_ else hi - lo
    return x


@method
def aminmax(self, *, dim=None, keepdim: bool = False):
    from collections import namedtuple

    pair = namedtuple("aminmax", ["min", "max"])
    return pair(self.amin(dim, keepdim) if dim is not None else self.min(),
                self.amax(dim, keepdim) if dim is not None else self.max())


def _no_low_precision(what: str):
    def fn(self, *args, **kwargs):
        raise TypeError(f"{what}: lucid computes in float32 and float64 only (no float16 or "
                        f"bfloat16 arithmetic); keep the tensor in float32 (lucid.autocast "
                        f"blocks run unchanged)")
    fn.__name__ = what.split(".")[-1].rstrip("()")
    return fn


@method
def pin_memory(self, device=None) -> Tensor:
    """self: host arrays need no pinning for lucid's transfers."""
    return self


@method
def is_pinned(self, device=None) -> bool:
    return False


Tensor.half = _no_low_precision("Tensor.half()")
Tensor.bfloat16 = _no_low_precision("Tensor.bfloat16()")


@method
def inverse(self) -> Tensor:
    from lucid import linalg

    return linalg.inv(self)


@method
def det(self) -> Tensor:
    from lucid import linalg

    return linalg.det(self)


@method
def logdet(self) -> Tensor:
    from lucid import linalg

    return linalg.logdet(self)


@method
def slogdet(self):
    from lucid import linalg

    return linalg.slogdet(self)


@method
def cholesky(self, upper: bool = False) -> Tensor:
    from lucid import linalg

    return linalg.cholesky(self, upper=upper)


@method
def matrix_power(self, n: int) -> Tensor:
    from lucid import linalg

    return linalg.matrix_power(self, n)


@method
def unfold(self, dimension: int, size: int, step: int) -> Tensor:
    """Every window of `size` elements along `dimension`, `step` apart, as a new last
    dimension (a gather: views in PyTorch, copies here)."""
    d = _dim(self, dimension, "unfold")
    n = self.shape[d] if self.ndim else 1
    if size > n or size < 0 or step <= 0:
        raise RuntimeError(f"maximum size for tensor at dimension {d} is {n} but size is {size}"
                           if size > n else f"unfold: size {size} and step {step} must be "
                           "positive")
    count = (n - size) // step + 1
    idx = np.arange(count)[:, None] * step + np.arange(size)[None, :]  # (count, size)
    x = self.movedim(d, -1)[..., _const(idx.astype(np.int64), self)]  # (..., count, size)
    return x.movedim(-2, d)


@method
def sum_to_size(self, *size) -> Tensor:
    """Sum over the dimensions `size` broadcasts along (self must be expandable from size)."""
    size = tuple(size[0]) if len(size) == 1 and not isinstance(size[0], int) else tuple(size)
    lead = self.ndim - len(size)
    if lead < 0 or builtins.any(s not in (1, t)
                                for s, t in zip(size, self.shape[lead:], strict=True)):
        raise RuntimeError(f"size {list(size)} is not expandable to size {list(self.shape)}")
    axes = tuple(range(lead)) + tuple(lead + k for k, s in enumerate(size)
                                      if s == 1 and self.shape[lead + k] != 1)
    return self.sum(axes).reshape(size) if axes else self.reshape(size)


@method
def rot90(self, k: int = 1, dims=(0, 1)) -> Tensor:
    a, b = (_dim(self, d, "rot90") for d in dims)
    k %= 4
    if k == 1:
        return self.flip(b).transpose(a, b)
    if k == 2:
        return self.flip((a, b))
    if k == 3:
        return self.transpose(a, b).flip(b)
    return self


Tensor.H = Tensor.mH = property(lambda self: self.mT if self.ndim >= 2 else self)


@method
def fmax(self, other) -> Tensor:
    """The maximum, ignoring a nan where the other operand is a number."""
    from lucid.functions import maximum, where

    other = _lift(self, other)
    return where(self != self, other, where(other != other, self, maximum(self, other)))


@method
def fmin(self, other) -> Tensor:
    from lucid.functions import minimum, where

    other = _lift(self, other)
    return where(self != self, other, where(other != other, self, minimum(self, other)))


@method
def sinc(self) -> Tensor:
    """sin(pi x) / (pi x), 1 at 0."""
    from lucid.functions import where

    x = self._float_operand()
    zero = x == 0
    px = where(zero, 1.0, x) * math.pi
    return where(zero, 1.0, px.sin() / px)


@method
def heaviside(self, values) -> Tensor:
    from lucid.functions import where

    values = _lift(self, values)
    return where(self == 0, values, (self > 0).cast(self.dtype))


@method
def float_power(self, exponent) -> Tensor:
    base = self.cast(dtypes.float64)
    return base.pow(exponent.cast(dtypes.float64) if isinstance(exponent, Tensor) else exponent)


@method
def logcumsumexp(self, dim: int) -> Tensor:
    """log(cumsum(exp(x))) along dim, shifted by the maximum (held constant) so that it does
    not overflow."""
    from lucid.functions import where

    d = _dim(self, dim, "logcumsumexp")
    top = self.amax(d, keepdim=True).detach()
    shift = where(top.isinf(), 0.0, top)
    return (self - shift).exp().cumsum(d).log() + shift


@method
def kthvalue(self, k: int, dim: int = -1, keepdim: bool = False):
    """The k-th smallest element along dim (1-based) and its index."""
    from lucid.tensor import MinMax

    d = _dim(self, dim, "kthvalue")
    n = self.shape[d] if self.ndim else 1
    if not 1 <= k <= n:
        raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {d}")
    values, indices = self.sort(d, stable=True)
    values, indices = values.narrow(d, k - 1, 1), indices.narrow(d, k - 1, 1)
    return MinMax(values, indices) if keepdim else MinMax(values.squeeze(d), indices.squeeze(d))


@method
def quantile(self, q, dim=None, keepdim: bool = False, *, interpolation: str = "linear"):
    """The q-th quantiles (q in [0, 1], a number or a 1-d tensor) along dim (of all elements if
    None), interpolating between order statistics as NumPy's methods of the same names."""
    if interpolation not in ("linear", "lower", "higher", "midpoint", "nearest"):
        raise ValueError(f"quantile() interpolation must be one of linear, lower, higher, "
                         f"midpoint or nearest. Got {interpolation}")
    qs = np.atleast_1d(np.asarray(q.tolist() if isinstance(q, Tensor) else q, np.float64))
    if np.any((qs < 0) | (qs > 1)):
        raise RuntimeError("quantile() q values must be in the range [0, 1]")
    x = self.reshape(-1) if dim is None else self
    d = 0 if dim is None else _dim(self, dim, "quantile")
    ordered = x.sort(d).values
    n = ordered.shape[d]
    pos = qs * (n - 1)
    lo, hi = np.floor(pos).astype(np.int64), np.ceil(pos).astype(np.int64)
    if interpolation == "lower":
        hi = lo
    elif interpolation == "higher":
        lo = hi
    elif interpolation == "nearest":
        lo = hi = np.round(pos).astype(np.int64)  # (ties to even, as NumPy's and PyTorch's)
    frac = np.where(hi > lo, pos - lo, 0.0) if interpolation != "midpoint" else \
        np.where(hi > lo, 0.5, 0.0)
    a = ordered.index_select(d, _const(lo, x))
    b = ordered.index_select(d, _const(hi, x))
    shape = [1] * ordered.ndim
    shape[d] = len(qs)
    out = a + (b - a) * _const(frac.astype(ordered.dtype).reshape(shape), x)
    out = out.movedim(d, 0)  # the quantiles first, as PyTorch's
    if keepdim:
        out = out.unsqueeze(d + 1) if dim is not None else out.reshape(
            (len(qs),) + (1,) * self.ndim)
    scalar_q = not isinstance(q, Tensor) and np.ndim(q) == 0 or \
        isinstance(q, Tensor) and q.ndim == 0
    return out[0] if scalar_q else out


@method
def nanquantile(self, q, dim=None, keepdim: bool = False, *, interpolation: str = "linear"):
    if bool((self != self).any().item()):
        raise NotImplementedError("nanquantile with nan values: lucid has quantile (which "
                                  "gives nan where a nan is present)")
    return self.quantile(q, dim, keepdim, interpolation=interpolation)


# ----------------------------------------------------------------------------- more math


@method
def addcmul(self, tensor1, tensor2, *, value=1) -> Tensor:
    return self + value * tensor1 * tensor2


@method
def addcdiv(self, tensor1, tensor2, *, value=1) -> Tensor:
    return self + value * tensor1 / tensor2


@method
def addcmul_(self, tensor1, tensor2, *, value=1) -> Tensor:
    return self._inplace(lambda x: x.addcmul(tensor1, tensor2, value=value))


@method
def addcdiv_(self, tensor1, tensor2, *, value=1) -> Tensor:
    return self._inplace(lambda x: x.addcdiv(tensor1, tensor2, value=value))


@method
def true_divide(self, other) -> Tensor:
    return self / other


@method
def div(self, other, *, rounding_mode: str | None = None) -> Tensor:
    """self / other; rounding_mode "floor" rounds the quotient down (as `//`), "trunc" toward
    zero, keeping integer dtypes integer."""
    if rounding_mode is None:
        return self / other
    if rounding_mode == "floor":
        return self.floor_divide(other)
    if rounding_mode == "trunc":
        other = _lift(self, other)
        dtype = dtypes.promote(self.dtype, other.dtype)
        if dtypes.is_floating(dtype):
            return (self.cast(dtype) / other.cast(dtype)).trunc()
        return (self.cast(dtype) - self.cast(dtype).fmod(other)).floor_divide(other)
    raise RuntimeError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but "
                       f"found '{rounding_mode}'")


Tensor.divide = Tensor.div


Tensor.not_equal, Tensor.greater, Tensor.greater_equal = Tensor.ne, Tensor.gt, Tensor.ge
Tensor.less, Tensor.less_equal, Tensor.multiply, Tensor.subtract = (
    Tensor.lt, Tensor.le, Tensor.mul, Tensor.sub)


@method
def sgn(self) -> Tensor:
    return self.sign()


@method
def positive(self) -> Tensor:
    return self


@method
def deg2rad(self) -> Tensor:
    return self._float_operand() * (math.pi / 180.0)


@method
def rad2deg(self) -> Tensor:
    return self._float_operand() * (180.0 / math.pi)


@method
def signbit(self) -> Tensor:
    """True where the sign bit is set: negative numbers and -0.0 (and a nan with its sign)."""
    if not dtypes.is_floating(self.dtype):
        return self < 0
    return (self < 0).logical_or((self == 0).logical_and(self.reciprocal() < 0))


@method
def logit(self, eps: float | None = None) -> Tensor:
    x = self._float_operand()
    if eps is not None:
        x = x.clamp(eps, 1.0 - eps)
    return (x / (1.0 - x)).log()


@method
def hypot(self, other) -> Tensor:
    """sqrt(a^2 + b^2), scaled by the larger magnitude so that it neither overflows nor
    underflows (the scale drops out of the gradient exactly)."""
    from lucid.functions import maximum, where

    a = self._float_operand()
    b = _lift(a, other)._float_operand()
    m = maximum(a.abs(), b.abs())
    zero = m == 0
    safe = where(zero, 1.0, m)
    r = safe * ((a / safe).square() + (b / safe).square()).sqrt()
    return where(zero, 0.0, r)


@method
def logaddexp(self, other) -> Tensor:
    """log(exp(a) + exp(b)), shifted by the larger (held constant, so the gradient is the
    softmax weights, half each at a tie); -inf and -inf give -inf."""
    from lucid.functions import maximum, where

    a = self._float_operand()
    b = _lift(a, other)._float_operand()
    m = maximum(a, b).detach()
    shift = where(m.isinf(), 0.0, m)
    return shift + ((a - shift).exp() + (b - shift).exp()).log()


@method
def xlogy(self, other) -> Tensor:
    """x log y, 0 where x is 0 (whatever y is, nan aside)."""
    from lucid.functions import where

    x = self._float_operand()
    y = _lift(x, other)._float_operand()
    zero = (x == 0).logical_and(y == y)
    return where(zero, 0.0, x * where(zero, 1.0, y).log())


@method
def nan_to_num(self, nan: float = 0.0, posinf: float | None = None,
               neginf: float | None = None) -> Tensor:
    if not dtypes.is_floating(self.dtype):
        return self
    from lucid.functions import where

    info = np.finfo(self.dtype)
    hi = float(info.max) if posinf is None else posinf
    lo = float(info.min) if neginf is None else neginf
    return where(self != self, nan, where(self == math.inf, hi,
                                          where(self == -math.inf, lo, self)))


@method
def nansum(self, dim=None, keepdim: bool = False) -> Tensor:
    from lucid.functions import where

    return where(self != self, 0.0, self).sum(dim, keepdim)


@method
def nanmean(self, dim=None, keepdim: bool = False) -> Tensor:
    count = (self == self).cast(self.dtype).sum(dim, keepdim)
    return self.nansum(dim, keepdim) / count


@method
def exponential(self, lambd: float = 1.0) -> Tensor:
    """Draws from the exponential distribution of rate `lambd`, of self's shape and dtype
    (`exponential_` writes them into self)."""
    import lucid

    u = lucid.rand(self.shape, dtype=self.dtype, device=self.device)
    return -(1.0 - u).log() / lambd


@method
def tensordot(self, other, dims=2) -> Tensor:
    """Contract self's last `dims` dimensions with other's first ones (or the listed pairs)."""
    if isinstance(dims, int):
        a_axes = list(range(self.ndim - dims, self.ndim))
        b_axes = list(range(dims))
    else:
        a_axes, b_axes = ([d] if isinstance(d, int) else list(d) for d in dims)
    a_axes = [_dim(self, d, "tensordot") for d in a_axes]
    b_axes = [_dim(other, d, "tensordot") for d in b_axes]
    if [self.shape[d] for d in a_axes] != [other.shape[d] for d in b_axes]:
        raise RuntimeError(f"contracted dimensions need to match, but first has size "
                           f"{[self.shape[d] for d in a_axes]} and second has size "
                           f"{[other.shape[d] for d in b_axes]}")
    a_free = [d for d in range(self.ndim) if d not in a_axes]
    b_free = [d for d in range(other.ndim) if d not in b_axes]
    k = math.prod(self.shape[d] for d in a_axes)
    a = self.permute(*a_free, *a_axes).reshape(-1, k)
    b = other.permute(*b_axes, *b_free).reshape(k, -1)
    return (a @ b).reshape(*(self.shape[d] for d in a_free), *(other.shape[d] for d in b_free))


@method
def kron(self, other) -> Tensor:
    """The Kronecker product: every element of self times all of other, blocks laid out as
    self's elements are."""
    n = max(self.ndim, other.ndim)
    a = self.reshape((1,) * (n - self.ndim) + self.shape)
    b = other.reshape((1,) * (n - other.ndim) + other.shape)
    inter_a = [s for d in a.shape for s in (d, 1)]
    inter_b = [s for d in b.shape for s in (1, d)]
    out = a.reshape(inter_a) * b.reshape(inter_b)
    return out.reshape(*(x * y for x, y in zip(a.shape, b.shape, strict=True)))


@method
def cross(self, other, dim: int | None = None) -> Tensor:
    """The cross product along `dim` (of size 3; by default the first such dimension)."""
    from lucid.functions import stack

    a, b = broadcast_tensors(self, _lift(self, other))
    if dim is None:
        dim = next((k for k, n in enumerate(a.shape) if n == 3), None)
        if dim is None:
            raise RuntimeError("no dimension of size 3 in input")
    d = _dim(a, dim, "cross")
    if a.shape[d] != 3:
        raise RuntimeError(f"linalg.cross: inputs dimension {dim} must have length 3. Got "
                           f"{a.shape[d]} and {b.shape[d]}")
    a0, a1, a2 = a.unbind(d)
    b0, b1, b2 = b.unbind(d)
    return stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], d)


for _name in ("index_add", "index_copy", "index_fill", "exponential", "nan_to_num", "logit",
              "hypot", "logaddexp", "xlogy", "deg2rad", "rad2deg", "sgn", "true_divide"):
    setattr(Tensor, _name + "_", _unary_inplace(_name))


# ----------------------------------------------------------------------------- lucid functions


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing `array`'s memory (writes to one show in the other)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {array.__class__.__name__})")
    if CURRENT_TRACER.get() is not None:
        return Tensor(array)
    return Tensor._share(array)


class Size(tuple):
    """A shape (PyTorch's torch.Size): a tuple of ints."""

    def numel(self) -> int:
        return math.prod(self)

    def __repr__(self) -> str:
        return f"lucid.Size({list(self)})"


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def numel(t: Tensor) -> int:
    return t.numel()


def isclose(a, b, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> Tensor:
    from lucid.functions import _as_tensor, where

    a = _as_tensor(a)
    b = _as_tensor(b, a)
    close = (a - b).abs() <= atol + rtol * b.abs()
    close = where(a == b, True, close)  # (equal infinities)
    if equal_nan:
        close = where(a.isnan().logical_and(b.isnan()), True, close)
    return close


def allclose(a, b, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    return bool(isclose(a, b, rtol, atol, equal_nan).all())


def equal(a: Tensor, b: Tensor) -> bool:
    """Same shape and the same elements."""
    return a.shape == b.shape and bool((a == b).all())


def dist(a: Tensor, b: Tensor, p: float = 2.0) -> Tensor:
    """The p-norm of a - b."""
    return (a - b).norm(p)


def cdist(x1: Tensor, x2: Tensor, p: float = 2.0) -> Tensor:
    """Pairwise p-norm distances between the rows of x1 (..., P, M) and x2 (..., R, M)."""
    diff = x1.unsqueeze(-2) - x2.unsqueeze(-3)
    return diff.norm(p, -1)


def trace(t: Tensor) -> Tensor:
    if t.ndim != 2:
        raise RuntimeError("trace: expected a matrix")
    return t.diagonal().sum()


def empty_like(t: Tensor, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    import lucid

    return lucid.empty(*t.shape, dtype=dtype or t.dtype, device=device or t.device,
                       requires_grad=requires_grad)


def randint_like(t: Tensor, low: int = 0, high: int | None = None, *, dtype=None,
                 device=None) -> Tensor:
    import lucid

    return lucid.randint(low, high, t.shape, dtype=dtype or t.dtype, device=device or t.device)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None) -> Tensor:
    """Normal draws: scalar mean and std with `size`, or tensors (broadcast) giving each
    element's."""
    import lucid

    if size is not None:
        return lucid.randn(*size, dtype=dtype, device=device or "cpu") * std + mean
    ref = mean if isinstance(mean, Tensor) else std
    shape = np.broadcast_shapes(getattr(mean, "shape", ()), getattr(std, "shape", ()))
    return lucid.randn(*shape, dtype=dtype or ref.dtype, device=ref.device) * std + mean


def bernoulli(input: Tensor, p=None, *, generator=None) -> Tensor:  # noqa: A002
    """1 with probability input (or p), else 0, in input's dtype."""
    import lucid

    probs = input if p is None else lucid.full_like(input, p)
    u = lucid.rand(*input.shape, dtype=dtypes.float64 if input.dtype == dtypes.float64
                   else dtypes.float32, device=input.device)
    return (u < probs).cast(input.dtype)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """`data` as a tensor, sharing a NumPy array's memory where dtype and device allow."""
    if isinstance(data, Tensor):
        return data.to(dtype=dtype, device=device) if dtype or device else data
    if isinstance(data, np.ndarray) and (dtype is None or np.dtype(dtype) == data.dtype) and \
            device in (None, "cpu") and CURRENT_TRACER.get() is None:
        return Tensor._share(data)
    return Tensor(data, dtype=dtype, device=device or "cpu")


def hstack(tensors) -> Tensor:
    from lucid.functions import cat

    tensors = list(tensors)
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors) -> Tensor:
    from lucid.functions import cat

    return cat([t.reshape(1, -1) if t.ndim < 2 else t for t in tensors], 0)


def meshgrid(*tensors, indexing: str = "ij") -> tuple[Tensor, ...]:
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', not {indexing!r}")
    shape = tuple(t.shape[0] for t in tensors)
    if indexing == "xy" and len(tensors) >= 2:
        shape = (shape[1], shape[0]) + shape[2:]
    out = []
    for k, t in enumerate(tensors):
        axis = k
        if indexing == "xy" and k < 2:
            axis = 1 - k
        view = [1] * len(shape)
        view[axis] = t.shape[0]
        out.append(t.reshape(view).broadcast_to(shape))
    return tuple(out)


def block_diag(*tensors) -> Tensor:
    """The matrices (0-, 1- or 2-d tensors) along the diagonal of one block matrix."""
    from lucid.functions import cat
    from lucid.nn.functional import pad

    mats = [t.reshape(1, -1) if t.ndim < 2 else t for t in tensors]
    if not mats:
        return Tensor(np.zeros((1, 0), dtypes.DEFAULT_FLOAT))
    if builtins.any(m.ndim != 2 for m in mats):
        raise RuntimeError("torch.block_diag: Input tensors must have 2 or fewer dimensions")
    width = builtins.sum(m.shape[1] for m in mats)
    rows, left = [], 0
    for m in mats:
        rows.append(pad(m, (left, width - left - m.shape[1])))
        left += m.shape[1]
    return cat(rows, 0)


def broadcast_shapes(*shapes) -> tuple[int, ...]:
    """The shape the given shapes broadcast to (a RuntimeError if they do not)."""
    try:
        return tuple(np.broadcast_shapes(*((s,) if isinstance(s, int) else tuple(s)
                                           for s in shapes)))
    except ValueError as exc:
        raise RuntimeError(f"Shape mismatch: objects cannot be broadcast to a single shape: "
                           f"{', '.join(str(tuple(s)) for s in shapes)}") from exc


def broadcast_tensors(*tensors) -> tuple[Tensor, ...]:
    shape = np.broadcast_shapes(*(t.shape for t in tensors))
    return tuple(t.broadcast_to(shape) for t in tensors)


def get_default_dtype():
    return dtypes.DEFAULT_FLOAT


def set_default_dtype(dtype) -> None:
    """Make float32 or float64 the dtype of float data, Python floats, the factories and new
    layers' parameters. A compiled function traces again under a new default."""
    dtypes.set_default_float(dtype)


_DETERMINISTIC = [False, False]
_MATMUL_PRECISION = ["highest"]


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Recorded for PyTorch scripts: lucid's kernels give the same results run to run already
    (fixed reduction orders and a counter-based generator)."""
    _DETERMINISTIC[:] = [bool(mode), bool(warn_only)]


def are_deterministic_algorithms_enabled() -> bool:
    return _DETERMINISTIC[0]


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    return _DETERMINISTIC[1]


def set_float32_matmul_precision(precision: str) -> None:
    """Recorded for PyTorch scripts: lucid's float32 matmuls are always full float32."""
    if precision not in ("highest", "high", "medium"):
        raise RuntimeError(f"Invalid precision {precision!r}: expected 'highest', 'high' or "
                           "'medium'")
    _MATMUL_PRECISION[0] = precision


def get_float32_matmul_precision() -> str:
    return _MATMUL_PRECISION[0]


def finfo(dtype=None):
    """NumPy's float info (eps, max, min, tiny, resolution) for a floating dtype."""
    return np.finfo(dtypes.as_dtype(dtype or dtypes.DEFAULT_FLOAT))


def iinfo(dtype):
    return np.iinfo(dtypes.as_dtype(dtype))


FUNCTIONS = ("tril", "triu", "mm", "bmm", "outer", "dot", "logsumexp", "softmax", "log_softmax",
             "norm", "split", "chunk", "masked_fill", "gather", "index_select", "flip", "roll",
             "isnan", "isinf", "isfinite", "logical_not", "logical_and", "logical_or",
             "logical_xor", "square", "rsqrt", "lerp", "addmm", "baddbmm", "diag", "diagonal",
             "narrow", "std_mean", "var_mean", "any", "all", "eq", "ne", "lt", "le", "gt", "ge",
             "unflatten", "repeat_interleave", "floor", "ceil", "trunc", "frac",
             "floor_divide", "remainder", "fmod", "sort", "argsort", "topk", "cumsum",
             "cumprod", "multinomial", "scatter", "scatter_add", "round", "clip",
             "clamp_min", "clamp_max", "log2", "log10", "exp2", "expm1", "sinh", "cosh", "tan",
             "atan2", "atan", "asin", "acos", "asinh", "acosh", "atanh", "arctan2", "arctan",
             "arcsin", "arccos", "arcsinh", "arccosh", "arctanh",
             "select", "unbind", "count_nonzero", "prod", "isin", "nonzero", "masked_select",
             "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not",
             "movedim", "moveaxis", "swapaxes", "swapdims", "tile", "fliplr", "flipud", "take",
             "index_add", "index_copy", "index_fill", "diff", "aminmax", "addcmul", "addcdiv",
             "true_divide", "not_equal", "greater", "greater_equal", "less", "less_equal",
             "multiply", "subtract", "divide", "div", "sgn", "positive", "deg2rad", "rad2deg",
             "signbit", "logit", "hypot", "logaddexp", "xlogy", "nan_to_num", "nansum",
             "nanmean", "tensordot", "kron", "cross", "inverse", "det", "logdet", "slogdet",
             "cholesky", "matrix_power", "sum_to_size", "rot90", "fmax", "fmin", "sinc",
             "heaviside", "float_power", "logcumsumexp", "kthvalue", "quantile", "nanquantile",
             "unique", "bincount", "median")
