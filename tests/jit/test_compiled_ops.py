"""Every OpInfo entry and sample, compiled: `lucid.compile(lambda *xs: entry.fn(*xs, **attrs))`
against the eager call.

For each sample: the forward output (dtype, shape, values within the entry's tolerance) on two
calls with different inputs (the second must reuse the cached entry, so a graph that baked the
first call's inputs in as constants fails); for differentiable entries the inputs' `.grad`s after
`out.backward(gradient)`; the traced forward and backward graphs pass `verify`, and the default
pipeline preserves them (`assert_pipeline_preserves` on random inputs, or on the call's own inputs
where a graph has integer inputs, which random integers would index out of bounds with); and every
sample compiles to one graph (the primitive under test among its nodes), with no graph break.
No OpInfo entry breaks the graph; boolean-mask indexing (not in the table) does, and a test checks
that it falls back to eager with a reason.
"""

from __future__ import annotations

import numpy as np
import pytest

import lucid
from lucid import Tensor
from lucid_jit.cache.run import backward_inputs
from lucid_jit.ir import Graph, interpret, verify
from lucid_jit.passes import run_pipeline
from lucid_jit.tracing import pytree
from tests.helpers import assert_same_tensor, sample_tensors
from tests.jit.graphs import assert_pipeline_preserves
from tests.opinfo import OPINFOS, OpInfo, baked, opinfo_cases, opinfo_sample

DTYPES = [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]

def _call(compiled, info: OpInfo, index: int, args):
    return compiled(*args)


def _input_arrays(entry, args) -> list[np.ndarray]:
    """The forward graph's input arrays for a call (what the entry itself passes its backend)."""
    flat: list = []
    pytree.flatten((tuple(args), {}), flat)
    arrays = entry.check(flat)
    assert arrays is not None, "the entry's guards reject the call it was traced for"
    return arrays


def _backward_arrays(entry, args, forward_arrays, seed: np.ndarray) -> list[np.ndarray]:
    """The backward graph's inputs for a call: the output gradient, the forward's saved values,
    and captured tensors (as the entry's backward runner assembles them)."""
    flat: list = []
    pytree.flatten((tuple(args), {}), flat)
    return backward_inputs(entry, flat, interpret(entry.traced, forward_arrays), [seed])


def _assert_graph_ok(graph: Graph, arrays: list[np.ndarray], what: str) -> None:
    """verify, and the default pipeline keeps the interpreter's results: on random inputs, or on
    the call's own inputs where an input is an integer (random integers may index out of
    bounds)."""
    verify(graph, what)
    if all(np.dtype(v.dtype).kind == "f" for v in graph.inputs):
        with np.errstate(all="ignore"):  # random inputs leave log's and sqrt's domain
            assert_pipeline_preserves(graph)
        return
    lucid.manual_seed(11)
    expected = interpret(graph, arrays)
    optimized, _ = run_pipeline(graph, verify=True)
    lucid.manual_seed(11)
    actual = interpret(optimized, arrays)
    assert len(actual) == len(expected)
    for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
        a, e = np.asarray(a), np.asarray(e)
        assert (a.shape, a.dtype) == (e.shape, e.dtype), f"{what} output {i}"
        np.testing.assert_allclose(a, e, rtol=1e-6, err_msg=f"{what} output {i}")


def _assert_one_graph(compiled, info: OpInfo, n_entries: int) -> None:
    assert len(compiled.entries) == n_entries, compiled.recompiles
    for entry in compiled.entries:
        assert entry.kind == "compiled", f"graph break: {entry.reason} ({entry.location})"
    if info.op is not None:  # the primitive itself is in the graph, not folded away eagerly
        assert info.op.name in {n.op.name for n in compiled.entries[-1].traced.nodes}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("info, index", opinfo_cases(OPINFOS))
def test_compiled_forward_matches_eager(info: OpInfo, index: int, dtype):
    first = opinfo_sample(info, index, dtype, seed=0)
    compiled = lucid.compile(baked(info, first.attrs))
    for call, seed in enumerate((0, 1)):  # the second call has new values, same signature
        sample = opinfo_sample(info, index, dtype, seed)
        lucid.manual_seed(7 + call)  # random ops draw the same numbers eagerly and compiled
        expected = info.fn(*sample_tensors(sample.args), **first.attrs)
        lucid.manual_seed(7 + call)
        args = sample_tensors(sample.args)
        actual = _call(compiled, info, index, args)
        assert_same_tensor(actual, expected, info.rtol, info.atol, f"{info.name} call {call}")
        if info.check is not None:
            info.check(actual.numpy(), sample.attrs)
        _assert_one_graph(compiled, info, n_entries=1)
    entry = compiled.entries[-1]
    assert entry.backward_traced is None  # nothing requires grad: no backward graph
    _assert_graph_ok(entry.traced, _input_arrays(entry, args), f"{info.name} forward")


@pytest.mark.parametrize("info, index", opinfo_cases([i for i in OPINFOS if i.differentiable]))
def test_compiled_backward_matches_eager(info: OpInfo, index: int, dtype=np.float32):
    # float32 only (the forward test covers both dtypes): the vjps traced are the eager ones.
    first = opinfo_sample(info, index, dtype, seed=0)
    compiled = lucid.compile(baked(info, first.attrs))
    rng = np.random.default_rng(5)
    for call, seed in enumerate((0, 1)):
        sample = opinfo_sample(info, index, dtype, seed)
        wrt = info.grad_indices(sample)
        eager_args = sample_tensors(sample.args, requires=wrt)
        args = sample_tensors(sample.args, requires=wrt)
        expected = info.fn(*eager_args, **first.attrs)
        actual = _call(compiled, info, index, args)
        _assert_one_graph(compiled, info, n_entries=1)
        forward_arrays = _input_arrays(compiled.entries[-1], args)  # before .grad is set
        assert_same_tensor(actual, expected, info.rtol, info.atol, f"{info.name} call {call}")
        assert actual.requires_grad
        gradient = rng.standard_normal(expected.shape).astype(expected.dtype)
        expected.backward(Tensor(gradient))
        actual.backward(Tensor(gradient))
        for i in wrt:
            want, got = eager_args[i].grad, args[i].grad
            if want is None:
                assert got is None, f"{info.name}: argument {i} has a gradient, eagerly none"
                continue
            assert got is not None, f"{info.name}: no gradient for argument {i}"
            assert_same_tensor(got, want, info.rtol, info.atol,
                               f"{info.name} call {call} grad of argument {i}")
    entry = compiled.entries[-1]
    assert entry.backward_traced is not None
    _assert_graph_ok(entry.traced, forward_arrays, f"{info.name} forward")
    _assert_graph_ok(entry.backward_traced,
                     _backward_arrays(entry, args, forward_arrays, gradient),
                     f"{info.name} backward")


def test_boolean_mask_indexing_falls_back_to_eager_with_a_reason():
    # x[x > 0] has a data-dependent shape: the trace needs the mask's values, so it breaks.
    compiled = lucid.compile(lambda x: x[x > 0].sum())
    for seed in (0, 1):
        x = np.random.default_rng(seed).standard_normal((4, 5)).astype(np.float32)
        out = compiled(Tensor(x))
        np.testing.assert_allclose(out.numpy(), x[x > 0].sum(), rtol=1e-6)
    assert len(compiled.entries) == 1
    (entry,) = compiled.entries
    assert entry.kind == "eager"
    assert "needs a tensor's value" in entry.reason
    assert "test_compiled_ops.py" in entry.location
    assert compiled.ir().startswith("# ")  # the printed IR says it runs eagerly, and why
    assert entry.reason in compiled.ir()


def test_nll_loss_compiles_with_an_argument_target():
    import lucid.nn.functional as F  # noqa: N812

    x, target = lucid.randn(4, 5), lucid.tensor(np.array([1, 0, 3, 2]))
    compiled = lucid.compile(lambda x, t: F.nll_loss(x, t))
    out = compiled(x, target)
    np.testing.assert_allclose(out.numpy(), F.nll_loss(x, target).numpy(), rtol=1e-6)
    assert compiled.entries[-1].kind == "compiled"


# Bool operands, as PyTorch treats them: add is "or", mul is "and", maximum/minimum likewise;
# a bool tensor with an int promotes to int64; sums of bools count.
_BOOL_PROGRAMS = {
    "add": (lambda a, b: a + b, [True, True, True, False]),
    "mul": (lambda a, b: a * b, [True, False, False, False]),
    "mul-sub-int": (lambda a, b: a * b - 1, [0, -1, -1, -1]),
    "maximum": (lambda a, b: lucid.maximum(a, b), [True, True, True, False]),
    "minimum": (lambda a, b: lucid.minimum(a, b), [True, False, False, False]),
    "sum-of-product": (lambda a, b: (a * b).sum(), 1),
    "max": (lambda a, b: (a + b).amax(), True),
    "mixed": (lambda a, b: (a * b + a).float() * 2.0 + b.sum(), [4.0, 4.0, 2.0, 2.0]),
}


@pytest.mark.parametrize("name", list(_BOOL_PROGRAMS))
def test_bool_arithmetic_compiles_as_it_runs_eagerly(name):
    fn, expected = _BOOL_PROGRAMS[name]
    a, b = lucid.tensor([True, True, False, False]), lucid.tensor([True, False, True, False])
    eager = fn(a, b)
    assert eager.tolist() == expected
    compiled = lucid.compile(fn)
    for _ in range(3):  # the Python tier, then the native tier
        out = compiled(a, b)
        assert out.dtype == eager.dtype and out.tolist() == expected


def test_bool_ops_pytorch_refuses_are_refused_eagerly_and_compiled():
    a = lucid.tensor([True, False])
    for fn, name in ((lambda t: t - t, "sub"), (lambda t: -t, "neg"), (lambda t: t.abs(), "abs"),
                     (lambda t: t.relu(), "relu")):
        with pytest.raises(lucid.DTypeError, match=rf"{name}: bool\[2\]"):
            fn(a)
        with pytest.raises(lucid.DTypeError, match=rf"{name}: bool\[2\]"):
            lucid.compile(fn)(a)
