"""Constant folding: a pure node whose inputs are all known constants becomes a const node.

    %1 = const 2.0 ; %2 = mul %1 %1 ; return %2     ->     %3 = const 4.0 ; return %3

Known constants are const nodes and `full` fills. An elementwise op on uniform operands (fills,
all-equal constants) becomes a `full` of its value, at any size, so a graph's structure does not
depend on the batch size. A `full` node itself stays a node (a backend fills memory faster than
it copies it), as does any other result of more than MAX_ELEMENTS elements: baking a large array
into the graph would bloat it. The value is computed the way the reference
interpreter computes it, so folding changes no result.
"""

from __future__ import annotations

import numpy as np

from lucid import ops
from lucid_jit.ir.graph import CONST, Graph, Node, Value, make_const
from lucid_jit.ir.interpret import interpret
from lucid_jit.passes._util import rewrite
from lucid_jit.passes.registry import register

MAX_ELEMENTS = 64


@register("fold")
def fold(graph: Graph) -> Graph:
    return rewrite(graph, _fold_node)


def _fold_node(node: Node, defs) -> Node | None:
    if not node.inputs or not node.op.pure or len(node.outputs) != 1:
        return None
    if node.op.kind == "elementwise" and node.body is None and node.output.size > 1:
        filled = _fill_of(node, defs)
        if filled is not None:
            return filled
    if node.output.size > MAX_ELEMENTS:
        return None
    arrays = [_known(defs.get(v.id)) for v in node.inputs]
    if any(a is None for a in arrays):
        return None
    (result,) = interpret(Graph(node.inputs, [node], node.outputs), arrays)
    result = np.asarray(result)
    if (result.shape, result.dtype) != (node.output.shape, node.output.dtype):
        return None  # an op whose impl disagrees with its shape rule: leave it to run
    return make_const(result)


def _fill_of(node: Node, defs) -> Node | None:
    """An elementwise op on uniform operands (fills, one-element or all-equal constants) is a
    fill of its result on one element, at any size: the graph keeps the same structure for every
    batch size (a 64-element const at batch 32 and a computation at batch 64 would not)."""
    values = [_uniform(defs.get(v.id)) for v in node.inputs]
    if any(u is None for u in values):
        return None
    ins = [Value((), v.dtype) for v in node.inputs]
    out = Value((), node.output.dtype)
    (result,) = interpret(Graph(ins, [Node(node.op, ins, [out], node.attrs)], [out]), values)
    result = np.asarray(result)
    if result.shape != () or result.dtype != node.output.dtype:
        return None
    return Node(ops.full, (), node.outputs, {"shape": node.output.shape, "value": result.item(),
                                             "dtype": node.output.dtype})


def _uniform(node: Node | None) -> np.ndarray | None:
    """The one value (a 0-d array) every element of a const or `full` node holds, else None."""
    if node is None:
        return None
    if node.op is ops.full:
        return np.array(node.attrs["value"], dtype=node.output.dtype)
    if node.op is CONST:
        value = node.attrs["value"]
        if value.size == 0:
            return None
        first = value.reshape(-1)[0]
        if value.size == 1 or bool(np.all((value == first) | (value != value) & (first != first))):
            return np.array(first, dtype=value.dtype)
    return None


def _known(node: Node | None) -> np.ndarray | None:
    """The array a const or `full` node defines, else None."""
    if node is None:
        return None
    if node.op is CONST:
        return node.attrs["value"]
    if node.op is ops.full:
        return ops.full.impl(**node.attrs)
    return None
