"""Dead code elimination: drop nodes nothing uses, transitively.

    %1 = exp %0 ; %2 = neg %0 ; return %2      ->      %2 = neg %0 ; return %2

Impure nodes (`uniform`, `normal`) are always kept, used or not: each draw advances the generator,
so a compiled function draws the same numbers in the same order as eager code.
"""

from __future__ import annotations

from lucid_jit.ir.graph import Graph
from lucid_jit.passes.registry import register


@register("dce")
def dce(graph: Graph) -> Graph:
    live = {v.id for v in graph.outputs}
    kept = []
    for node in reversed(graph.nodes):
        if not node.op.pure or any(v.id in live for v in node.outputs):
            kept.append(node)
            live.update(v.id for v in node.inputs)
    if len(kept) == len(graph.nodes):
        return graph
    return graph.replace(nodes=reversed(kept))
