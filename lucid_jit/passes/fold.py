"""Constant folding: a pure node whose inputs are all known constants becomes a const node.

    %1 = const 2.0 ; %2 = mul %1 %1 ; return %2     ->     %3 = const 4.0 ; return %3

Known constants are const nodes and `full` fills. A `full` node itself stays a node (a backend
fills memory faster than it copies it), as does any result of more than MAX_ELEMENTS elements:
baking a large array into the graph would bloat it. The value is computed the way the reference
interpreter computes it, so folding changes no result.
"""

from __future__ import annotations

import numpy as np

from lucid import ops
from lucid_jit.ir.graph import CONST, Graph, Node, make_const
from lucid_jit.ir.interpret import interpret
from lucid_jit.passes._util import rewrite
from lucid_jit.passes.registry import register

MAX_ELEMENTS = 64


@register("fold")
def fold(graph: Graph) -> Graph:
    return rewrite(graph, _fold_node)


def _fold_node(node: Node, defs) -> Node | None:
    if not node.inputs or not node.op.pure or len(node.outputs) != 1 or \
            node.output.size > MAX_ELEMENTS:
        return None
    arrays = [_known(defs.get(v.id)) for v in node.inputs]
    if any(a is None for a in arrays):
        return None
    (result,) = interpret(Graph(node.inputs, [node], node.outputs), arrays)
    result = np.asarray(result)
    if (result.shape, result.dtype) != (node.output.shape, node.output.dtype):
        return None  # an op whose impl disagrees with its shape rule: leave it to run
    return make_const(result)


def _known(node: Node | None) -> np.ndarray | None:
    """The array a const or `full` node defines, else None."""
    if node is None:
        return None
    if node.op is CONST:
        return node.attrs["value"]
    if node.op is ops.full:
        return ops.full.impl(**node.attrs)
    return None
