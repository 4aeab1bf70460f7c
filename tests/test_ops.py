"""Every op against its NumPy reference, its shape rule and finite differences (OpInfo table)."""

from __future__ import annotations

import re

import numpy as np
import pytest

import lucid
from lucid import Tensor, ops
from lucid.ops.registry import check_infer
from tests.helpers import check_vjp, sample_tensors
from tests.opinfo import COLLECTIVES, OPINFOS, OpInfo, Sample

_IDS = lambda info: info.name  # noqa: E731
PRIMITIVE_INFOS = [i for i in OPINFOS if i.op is not None]
DIFFERENTIABLE = [i for i in OPINFOS if i.differentiable]
EPS = 1e-6


def _reference(info: OpInfo, sample: Sample, dtype) -> np.ndarray:
    """The reference computed in float64 (for accuracy), returned with the dtype NumPy gives
    for the sample's own dtypes."""
    wide = [a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
            for a in sample.args]
    attrs = dict(sample.attrs)
    expected = np.asarray(info.ref(*wide, **attrs))
    own = np.asarray(info.ref(*sample.args, **attrs)).dtype
    if info.keeps_float_dtype and own.kind == "f":
        own = np.dtype(dtype)
    return expected, own


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("info", OPINFOS, ids=_IDS)
def test_eager_matches_numpy_reference(info: OpInfo, dtype):
    rng = np.random.default_rng(1)
    samples = info.samples(rng, dtype)
    assert samples, f"{info.name}: no samples"
    for sample in samples:
        out = info.fn(*sample_tensors(sample.args), **sample.attrs)
        assert isinstance(out, Tensor)
        if info.check is not None:
            info.check(out.numpy(), sample.attrs)
            assert out.dtype == np.dtype(sample.attrs["dtype"])
            continue
        expected, expected_dtype = _reference(info, sample, dtype)
        assert out.shape == expected.shape, (info.name, sample.attrs)
        assert out.dtype == expected_dtype, (info.name, out.dtype, expected_dtype)
        if np.dtype(dtype) == np.float64:
            rtol, atol = 1e-12, 1e-12
        else:
            rtol, atol = info.rtol, info.atol
        np.testing.assert_allclose(out.numpy().astype(np.float64) if out.dtype.kind == "f"
                                   else out.numpy(), expected, rtol=rtol, atol=atol,
                                   err_msg=f"{info.name} {sample.attrs}")


@pytest.mark.parametrize("info", [i for i in PRIMITIVE_INFOS if i.check is not None], ids=_IDS)
def test_random_ops_reproducible_under_manual_seed(info: OpInfo):
    sample = next(iter(info.samples(np.random.default_rng(0), np.float32)))
    lucid.manual_seed(7)
    a = info.fn(**sample.attrs).numpy()
    b = info.fn(**sample.attrs).numpy()
    lucid.manual_seed(7)
    c = info.fn(**sample.attrs).numpy()
    assert not np.array_equal(a, b)  # fresh numbers on every call
    np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("info", PRIMITIVE_INFOS, ids=_IDS)
def test_infer_matches_eager(info: OpInfo, dtype):
    for sample in info.samples(np.random.default_rng(2), dtype):
        args = sample_tensors(sample.args)
        out = info.op(*args, **sample.attrs)
        aval = check_infer(info.op, *args, **sample.attrs)
        assert tuple(aval.shape) == out.shape, (info.name, sample.attrs)
        assert np.dtype(aval.dtype) == out.dtype, (info.name, sample.attrs)


@pytest.mark.parametrize("info", DIFFERENTIABLE, ids=_IDS)
def test_vjp_matches_finite_differences(info: OpInfo):
    """<u, J v> from the vjp (sum_i <vjp_i(u), v_i>) against central differences of <u, f>."""
    rng = np.random.default_rng(3)
    for sample in info.samples(rng, np.float64):
        wrt = info.grad_indices(sample)
        assert wrt, f"{info.name}: differentiable but no floating argument"
        check_vjp(lambda *xs, attrs=sample.attrs: info.fn(*xs, **attrs), sample.args, wrt, rng,
                  eps=EPS, rtol=info.fd_rtol, atol=1e-7, scale_atol=True, allow_unused=True,
                  what=f"{info.name} {sample.attrs}")


def test_every_registered_op_has_an_opinfo_and_every_vjp_is_checked():
    # (the collectives' entries are checked under mpiexec: tests/distributed)
    by_name = {i.op.name: i for i in PRIMITIVE_INFOS + list(COLLECTIVES)}
    missing = sorted(set(ops.REGISTRY) - set(by_name))
    assert not missing, f"ops without an OpInfo entry: {missing}"
    for name, op in ops.REGISTRY.items():
        info = by_name[name]
        assert info.op is op
        # An op with a vjp must be FD-checked; one without must not claim to be.
        assert info.differentiable == (op.vjp is not None), name
    names = [i.name for i in OPINFOS]
    assert len(names) == len(set(names)), "duplicate OpInfo names"


def test_every_opinfo_sample_is_used():
    # A differentiable entry whose samples have no floating argument would check nothing.
    for info in DIFFERENTIABLE:
        for sample in info.samples(np.random.default_rng(0), np.float64):
            assert info.grad_indices(sample), info.name


# ------------------------------------------------------------------------------------ errors


class _raises:  # noqa: N801 (used like pytest.raises)
    """pytest.raises that also checks the message holds every fragment."""

    def __init__(self, cls, *fragments):
        self.cls, self.fragments = cls, fragments

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        assert kind is not None, f"did not raise {self.cls.__name__}"
        assert issubclass(kind, self.cls), f"raised {kind.__name__}: {exc}, not {self.cls}"
        for fragment in self.fragments:
            assert fragment in str(exc), f"{fragment!r} not in {str(exc)!r}"
        return True


def _here(offset: int = 1) -> str:
    """`test_ops.py:N` for the line `offset` lines below the caller's."""
    import inspect

    return f"test_ops.py:{inspect.currentframe().f_back.f_lineno + offset}"


def test_matmul_shape_error_names_op_shapes_and_line():
    a, b = lucid.ones(3, 4), lucid.ones(5, 2)
    with _raises(lucid.ShapeError, "matmul", "f32[3,4]", "f32[5,2]", "4 and 5", _here()):
        a @ b


def test_matmul_primitive_shape_error():
    a, b = lucid.ones(3, 4), lucid.ones(5, 2)
    with _raises(lucid.ShapeError, "matmul", "f32[3,4]", "f32[5,2]", _here()):
        ops.matmul(a, b)


def test_binary_broadcast_error_without_grad():
    a, b = lucid.ones(3, 4), lucid.ones(5, dtype=lucid.float64)
    with _raises(lucid.ShapeError, "add", "f64[3,4]", "f64[5]", _here()):
        a + b


def test_binary_broadcast_error_with_grad():
    a, b = lucid.ones(3, 4, requires_grad=True), lucid.ones(5)
    with _raises(lucid.ShapeError, "mul", "f32[3,4]", "f32[5]", _here()):
        a * b


def test_where_broadcast_error():
    c, x = lucid.ones(3, 4).bool(), lucid.ones(2, 4)
    with _raises(lucid.ShapeError, "where", "f32[2,4]", _here()):
        lucid.where(c, x, 0.0)


def test_reshape_error():
    x = lucid.ones(3, 4)
    with _raises(lucid.ShapeError, "reshape", "f32[3,4]", "12 elements", _here()):
        x.reshape(5, 3)


def test_concat_error():
    a, b = lucid.ones(2, 3), lucid.ones(3, 4)
    with _raises(lucid.ShapeError, "concat", "f32[2,3]", "f32[3,4]", _here()):
        lucid.cat([a, b], dim=1)


def test_sum_axis_error():
    x = lucid.ones(3, 4)
    with _raises(lucid.ShapeError, "dim 2", "f32[3,4]", _here()):
        x.sum(dim=2)


@pytest.mark.parametrize("op, avals, fragments", [
    (ops.exp, [((3,), np.int64)], ["exp", "i64[3]", "floating"]),
    (ops.add, [((3, 4), np.float32), ((3, 4), np.float64)], ["add", "f32[3,4]", "f64[3,4]"]),
    (ops.sub, [((2,), np.bool_), ((2,), np.bool_)], ["sub", "bool[2]"]),
    (ops.matmul, [((3, 4), np.float32), ((4, 2), np.float64)], ["matmul", "f32[3,4]"]),
    (ops.where, [((2,), np.float32), ((2,), np.float32), ((2,), np.float32)],
     ["where", "f32[2]", "bool"]),
    (ops.div, [((2,), np.int64), ((2,), np.int64)], ["div", "i64[2]", "floating"]),
], ids=["exp-int", "add-mixed", "sub-bool", "matmul-mixed", "where-cond", "div-int"])
def test_dtype_errors_from_shape_rules(op, avals, fragments):
    args = [Tensor(np.zeros(shape, dtype)) for shape, dtype in avals]
    with _raises(lucid.DTypeError, *fragments, _here()):
        check_infer(op, *args)


def test_shape_rule_errors_name_the_user_line():
    x, y = lucid.ones(3, 4), lucid.ones(4, 3)
    with _raises(lucid.ShapeError, "add", "f32[3,4]", "f32[4,3]", _here()):
        check_infer(ops.add, x, y)
    with _raises(lucid.ShapeError, "permute", "f32[3,4]", _here()):
        check_infer(ops.permute, x, axes=(0, 0))
    with _raises(lucid.ShapeError, "broadcast_to", "f32[3,4]", _here()):
        check_infer(ops.broadcast_to, x, shape=(4, 4))
    with _raises(lucid.ShapeError, "max", "f32[3,4]", _here()):
        check_infer(ops.max, x, axes=(2,))


def test_error_line_reflects_the_caller_not_a_fixed_number():
    # The same failing call from two lines must report two different line numbers.
    messages = []
    for _ in range(1):
        try:
            lucid.ones(2, 3) @ lucid.ones(2, 3)
        except lucid.ShapeError as exc:
            messages.append(str(exc))
        try:
            lucid.ones(2, 3) @ lucid.ones(2, 3)
        except lucid.ShapeError as exc:
            messages.append(str(exc))
    lines = [re.search(r"test_ops\.py:(\d+)", m).group(1) for m in messages]
    assert int(lines[1]) - int(lines[0]) == 4
