"""Rematerialization at the forward/backward split: what a compiled forward saves for autograd.

A traced forward returns, besides its outputs, every value the backward graph reads (its
residuals). Saving them costs memory and bandwidth: a 16M-element elementwise chain wrote eight
64 MiB residuals. Here the saved set is chosen again, as a minimum cut of the forward graph:

    source -> (values that must be computed in the forward: inputs, results of matmuls,
               reductions, random draws and other non-elementwise ops)
    v_in -> v_out   capacity: v's bytes (cutting it = saving v)
    u_out -> v_in   for each input u of a cheap node (elementwise math, casts, fills, views)
    r_out -> sink   for each residual the backward reads

The cut's values are saved; the backward graph gets copies of the cheap forward nodes between
them and the residuals, and recomputes those values itself (where the fusion passes put them in
the backward's kernels). The chain above then saves x alone. Inputs the function writes in place
are never saved (the backward would read the new value), and nothing changes where the cut is
not smaller than what the trace saved.
"""

from __future__ import annotations

import math

from lucid import ops
from lucid_jit.ir.graph import CONST, Graph, Node, Value

_INF = math.inf
# Single ops cheap enough to compute again in the backward (besides elementwise math).
_CHEAP = (ops.broadcast_to, ops.reshape, ops.permute, ops.full, ops.cast)


def _cheap(node: Node) -> bool:
    op = node.op
    if op is CONST:
        return True
    if not op.pure or node.body is not None:
        return False
    return op in _CHEAP or (op.kind == "elementwise" and op.scalar is not None)


def _nbytes(v: Value) -> int:
    return v.size * v.dtype.itemsize


def choose_saved(forward: Graph, residuals: list[Value],
                 pinned: set[int] = frozenset()) -> list[Value] | None:
    """The values to save instead of `residuals` (the minimum cut), or None to keep them.
    `pinned`: ids of forward inputs that may not be saved (written in place by the call)."""
    import networkx as nx

    producer = forward.producers()
    g = nx.DiGraph()
    input_ids = {v.id for v in forward.inputs}
    values = {v.id: v for v in forward.inputs}
    for n in forward.nodes:
        for v in n.outputs:
            values[v.id] = v
    for vid, v in values.items():
        cap = _INF if vid in pinned else _nbytes(v)
        g.add_edge(("in", vid), ("out", vid), capacity=cap)
        node = producer.get(vid)
        if vid in input_ids or not _cheap(node):
            g.add_edge("source", ("in", vid), capacity=_INF)
        else:
            for u in node.inputs:
                g.add_edge(("out", u.id), ("in", vid), capacity=_INF)
    for r in residuals:
        g.add_edge(("out", r.id), "sink", capacity=_INF)
    cut, (reach, _) = nx.minimum_cut(g, "source", "sink")
    if not math.isfinite(cut) or cut >= sum(_nbytes(r) for r in {r.id: r
                                                                for r in residuals}.values()):
        return None
    saved = [values[vid] for vid in values
             if ("in", vid) in reach and ("out", vid) not in reach]
    return saved


def recompute(forward: Graph, backward: Graph, residual_inputs: dict[int, Value],
              saved: list[Value]) -> tuple[Graph, dict[int, Value]]:
    """The backward graph with its residual inputs recomputed from `saved`: copies of the
    forward nodes between them, ahead of its own. `residual_inputs` maps forward value ids to
    the backward inputs standing for them. Returns the new graph (inputs: the backward's
    non-residual inputs, in order, then one per saved value) and saved value id -> its input."""
    saved_inputs = {v.id: Value(v.shape, v.dtype) for v in saved}
    env: dict[int, Value] = dict(saved_inputs)  # forward value id -> backward value
    needed = set(residual_inputs)
    producer = forward.producers()
    # the forward nodes to copy: those on paths from the saved values to the residuals
    wanted: set[int] = set()
    stack = [vid for vid in needed if vid not in env]
    while stack:
        vid = stack.pop()
        node = producer[vid]
        if id(node) in wanted:
            continue
        wanted.add(id(node))
        stack += [u.id for u in node.inputs if u.id not in env]
    nodes = []
    for n in forward.nodes:
        if id(n) not in wanted:
            continue
        outs = [Value(v.shape, v.dtype) for v in n.outputs]
        nodes.append(Node(n.op, [env[u.id] for u in n.inputs], outs, n.attrs))
        env.update((v.id, o) for v, o in zip(n.outputs, outs, strict=True))
    subst = {b.id: env[fid] for fid, b in residual_inputs.items()}
    for n in backward.nodes:
        nodes.append(Node(n.op, [subst.get(u.id, u) for u in n.inputs], n.outputs, n.attrs,
                          n.body))
    kept = [v for v in backward.inputs if v.id not in subst]
    names = dict(zip((v.id for v in backward.inputs), backward.input_names, strict=True))
    inputs = kept + [saved_inputs[v.id] for v in saved]
    input_names = [names[v.id] for v in kept] + ["saved"] * len(saved)
    outputs = [subst.get(v.id, v) for v in backward.outputs]
    return Graph(inputs, nodes, outputs, input_names), saved_inputs


def rematerialize(built, pinned: set[int] = frozenset()):
    """A trace's result (`capture.TraceResult`) with the forward saving the minimum cut instead
    of every residual, and the backward recomputing the rest (the result itself when that saves
    nothing). `pinned`: forward input ids the call writes in place."""
    import dataclasses

    from lucid_jit.tracing.sources import SavedInput

    bt = built.backward
    if bt is None:
        return built
    fwd = built.forward
    saved_at = [(k, src.index) for k, src in enumerate(bt.sources)
                if isinstance(src, SavedInput)]
    if not saved_at:
        return built
    first = min(i for _, i in saved_at)
    if sorted(i for _, i in saved_at) != list(range(first, len(fwd.outputs))):
        return built  # (residuals are the forward's last outputs, each once)
    residual_inputs = {fwd.outputs[i].id: bt.graph.inputs[k] for k, i in saved_at}
    if len(residual_inputs) != len(saved_at):
        return built
    saved = choose_saved(fwd, [fwd.outputs[i] for _, i in saved_at], pinned)
    if saved is None:
        return built
    graph, _ = recompute(fwd, bt.graph, residual_inputs, saved)
    sources = [src for src in bt.sources if not isinstance(src, SavedInput)]
    sources += [SavedInput(first + j) for j in range(len(saved))]
    forward = Graph(fwd.inputs, fwd.nodes, list(fwd.outputs[:first]) + saved, fwd.input_names)
    return dataclasses.replace(built, forward=forward,
                               backward=dataclasses.replace(bt, graph=graph, sources=sources))
