"""Common subexpression elimination: a node computing what an earlier one did is dropped and its
uses read the earlier one's outputs.

    %1 = exp %0 ; %2 = exp %0 ; %3 = add %1 %2     ->     %1 = exp %0 ; %3 = add %1 %1

Two nodes are the same when they have the same op, the same inputs (after earlier merges) and
equal attrs (constants by dtype, shape and bytes) and the same fused body. Impure nodes never
merge: two `normal` nodes are two different draws.
"""

from __future__ import annotations

from lucid_jit.ir.graph import Graph, Node
from lucid_jit.passes._util import rewrite
from lucid_jit.passes.registry import register


@register("cse")
def cse(graph: Graph) -> Graph:
    seen: dict[tuple, Node] = {}

    def merge(node: Node, defs):
        if not node.op.pure:
            return None
        key = (node.op, tuple(v.id for v in node.inputs), node.attr_key(), node.body)
        first = seen.setdefault(key, node)
        return None if first is node else first.outputs

    return rewrite(graph, merge)
