"""The passes: golden IR for every pass and every simplification rule, one table of cases; the
pipeline preserving the reference interpreter's results on every graph here; random ops kept,
never merged and drawn in order; the 64-element folding limit; the runner's stats, verifier and
`LUCID_JIT_LOG=passes` output."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from lucid_jit.ir import Graph, VerifyError, format_graph
from lucid_jit.passes import PASSES, PIPELINES, PassStat, register, run_pipeline
from lucid_jit.passes.fold import MAX_ELEMENTS
from tests.jit.graphs import assert_pipeline_preserves, build

F32, F64, I64 = np.dtype("float32"), np.dtype("float64"), np.dtype("int64")


def ones(b, shape, dtype=F32):
    return b.full(shape=shape, value=1, dtype=dtype)


def zeros(b, shape, dtype=F32):
    return b.full(shape=shape, value=0, dtype=dtype)


def normal(b, shape):
    return b.normal(shape=shape, mean=0.0, std=1.0, dtype=F32)


@dataclass(frozen=True)
class Case:
    id: str
    passes: str  # a pass name, or a pipeline name
    fn: Callable
    avals: str  # the inputs' avals, space separated
    expected: str  # format_graph of the result

    def graph(self) -> Graph:
        return build(self.fn, *self.avals.split())


def _apply(name: str, graph: Graph) -> Graph:
    return PASSES[name](graph) if name in PASSES else run_pipeline(graph, name, verify=True)[0]


def dead_chain(b, x):
    b.exp(b.neg(x))
    return b.relu(x)


def unused_draws(b, x):
    b.uniform(shape=(2,), low=0.0, high=1.0, dtype=F32)
    b.exp(normal(b, (3,)))
    return x


def draws_in_order(b, x):
    b.uniform(shape=(5,), low=0.0, high=1.0, dtype=F32)  # unused, but it advances the generator
    return b.add(x, normal(b, (3,)))


def mlp(b, x, w, bias):
    h = b.add(b.matmul(x, w), b.broadcast_to(b.reshape(bias, shape=(1, 5)), shape=(4, 5)))
    h = b.mul(b.relu(h), b.broadcast_to(b.const(1.0), shape=(4, 5)))
    t = b.permute(b.permute(h, axes=(1, 0)), axes=(1, 0))
    scale = b.broadcast_to(b.div(b.const(1.0), b.const(4.0)), shape=(5,))
    loss = b.mul(b.sum(t, axes=(0,), keepdims=False), scale)
    return loss, b.neg(b.neg(b.sum(h, axes=(0,), keepdims=False)))


def int_graph(b, i):
    j = b.mul(b.add(i, zeros(b, (4,), I64)), b.broadcast_to(b.const(3, "int64"), shape=(4,)))
    total = b.sum(b.cast(j, dtype=I64), axes=None, keepdims=False)
    return total, b.gt(j, b.sub(i, ones(b, (4,), I64)))


CASES = [
    # ------------------------------------------------------------------ simplify: identities
    Case("mul_one_full", "simplify", lambda b, x: b.mul(x, ones(b, (4, 3))), "f32[4,3]", """
        graph(%0: f32[4,3] x):
          %1: f32[4,3] = full {shape=(4, 3), value=1, dtype=float32}
          return %0
    """),
    Case("one_mul_full", "simplify", lambda b, x: b.mul(ones(b, (4, 3)), x), "f32[4,3]", """
        graph(%0: f32[4,3] x):
          %1: f32[4,3] = full {shape=(4, 3), value=1, dtype=float32}
          return %0
    """),
    Case("mul_one_broadcast_const", "simplify",
         lambda b, x: b.mul(x, b.broadcast_to(b.const(1.0), shape=(4, 3))), "f32[4,3]", """
        graph(%0: f32[4,3] x):
          %1: f32[] = const 1.0
          %2: f32[4,3] = full {shape=(4, 3), value=1.0, dtype=float32}
          return %0
    """),
    Case("mul_one_const_array", "simplify",
         lambda b, x: b.mul(x, b.const([1.0, 1.0, 1.0])), "f32[3]", """
        graph(%0: f32[3] x):
          %1: f32[3] = const [1., 1., 1.]
          return %0
    """),
    Case("add_zero", "simplify", lambda b, x: b.add(x, zeros(b, (3,))), "f32[3]", """
        graph(%0: f32[3] x):
          %1: f32[3] = full {shape=(3,), value=0, dtype=float32}
          return %0
    """),
    Case("zero_add", "simplify", lambda b, x: b.add(zeros(b, (3,)), x), "f32[3]", """
        graph(%0: f32[3] x):
          %1: f32[3] = full {shape=(3,), value=0, dtype=float32}
          return %0
    """),
    Case("sub_zero", "simplify", lambda b, x: b.sub(x, zeros(b, (3,))), "f32[3]", """
        graph(%0: f32[3] x):
          %1: f32[3] = full {shape=(3,), value=0, dtype=float32}
          return %0
    """),
    Case("div_one", "simplify", lambda b, x: b.div(x, ones(b, (3,))), "f32[3]", """
        graph(%0: f32[3] x):
          %1: f32[3] = full {shape=(3,), value=1, dtype=float32}
          return %0
    """),
    Case("int_add_zero", "simplify", lambda b, x: b.add(x, zeros(b, (3,), I64)), "i64[3]", """
        graph(%0: i64[3] x):
          %1: i64[3] = full {shape=(3,), value=0, dtype=int64}
          return %0
    """),
    Case("zero_sub_kept", "simplify", lambda b, x: b.sub(zeros(b, (3,)), x), "f32[3]", """
        graph(%0: f32[3] x):
          %1: f32[3] = full {shape=(3,), value=0, dtype=float32}
          %2: f32[3] = sub %1 %0
          return %2
    """),
    Case("one_div_kept", "simplify", lambda b, x: b.div(ones(b, (3,)), x), "f32[3]", """
        graph(%0: f32[3] x):
          %1: f32[3] = full {shape=(3,), value=1, dtype=float32}
          %2: f32[3] = div %1 %0
          return %2
    """),
    Case("mul_two_kept", "simplify",
         lambda b, x: b.mul(x, b.full(shape=(3,), value=2.0, dtype=F32)), "f32[3]", """
        graph(%0: f32[3] x):
          %1: f32[3] = full {shape=(3,), value=2.0, dtype=float32}
          %2: f32[3] = mul %0 %1
          return %2
    """),
    Case("mul_mixed_const_kept", "simplify",
         lambda b, x: b.mul(x, b.const([1.0, 2.0, 1.0])), "f32[3]", """
        graph(%0: f32[3] x):
          %1: f32[3] = const [1., 2., 1.]
          %2: f32[3] = mul %0 %1
          return %2
    """),
    Case("identity_feeds_users", "simplify",
         lambda b, x: (b.exp(b.mul(x, ones(b, (3,)))), b.add(x, zeros(b, (3,)))), "f32[3]", """
        graph(%0: f32[3] x):
          %1: f32[3] = full {shape=(3,), value=1, dtype=float32}
          %2: f32[3] = exp %0
          %3: f32[3] = full {shape=(3,), value=0, dtype=float32}
          return %2, %0
    """),
    # ------------------------------------------------------------------ simplify: structure
    Case("neg_neg", "simplify", lambda b, x: b.neg(b.neg(x)), "f32[3]", """
        graph(%0: f32[3] x):
          %1: f32[3] = neg %0
          return %0
    """),
    Case("neg_neg_neg", "simplify", lambda b, x: b.neg(b.neg(b.neg(x))), "f32[3]", """
        graph(%0: f32[3] x):
          %1: f32[3] = neg %0
          %2: f32[3] = neg %0
          return %2
    """),
    Case("permute_permute", "simplify",
         lambda b, x: b.permute(b.permute(x, axes=(1, 2, 0)), axes=(1, 2, 0)), "f32[2,3,4]", """
        graph(%0: f32[2,3,4] x):
          %1: f32[3,4,2] = permute %0 {axes=(1, 2, 0)}
          %2: f32[4,2,3] = permute %0 {axes=(2, 0, 1)}
          return %2
    """),
    Case("permute_permute_identity", "simplify",
         lambda b, x: b.permute(b.permute(x, axes=(1, 2, 0)), axes=(2, 0, 1)), "f32[2,3,4]", """
        graph(%0: f32[2,3,4] x):
          %1: f32[3,4,2] = permute %0 {axes=(1, 2, 0)}
          return %0
    """),
    Case("permute_identity", "simplify", lambda b, x: b.permute(x, axes=(0, 1)), "f32[2,3]", """
        graph(%0: f32[2,3] x):
          return %0
    """),
    Case("reshape_reshape", "simplify",
         lambda b, x: b.reshape(b.reshape(x, shape=(6,)), shape=(3, 2)), "f32[2,3]", """
        graph(%0: f32[2,3] x):
          %1: f32[6] = reshape %0 {shape=(6,)}
          %2: f32[3,2] = reshape %0 {shape=(3, 2)}
          return %2
    """),
    Case("reshape_reshape_identity", "simplify",
         lambda b, x: b.reshape(b.reshape(x, shape=(6,)), shape=(2, 3)), "f32[2,3]", """
        graph(%0: f32[2,3] x):
          %1: f32[6] = reshape %0 {shape=(6,)}
          return %0
    """),
    Case("reshape_same", "simplify", lambda b, x: b.reshape(x, shape=(2, 3)), "f32[2,3]", """
        graph(%0: f32[2,3] x):
          return %0
    """),
    Case("cast_same", "simplify", lambda b, x: b.cast(x, dtype=F32), "f32[3]", """
        graph(%0: f32[3] x):
          return %0
    """),
    Case("cast_other_kept", "simplify", lambda b, x: b.cast(x, dtype=F64), "f32[3]", """
        graph(%0: f32[3] x):
          %1: f64[3] = cast %0 {dtype=float64}
          return %1
    """),
    Case("broadcast_same", "simplify", lambda b, x: b.broadcast_to(x, shape=(3,)), "f32[3]", """
        graph(%0: f32[3] x):
          return %0
    """),
    Case("broadcast_broadcast", "simplify",
         lambda b, x: b.broadcast_to(b.broadcast_to(x, shape=(1, 3)), shape=(2, 4, 3)),
         "f32[3]", """
        graph(%0: f32[3] x):
          %1: f32[1,3] = broadcast_to %0 {shape=(1, 3)}
          %2: f32[2,4,3] = broadcast_to %0 {shape=(2, 4, 3)}
          return %2
    """),
    Case("broadcast_scalar_const", "simplify",
         lambda b, x: b.add(x, b.broadcast_to(b.const(2.5), shape=(2, 3))), "f32[2,3]", """
        graph(%0: f32[2,3] x):
          %1: f32[] = const 2.5
          %2: f32[2,3] = full {shape=(2, 3), value=2.5, dtype=float32}
          %3: f32[2,3] = add %0 %2
          return %3
    """),
    Case("broadcast_size1_const", "simplify",
         lambda b, x: b.add(x, b.broadcast_to(b.const([[2.5]]), shape=(2, 3))), "f32[2,3]", """
        graph(%0: f32[2,3] x):
          %1: f32[1,1] = const [[2.5]]
          %2: f32[2,3] = full {shape=(2, 3), value=2.5, dtype=float32}
          %3: f32[2,3] = add %0 %2
          return %3
    """),
    Case("broadcast_full", "simplify",
         lambda b, x: b.add(x, b.broadcast_to(b.full(shape=(3,), value=2.0, dtype=F32),
                                              shape=(2, 3))), "f32[2,3]", """
        graph(%0: f32[2,3] x):
          %1: f32[3] = full {shape=(3,), value=2.0, dtype=float32}
          %2: f32[2,3] = full {shape=(2, 3), value=2.0, dtype=float32}
          %3: f32[2,3] = add %0 %2
          return %3
    """),
    Case("broadcast_array_const_kept", "simplify",
         lambda b, x: b.add(x, b.broadcast_to(b.const([1.0, 2.0, 3.0]), shape=(2, 3))),
         "f32[2,3]", """
        graph(%0: f32[2,3] x):
          %1: f32[3] = const [1., 2., 3.]
          %2: f32[2,3] = broadcast_to %1 {shape=(2, 3)}
          %3: f32[2,3] = add %0 %2
          return %3
    """),
    # ------------------------------------------------------------------ fold
    Case("fold_scalar_chain", "fold",
         lambda b, x: b.mul(x, b.broadcast_to(b.exp(b.const(0.0)), shape=(3,))), "f32[3]", """
        graph(%0: f32[3] x):
          %1: f32[] = const 0.0
          %2: f32[] = const 1.0
          %3: f32[3] = const [1., 1., 1.]
          %4: f32[3] = mul %0 %3
          return %4
    """),
    Case("fold_full_consumer", "fold",
         lambda b, x: b.add(x, b.add(ones(b, (2, 2)), ones(b, (2, 2)))), "f32[2,2]", """
        graph(%0: f32[2,2] x):
          %1: f32[2,2] = full {shape=(2, 2), value=1, dtype=float32}
          %2: f32[2,2] = full {shape=(2, 2), value=1, dtype=float32}
          %3: f32[2,2] = full {shape=(2, 2), value=2.0, dtype=float32}
          %4: f32[2,2] = add %0 %3
          return %4
    """),
    # Uniform operands fold to a fill at any size (the structure must not depend on it).
    Case("fold_uniform_at_any_size", "fold",
         lambda b, x: b.add(x, b.mul(ones(b, (300,)), ones(b, (300,)))), "f32[300]", """
        graph(%0: f32[300] x):
          %1: f32[300] = full {shape=(300,), value=1, dtype=float32}
          %2: f32[300] = full {shape=(300,), value=1, dtype=float32}
          %3: f32[300] = full {shape=(300,), value=1.0, dtype=float32}
          %4: f32[300] = add %0 %3
          return %4
    """),
    Case("fold_keeps_full", "fold", lambda b, x: b.add(x, ones(b, (2,))), "f32[2]", """
        graph(%0: f32[2] x):
          %1: f32[2] = full {shape=(2,), value=1, dtype=float32}
          %2: f32[2] = add %0 %1
          return %2
    """),
    Case("fold_64_elements", "fold",
         lambda b, x: b.add(x, b.broadcast_to(b.const(3.0), shape=(8, 8))), "f32[8,8]", """
        graph(%0: f32[8,8] x):
          %1: f32[] = const 3.0
          %2: f32[8,8] = const <64 values>
          %3: f32[8,8] = add %0 %2
          return %3
    """),
    Case("fold_65_elements_kept", "fold",
         lambda b, x: b.add(x, b.broadcast_to(b.const(3.0), shape=(65,))), "f32[65]", """
        graph(%0: f32[65] x):
          %1: f32[] = const 3.0
          %2: f32[65] = broadcast_to %1 {shape=(65,)}
          %3: f32[65] = add %0 %2
          return %3
    """),
    Case("fold_large_input_small_result", "fold",
         lambda b, x: b.mul(x, b.sum(b.full(shape=(100,), value=0.5, dtype=F32), axes=None,
                                     keepdims=False)), "f32[]", """
        graph(%0: f32[] x):
          %1: f32[100] = full {shape=(100,), value=0.5, dtype=float32}
          %2: f32[] = const 50.0
          %3: f32[] = mul %0 %2
          return %3
    """),
    Case("fold_int_compare", "fold",
         lambda b, x: b.where(b.broadcast_to(b.lt(b.const(1, "int64"), b.const(2, "int64")),
                                             shape=(3,)), x, b.neg(x)), "f32[3]", """
        graph(%0: f32[3] x):
          %1: i64[] = const 1
          %2: i64[] = const 2
          %3: bool[] = const True
          %4: bool[3] = const [ True,  True,  True]
          %5: f32[3] = neg %0
          %6: f32[3] = where %4 %0 %5
          return %6
    """),
    Case("fold_skips_random", "fold",
         lambda b, x: b.add(x, b.neg(normal(b, (3,)))), "f32[3]", """
        graph(%0: f32[3] x):
          %1: f32[3] = normal {shape=(3,), mean=0.0, std=1.0, dtype=float32}
          %2: f32[3] = neg %1
          %3: f32[3] = add %0 %2
          return %3
    """),
    # ------------------------------------------------------------------ cse
    Case("cse_same_op", "cse", lambda b, x: b.add(b.exp(x), b.exp(x)), "f32[3]", """
        graph(%0: f32[3] x):
          %1: f32[3] = exp %0
          %2: f32[3] = add %1 %1
          return %2
    """),
    Case("cse_transitive", "cse",
         lambda b, x: b.mul(b.neg(b.exp(x)), b.neg(b.exp(x))), "f32[3]", """
        graph(%0: f32[3] x):
          %1: f32[3] = exp %0
          %2: f32[3] = neg %1
          %3: f32[3] = mul %2 %2
          return %3
    """),
    Case("cse_attrs_differ", "cse",
         lambda b, x: (b.sum(x, axes=(0,), keepdims=False), b.sum(x, axes=(1,), keepdims=False),
                       b.sum(x, axes=(0,), keepdims=False)), "f32[3,3]", """
        graph(%0: f32[3,3] x):
          %1: f32[3] = sum %0 {axes=(0,), keepdims=False}
          %2: f32[3] = sum %0 {axes=(1,), keepdims=False}
          return %1, %2, %1
    """),
    Case("cse_consts", "cse",
         lambda b, x: b.add(b.mul(x, b.const([2.0, 2.0])), b.mul(x, b.const([2.0, 2.0]))),
         "f32[2]", """
        graph(%0: f32[2] x):
          %1: f32[2] = const [2., 2.]
          %2: f32[2] = mul %0 %1
          %3: f32[2] = add %2 %2
          return %3
    """),
    Case("cse_consts_dtype_differs", "cse",
         lambda b, x: (b.const(1.0, "float32"), b.const(1.0, "float64"), b.const(1.0)), "f32[]",
         """
        graph(%0: f32[] x):
          %1: f32[] = const 1.0
          %2: f64[] = const 1.0
          return %1, %2, %1
    """),
    Case("cse_keeps_normals", "cse",
         lambda b, x: b.add(normal(b, (3,)), normal(b, (3,))), "f32[3]", """
        graph(%0: f32[3] x):
          %1: f32[3] = normal {shape=(3,), mean=0.0, std=1.0, dtype=float32}
          %2: f32[3] = normal {shape=(3,), mean=0.0, std=1.0, dtype=float32}
          %3: f32[3] = add %1 %2
          return %3
    """),
    Case("cse_output_renamed", "cse", lambda b, x: (b.exp(x), b.exp(x)), "f32[3]", """
        graph(%0: f32[3] x):
          %1: f32[3] = exp %0
          return %1, %1
    """),
    # ------------------------------------------------------------------ dce
    Case("dce_dead_chain", "dce", dead_chain, "f32[3]", """
        graph(%0: f32[3] x):
          %1: f32[3] = relu %0
          return %1
    """),
    Case("dce_keeps_random", "dce", unused_draws, "f32[3]", """
        graph(%0: f32[3] x):
          %1: f32[2] = uniform {shape=(2,), low=0.0, high=1.0, dtype=float32}
          %2: f32[3] = normal {shape=(3,), mean=0.0, std=1.0, dtype=float32}
          return %0
    """),
    Case("dce_nothing_dead", "dce", lambda b, x: b.exp(x), "f32[3]", """
        graph(%0: f32[3] x):
          %1: f32[3] = exp %0
          return %1
    """),
    # ------------------------------------------------------------------ the default pipeline
    Case("default_identity_chain", "default",
         lambda b, x: b.mul(x, b.broadcast_to(b.exp(b.const(0.0)), shape=(3,))), "f32[3]", """
        graph(%0: f32[3] x):
          return %0
    """),
    Case("default_identities", "default",
         lambda b, x: (b.exp(b.mul(x, ones(b, (3,)))), b.add(x, zeros(b, (3,)))), "f32[3]", """
        graph(%0: f32[3] x):
          %1: f32[3] = exp %0
          return %1, %0
    """),
    Case("default_random_order", "default", draws_in_order, "f32[3]", """
        graph(%0: f32[3] x):
          %1: f32[5] = uniform {shape=(5,), low=0.0, high=1.0, dtype=float32}
          %2: f32[3] = normal {shape=(3,), mean=0.0, std=1.0, dtype=float32}
          %3: f32[3] = add %0 %2
          return %3
    """),
    Case("default_mlp", "default", mlp, "f32[4,3] f32[3,5] f32[5]", """
        graph(%0: f32[4,3] x, %1: f32[3,5] w, %2: f32[5] bias):
          %3: f32[4,5] = matmul %0 %1
          %4: f32[1,5] = reshape %2 {shape=(1, 5)}
          %5: f32[4,5] = broadcast_to %4 {shape=(4, 5)}
          %6: f32[4,5] = add %3 %5
          %7: f32[4,5] = relu %6
          %8: f32[5] = const [0.25, 0.25, 0.25, 0.25, 0.25]
          %9: f32[5] = sum %7 {axes=(0,), keepdims=False}
          %10: f32[5] = mul %9 %8
          return %10, %9
    """),
    Case("default_int", "default", int_graph, "i64[4]", """
        graph(%0: i64[4] i):
          %1: i64[4] = full {shape=(4,), value=3, dtype=int64}
          %2: i64[4] = mul %0 %1
          %3: i64[] = sum %2 {axes=None, keepdims=False}
          %4: i64[4] = full {shape=(4,), value=1, dtype=int64}
          %5: i64[4] = sub %0 %4
          %6: bool[4] = gt %2 %5
          return %3, %6
    """),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_golden_ir(case):
    result = _apply(case.passes, case.graph())
    assert format_graph(result) == textwrap.dedent(case.expected).strip("\n")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_pipeline_preserves_interpreter_results(case):
    assert_pipeline_preserves(case.graph())


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_default_pipeline_reaches_a_fixed_point(case):
    once, _ = run_pipeline(case.graph())
    twice, _ = run_pipeline(once)
    assert format_graph(twice) == format_graph(once)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_passes_leave_their_input_alone(case):
    graph = case.graph()
    before = format_graph(graph)
    for name in PASSES:
        PASSES[name](graph)
    assert format_graph(graph) == before


def test_a_pass_with_nothing_to_do_returns_its_input():
    graph = build(lambda b, x: b.exp(x), "f32[3]")
    for name in PASSES:
        assert PASSES[name](graph) is graph, name


def test_dce_keeps_random_ops_that_nothing_uses():
    graph, _ = run_pipeline(build(unused_draws, "f32[3]"))
    assert graph.count() == {"uniform": 1, "normal": 1}


def test_cse_does_not_merge_two_normals():
    graph = build(lambda b, x: b.add(normal(b, (3,)), normal(b, (3,))), "f32[3]")
    assert PASSES["cse"](graph).count()["normal"] == 2


@pytest.mark.parametrize("size", [MAX_ELEMENTS - 1, MAX_ELEMENTS, MAX_ELEMENTS + 1, 1000])
def test_fold_limit(size):
    graph = build(lambda b: b.neg(b.broadcast_to(b.const(3.0), shape=(size,))))
    folded = PASSES["fold"](graph)
    assert MAX_ELEMENTS == 64
    assert ("broadcast_to" in folded.count()) == (size > MAX_ELEMENTS)
    assert_pipeline_preserves(graph)


def test_log_passes_prints_a_title_and_the_graph_per_pass(monkeypatch, capsys):
    monkeypatch.setenv("LUCID_JIT_LOG", "passes")
    graph = build(lambda b, x: b.add(b.exp(x), b.exp(x)), "f32[3]")
    run_pipeline(graph, ["cse", "dce"])
    err = capsys.readouterr().err
    titles = re.findall(r"--- after (\w+) \((\d+\.\d\d) ms\): (\d+) -> (\d+) nodes", err)
    assert [(name, int(a), int(b)) for name, _, a, b in titles] == [("cse", 3, 2), ("dce", 2, 2)]
    assert err.count("%2: f32[3] = add %1 %1") == 2


def test_no_log_without_the_topic(monkeypatch, capsys):
    monkeypatch.setenv("LUCID_JIT_LOG", "recompiles")
    run_pipeline(build(lambda b, x: b.exp(x), "f32[3]"))
    assert capsys.readouterr().err == ""


def test_pass_stats_follow_the_pipeline():
    graph = build(lambda b, x: b.neg(b.neg(b.add(b.exp(x), b.exp(x)))), "f32[3]")
    result, stats = run_pipeline(graph)
    assert [s.name for s in stats] == PIPELINES["default"]
    assert all(isinstance(s, PassStat) and s.seconds >= 0 for s in stats)
    assert stats[0].nodes_before == 5 and stats[-1].nodes_after == len(result) == 2
    for prev, nxt in zip(stats, stats[1:], strict=False):
        assert prev.nodes_after == nxt.nodes_before


def test_verify_catches_a_broken_pass(monkeypatch):
    def drop_first_node(graph):
        return graph.replace(nodes=graph.nodes[1:])

    monkeypatch.setitem(PASSES, "broken", drop_first_node)
    graph = build(lambda b, x: b.neg(b.exp(x)), "f32[3]")
    run_pipeline(graph, ["broken"])  # unchecked
    with pytest.raises(VerifyError, match="after broken"):
        run_pipeline(graph, ["cse", "broken"], verify=True)


def test_unknown_names():
    graph = build(lambda b, x: b.exp(x), "f32[3]")
    with pytest.raises(KeyError, match="unknown pipeline 'fastest'"):
        run_pipeline(graph, "fastest")
    with pytest.raises(KeyError, match="unknown pass 'fuse_all'"):
        run_pipeline(graph, ["cse", "fuse_all"])
    with pytest.raises(ValueError, match="already registered"):
        register("cse")(lambda g: g)
