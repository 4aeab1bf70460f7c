"""The OpInfo table: one entry per primitive in `lucid.ops.REGISTRY` and per composite function.

Each entry holds the callable under test, an independent NumPy reference, how to make sample inputs
(shapes, domains, attrs), tolerances, and which arguments are differentiable. `tests/test_ops.py`
drives every check from this table; later suites (compiled vs eager, CUDA simulator) reuse it.

Sample arguments are NumPy arrays (the tests wrap them as tensors); attrs are keyword arguments
passed both to the callable and to the reference.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special

import lucid
from lucid import ops
from lucid.ops import Slice, Slot


@dataclass(frozen=True)
class Sample:
    """One call: positional arrays and keyword attrs."""

    args: tuple
    attrs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class S:
    """A sample spec: the shapes of the positional arguments and the attrs."""

    shapes: tuple
    attrs: dict

    def __init__(self, *shapes, **attrs):
        object.__setattr__(self, "shapes", shapes)
        object.__setattr__(self, "attrs", attrs)


@dataclass(frozen=True)
class OpInfo:
    """How to test one op. `op` is the primitive (None for a composite function)."""

    name: str
    fn: Callable[..., Any]
    ref: Callable[..., Any] | None
    specs: tuple = ()
    sample_fn: Callable[[np.random.Generator, np.dtype], list] | None = None
    domain: tuple[float, float] = (-2.0, 2.0)
    # Sample |x| from domain with a random sign: keeps abs/relu/sign away from their kink at 0.
    signed: bool = False
    op: ops.Op | None = None
    differentiable: bool = True
    grad_args: tuple[int, ...] | None = None  # None: every floating argument
    rtol: float = 1e-5
    atol: float = 1e-6
    fd_rtol: float = 1e-5
    # Floating outputs have the samples' float dtype; False: the dtype NumPy's reference gives
    # for the samples' own dtypes (cast).
    keeps_float_dtype: bool = True
    # For random ops: check(out_array, attrs) instead of a reference.
    check: Callable[[np.ndarray, dict], None] | None = None

    def samples(self, rng: np.random.Generator, dtype) -> list[Sample]:
        dtype = np.dtype(dtype)
        if self.sample_fn is not None:
            # NumPy turns 0-d results into scalars; the tests want arrays.
            return [Sample(tuple(np.asarray(a) if isinstance(a, np.generic) else a
                                 for a in s.args), s.attrs) for s in self.sample_fn(rng, dtype)]
        out = []
        for spec in self.specs:
            args = tuple(_uniform(rng, shape, self.domain, dtype, self.signed)
                         for shape in spec.shapes)
            out.append(Sample(args, dict(spec.attrs)))
        return out

    def grad_indices(self, sample: Sample) -> tuple[int, ...]:
        if not self.differentiable:
            return ()
        if self.grad_args is not None:
            return self.grad_args
        return tuple(i for i, a in enumerate(sample.args)
                     if isinstance(a, np.ndarray) and a.dtype.kind == "f")


def _uniform(rng, shape, domain, dtype, signed=False) -> np.ndarray:
    x = rng.uniform(*domain, size=shape)
    if signed:
        x = x * rng.choice([-1.0, 1.0], size=shape)
    return np.asarray(x, dtype=dtype)


def _distinct(rng, shape, dtype) -> np.ndarray:
    """Values at least 0.05 apart (max and argmax have no ties, and FD steps never cross)."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.05 - n * 0.025).reshape(shape).astype(dtype)


# --------------------------------------------------------------------------------- references

_erf = special.erf


def _ref_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _ref_sum(x, axes=None, keepdims=False):
    return np.sum(x, axis=axes, keepdims=keepdims)


def _ref_max(x, axes=None, keepdims=False):
    return np.amax(x, axis=axes, keepdims=keepdims)


def _ref_scatter_add(g, *arrays, index, shape):
    out = np.zeros(shape, g.dtype)
    real = tuple(arrays[i.k] if isinstance(i, Slot) else
                 slice(*i) if isinstance(i, Slice) else i for i in index)
    np.add.at(out, real, g)
    return out


def _ref_getitem(x, *arrays, index):
    real = tuple(arrays[i.k] if isinstance(i, Slot) else
                 slice(*i) if isinstance(i, Slice) else i for i in index)
    return x[real]


def _ref_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _ref_log_softmax(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def _out_len(size, k, s, p, d, ceil_mode=False):
    span = size + 2 * p - d * (k - 1) - 1
    if not ceil_mode:
        return span // s + 1
    n = -(-span // s) + 1
    return n - 1 if (n - 1) * s >= size + p else n  # the last window must start inside


def _patches(x, kernel, stride, padding, dilation, pad_value=0.0, ceil_mode=False):
    """(N, C, kh, kw, OH, OW): patch[n, c, i, j, y, x] = xpad[n, c, y*sh + i*dh, x*sw + j*dw],
    built by explicit loops over output positions (independent of lucid's strided view)."""
    n, c, h, w = x.shape
    kh, kw = kernel
    oh = _out_len(h, kh, stride[0], padding[0], dilation[0], ceil_mode)
    ow = _out_len(w, kw, stride[1], padding[1], dilation[1], ceil_mode)
    big = np.full((n, c, h + 2 * padding[0] + kh * dilation[0] + stride[0] * oh,
                   w + 2 * padding[1] + kw * dilation[1] + stride[1] * ow), pad_value, x.dtype)
    big[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + w] = x
    out = np.zeros((n, c, kh, kw, oh, ow), x.dtype)
    for y in range(oh):
        for xx in range(ow):
            for i in range(kh):
                for j in range(kw):
                    out[:, :, i, j, y, xx] = big[:, :, y * stride[0] + i * dilation[0],
                                                 xx * stride[1] + j * dilation[1]]
    return out


def _ref_unfold(x, kernel, stride, padding, dilation, layout="nkl"):
    """im2col in PyTorch's layout: (N, C*kh*kw, L), C slowest, then kh, then kw; "knl" swaps
    the first two axes."""
    p = _patches(x, kernel, stride, padding, dilation)
    n, c, kh, kw, oh, ow = p.shape
    out = p.reshape(n, c * kh * kw, oh * ow)
    return np.ascontiguousarray(out.transpose(1, 0, 2)) if layout == "knl" else out


def _ref_fold(cols, output_size, kernel, stride, padding, dilation, layout="nkl"):
    """col2im: the adjoint of unfold, by scattering each column entry back where it came from."""
    if layout == "knl":
        cols = cols.transpose(1, 0, 2)
    n = cols.shape[0]
    kh, kw = kernel
    c = cols.shape[1] // (kh * kw)
    h, w = output_size
    oh = _out_len(h, kh, stride[0], padding[0], dilation[0])
    ow = _out_len(w, kw, stride[1], padding[1], dilation[1])
    cols = cols.reshape(n, c, kh, kw, oh, ow)
    out = np.zeros((n, c, h + 2 * padding[0], w + 2 * padding[1]), cols.dtype)
    for y in range(oh):
        for xx in range(ow):
            for i in range(kh):
                for j in range(kw):
                    out[:, :, y * stride[0] + i * dilation[0],
                        xx * stride[1] + j * dilation[1]] += cols[:, :, i, j, y, xx]
    return out[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + w]


def _ref_conv2d(x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    """Grouped cross-correlation with einsum over explicit patches."""
    f, cg, kh, kw = w.shape
    p = _patches(x, (kh, kw), stride, padding, dilation)  # (N, C, kh, kw, OH, OW)
    n, c = p.shape[:2]
    p = p.reshape(n, groups, cg, kh, kw, *p.shape[4:])
    wg = w.reshape(groups, f // groups, cg, kh, kw)
    out = np.einsum("ngcijyx,gocij->ngoyx", p, wg)
    return out.reshape(n, f, *out.shape[3:])


def _ref_max_pool2d(x, kernel, stride, padding, dilation, ceil_mode=False):
    p = _patches(x, kernel, stride, padding, dilation, -np.inf, ceil_mode)
    return p.max(axis=(2, 3))


def _ref_avg_pool2d(x, kernel_size, stride=None, padding=0):
    k = (kernel_size,) * 2 if isinstance(kernel_size, int) else tuple(kernel_size)
    s = k if stride is None else (stride,) * 2 if isinstance(stride, int) else tuple(stride)
    pd = (padding,) * 2 if isinstance(padding, int) else tuple(padding)
    return _patches(x, k, s, pd, (1, 1)).mean(axis=(2, 3))  # padding counts (count_include_pad)


def _ref_layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    mu = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    y = (x - mu) / np.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


# --------------------------------------------------------------------------------- samplers


def _where_samples(rng, dtype):
    for shape in ((3, 4), ()):
        c = rng.uniform(size=shape) > 0.5
        yield Sample((c, _uniform(rng, shape, (-2, 2), dtype),
                      _uniform(rng, shape, (-2, 2), dtype)))


def _compare_samples(rng, dtype):
    x = _uniform(rng, (3, 4), (-2, 2), dtype)
    y = x.copy()
    y[0] += 1  # some equal, some not
    y[1] -= 1
    yield Sample((x, y))
    yield Sample((np.asarray(1.5, dtype), np.asarray(1.5, dtype)))


def _binary_distinct(rng, dtype):
    # maximum/minimum: operands at least 0.1 apart, so no ties and no FD step crosses over.
    for shape in ((3, 4), ()):
        x = _uniform(rng, shape, (-2, 2), dtype)
        d = _uniform(rng, shape, (0.1, 1.0), dtype, signed=True)
        yield Sample((x, (x + d).astype(dtype)))


def _pow_samples(rng, dtype):
    yield Sample((_uniform(rng, (3, 4), (0.5, 2.0), dtype), _uniform(rng, (3, 4), (-1.5, 2.5),
                                                                      dtype)))
    yield Sample((np.asarray(1.7, dtype), np.asarray(0.3, dtype)))


def _cast_samples(rng, dtype):
    x = _uniform(rng, (3, 4), (-3, 3), dtype)
    yield Sample((x,), {"dtype": lucid.float64})  # widening is exact, so FD stays exact
    yield Sample((_uniform(rng, (), (-3, 3), dtype),), {"dtype": lucid.float64})


def _cast_int_samples(rng, dtype):
    yield Sample((_uniform(rng, (3, 4), (-3, 3), dtype),), {"dtype": lucid.int64})
    yield Sample((rng.integers(-3, 3, (5,)),), {"dtype": dtype})
    yield Sample((rng.integers(0, 2, (5,)).astype(bool),), {"dtype": dtype})


def _reduce_samples(attrs_list, shape=(3, 4, 5)):
    def gen(rng, dtype):
        for attrs in attrs_list:
            yield Sample((_distinct(rng, shape, dtype),), dict(attrs))
        yield Sample((np.asarray(0.7, dtype),), {"axes": None, "keepdims": False})
        yield Sample((np.asarray(0.7, dtype),), {"axes": (), "keepdims": True})
    return gen


_REDUCE_ATTRS = ({"axes": None, "keepdims": False}, {"axes": (1,), "keepdims": False},
                 {"axes": (0, 2), "keepdims": True}, {"axes": (2,), "keepdims": True})


def _argmax_samples(rng, dtype):
    x = _distinct(rng, (3, 4, 5), dtype)
    yield Sample((x,), {"axis": None, "keepdims": False})
    yield Sample((x,), {"axis": 1, "keepdims": False})
    yield Sample((x,), {"axis": 2, "keepdims": True})
    yield Sample((np.asarray(0.5, dtype),), {"axis": None, "keepdims": False})


def _getitem_samples(rng, dtype):
    x = _uniform(rng, (4, 5, 6), (-2, 2), dtype)
    yield Sample((x,), {"index": (Slice(1, None, 2), 2, None)})
    yield Sample((x,), {"index": (Ellipsis, Slice(None, None, -1))})
    yield Sample((_uniform(rng, (), (-2, 2), dtype),), {"index": (None,)})
    idx = np.array([3, 0, 3, 1])  # repeated: the vjp must accumulate
    yield Sample((x, idx), {"index": (Slot(0), Slice(1, 4, None))})
    yield Sample((x, idx, np.array([[0], [4]])), {"index": (Slice(None, None, None), Slot(1),
                                                            Slot(0))})


def _scatter_add_samples(rng, dtype):
    idx = np.array([3, 0, 3, 1])
    yield Sample((_uniform(rng, (4, 3, 6), (-2, 2), dtype), idx),
                 {"index": (Slot(0), Slice(1, 4, None)), "shape": (4, 5, 6)})
    yield Sample((_uniform(rng, (2, 6), (-2, 2), dtype),),
                 {"index": (Slice(1, None, 2), 2), "shape": (4, 5, 6)})


def _concat_samples(rng, dtype):
    u = lambda *s: _uniform(rng, s, (-2, 2), dtype)
    yield Sample((u(2, 3), u(4, 3)), {"axis": 0})
    yield Sample((u(2, 3), u(2, 1), u(2, 2)), {"axis": 1})
    yield Sample((u(5),), {"axis": 0})


def _creation_samples(name):
    def gen(rng, dtype):
        if name == "full":
            yield Sample((), {"shape": (3, 4), "value": 1.5, "dtype": dtype})
            yield Sample((), {"shape": (), "value": -2.0, "dtype": dtype})
            yield Sample((), {"shape": (2, 0), "value": 7, "dtype": lucid.int64})
        elif name == "uniform":
            yield Sample((), {"shape": (200, 50), "low": -1.0, "high": 3.0, "dtype": dtype})
            yield Sample((), {"shape": (3, 5), "low": 0.0, "high": 1.0, "dtype": dtype})
        elif name == "randint":
            yield Sample((), {"shape": (200, 50), "low": -3, "high": 5, "dtype": lucid.int64})
            yield Sample((), {"shape": (7,), "low": 0, "high": 2, "dtype": lucid.int32})
        else:
            yield Sample((), {"shape": (200, 50), "mean": 1.0, "std": 2.0, "dtype": dtype})
    return gen


def _check_uniform(out, attrs):
    assert out.min() >= attrs["low"] and out.max() < attrs["high"]
    if out.size < 1000:
        return
    mean, width = (attrs["low"] + attrs["high"]) / 2, attrs["high"] - attrs["low"]
    sigma = width / np.sqrt(12 * out.size)
    assert abs(out.mean() - mean) < 5 * sigma, out.mean()
    assert abs(out.std() - width / np.sqrt(12)) < 0.05 * width


def _check_randint(out, attrs):
    assert out.dtype == attrs["dtype"]
    assert out.min() >= attrs["low"] and out.max() < attrs["high"]
    if out.size >= 1000:  # every value drawn, about equally often
        counts = np.bincount(out.reshape(-1) - attrs["low"])
        assert len(counts) == attrs["high"] - attrs["low"]
        assert counts.min() > 0.8 * out.size / len(counts)


def _check_normal(out, attrs):
    assert abs(out.mean() - attrs["mean"]) < 5 * attrs["std"] / np.sqrt(out.size), out.mean()
    assert abs(out.std() - attrs["std"]) < 0.05 * attrs["std"], out.std()


def _matmul_samples(rng, dtype):
    u = lambda *s: _uniform(rng, s, (-2, 2), dtype)
    yield Sample((u(3, 4), u(4, 2)))
    yield Sample((u(2, 3, 4), u(2, 4, 5)))
    yield Sample((u(2, 3, 4), u(4, 5)))  # a 2-d right operand shared across the batch
    yield Sample((u(3, 0), u(0, 2)))


def _composite_matmul_samples(rng, dtype):
    u = lambda *s: _uniform(rng, s, (-2, 2), dtype)
    yield Sample((u(4), u(4)))
    yield Sample((u(4), u(4, 3)))
    yield Sample((u(3, 4), u(4)))
    yield Sample((u(2, 1, 3, 4), u(5, 4, 2)))  # batch dims broadcast
    yield Sample((u(3, 4), u(2, 4, 5)))


def _ref_index_add(x, i, src, dim):
    out = x.copy()
    np.add.at(out, (slice(None),) * dim + (i,), 2.0 * src)
    return out


def _ref_adaptive_max(x, size):
    """PyTorch's adaptive bins (start floor(i n / out), end ceil((i + 1) n / out)), by loops."""
    h, w = x.shape[-2:]
    oh, ow = size
    out = np.empty(x.shape[:-2] + size, x.dtype)
    for i in range(oh):
        for j in range(ow):
            rows = slice(i * h // oh, -(-(i + 1) * h // oh))
            cols = slice(j * w // ow, -(-(j + 1) * w // ow))
            out[..., i, j] = x[..., rows, cols].max(axis=(-2, -1))
    return out


def _well_conditioned(rng, dtype, shapes=((3, 3), (2, 4, 4))):
    """Square matrices a unit's distance from singular: random entries plus 3 I, one with a
    negative determinant."""
    for shape in shapes:
        a = _uniform(rng, shape, (-1, 1), dtype) + 3 * np.eye(shape[-1], dtype=dtype)
        a[..., 0, :] *= -1  # det < 0
        yield Sample((a.astype(dtype),))


def _solve_samples(rng, dtype):
    (a,) = next(_well_conditioned(rng, dtype, ((2, 3, 3),))).args
    yield Sample((a, _uniform(rng, (2, 3, 2), (-2, 2), dtype)))


def _spd_samples(rng, dtype):
    """Positive-definite samples (the op itself is called on them too)."""
    for shape in ((3, 3), (2, 4, 4)):
        m = _uniform(rng, shape, (-1, 1), dtype)
        yield Sample(((m @ np.swapaxes(m, -1, -2) + np.eye(shape[-1])).astype(dtype),))


def _spd(a):
    n = a.shape[-1]
    return a @ a.transpose(-2, -1) + lucid.tensor(n * np.eye(n, dtype=a.dtype), device=a.device)


def _bit_samples(rng, dtype):
    """Integers of both signs in int64 and int32, and bools (the float dtype is not used)."""
    for int_dtype in (np.int64, np.int32):
        yield Sample((rng.integers(-1000, 1000, (3, 4)).astype(int_dtype),
                      rng.integers(-1000, 1000, (3, 4)).astype(int_dtype)))
    yield Sample((rng.random((3, 4)) < 0.5, rng.random((3, 4)) < 0.5))


def _atan2_samples(rng, dtype):
    """Points in every quadrant, away from the origin and the negative x axis (where atan2
    jumps from pi to -pi and finite differences would straddle the cut)."""
    r = _uniform(rng, (3, 4), (0.5, 2.0), dtype)
    theta = np.linspace(-2.8, 2.8, 12).reshape(3, 4).astype(dtype)
    yield Sample(((r * np.sin(theta)).astype(dtype), (r * np.cos(theta)).astype(dtype)))
    yield Sample((_uniform(rng, (), (0.5, 2.0), dtype), _uniform(rng, (), (0.5, 2.0), dtype)))


def _with_zeros(rng, dtype, attr_sets):
    """(3, 7) operands for products: one with no zero, one with one exact zero per row (the
    gradient there is the product of the others), one with two zeros in a row."""
    for attrs in attr_sets:
        x = _uniform(rng, (3, 7), (-1.5, 1.5), dtype)
        yield Sample((x,), attrs)
        x = x.copy()
        x[[0, 1, 2], [1, 4, 6]] = 0
        yield Sample((x,), attrs)
        x = x.copy()
        x[0, 3] = 0
        yield Sample((x,), attrs)


def _where_broadcast_samples(rng, dtype):
    yield Sample((rng.uniform(size=(3, 1)) > 0.5, _uniform(rng, (1, 4), (-2, 2), dtype),
                  _uniform(rng, (3, 4), (-2, 2), dtype)))
    yield Sample((rng.uniform(size=(4,)) > 0.5, _uniform(rng, (), (-2, 2), dtype),
                  _uniform(rng, (2, 4), (-2, 2), dtype)))


def _gather_samples(rng, dtype):
    x = _uniform(rng, (5, 4), (-2, 2), dtype)
    yield Sample((x, np.array([4, 0, 4, 2])))
    yield Sample((x, np.array([[1, 1], [3, 0]])))


def _stack_samples(rng, dtype):
    u = lambda *s: _uniform(rng, s, (-2, 2), dtype)
    yield Sample((u(2, 3), u(2, 3), u(2, 3)), {"dim": 1})
    yield Sample((u(), u()), {"dim": 0})


def _cat_samples(rng, dtype):
    u = lambda *s: _uniform(rng, s, (-2, 2), dtype)
    yield Sample((u(2, 3), u(2, 2)), {"dim": -1})
    yield Sample((u(1, 3), u(2, 3)), {"dim": 0})


def _min_dim_samples(rng, dtype):
    yield Sample((_distinct(rng, (3, 4), dtype),), {"dim": 1})
    yield Sample((_distinct(rng, (3, 4), dtype),), {"dim": 0, "keepdim": True})


def _clamp_samples(rng, dtype):
    # Values at least 0.05 from the bounds -0.5 and 0.5, so FD steps never cross them.
    x = _distinct(rng, (4, 5), dtype) + np.asarray(0.025, dtype)
    yield Sample((x,), {"min": -0.5, "max": 0.5})
    yield Sample((x,), {"min": -0.5})
    yield Sample((x,), {"max": 0.5})


# --------------------------------------------------------------------------------- the table

_SHAPES = (S((4, 5)), S(()), S((2, 0, 3)))
_BINARY = (S((3, 4), (3, 4)), S((), ()))


def _unary(op, ref, **kw) -> OpInfo:
    return OpInfo(op.name, op, ref, specs=kw.pop("specs", _SHAPES), op=op, **kw)


def _binary(op, ref, **kw) -> OpInfo:
    return OpInfo(op.name, op, ref, specs=kw.pop("specs", _BINARY), op=op, **kw)


PRIMITIVES: tuple[OpInfo, ...] = (
    _unary(ops.neg, np.negative),
    _unary(ops.exp, np.exp),
    _unary(ops.log, np.log, domain=(0.1, 3.0)),
    _unary(ops.log1p, np.log1p, domain=(-0.9, 3.0)),
    _unary(ops.sqrt, np.sqrt, domain=(0.1, 3.0)),
    _unary(ops.abs, np.abs, domain=(0.1, 2.0), signed=True),
    _unary(ops.sin, np.sin, domain=(-3.0, 3.0)),
    _unary(ops.cos, np.cos, domain=(-3.0, 3.0)),
    _unary(ops.tanh, np.tanh),
    _unary(ops.erf, _erf),
    _unary(ops.sign, np.sign, domain=(0.1, 2.0), signed=True, differentiable=False),
    _unary(ops.reciprocal, lambda x: 1.0 / x, domain=(0.2, 2.0), signed=True),
    _unary(ops.sigmoid, _ref_sigmoid, domain=(-6.0, 6.0)),
    _unary(ops.relu, lambda x: np.where(x > 0, x, 0).astype(x.dtype), domain=(0.1, 2.0),
           signed=True),
    _unary(ops.copy, lambda x: x.copy()),
    OpInfo("cast", ops.cast, lambda x, dtype: x.astype(dtype), sample_fn=_cast_samples,
           op=ops.cast, keeps_float_dtype=False),
    OpInfo("cast(int/bool)", ops.cast, lambda x, dtype: x.astype(dtype),
           sample_fn=_cast_int_samples, differentiable=False, keeps_float_dtype=False),
    _binary(ops.add, np.add),
    _binary(ops.sub, np.subtract),
    _binary(ops.mul, np.multiply),
    _binary(ops.div, np.divide, domain=(0.3, 2.0), signed=True),
    OpInfo("pow", ops.pow, np.power, sample_fn=_pow_samples, op=ops.pow),
    OpInfo("atan2", ops.atan2, np.arctan2, sample_fn=_atan2_samples, op=ops.atan2),
    OpInfo("inv", ops.inv, np.linalg.inv, sample_fn=lambda rng, dt: _well_conditioned(rng, dt),
           op=ops.inv, atol=1e-5),
    OpInfo("solve", ops.solve, np.linalg.solve, sample_fn=_solve_samples, op=ops.solve,
           atol=1e-5),
    OpInfo("logabsdet", ops.logabsdet, lambda a: np.linalg.slogdet(a)[1],
           sample_fn=lambda rng, dt: _well_conditioned(rng, dt), op=ops.logabsdet, atol=1e-5),
    OpInfo("detsign", ops.detsign, lambda a: np.linalg.slogdet(a)[0],
           sample_fn=lambda rng, dt: _well_conditioned(rng, dt), op=ops.detsign,
           differentiable=False),
    # (of a a^T + n I: positive definite whatever a is, and symmetric, as the factor reads one
    # triangle and its gradient is symmetric)
    OpInfo("cholesky", lambda a: ops.cholesky(_spd(a)),
           lambda a: np.linalg.cholesky(a @ np.swapaxes(a, -1, -2) + a.shape[-1] * np.eye(
               a.shape[-1], dtype=a.dtype)),
           sample_fn=_spd_samples, op=ops.cholesky, atol=1e-5),
    *(OpInfo(op.name, op, ref, sample_fn=_bit_samples, op=op, differentiable=False,
             keeps_float_dtype=False)
      for op, ref in ((ops.bitwise_and, np.bitwise_and), (ops.bitwise_or, np.bitwise_or),
                      (ops.bitwise_xor, np.bitwise_xor))),
    OpInfo("bitwise_not", ops.bitwise_not, np.invert,
           sample_fn=lambda rng, dt: [Sample((s.args[0],)) for s in _bit_samples(rng, dt)][:2],
           op=ops.bitwise_not, differentiable=False, keeps_float_dtype=False),
    OpInfo("maximum", ops.maximum, np.maximum, sample_fn=_binary_distinct, op=ops.maximum),
    OpInfo("minimum", ops.minimum, np.minimum, sample_fn=_binary_distinct, op=ops.minimum),
    *(OpInfo(op.name, op, ref, sample_fn=_compare_samples, op=op, differentiable=False)
      for op, ref in ((ops.eq, np.equal), (ops.ne, np.not_equal), (ops.lt, np.less),
                      (ops.le, np.less_equal), (ops.gt, np.greater), (ops.ge, np.greater_equal))),
    OpInfo("where", ops.where, np.where, sample_fn=_where_samples, op=ops.where),
    OpInfo("sum", ops.sum, _ref_sum, sample_fn=_reduce_samples(_REDUCE_ATTRS), op=ops.sum),
    OpInfo("max", ops.max, _ref_max, sample_fn=_reduce_samples(_REDUCE_ATTRS), op=ops.max),
    OpInfo("argmax", ops.argmax, lambda x, axis, keepdims: np.argmax(x, axis, keepdims=keepdims),
           sample_fn=_argmax_samples, op=ops.argmax, differentiable=False),
    _unary(ops.reshape, lambda x, shape: np.reshape(x, shape),
           specs=(S((3, 4), shape=(2, 6)), S((3, 4), shape=(12,)), S((), shape=(1, 1)),
                  S((2, 0), shape=(0, 5)))),
    _unary(ops.permute, lambda x, axes: np.transpose(x, axes),
           specs=(S((2, 3, 4), axes=(2, 0, 1)), S((3, 4), axes=(1, 0)), S((), axes=()))),
    _unary(ops.broadcast_to, lambda x, shape: np.broadcast_to(x, shape),
           specs=(S((3, 1), shape=(2, 3, 4)), S((), shape=(2, 2)), S((4,), shape=(4,)))),
    OpInfo("getitem", ops.getitem, _ref_getitem, sample_fn=_getitem_samples,
           op=ops.getitem),
    OpInfo("scatter_add", ops.scatter_add, _ref_scatter_add, sample_fn=_scatter_add_samples,
           op=ops.scatter_add),
    OpInfo("concat", ops.concat, lambda *xs, axis: np.concatenate(xs, axis),
           sample_fn=_concat_samples, op=ops.concat),
    _unary(ops.pad, lambda x, pads, value=0.0: np.pad(x, pads, constant_values=value),
           specs=(S((3, 4), pads=((1, 2), (0, 3))), S((2, 2, 2), pads=((0, 0), (1, 1), (2, 0)),
                                                     value=-1.5))),
    OpInfo("matmul", ops.matmul, np.matmul, sample_fn=_matmul_samples, op=ops.matmul,
           rtol=1e-5, atol=1e-5),
    OpInfo("full", ops.full, lambda shape, value, dtype: np.full(shape, value, dtype),
           sample_fn=_creation_samples("full"), op=ops.full, differentiable=False),
    OpInfo("uniform", ops.uniform, None, sample_fn=_creation_samples("uniform"), op=ops.uniform,
           differentiable=False, check=_check_uniform),
    OpInfo("normal", ops.normal, None, sample_fn=_creation_samples("normal"), op=ops.normal,
           differentiable=False, check=_check_normal),
    OpInfo("randint", ops.randint, None, sample_fn=_creation_samples("randint"), op=ops.randint,
           differentiable=False, check=_check_randint),
)


def _ref_sdpa(q, k, v, is_causal=False):
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if is_causal:
        keep = np.tril(np.ones(scores.shape[-2:], bool))
        scores = np.where(keep, scores, -np.inf)
    return _ref_softmax(scores, -1) @ v


def _sdpa_samples(rng, dtype):
    u = lambda *s: _uniform(rng, s, (-1, 1), dtype)
    yield Sample((u(2, 3, 4), u(2, 5, 4), u(2, 5, 3)))
    yield Sample((u(2, 4, 4), u(2, 4, 4), u(2, 4, 2)), {"is_causal": True})


def _masked_fill_samples(rng, dtype):
    yield Sample((_uniform(rng, (3, 4), (-2, 2), dtype), rng.uniform(size=(3, 4)) > 0.5))
    yield Sample((_uniform(rng, (2, 3), (-2, 2), dtype), rng.uniform(size=(3,)) > 0.5))


def _take_samples(rng, dtype):
    x = _uniform(rng, (3, 4), (-2, 2), dtype)
    yield Sample((x, np.array([[0, 3], [2, 2], [1, 0]])), {"dim": 1})
    yield Sample((x, np.array([[2, 0, 1, 1]])), {"dim": 0})


def _index_select_samples(rng, dtype):
    yield Sample((_uniform(rng, (3, 4), (-2, 2), dtype), np.array([2, 0, 2])), {"dim": 1})


def _einsum_samples(rng, dtype):
    u = lambda *s: _uniform(rng, s, (-1, 1), dtype)
    yield Sample((u(2, 3, 4), u(2, 4, 5)), {"equation": "bij,bjk->bik"})
    yield Sample((u(3, 4), u(3, 4)), {"equation": "ij,ij->i"})
    yield Sample((u(2, 3), u(3, 4), u(4,)), {"equation": "ij,jk,k->i"})


def _nonfinite_samples(rng, dtype):
    x = _uniform(rng, (3, 4), (-2, 2), dtype)
    x[0, 1], x[2, 3], x[1, 0] = np.inf, np.nan, -np.inf
    yield Sample((x,))


def _int_division_samples(rng, dtype):
    a = rng.integers(-50, 50, size=(3, 4))
    b = rng.integers(1, 7, size=(3, 4)) * rng.choice([-1, 1], size=(3, 4))
    yield Sample((a, b))
    yield Sample((a, np.array(3)))


def _rounding_samples(rng, dtype):
    x = (rng.uniform(-4, 4, size=(3, 5)) * 4).round() / 4  # halves and exact integers too
    x[0, :3] = [0.3, -0.3, 2.0]
    yield Sample((x.astype(dtype),))


def _scatter_samples(rng, dtype):
    x = _uniform(rng, (3, 5), (-2, 2), dtype)
    src = _uniform(rng, (2, 5), (-2, 2), dtype)
    # two rows of targets per column, distinct within a column
    idx = np.stack([rng.permutation(3)[:2] for _ in range(5)], 1)
    yield Sample((x, idx, src), {"dim": 0})
    yield Sample((x.T.copy(), idx.T.copy(), src.T.copy()), {"dim": 1})


def _ref_scatter(x, idx, src, dim, add=False):
    out = x.copy()
    if add:
        for pos in np.ndindex(*idx.shape):
            target = list(pos)
            target[dim] = idx[pos]
            out[tuple(target)] += src[pos]
        return out
    np.put_along_axis(out, idx, src, dim)
    return out


def _ref_normalize(x, p=2.0, dim=1, eps=1e-12):
    n = np.sum(np.abs(x) ** p, axis=dim, keepdims=True) ** (1 / p)
    return x / np.maximum(n, eps)


COMPOSITES: tuple[OpInfo, ...] = (
    OpInfo("Tensor.mean", lambda x, **a: x.mean(**a), lambda x, dim=None, keepdim=False:
           np.mean(x, axis=dim, keepdims=keepdim),
           specs=(S((3, 4)), S((3, 4), dim=1), S((2, 3, 4), dim=(0, 2), keepdim=True), S(()))),
    OpInfo("Tensor.var", lambda x, **a: x.var(**a),
           lambda x, dim=None, keepdim=False, unbiased=True:
           np.var(x, axis=dim, keepdims=keepdim, ddof=1 if unbiased else 0),
           specs=(S((3, 4)), S((3, 4), dim=1, unbiased=False), S((2, 3, 4), dim=-1,
                                                                  keepdim=True))),
    OpInfo("Tensor.min", lambda x: x.min(), np.min,
           sample_fn=lambda rng, dt: [Sample((_distinct(rng, (3, 4), dt),))]),
    OpInfo("Tensor.min(dim)", lambda x, **a: x.min(**a).values,
           lambda x, dim, keepdim=False: np.min(x, axis=dim, keepdims=keepdim),
           sample_fn=_min_dim_samples),
    OpInfo("Tensor.clamp", lambda x, **a: x.clamp(**a),
           lambda x, min=None, max=None: np.clip(x, min, max), sample_fn=_clamp_samples),
    OpInfo("lucid.matmul", lucid.matmul, np.matmul, sample_fn=_composite_matmul_samples,
           atol=1e-5),
    OpInfo("lucid.where", lucid.where, np.where, sample_fn=_where_broadcast_samples),
    OpInfo("lucid.cat", lambda *xs, dim: lucid.cat(list(xs), dim=dim),
           lambda *xs, dim: np.concatenate(xs, axis=dim), sample_fn=_cat_samples),
    OpInfo("lucid.stack", lambda *xs, dim: lucid.stack(list(xs), dim=dim),
           lambda *xs, dim: np.stack(xs, axis=dim), sample_fn=_stack_samples),
    OpInfo("Tensor.__getitem__[slices]", lambda x: x[1:, ::2, -1], lambda x: x[1:, ::2, -1],
           specs=(S((4, 5, 6)),)),
    OpInfo("Tensor.__getitem__[int,None]", lambda x: x[2, None, ..., 1:3],
           lambda x: x[2, None, ..., 1:3], specs=(S((4, 5, 6)),)),
    OpInfo("Tensor.__getitem__[gather]", lambda x, i: x[i, 1:], lambda x, i: x[i, 1:],
           sample_fn=_gather_samples),
    OpInfo("Tensor.repeat", lambda x, reps: x.repeat(*reps), lambda x, reps: np.tile(x, reps),
           specs=(S((3, 4), reps=(2, 1, 3)), S((2,), reps=(3,)))),
    OpInfo("Tensor.repeat_interleave", lambda x, **a: x.repeat_interleave(**a),
           lambda x, repeats, dim=None: np.repeat(x, repeats, axis=dim),
           specs=(S((3, 4), repeats=2, dim=1), S((2, 3), repeats=3))),
    OpInfo("Tensor.split", lambda x, sizes, dim: x.split(sizes, dim)[1],
           lambda x, sizes, dim: np.split(x, np.cumsum(sizes)[:-1], axis=dim)[1],
           specs=(S((3, 5), sizes=[1, 3, 1], dim=1),)),
    OpInfo("Tensor.flip", lambda x, dims: x.flip(dims), lambda x, dims: np.flip(x, dims),
           specs=(S((2, 3, 4), dims=(0, 2)),)),
    OpInfo("Tensor.roll", lambda x, shifts, dims: x.roll(shifts, dims),
           lambda x, shifts, dims: np.roll(x, shifts, dims),
           specs=(S((3, 4), shifts=(1, -2), dims=(0, 1)),)),
    OpInfo("Tensor.masked_fill", lambda x, m: x.masked_fill(m, 0.5),
           lambda x, m: np.where(m, np.asarray(0.5, x.dtype), x),
           sample_fn=_masked_fill_samples),
    OpInfo("Tensor.tril", lambda x, **a: x.tril(**a), lambda x, diagonal=0: np.tril(x, diagonal),
           specs=(S((3, 4)), S((2, 4, 3), diagonal=-1))),
    OpInfo("Tensor.triu", lambda x, **a: x.triu(**a), lambda x, diagonal=0: np.triu(x, diagonal),
           specs=(S((4, 3), diagonal=1),)),
    OpInfo("Tensor.logsumexp", lambda x, **a: x.logsumexp(**a),
           lambda x, dim, keepdim=False: special.logsumexp(x, axis=dim, keepdims=keepdim),
           specs=(S((3, 4), dim=1), S((2, 3, 4), dim=(0, 2), keepdim=True))),
    OpInfo("Tensor.norm", lambda x, **a: x.norm(**a),
           lambda x, p=2, dim=None, keepdim=False: np.sum(np.abs(x) ** p, axis=dim,
                                                          keepdims=keepdim) ** (1 / p),
           signed=True, domain=(0.2, 2.0), specs=(S((3, 4), dim=1), S((3, 4), p=3))),
    OpInfo("Tensor.gather", lambda x, i, dim: x.gather(dim, i),
           lambda x, i, dim: np.take_along_axis(x, i, axis=dim), sample_fn=_take_samples),
    OpInfo("Tensor.index_select", lambda x, i, dim: x.index_select(dim, i),
           lambda x, i, dim: np.take(x, i, axis=dim), sample_fn=_index_select_samples),
    OpInfo("Tensor.diagonal", lambda x, **a: x.diagonal(**a),
           lambda x, offset=0: np.diagonal(x, offset).copy(),
           specs=(S((3, 4), offset=1), S((4, 3), offset=-1))),
    OpInfo("Tensor.outer", lambda x, y: x.outer(y), np.outer, specs=(S((3,), (4,)),)),
    OpInfo("Tensor.isfinite", lambda x: x.isfinite(), np.isfinite,
           sample_fn=_nonfinite_samples, differentiable=False),
    OpInfo("lucid.einsum", lambda *xs, equation: lucid.einsum(equation, *xs),
           lambda *xs, equation: np.einsum(equation, *xs), sample_fn=_einsum_samples,
           atol=1e-5),
    OpInfo("F.scaled_dot_product_attention",
           lambda q, k, v, **a: lucid.nn.functional.scaled_dot_product_attention(q, k, v, **a),
           _ref_sdpa, sample_fn=_sdpa_samples, atol=1e-5),
    OpInfo("F.normalize", lambda x, **a: lucid.nn.functional.normalize(x, **a), _ref_normalize,
           signed=True, domain=(0.2, 2.0), specs=(S((3, 4)), S((2, 5), p=1.0, dim=0))),
    OpInfo("Tensor.__floordiv__[int]", lambda a, b: a // b, np.floor_divide,
           sample_fn=_int_division_samples, differentiable=False, keeps_float_dtype=False),
    OpInfo("Tensor.__mod__[int]", lambda a, b: a % b, np.remainder,
           sample_fn=_int_division_samples, differentiable=False, keeps_float_dtype=False),
    OpInfo("Tensor.floor", lambda x: x.floor(), np.floor, sample_fn=_rounding_samples,
           differentiable=False),
    OpInfo("Tensor.ceil", lambda x: x.ceil(), np.ceil, sample_fn=_rounding_samples,
           differentiable=False),
    OpInfo("Tensor.atan", lambda x: x.atan(), np.arctan, specs=(S((3, 4)),), domain=(-3, 3)),
    OpInfo("Tensor.asin", lambda x: x.asin(), np.arcsin, specs=(S((3, 4)),), domain=(-0.9, 0.9)),
    OpInfo("Tensor.acos", lambda x: x.acos(), np.arccos, specs=(S((3, 4)),), domain=(-0.9, 0.9)),
    OpInfo("Tensor.asinh", lambda x: x.asinh(), np.arcsinh, specs=(S((3, 4)),),
           domain=(-3, 3)),
    OpInfo("Tensor.acosh", lambda x: x.acosh(), np.arccosh, specs=(S((3, 4)),),
           domain=(1.1, 4)),
    OpInfo("Tensor.atanh", lambda x: x.atanh(), np.arctanh, specs=(S((3, 4)),),
           domain=(-0.9, 0.9)),
    OpInfo("lucid.hypot", lambda a, b: lucid.hypot(a, b), np.hypot,
           specs=(S((3, 4), (3, 4)),), domain=(0.2, 2.0), signed=True),
    OpInfo("lucid.logaddexp", lambda a, b: lucid.logaddexp(a, b), np.logaddexp,
           specs=(S((3, 4), (3, 4)), S((2,), ())), domain=(-3, 3)),
    OpInfo("lucid.xlogy", lambda a, b: lucid.xlogy(a, b), special.xlogy,
           specs=(S((3, 4), (3, 4)),), domain=(0.2, 2.0)),
    OpInfo("Tensor.addcdiv", lambda x, a, b: x.addcdiv(a, b, value=0.5),
           lambda x, a, b: x + 0.5 * a / b, specs=(S((3, 4), (3, 4), (4,)),), domain=(0.5, 2.0)),
    OpInfo("Tensor.addcmul", lambda x, a, b: x.addcmul(a, b, value=-2.0),
           lambda x, a, b: x - 2.0 * a * b, specs=(S((3, 4), (3, 1), (4,)),)),
    OpInfo("Tensor.logit", lambda x: x.logit(), special.logit, specs=(S((3, 4)),),
           domain=(0.1, 0.9)),
    OpInfo("lucid.tensordot", lambda a, b, **k: lucid.tensordot(a, b, **k),
           lambda a, b, dims: np.tensordot(a, b, dims),
           specs=(S((2, 3, 4), (3, 4, 5), dims=2), S((3, 4), (5, 3), dims=([0], [1])))),
    OpInfo("lucid.kron", lambda a, b: lucid.kron(a, b), np.kron, specs=(S((2, 3), (3, 2)),
                                                                       S((2,), (2, 3)))),
    OpInfo("lucid.cross", lambda a, b: lucid.cross(a, b, dim=-1),
           lambda a, b: np.cross(a, b, axis=-1), specs=(S((4, 3), (4, 3)), S((3,), (2, 3)))),
    OpInfo("Tensor.diff", lambda x, **k: x.diff(**k),
           lambda x, n=1, dim=-1: np.diff(x, n=n, axis=dim),
           specs=(S((3, 5), n=2, dim=1), S((4, 3), dim=0))),
    OpInfo("Tensor.index_add", lambda x, i, src, dim: x.index_add(dim, i, src, alpha=2.0),
           lambda x, i, src, dim: _ref_index_add(x, i, src, dim),
           sample_fn=lambda rng, dt: [Sample((_uniform(rng, (4, 3), (-2, 2), dt),
                                              np.array([3, 0, 3]),
                                              _uniform(rng, (3, 3), (-2, 2), dt)), {"dim": 0})]),
    OpInfo("F.rms_norm", lambda x, w: lucid.nn.functional.rms_norm(x, (4,), w, eps=1e-6),
           lambda x, w: x / np.sqrt(np.mean(x * x, -1, keepdims=True) + 1e-6) * w,
           specs=(S((3, 4), (4,)),), domain=(0.2, 2.0), signed=True),
    OpInfo("F.pixel_shuffle", lambda x: lucid.nn.functional.pixel_shuffle(x, 2),
           lambda x: x.reshape(1, 2, 2, 2, 3, 2).transpose(0, 1, 4, 2, 5, 3).reshape(1, 2, 6, 4),
           specs=(S((1, 8, 3, 2)),)),
    OpInfo("F.adaptive_max_pool2d", lambda x: lucid.nn.functional.adaptive_max_pool2d(x, (2, 3)),
           lambda x: _ref_adaptive_max(x, (2, 3)),
           sample_fn=lambda rng, dt: [Sample((_distinct(rng, (1, 2, 5, 7), dt),))]),
    OpInfo("Tensor.unfold", lambda x: x.unfold(1, 3, 2),
           lambda x: np.lib.stride_tricks.sliding_window_view(x, 3, axis=1)[:, ::2].copy(),
           specs=(S((3, 7)),)),
    OpInfo("Tensor.logcumsumexp", lambda x: x.logcumsumexp(1),
           lambda x: np.logaddexp.accumulate(x, axis=1), specs=(S((3, 5)),), atol=1e-5),
    OpInfo("lucid.sinc", lambda x: lucid.sinc(x), np.sinc, specs=(S((3, 4)),), domain=(0.1, 2),
           signed=True),
    OpInfo("Tensor.prod", lambda x, **a: x.prod(**a),
           lambda x, dim=None, keepdim=False: np.prod(x, axis=dim, keepdims=keepdim),
           sample_fn=lambda rng, dt: _with_zeros(rng, dt, [{}, {"dim": 1}, {"dim": 0,
                                                                          "keepdim": True}])),
    OpInfo("Tensor.cumprod", lambda x, dim: x.cumprod(dim), lambda x, dim: np.cumprod(x, dim),
           sample_fn=lambda rng, dt: _with_zeros(rng, dt, [{"dim": 1}, {"dim": 0}])),
    OpInfo("Tensor.cumsum", lambda x, dim: x.cumsum(dim), lambda x, dim: np.cumsum(x, dim),
           specs=(S((3, 5), dim=1), S((2, 70, 2), dim=1), S((4,), dim=0)), atol=1e-5),
    OpInfo("F.smooth_l1_loss", lambda x, y, **a: lucid.nn.functional.smooth_l1_loss(x, y, **a),
           lambda x, y, beta=1.0: np.mean(np.where(np.abs(x - y) < beta,
                                                   0.5 * (x - y) ** 2 / beta,
                                                   np.abs(x - y) - 0.5 * beta)),
           specs=(S((3, 4), (3, 4)), S((5,), (5,), beta=0.5)), domain=(-3, 3)),
    OpInfo("F.huber_loss", lambda x, y: lucid.nn.functional.huber_loss(x, y, delta=0.7),
           lambda x, y: np.mean(np.where(np.abs(x - y) <= 0.7, 0.5 * (x - y) ** 2,
                                         0.7 * (np.abs(x - y) - 0.35))),
           specs=(S((3, 4), (3, 4)),), domain=(-3, 3)),
    OpInfo("F.kl_div", lambda x, y: lucid.nn.functional.kl_div(x, y, reduction="batchmean"),
           lambda x, y: np.sum(y * (np.log(y) - x)) / x.shape[0], domain=(0.1, 1.0),
           specs=(S((3, 4), (3, 4)),)),
    OpInfo("F.cosine_similarity", lambda x, y: lucid.nn.functional.cosine_similarity(x, y),
           lambda x, y: (x * y).sum(1) / np.sqrt((x * x).sum(1) * (y * y).sum(1)),
           specs=(S((3, 4), (3, 4)),)),
    OpInfo("F.mish", lambda x: lucid.nn.functional.mish(x),
           lambda x: x * np.tanh(np.log1p(np.exp(x))), specs=(S((3, 4)),)),
    OpInfo("Tensor.scatter", lambda x, i, src, dim: x.scatter(dim, i, src), _ref_scatter,
           sample_fn=_scatter_samples),
    OpInfo("Tensor.scatter_add", lambda x, i, src, dim: x.scatter_add(dim, i, src),
           lambda x, i, src, dim: _ref_scatter(x, i, src, dim, add=True),
           sample_fn=_scatter_samples),
)


# --------------------------------------------------------------------------------- conv ops

def _conv_primitives() -> tuple[OpInfo, ...]:
    """Entries for lucid/ops/conv.py (written by another engineer) when it exists."""
    try:
        conv = importlib.import_module("lucid.ops.conv")
    except ImportError:
        return ()
    one = {"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1)}
    odd = {"stride": (2, 1), "padding": (1, 0), "dilation": (1, 2)}
    return (
        OpInfo("unfold", conv.unfold, _ref_unfold, op=conv.unfold, specs=(
            S((2, 3, 5, 6), kernel=(2, 2), **one), S((1, 2, 5, 5), kernel=(3, 2), **odd),
            S((2, 2, 5, 5), kernel=(3, 2), layout="knl", **odd),
            S((3, 2, 4, 5), kernel=(2, 3), layout="knl", **one))),
        OpInfo("fold", conv.fold, _ref_fold, op=conv.fold, specs=(
            S((2, 12, 20), output_size=(5, 6), kernel=(2, 2), **one),
            S((1, 12, 9), output_size=(5, 5), kernel=(3, 2), **odd),
            S((12, 2, 9), output_size=(5, 5), kernel=(3, 2), layout="knl", **odd))),
        OpInfo("conv2d", conv.conv2d, _ref_conv2d, op=conv.conv2d, atol=1e-5, specs=(
            S((2, 3, 6, 5), (4, 3, 3, 3), groups=1, **one),
            S((1, 4, 7, 7), (6, 2, 3, 2), groups=2, **odd))),
        OpInfo("max_pool2d", conv.max_pool2d, _ref_max_pool2d, op=conv.max_pool2d,
               sample_fn=_pool_samples),
        # (differentiable in g only: piecewise constant in x)
        OpInfo("max_pool2d_grad", conv.max_pool2d_grad, _ref_max_pool2d_grad,
               op=conv.max_pool2d_grad, sample_fn=_pool_grad_samples, grad_args=(0,)),
    )


def _ref_max_pool2d_grad(g, x, kernel, stride, padding, dilation, ceil_mode=False):
    """Each window's gradient added at its first maximum, by explicit loops."""
    p = _patches(x, kernel, stride, padding, dilation, -np.inf, ceil_mode)
    n, c, kh, kw, oh, ow = p.shape
    big = np.zeros((n, c, x.shape[2] + 2 * padding[0] + kh * dilation[0] + stride[0] * oh,
                    x.shape[3] + 2 * padding[1] + kw * dilation[1] + stride[1] * ow), g.dtype)
    for b in range(n):
        for ch in range(c):
            for y in range(oh):
                for xx in range(ow):
                    k = int(np.argmax(p[b, ch, :, :, y, xx].reshape(-1)))
                    i, j = divmod(k, kw)
                    big[b, ch, y * stride[0] + i * dilation[0],
                        xx * stride[1] + j * dilation[1]] += g[b, ch, y, xx]
    return big[:, :, padding[0]:padding[0] + x.shape[2], padding[1]:padding[1] + x.shape[3]]


def _pool_grad_samples(rng, dtype):
    for sample in _pool_samples(rng, dtype):
        (x,), attrs = sample.args, sample.attrs
        out = _ref_max_pool2d(x, attrs["kernel"], attrs["stride"], attrs["padding"],
                              attrs["dilation"], attrs["ceil_mode"])
        yield Sample((_uniform(rng, out.shape, (-2, 2), dtype), x), attrs)


def _pool_samples(rng, dtype):
    yield Sample((_distinct(rng, (2, 3, 6, 6), dtype),), {
        "kernel": (2, 2), "stride": (2, 2), "padding": (0, 0), "dilation": (1, 1),
        "ceil_mode": False})
    yield Sample((_distinct(rng, (1, 2, 5, 7), dtype),), {
        "kernel": (3, 3), "stride": (2, 2), "padding": (1, 1), "dilation": (1, 1),
        "ceil_mode": True})
    yield Sample((_distinct(rng, (1, 2, 7, 7), dtype),), {
        "kernel": (2, 3), "stride": (1, 2), "padding": (1, 0), "dilation": (2, 1),
        "ceil_mode": False})


def _ref_log_softmax_np(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def _ref_cross_entropy(x, t, w=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Class-index targets; x is (N, C) or (N, C, d)."""
    logp = _ref_log_softmax_np(x, 1)
    if x.ndim == 3:
        logp = logp.transpose(0, 2, 1).reshape(-1, x.shape[1])
        t = t.reshape(-1)
    c = logp.shape[1]
    w = np.ones(c) if w is None else w
    keep = t != ignore_index
    safe = np.where(keep, t, 0)
    wt = np.where(keep, w[safe], 0.0)
    nll = -logp[np.arange(len(t)), safe] * wt
    smooth = -(logp * w).sum(axis=1) * keep
    if reduction == "sum":
        return (1 - label_smoothing) * nll.sum() + label_smoothing / c * smooth.sum()
    return ((1 - label_smoothing) * nll.sum() + label_smoothing / c * smooth.sum()) / wt.sum()


def _ref_nll(x, t, w=None, reduction="mean"):
    w = np.ones(x.shape[1]) if w is None else w
    picked = -x[np.arange(len(t)), t] * w[t]
    if reduction == "none":
        return picked
    return picked.sum() if reduction == "sum" else picked.sum() / w[t].sum()


def _reduce_ref(loss, reduction="mean"):
    return loss if reduction == "none" else loss.sum() if reduction == "sum" else loss.mean()


def _loss_pair_samples(domain, far=False):
    def gen(rng, dtype):
        for shape, reduction in (((4, 5), "mean"), ((3,), "sum"), ((2, 3), "none")):
            x = _uniform(rng, shape, domain, dtype)
            y = (_uniform(rng, shape, domain, dtype) if not far else
                 x + _uniform(rng, shape, (0.1, 1.0), dtype, signed=True))
            yield Sample((x, np.asarray(y, dtype)), {"reduction": reduction})
    return gen


def _class_samples(rng, dtype):
    u = lambda *s: _uniform(rng, s, (-2, 2), dtype)
    yield Sample((u(4, 5), rng.integers(0, 5, 4)))
    yield Sample((u(4, 5), rng.integers(0, 5, 4), _uniform(rng, (5,), (0.5, 2), dtype)),
                 {"reduction": "sum"})
    yield Sample((u(3, 4, 2), np.array([[0, 3], [-100, 1], [2, 2]])), {"ignore_index": -100})
    yield Sample((u(4, 5), rng.integers(0, 5, 4)), {"label_smoothing": 0.2})


def _nll_samples(rng, dtype):
    u = lambda *s: _uniform(rng, s, (-3, -0.1), dtype)
    yield Sample((u(4, 5), rng.integers(0, 5, 4)))
    yield Sample((u(4, 5), np.array([1, 1, 0, 4]), _uniform(rng, (5,), (0.5, 2), dtype)))
    yield Sample((u(3, 5), np.array([1, 2, 3])), {"reduction": "none"})


def _ce_prob_samples(rng, dtype):
    p = rng.uniform(0.1, 1.0, (4, 5))
    yield Sample((_uniform(rng, (4, 5), (-2, 2), dtype), (p / p.sum(1, keepdims=True))
                  .astype(dtype)))


def _pm(domain=(0.05, 2.0)):
    """Away from the kink at 0: |x| in domain with random signs."""
    def gen(rng, dtype):
        yield Sample((_uniform(rng, (4, 5), domain, dtype, signed=True),))
        yield Sample((_uniform(rng, (), domain, dtype, signed=True),))
    return gen


def _functional_composites() -> tuple[OpInfo, ...]:
    """nn.functional composites (written by another engineer), those that exist."""
    try:
        F = importlib.import_module("lucid.nn.functional")  # noqa: N806
    except ImportError:
        return ()
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    entries = {
        "relu": lambda: OpInfo("F.relu", F.relu, lambda x: np.maximum(x, 0), sample_fn=_pm()),
        "leaky_relu": lambda: OpInfo(
            "F.leaky_relu", lambda x: F.leaky_relu(x, 0.1),
            lambda x: np.where(x > 0, x, 0.1 * x), sample_fn=_pm()),
        "elu": lambda: OpInfo("F.elu", lambda x: F.elu(x, alpha=0.7),
                              lambda x: np.where(x > 0, x, 0.7 * (np.exp(x) - 1)),
                              sample_fn=_pm()),
        "gelu": lambda: OpInfo("F.gelu", F.gelu,
                               lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2))), specs=_SHAPES),
        "gelu_tanh": lambda: OpInfo(
            "F.gelu(tanh)", lambda x: F.gelu(x, approximate="tanh"),
            lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))),
            specs=_SHAPES),
        "silu": lambda: OpInfo("F.silu", F.silu, lambda x: x * sig(x), specs=_SHAPES),
        "softmax": lambda: OpInfo("F.softmax", lambda x, dim: F.softmax(x, dim),
                                  lambda x, dim: _ref_softmax(x, dim),
                                  specs=(S((4, 5), dim=1), S((3, 4, 2), dim=0), S((6,), dim=-1))),
        "log_softmax": lambda: OpInfo("F.log_softmax", lambda x, dim: F.log_softmax(x, dim),
                                      lambda x, dim: _ref_log_softmax(x, dim),
                                      specs=(S((4, 5), dim=1), S((3, 4, 2), dim=0))),
        "linear": lambda: OpInfo("F.linear", F.linear,
                                 lambda x, w, b=None: x @ w.T + (0 if b is None else b),
                                 specs=(S((4, 3), (5, 3), (5,)), S((2, 4, 3), (5, 3)),
                                        S((3,), (2, 3), (2,))), atol=1e-5),
        "mse_loss": lambda: OpInfo("F.mse_loss", F.mse_loss,
                                   lambda x, y, reduction: _reduce_ref((x - y) ** 2, reduction),
                                   sample_fn=_loss_pair_samples((-2, 2))),
        "l1_loss": lambda: OpInfo("F.l1_loss", F.l1_loss,
                                  lambda x, y, reduction: _reduce_ref(np.abs(x - y), reduction),
                                  sample_fn=_loss_pair_samples((-2, 2), far=True)),
        "binary_cross_entropy": lambda: OpInfo(
            "F.binary_cross_entropy", F.binary_cross_entropy,
            lambda p, y, reduction: _reduce_ref(-(y * np.log(p) + (1 - y) * np.log(1 - p)),
                                                reduction),
            sample_fn=_loss_pair_samples((0.05, 0.95))),
        "binary_cross_entropy_with_logits": lambda: OpInfo(
            "F.binary_cross_entropy_with_logits", F.binary_cross_entropy_with_logits,
            lambda x, y, reduction: _reduce_ref(
                -(y * np.log(sig(x)) + (1 - y) * np.log(1 - sig(x))), reduction),
            sample_fn=lambda rng, dt: (
                Sample((s.args[0] * 4, s.args[1]), s.attrs)
                for s in _loss_pair_samples((0.0, 1.0))(rng, dt))),
        "cross_entropy": lambda: OpInfo("F.cross_entropy", F.cross_entropy, _ref_cross_entropy,
                                        sample_fn=_class_samples),
        "cross_entropy_probs": lambda: OpInfo(
            "F.cross_entropy(probs)", F.cross_entropy,
            lambda x, y: -(y * _ref_log_softmax_np(x, 1)).sum() / x.shape[0],
            sample_fn=_ce_prob_samples),
        "nll_loss": lambda: OpInfo("F.nll_loss", F.nll_loss, _ref_nll, sample_fn=_nll_samples),
        "layer_norm": lambda: OpInfo(
            "F.layer_norm", lambda x, *wb, normalized_shape: F.layer_norm(
                x, normalized_shape, *wb),
            lambda x, *wb, normalized_shape: _ref_layer_norm(x, normalized_shape, *wb),
            specs=(S((4, 5), (5,), (5,), normalized_shape=(5,)),
                   S((2, 3, 4), normalized_shape=(3, 4))), atol=1e-5),
        "conv2d": lambda: OpInfo(
            "F.conv2d", lambda x, w, b, **a: F.conv2d(x, w, b, **a),
            lambda x, w, b, stride, padding: _ref_conv2d(
                x, w, (stride,) * 2, (padding,) * 2) + b.reshape(1, -1, 1, 1),
            specs=(S((2, 3, 6, 5), (4, 3, 3, 3), (4,), stride=2, padding=1),), atol=1e-5),
        "max_pool2d": lambda: OpInfo(
            "F.max_pool2d", lambda x: F.max_pool2d(x, 2),
            lambda x: _ref_max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1)),
            sample_fn=lambda rng, dt: [Sample((_distinct(rng, (2, 3, 6, 4), dt),))]),
        "avg_pool2d": lambda: OpInfo(
            "F.avg_pool2d", lambda x, **a: F.avg_pool2d(x, **a), _ref_avg_pool2d,
            specs=(S((2, 3, 6, 4), kernel_size=2),
                   S((1, 2, 5, 5), kernel_size=3, stride=2, padding=1))),
    }
    required = ("relu", "leaky_relu", "elu", "gelu", "silu", "softmax", "log_softmax", "linear",
                "mse_loss", "l1_loss", "binary_cross_entropy",
                "binary_cross_entropy_with_logits", "cross_entropy", "nll_loss", "layer_norm",
                "conv2d", "max_pool2d", "avg_pool2d")
    MISSING_FUNCTIONAL[:] = [n for n in required if not hasattr(F, n)]
    return tuple(make() for key, make in entries.items()
                 if hasattr(F, key.replace("_tanh", "").replace("_probs", "")))


MISSING_FUNCTIONAL: list[str] = []


OPINFOS: tuple[OpInfo, ...] = PRIMITIVES + _conv_primitives() + COMPOSITES + \
    _functional_composites()


# ----------------------------------------------------------------------------- collectives
# Checked under mpiexec by tests/distributed/mpi_checks.py (they need a job of several ranks):
# `ref(inputs_by_rank, rank, **attrs)` is rank `rank`'s result from every rank's inputs (each
# rank draws its sample from default_rng(100 + its rank)).


def _collective_infos() -> tuple[OpInfo, ...]:
    import lucid.distributed.functional as D

    reduce = {"sum": np.sum, "prod": np.prod, "max": np.max, "min": np.min}
    return (
        OpInfo("all_reduce", D.all_reduce, op=ops.all_reduce,
               ref=lambda xs, rank, op: reduce[op](np.stack([x[0] for x in xs]), axis=0)
               .astype(xs[0][0].dtype),
               specs=(S((3, 4), op="sum"), S((5,), op="sum"), S((2, 3), op="max"),
                      S((2, 3), op="min"), S((4,), op="prod"))),
        OpInfo("broadcast", D.broadcast, op=ops.broadcast,
               ref=lambda xs, rank, src: xs[src][0],
               specs=(S((3, 4), src=0), S((6,), src=1))),
        OpInfo("all_gather", D.all_gather, op=ops.all_gather,
               ref=lambda xs, rank: np.concatenate([x[0] for x in xs]),
               specs=(S((2, 3)), S((1,)), S((3, 2, 2)))),
        OpInfo("reduce_scatter", D.reduce_scatter, op=ops.reduce_scatter,
               ref=lambda xs, rank, op: np.split(reduce[op](np.stack([x[0] for x in xs]), axis=0)
                                                 .astype(xs[0][0].dtype), len(xs))[rank],
               specs=(S((6, 4), op="sum"), S((12,), op="sum"), S((6, 2), op="max"))),
        OpInfo("barrier", lambda: ops.barrier(), op=ops.barrier, differentiable=False,
               ref=lambda xs, rank: np.zeros((), np.int32), specs=(S(),)),
    )


COLLECTIVES: tuple[OpInfo, ...] = _collective_infos()


# ----------------------------------------------------------------------------- test parameters


def opinfo_cases(infos) -> list:
    """One pytest param per (entry, sample index), id `name-index`."""
    import pytest

    return [pytest.param(info, i, id=f"{info.name}-{i}") for info in infos
            for i in range(len(info.samples(np.random.default_rng(0), np.float32)))]


def opinfo_sample(info: OpInfo, index: int, dtype, seed: int) -> Sample:
    """Sample `index` of an entry, drawn with `seed` (another seed: other values, same shapes)."""
    return info.samples(np.random.default_rng(seed), dtype)[index]


def baked(info: OpInfo, attrs: dict):
    """The entry's callable with the sample's attrs fixed by closure (positional tensors only)."""
    def fn(*tensors):
        return info.fn(*tensors, **attrs)
    return fn
