"""The fusion passes: golden decisions (the kernels each graph becomes) for the seed MLP's forward,
backward and training step, an elementwise chain, softmax, log-softmax and the losses; golden IR of
a small fused graph; convexity (merges that would make a cycle are refused and logged); no node
computed twice; random ops never fused; the decision log; and the reference interpreter giving the
same results before and after on every graph here."""

from __future__ import annotations

import re
import textwrap
from collections import Counter

import networkx as nx
import numpy as np
import pytest

import lucid
import lucid.nn as nn
import lucid.nn.functional as F  # noqa: N812
from lucid_jit.ir import CONST, Graph, format_graph, to_networkx, verify
from lucid_jit.ir.graph import FUSED
from lucid_jit.passes import PASSES, PIPELINES, fusion_log, fusion_report, run_pipeline
from lucid_jit.passes.fusion import is_free, make_fused
from tests.jit.graphs import assert_pipeline_preserves, build
from tests.models import NeuralNetwork

F32 = np.dtype("float32")
FUSION_PASSES = ["fuse_matmul_epilogue", "fuse_reduction", "fuse_elementwise", "dce"]


def fuse(graph: Graph) -> Graph:
    return run_pipeline(graph, "fusion", verify=True)[0]


def kernels(graph: Graph) -> list[str]:
    """One entry per kernel (a node that is not movement or a constant): a fused node as
    `kind(ops)` without the fills and broadcasts its loop reads for free, others by op name."""
    out = []
    for node in graph.nodes:
        if node.op.kind == "movement" or node.op is CONST:
            continue
        if node.op is FUSED:
            ops = ", ".join(m.op.name for m in node.body.nodes if not is_free(m))
            out.append(f"{node.attrs['kind']}({ops})")
        else:
            out.append(node.op.name)
    return out


def flat(graph: Graph):
    """Every node, fused bodies included (the fused nodes themselves left out)."""
    for node in graph.nodes:
        if node.op is FUSED:
            yield from flat(node.body)
        else:
            yield node


# ----------------------------------------------------------------------------- graphs


def small(b, x, w, bias):
    h = b.relu(b.add(b.matmul(x, w), b.broadcast_to(bias, shape=(2, 3))))
    s = b.sum(b.mul(x, x), axes=(1,), keepdims=False)
    return h, s, b.sub(b.exp(x), x)


def cycle_through_sum(b, x):
    """exp feeds the sum and the mul, the sum feeds the mul: {exp, mul} would wait on itself."""
    e = b.exp(x)
    s = b.sum(e, axes=(1,), keepdims=True)
    return b.mul(e, b.broadcast_to(s, shape=(4, 3)))


def siblings_through_matmul(b, x, w):
    """exp and neg are siblings (both read x), neg and add a chain; exp -> matmul -> add, so the
    three in one loop would wait on the matmul that waits on the loop."""
    return b.add(b.neg(x), b.matmul(b.exp(x), w))


def with_draws(b, x):
    n = b.normal(shape=(4, 3), mean=0.0, std=1.0, dtype=F32)
    u = b.uniform(shape=(4, 3), low=0.0, high=1.0, dtype=F32)
    return b.add(b.mul(x, n), b.exp(u))


def shared_fill(b, x, w):
    """One fill read by an elementwise group, a reduction and a matmul: each loop gets its own copy,
    the matmul keeps the node."""
    twos = b.full(shape=(4, 4), value=2.0, dtype=F32)
    y = b.exp(b.add(x, twos))
    return y, b.sum(b.mul(x, twos), axes=None, keepdims=False), b.matmul(twos, w)


BUILT = {
    "small": (small, "f32[2,4] f32[4,3] f32[3]"),
    "cycle_through_sum": (cycle_through_sum, "f32[4,3]"),
    "siblings_through_matmul": (siblings_through_matmul, "f32[4,4] f32[4,4]"),
    "with_draws": (with_draws, "f32[4,3]"),
    "shared_fill": (shared_fill, "f32[4,4] f32[4,4]"),
}


def built(name: str) -> Graph:
    fn, avals = BUILT[name]
    return build(fn, *avals.split())


def _trace(fn, *args) -> Graph:
    compiled = lucid.compile(fn)
    compiled(*args)
    return compiled.entries[-1].traced


@pytest.fixture(scope="module")
def traced() -> dict[str, Graph]:
    """Graphs traced by lucid.compile (its default pipeline not applied: `.traced`)."""
    lucid.manual_seed(0)
    model = NeuralNetwork(64, 128, 2)
    x = lucid.rand(32, 64)
    target = lucid.randint(0, 2, (32, 2), dtype=lucid.float32)
    criterion = nn.BCELoss()
    forward = lucid.compile(lambda x: model(x))
    criterion(forward(x), target).backward()
    entry = forward.entries[-1]
    graphs = {"mlp_forward": entry.traced, "mlp_backward": entry.backward_traced}

    optimizer = lucid.optim.Adam(model.parameters(), lr=0.01)

    @lucid.compile
    def train_step(x, target):
        loss = criterion(model(x), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    train_step(x, target)
    train_step(x, target)  # the steady state: Adam's state exists, the .grads are set
    graphs["mlp_step"] = train_step.entries[-1].traced

    a, w, bias = lucid.randn(8, 16), lucid.randn(8, 16), lucid.randn(16)
    labels = lucid.randint(0, 16, (8,))
    graphs["chain"] = _trace(lambda x, w, b: F.leaky_relu(x * w + b) * F.sigmoid(x) + F.tanh(x),
                             a, w, bias)
    graphs["linear_leaky_relu"] = _trace(lambda x, w, b: F.leaky_relu(x @ w + b), a,
                                         lucid.randn(16, 4), lucid.randn(4))
    graphs["softmax"] = _trace(lambda x: F.softmax(x, dim=1), a)
    graphs["log_softmax"] = _trace(lambda x: F.log_softmax(x, dim=1), a)
    graphs["cross_entropy"] = _trace(lambda x, t: F.cross_entropy(x, t), a, labels)
    graphs["bce"] = _trace(lambda x, t: criterion(F.sigmoid(x), t), a, lucid.rand(8, 16))
    graphs["sum_of_squares"] = _trace(lambda x: (x * x).sum(), a)
    return graphs


TRACED = ["mlp_forward", "mlp_backward", "mlp_step", "chain", "linear_leaky_relu", "softmax",
          "log_softmax", "cross_entropy", "bce", "sum_of_squares"]


def all_graphs(traced) -> list[Graph]:
    return [built(name) for name in BUILT] + [traced[name] for name in TRACED]


# ----------------------------------------------------------------------------- golden decisions

GOLDEN_KERNELS = {
    # Linear -> ReLU -> Linear -> Sigmoid: two kernels, the sigmoid in the second epilogue.
    "mlp_forward": ["matmul_epilogue(matmul, add, relu)",
                    "matmul_epilogue(matmul, add, sigmoid)"],
    # The sigmoid's backward feeds the fc2 bias gradient's sum (and, as another output of that
    # kernel, both gradient matmuls); ReLU's mask is the epilogue of the matmul producing its
    # gradient; fc1's bias gradient sum reads that epilogue's result. The weight gradients are
    # computed in the weights' layout (g^T x rather than (x^T g)^T, see simplify).
    "mlp_backward": ["reduction(sub, mul, mul, sum)", "matmul_epilogue(matmul, gt, where)",
                     "matmul", "sum", "matmul"],
    "chain": ["elementwise(mul, add, gt, mul, where, sigmoid, mul, tanh, add)"],
    # leaky_relu is a diamond, where(x > 0, x, x * slope): the epilogue takes it whole.
    "linear_leaky_relu": ["matmul_epilogue(matmul, add, gt, mul, where)"],
    "softmax": ["max", "reduction(sub, exp, sum)", "elementwise(div)"],
    "log_softmax": ["max", "reduction(sub, exp, sum, log)", "elementwise(sub)"],
    # The gather's row index is computed from the targets, which the loss's sum reads too: the
    # `ne` mask cannot join that sum (cycle through the getitem), nor the weight sum's division.
    "cross_entropy": ["max", "reduction(sub, exp, sum, log)", "elementwise(sub)",
                      "elementwise(ne, where)", "getitem", "reduction(cast, neg, mul, sum)",
                      "reduction(sum, div)"],
    "bce": ["reduction(sigmoid, gt, where, log, where, maximum, mul, sub, sub, gt, where, log, "
            "where, maximum, mul, add, neg, sum, div)"],
    "sum_of_squares": ["reduction(mul, sum)"],
}


@pytest.mark.parametrize("name", list(GOLDEN_KERNELS))
def test_golden_kernels(traced, name):
    assert kernels(fuse(traced[name])) == GOLDEN_KERNELS[name]


def test_mlp_forward_is_two_matmul_epilogues(traced):
    before = run_pipeline(traced["mlp_forward"])[0]
    after = fuse(traced["mlp_forward"])
    assert len(kernels(before)) == 6 and len(kernels(after)) == 2
    assert after.count() == {"permute": 2, "fused": 2}
    second = after.nodes[-1].body
    assert [n.op.name for n in second.nodes] == ["matmul", "broadcast_to", "add", "sigmoid"]


def test_mlp_training_step(traced):
    graph = traced["mlp_step"]
    result = fuse(graph)
    found = kernels(result)
    assert len(kernels(run_pipeline(graph)[0])) == 153 and len(found) == 10
    kinds = Counter(k.split("(")[0] for k in found)
    assert kinds == {"matmul_epilogue": 5, "reduction": 3, "elementwise": 1, "cast": 1}
    # The weight gradients come out in the weights' layout, so each weight's Adam update is
    # its gradient matmul's epilogue.
    adam = "matmul_epilogue(matmul, mul, mul, add, mul, mul, mul, add, sqrt, div, add, div, " \
           "mul, sub)"
    assert found.count(adam) == 2
    # The forward as in the forward graph, ReLU's backward mask after the gradient matmul.
    assert found[:2] == GOLDEN_KERNELS["mlp_forward"]
    assert "matmul_epilogue(matmul, gt, where)" in found
    # The loss: BCE's elementwise body, its sum and the mean's division, one kernel.
    loss = next(k for k in found if k.startswith("reduction(gt"))
    assert loss.endswith("neg, sum, div)")
    # The bias gradients' sums carry the Adam updates of the biases as epilogues.
    assert sum(k.startswith("reduction(sum, mul, mul, add") for k in found) == 1
    assert_pipeline_preserves(graph, "fusion")


# ----------------------------------------------------------------------------- golden IR


def test_golden_ir_of_a_small_graph():
    assert format_graph(fuse(built("small"))) == textwrap.dedent("""\
        graph(%0: f32[2,4] x, %1: f32[4,3] w, %2: f32[3] bias):
          %3: f32[2,3] = fused %0 %1 %2 {kind='matmul_epilogue', name='fused_0'}
            body(%4: f32[2,4], %5: f32[4,3], %6: f32[3]):
              %7: f32[2,3] = matmul %4 %5
              %8: f32[2,3] = broadcast_to %6 {shape=(2, 3)}
              %9: f32[2,3] = add %7 %8
              %3: f32[2,3] = relu %9
              return %3
          %10: f32[2] = fused %0 {kind='reduction', name='fused_1'}
            body(%11: f32[2,4]):
              %12: f32[2,4] = mul %11 %11
              %10: f32[2] = sum %12 {axes=(1,), keepdims=False}
              return %10
          %13: f32[2,4] = fused %0 {kind='elementwise', name='fused_2'}
            body(%14: f32[2,4]):
              %15: f32[2,4] = exp %14
              %13: f32[2,4] = sub %15 %14
              return %13
          return %3, %10, %13""")


def test_fused_node_shape():
    result = fuse(built("small"))
    for node in result.nodes:
        assert node.op is FUSED and node.op.pure and node.body is not None
        assert [v.aval for v in node.body.inputs] == [v.aval for v in node.inputs]
        assert not {v.id for v in node.body.inputs} & {v.id for v in node.inputs}
        assert [v.aval for v in node.body.outputs] == [v.aval for v in node.outputs]
        assert node.attrs["kind"] in ("elementwise", "matmul_epilogue", "reduction")


# ----------------------------------------------------------------------------- legality


def test_a_merge_that_would_make_a_cycle_is_refused():
    graph = built("cycle_through_sum")
    # exp, broadcast_to, mul: what fusing every elementwise edge of one shape would make
    naive = nx.quotient_graph(to_networkx(graph), [{0, 2, 3}, {1}, {"in0"}])
    assert not nx.is_directed_acyclic_graph(naive)

    result = verify(PASSES["fuse_elementwise"](graph))
    assert [n.op.name for n in result.nodes] == ["exp", "sum", "fused"]
    assert [n.op.name for n in result.nodes[2].body.nodes] == ["broadcast_to", "mul"]
    assert nx.is_directed_acyclic_graph(to_networkx(result))
    assert "unfused exp f32[4,3] -> fused_0 [f32[4,3]]: would create a cycle (a path leaves " \
           "the group and comes back)" in fusion_report(result)
    # The whole pipeline: the exp goes with the sum instead.
    assert kernels(assert_pipeline_preserves(graph, "fusion")) == [
        "reduction(exp, sum)", "elementwise(mul)"]


def test_siblings_that_would_make_a_cycle_stay_apart():
    graph = built("siblings_through_matmul")
    dg = to_networkx(graph)
    naive = nx.quotient_graph(dg, [{0, 1, 3}, {2}, {"in0"}, {"in1"}])
    assert not nx.is_directed_acyclic_graph(naive)  # {neg, exp, add} waits on the matmul

    result = verify(PASSES["fuse_elementwise"](graph))
    assert kernels(result) == ["exp", "matmul", "elementwise(neg, add)"]
    assert nx.is_directed_acyclic_graph(to_networkx(result))
    # With epilogues first, the add (and the neg only it reads) follow the matmul.
    assert kernels(assert_pipeline_preserves(graph, "fusion")) == [
        "exp", "matmul_epilogue(neg, matmul, add)"]


@pytest.mark.parametrize("name", list(BUILT) + TRACED)
def test_nothing_is_computed_twice(traced, name):
    """Every node the default pipeline leaves is in the fused graph exactly once (fills,
    one-element constants and broadcasts may be copied into each loop that reads them)."""
    graph = built(name) if name in BUILT else traced[name]
    before = run_pipeline(graph)[0]
    after = fuse(graph)
    work = [n for n in flat(after) if not is_free(n)]
    assert len({id(v) for n in work for v in n.outputs}) == sum(len(n.outputs) for n in work)
    assert Counter(n.op.name for n in work) == \
        Counter(n.op.name for n in before.nodes if not is_free(n))


def test_shared_fill_is_copied_into_each_loop():
    result = assert_pipeline_preserves(built("shared_fill"), "fusion")
    assert kernels(result) == ["full", "elementwise(add, exp)", "reduction(mul, sum)", "matmul"]
    fills = [n for n in flat(result) if n.op.name == "full"]
    assert len(fills) == 3 and len({n.output.id for n in fills}) == 3


def test_random_ops_are_never_fused():
    graph = built("with_draws")
    result = assert_pipeline_preserves(graph, "fusion")  # the same draws, in the same order
    assert [n.op.name for n in result.nodes] == ["normal", "uniform", "fused"]
    assert all(n.op.pure for n in result.nodes[2].body.nodes)
    report = fusion_report(result)
    assert "unfused normal f32[4,3] -> fused_0 [f32[4,3]]: impure op (normal) is never fused" \
        in report
    assert "unfused uniform f32[4,3] -> fused_0 [f32[4,3]]: impure op (uniform) is never fused" \
        in report
    with pytest.raises(ValueError, match="impure op normal"):
        make_fused(graph.nodes, [0, 2], set(), [graph.nodes[2].output], "elementwise", "f")


def test_a_lone_elementwise_op_stays_as_it_is():
    graph = build(lambda b, x: b.exp(x), "f32[3]")
    for name in FUSION_PASSES:
        assert PASSES[name](graph) is graph


# ----------------------------------------------------------------------------- every graph


@pytest.mark.parametrize("name", list(BUILT) + TRACED)
def test_fusion_preserves_interpreter_results(traced, name):
    assert_pipeline_preserves(built(name) if name in BUILT else traced[name], "fusion")


@pytest.mark.parametrize("name", list(BUILT) + TRACED)
def test_fusion_reaches_a_fixed_point(traced, name):
    once = fuse(built(name) if name in BUILT else traced[name])
    assert format_graph(fuse(once)) == format_graph(once)


def test_fusion_leaves_its_input_alone(traced):
    for graph in all_graphs(traced):
        before = format_graph(graph)
        fuse(graph)
        assert format_graph(graph) == before


def test_dce_and_cse_on_fused_nodes():
    fused = fuse(built("small"))
    assert PASSES["cse"](fused) is fused  # two fused nodes are two kernels, never one
    only_sum = fused.replace(outputs=[fused.outputs[1]])
    assert PASSES["dce"](only_sum).count() == {"fused": 1}


def test_the_fusion_pipeline():
    assert PIPELINES["default"] == ["simplify", "fold", "cse", "dce"] * 2
    assert PIPELINES["fusion"] == ["lower_conv"] + PIPELINES["default"] + FUSION_PASSES


# ----------------------------------------------------------------------------- the decision log


def test_report_of_the_mlp_forward(traced):
    assert fusion_report(fuse(traced["mlp_forward"])) == [
        "fused_0 (matmul_epilogue): matmul, broadcast_to, add, relu",
        "fused_1 (matmul_epilogue): matmul, broadcast_to, add, sigmoid",
        "unfused fused_0 -> fused_1 [f32[32,128]]: consumer is a matmul (matmul operands are "
        "not fused)",
    ]


def test_report_of_the_mlp_backward(traced):
    report = fusion_report(fuse(traced["mlp_backward"]))
    assert report[:2] == ["fused_0 (matmul_epilogue): matmul, full, gt, full, where",
                          "fused_1 (reduction): full, sub, mul, mul, sum"]
    assert "unfused fused_0 -> sum f32[128] [f32[32,128]]: producer is already in fused_0 " \
           "(matmul_epilogue)" in report


def test_report_of_the_training_step_says_why_the_epilogue_stops(traced):
    report = fusion_report(fuse(traced["mlp_step"]))
    # The sigmoid's output feeds BCE's forward and backward: they rejoin only after a sum.
    assert "unfused fused_1 -> fused_5 [f32[32,2]]: value has 4 users, which do not rejoin " \
           "before sum" in report
    assert any(re.fullmatch(r"unfused fused_8 -> fused_\d \[f32\[\] x6\]: shapes differ "
                            r"\(broadcast\)", line) for line in report)


def test_log_lists_every_pass_and_survives_later_passes():
    log = fusion_log(fuse(built("small")))
    assert [g.kind for g in log.groups] == ["matmul_epilogue", "reduction", "elementwise"]
    assert fusion_report(build(lambda b, x: b.exp(x), "f32[3]")) == []

    def dead_sum(b, x):
        b.sum(x, axes=None, keepdims=False)
        return b.tanh(b.exp(x))

    fused = PASSES["fuse_elementwise"](build(dead_sum, "f32[3]"))
    result, _ = run_pipeline(build(dead_sum, "f32[3]"), ["fuse_elementwise", "dce"])
    assert len(fused) == 2 and len(result) == 1  # dce made a new graph ...
    assert fusion_report(result) == ["fused_0 (elementwise): exp, tanh"]  # ... with the log


def test_log_fusion_writes_groups_and_reasons(monkeypatch, capsys):
    monkeypatch.setenv("LUCID_JIT_LOG", "fusion")
    fuse(built("cycle_through_sum"))
    err = capsys.readouterr().err
    assert "[lucid_jit:fusion] --- fuse_matmul_epilogue:\n  no groups" in err
    assert "--- fuse_reduction:\n  fused_0 (reduction): exp, sum" in err
    assert "--- fuse_elementwise:\n  fused_1 (elementwise): broadcast_to, mul" in err
    assert "unfused fused_0 -> fused_1 [f32[4,1]]: shapes differ (broadcast)" in err


def test_no_fusion_log_without_the_topic(monkeypatch, capsys):
    monkeypatch.setenv("LUCID_JIT_LOG", "passes")
    fuse(built("small"))
    assert "lucid_jit:fusion" not in capsys.readouterr().err


def test_a_training_step_compiled_with_the_fusion_pipeline_matches_eager():
    """`lucid.compile(pipeline="fusion")` runs fused graphs (on the reference backend) with the
    same results as eager, and explain() lists the fused groups."""
    import lucid_jit

    def make():
        lucid.manual_seed(3)
        model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2), nn.Sigmoid())
        opt = lucid.optim.Adam(model.parameters(), lr=0.01)

        def step(x, y):
            loss = F.binary_cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss
        return model, step

    (m_eager, eager), (m_fused, fused) = make(), make()
    fused = lucid.compile(fused, pipeline="fusion")
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = lucid.tensor(rng.standard_normal((4, 6)).astype(np.float32))
        y = lucid.tensor((rng.random((4, 2)) > 0.5).astype(np.float32))
        np.testing.assert_allclose(fused(x, y).numpy(), eager(x, y).numpy(), rtol=1e-6)
    for a, b in zip(m_fused.parameters(), m_eager.parameters(), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)
    assert any(n.op.name == "fused" for n in fused.last_entry.forward.nodes)
    text = str(lucid_jit.explain(fused))
    assert "fusion (forward)" in text and "(matmul_epilogue)" in text
