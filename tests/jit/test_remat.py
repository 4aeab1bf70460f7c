"""What a compiled forward saves for autograd (passes/remat.py): the minimum cut of the forward
graph, the backward recomputing cheap values from it; gradients equal eager's; inputs the call
writes in place are never saved; a call's saved values are freed with its outputs (no cycle
keeps them until a gc pass)."""

from __future__ import annotations

import gc

import numpy as np

import lucid
import lucid.nn.functional as F  # noqa: N812
from lucid_jit.cache.run import BackwardRunner
from lucid_jit.passes.remat import choose_saved
from tests.jit.graphs import build


def _chain(x):
    return F.leaky_relu(x * 0.7 - 0.2) * x.sigmoid() + x.tanh()


def test_the_elementwise_chain_saves_its_input_only_and_matches_eager():
    x = lucid.randn(1000, requires_grad=True)
    g = lucid.randn(1000)
    compiled = lucid.compile(_chain)
    for _ in range(4):  # both tiers
        x.grad = None
        y = compiled(x)
        y.backward(g)
        got = x.grad.numpy().copy()
        x.grad = None
        want = _chain(x)
        want.backward(g)
        np.testing.assert_allclose(y.numpy(), want.numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(got, x.grad.numpy(), rtol=1e-5, atol=1e-6)
    entry = compiled.last_entry
    assert len(entry.forward.outputs) == 2  # y, and x saved for the backward
    assert entry.backward.input_names == ("grad_output0", "saved")
    assert entry.backward.inputs[1].shape == (1000,)


def test_values_only_a_matmul_gives_are_saved_not_recomputed():
    x, w = lucid.randn(8, 5), lucid.randn(5, 6, requires_grad=True)
    compiled = lucid.compile(lambda x, w: ((x @ w).tanh() * 2.0).sum())
    loss = compiled(x, w)
    loss.backward()
    got = w.grad.numpy().copy()
    w.grad = None
    ((x @ w).tanh() * 2.0).sum().backward()
    np.testing.assert_allclose(got, w.grad.numpy(), rtol=1e-5, atol=1e-6)
    entry = compiled.last_entry
    matmuls = [n for n in entry.backward.nodes
               if n.op.name == "matmul" or (n.body is not None and any(
                   m.op.name == "matmul" for m in n.body.nodes))]
    assert len(matmuls) == 1  # w's gradient only: the forward's product is not recomputed


def test_an_input_written_in_place_is_not_saved():
    """Recomputing from buf (the cheapest cut: x (10, 1) and buf (1, 10) rather than their
    (10, 10) sum) would read buf after the call doubled it in place: the sum is saved."""
    buf = lucid.tensor(np.linspace(-1.0, 1.0, 10, dtype=np.float32).reshape(1, 10))
    twin = lucid.tensor(buf.numpy().copy())

    def make(b):
        def f(x):
            h = x + b  # (add saves nothing: eagerly, b may change afterwards)
            y = h.tanh() * h.sigmoid()
            with lucid.no_grad():
                b.mul_(2.0)
            return y
        return f

    compiled = lucid.compile(make(buf))
    eager = make(twin)
    x = lucid.randn(10, 1, requires_grad=True)
    g = lucid.randn(10, 10)
    for _ in range(4):
        x.grad = None
        compiled(x).backward(g)
        got = x.grad.numpy().copy()
        x.grad = None
        eager(x).backward(g)
        np.testing.assert_allclose(got, x.grad.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(buf.numpy(), twin.numpy())


def test_a_calls_saved_values_are_freed_with_its_outputs():
    compiled = lucid.compile(_chain)
    x = lucid.randn(100, requires_grad=True)
    compiled(x).backward(lucid.randn(100))
    gc.collect()
    was = gc.get_debug()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        y = compiled(x)
        y.backward(lucid.randn(100))
        del y
        gc.collect()
        leaked = [o for o in gc.garbage if isinstance(o, BackwardRunner)]
    finally:
        gc.set_debug(was)
        gc.garbage.clear()
    assert leaked == []


def test_the_cut_prefers_one_input_to_several_intermediates():
    def f(b, x):
        s = b.sigmoid(x)
        t = b.tanh(x)
        return b.mul(s, t), s, t, b.exp(x)

    graph = build(f, "f32[64]")
    saved = choose_saved(graph, list(graph.outputs[1:]))
    assert [v.id for v in saved] == [graph.inputs[0].id]
    # when the input is written in place, the intermediates themselves are saved
    assert choose_saved(graph, list(graph.outputs[1:]), {graph.inputs[0].id}) is None
