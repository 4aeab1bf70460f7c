"""What the cpu module emitter decides about a whole graph before writing it: which write-backs
the native code computes straight into their tensor (in place), and which outputs come from the
output pool."""

from __future__ import annotations

import os

from lucid import ops
from lucid_jit.codegen.body import plan_phases
from lucid_jit.ir.graph import CONST, FUSED, Graph, Node, Value

VIEWS = (ops.reshape, ops.permute, ops.broadcast_to)
POOL_MIN_BYTES = 1 << 20  # outputs this large are recycled


def copies(node: Node) -> bool:
    """A movement node a segment materializes with a copy kernel into a buffer of its own: a
    permute other than the identity or a 2-d transpose (those are views), a broadcast_to."""
    if node.op is ops.permute:
        axes = tuple(node.attrs["axes"])
        return axes != tuple(range(len(axes))) and axes != (1, 0)
    return node.op is ops.broadcast_to


def view(node: Node) -> bool:
    """A movement node whose result is a view of its operand's buffer in a segment."""
    return node.op in VIEWS and not copies(node)


def plan_inplace(g: Graph, placement: list[bool], requests: dict[int, int],
                 fallible: list[bool] | None = None) -> dict[int, Value]:
    """Output value id -> the input its value is computed straight into (a parameter or
    optimizer state updated in place), for the requested outputs (`requests`: output index ->
    input index) where that is safe. Safe when the output's producer is a native kernel that
    runs after every other reader of the input (through views too) and,
    if it reads the input itself, reads it only at the element it writes (one elementwise
    loop, no view in between); and when nothing else returns the output.

    A call either completes or changes nothing: a node that can raise at run time (`fallible`,
    by default the host ops: a gather whose index is out of range) may not come after an
    in-place write, so only producers after the last such node write in place. The others'
    results are written back once the whole graph has run."""
    inplace: dict[int, Value] = {}  # output value id -> the input it is written into
    index = {id(n): k for k, n in enumerate(g.nodes)}
    if fallible is None:
        fallible = [not nat for nat in placement]
    last_fallible = max((k for k, f in enumerate(fallible) if f), default=-1)
    producer = g.producers()
    views_of: dict[int, set[int]] = {v.id: {v.id} for v in g.inputs}
    for n in g.nodes:
        if n.op in VIEWS:
            for ids in views_of.values():
                if n.inputs[0].id in ids:
                    ids.add(n.output.id)
    out_ids = [v.id for v in g.outputs]
    for out_index, in_index in requests.items():
        v, x = g.outputs[out_index], g.inputs[in_index]
        p = producer.get(v.id)
        if (p is None or not placement[index[id(p)]] or index[id(p)] < last_fallible
                or p.op in VIEWS or p.op is CONST
                or p.op is ops.full or out_ids.count(v.id) != 1
                or v.shape != x.shape or v.dtype != x.dtype or v.id in inplace):
            continue
        ids = views_of[x.id]
        if any(o in ids for o in out_ids):
            continue  # the old value (or a view of it) is returned too
        readers = [n for n in g.nodes if any(i.id in ids for i in n.inputs)]
        if any(index[id(n)] > index[id(p)] for n in readers):
            continue
        if any(n is p for n in readers):
            if any(i.id in ids and i.id != x.id for i in p.inputs):
                continue
            if p.op is not FUSED:
                if p.op.kind != "elementwise":
                    continue
            elif not _reads_only_where_it_writes(p, x, v, plan_phases(p.body)):
                continue
        if any(w is x for w in inplace.values()):
            continue
        inplace[v.id] = x
    return inplace


def plan_pool(g: Graph, placement: list[bool], inplace: dict[int, Value]) -> list[Value]:
    """The outputs drawn from the pool. Large outputs computed by kernels come from a pool the
    caller passes in (`P`): a buffer is used again once the tensor it was returned in has died,
    instead of a fresh allocation (and its page faults) per call."""
    pooled = []
    out_ids = [v.id for v in g.outputs]
    for node, nat in zip(g.nodes, placement, strict=True):
        if not nat or view(node) or node.op in (CONST, ops.full):
            continue
        for v in node.outputs:
            if (v.id in out_ids and out_ids.count(v.id) == 1 and v.id not in inplace
                    and v.size * v.dtype.itemsize >= POOL_MIN_BYTES):
                pooled.append(v)
    return pooled


def _has_matmul(node: Node) -> bool:
    if node.op is ops.matmul:
        return True
    return node.body is not None and any(n.op is ops.matmul for n in node.body.nodes)


def _reads_only_where_it_writes(node: Node, x: Value, v: Value, phases) -> bool:
    """Whether fused `node` reads input x only in the loop that stores output v, over x's own
    shape (so each element is read at the index it is then written at)."""
    body = node.body
    params = {body.inputs[j].id for j, i in enumerate(node.inputs) if i.id == x.id}
    out = body.outputs[[o.id for o in node.outputs].index(v.id)]
    where = None
    for k, ph in enumerate(phases):
        if any(o.id == out.id for n in ph.nodes for o in n.outputs):
            where = k
    if where is None or phases[where].kind != "loop" or phases[where].shape != x.shape:
        return False
    producer = body.producers()
    for k, ph in enumerate(phases):
        for n in ph.nodes:
            stack = list(n.inputs)
            while stack:
                i = stack.pop()
                if i.id in params:
                    if k != where or i.id not in {j.id for j in n.inputs}:
                        return False  # read in another loop, or through a broadcast
                src = producer.get(i.id)
                if src is not None and src.op is ops.broadcast_to:
                    stack.extend(src.inputs)
    return True


# What a node is worth compiling into a native segment. A kernel called from the Python code of
# a segment costs ~5-8 us more per call than inside a native one (numba's dispatch of its
# arrays, the Python lines around it); a node estimated at `HEAVY_NS` or more therefore runs
# from Python (at most a few percent slower), and only runs of lighter nodes are compiled into
# native segments. numba compiles a native segment's inlined kernels again, at ~50-100 ms per
# loop nest, so this keeps a large model's native tier to the nodes where it pays.
HEAVY_NS = float(os.environ.get("LUCID_JIT_HEAVY_NS", "100000"))
# The estimate (float32 on one core of this class of machine): the bytes a kernel reads and
# writes at ~20 GB/s, ~0.1 ns per element and op in its loops (~1 ns for a transcendental), and
# BLAS at ~20 GFLOP/s.
_NS_PER_BYTE = 0.05
_NS_PER_OP = 0.1
_NS_PER_TRANSCENDENTAL = 1.0
_NS_PER_FLOP = 0.05
_TRANSCENDENTAL = {op.name for op in (ops.exp, ops.log, ops.tanh, ops.sigmoid, ops.erf, ops.pow,
                                       ops.sin, ops.cos, ops.log1p, ops.sqrt)}


def work_ns(node: Node) -> float:
    """A rough estimate of the node's run time in ns: its members' loops and matmuls, and the
    bytes of its operands and results."""
    if view(node) or node.op is CONST:
        return 0.0
    members = node.body.nodes if node.op is FUSED else [node]
    values = {v.id: v for v in list(node.inputs) + list(node.outputs)}
    traffic = sum(v.size * v.dtype.itemsize for v in values.values()) * _NS_PER_BYTE
    return traffic + sum(_compute_ns(n) for n in members)


def _compute_ns(node: Node) -> float:
    if view(node) or node.op is CONST:
        return 0.0
    if node.op is ops.matmul:
        a = node.inputs[0]
        return 2.0 * node.output.size * (a.shape[-1] if a.ndim else 1) * _NS_PER_FLOP
    size = max([v.size for v in node.outputs] + [v.size for v in node.inputs[:1]] + [1])
    per = _NS_PER_TRANSCENDENTAL if node.op.name in _TRANSCENDENTAL else _NS_PER_OP
    return size * per


def heavy(node: Node) -> bool:
    """Whether the node runs from Python between native segments (see HEAVY_NS)."""
    return work_ns(node) >= HEAVY_NS
