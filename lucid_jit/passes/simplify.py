"""Algebraic simplification: rewrite nodes into cheaper equivalents, one node at a time.

    %2 = full {shape=(4,), value=1.0} ; %3 = mul %0 %2 ; return %3     ->     return %0

Identities (x*1, 1*x, x+0, 0+x, x-0, x/1, where the constant is a const, a `full` or a broadcast
of one), neg(neg(x)), permutes, reshapes and broadcasts of themselves merged into one, copies and
no-op reshapes, casts, broadcasts and permutes removed, a transposed matrix product computed
transposed ((a @ b)^T as b^T @ a^T), and a broadcast of a one-element constant
(or of a `full`) made a `full` node, so later passes and backends see a fill rather than a
broadcast.
"""

from __future__ import annotations

from lucid import ops
from lucid_jit.ir.graph import CONST, Graph, Node, Value
from lucid_jit.passes._util import rewrite
from lucid_jit.passes.registry import register


@register("simplify")
def simplify(graph: Graph) -> Graph:
    users = graph.users()

    def rule(node: Node, defs):
        if node.op is ops.permute:
            swapped = _transposed_product(node, defs, users)
            if swapped is not None:
                return swapped
        return _simplify(node, defs)

    return rewrite(graph, rule)


def _simplify(node: Node, defs) -> Node | Value | None:
    """Apply rules until none applies (a merged permute may be the identity, and so on)."""
    result = None
    while node.body is None and node.op in _RULES:
        step = _RULES[node.op](node, defs)
        if step is None:
            break
        result = step
        if isinstance(step, Value):
            break
        node = step
    return result


def _swaps_last_two(node: Node) -> bool:
    r = node.inputs[0].ndim
    return r >= 2 and tuple(node.attrs["axes"]) == (*range(r - 2), r - 1, r - 2)


def _transposed_product(node: Node, defs, users) -> list[Node] | None:
    """(a @ b)^T -> b^T @ a^T, where the product is read only by this transpose: the product is
    computed in the layout that is wanted (a weight's gradient, (x^T g)^T, becomes g^T x)
    instead of being written and then copied transposed. An operand that is itself a transpose
    is read through it."""
    if not _swaps_last_two(node):
        return None
    inner = defs.get(node.inputs[0].id)
    if (inner is None or inner.op is not ops.matmul or inner.body is not None
            or len(users.get(inner.output.id, ())) != 1):
        return None
    a, b = inner.inputs
    if a.ndim != b.ndim or a.ndim < 2:
        return None
    nodes, operands = [], []
    for x in (b, a):
        src = defs.get(x.id)
        if src is not None and src.op is ops.permute and _swaps_last_two(src):
            operands.append(src.inputs[0])
            continue
        t = Value((*x.shape[:-2], x.shape[-1], x.shape[-2]), x.dtype)
        nodes.append(Node(ops.permute, (x,), (t,), {"axes": node.attrs["axes"]}))
        operands.append(t)
    nodes.append(Node(ops.matmul, tuple(operands), node.outputs, {}))
    return nodes


def _fill(v: Value, defs) -> object | None:
    """The one value every element of v holds, when v is a const, a full or a broadcast of one."""
    node = defs.get(v.id)
    if node is None:
        return None
    if node.op is CONST:
        arr = node.attrs["value"]
        return arr.flat[0] if arr.size and (arr == arr.flat[0]).all() else None
    if node.op is ops.full:
        return node.attrs["value"]
    if node.op is ops.broadcast_to:
        return _fill(node.inputs[0], defs)
    return None


def _identity(unit, positions):
    """`x op c -> x` where c is all `unit` and x is at one of `positions`."""
    def rule(node, defs):
        for i in positions:
            x, c = node.inputs[i], node.inputs[1 - i]
            if x.aval == node.output.aval and _fill(c, defs) == unit:
                return x
        return None
    return rule


def _producer(node: Node, op, defs) -> Node | None:
    """The node defining node's (first) input, if it applies `op`."""
    inner = defs.get(node.inputs[0].id)
    return inner if inner is not None and inner.op is op else None


def _neg(node, defs):
    inner = _producer(node, ops.neg, defs)
    return inner.inputs[0] if inner is not None else None


def _permute(node, defs):
    x, axes = node.inputs[0], tuple(node.attrs["axes"])
    if axes == tuple(range(x.ndim)):
        return x
    inner = _producer(node, ops.permute, defs)
    if inner is None:
        return None
    merged = tuple(inner.attrs["axes"][a] for a in axes)
    return Node(ops.permute, inner.inputs, node.outputs, {"axes": merged})


def _reshape(node, defs):
    if node.inputs[0].shape == node.output.shape:
        return node.inputs[0]
    inner = _producer(node, ops.reshape, defs)
    if inner is None:
        return None
    return Node(ops.reshape, inner.inputs, node.outputs, node.attrs)


def _cast(node, defs):
    return node.inputs[0] if node.inputs[0].dtype == node.output.dtype else None


def _broadcast_to(node, defs):
    x, out = node.inputs[0], node.output
    if x.shape == out.shape:
        return x
    inner = defs.get(x.id)
    if inner is None:
        return None
    if inner.op is ops.broadcast_to:
        return Node(ops.broadcast_to, inner.inputs, node.outputs, node.attrs)
    if inner.op is ops.full or (inner.op is CONST and x.size == 1):
        value = inner.attrs["value"] if inner.op is ops.full else inner.attrs["value"].item()
        return Node(ops.full, (), node.outputs,
                    {"shape": out.shape, "value": value, "dtype": out.dtype})
    return None


def _copy(node, defs):
    """In the graph a copy is its input (values are immutable); an array the call hands to
    Python is made its own by the backend. Copies come from clone() and from autograd giving a
    leaf its own `.grad`."""
    return node.inputs[0]


_RULES = {
    ops.copy: _copy,
    ops.mul: _identity(1, (0, 1)),
    ops.add: _identity(0, (0, 1)),
    ops.sub: _identity(0, (0,)),
    ops.div: _identity(1, (0,)),
    ops.neg: _neg,
    ops.permute: _permute,
    ops.reshape: _reshape,
    ops.cast: _cast,
    ops.broadcast_to: _broadcast_to,
}
