"""Elementwise fusion: elementwise ops over one iteration space become one loop.

    %1 = mul %0 %0 ; %2 = exp %1 ; %3 = tanh %0 ; %4 = add %2 %3 ; return %4, %1
      ->
    %1, %4 = fused %0 {kind='elementwise', name='fused_0'}
        body(%5):
          %1 = mul %5 %5 ; %2 = exp %1 ; %3 = tanh %5 ; %4 = add %2 %3
          return %1, %4

Vertical: an op joins the group of each elementwise op producing one of its operands. Horizontal:
elementwise siblings reading the same value join one group (the value is read once). Every member
has the same shape, the loop's iteration space (an elementwise op's operands have its shape; a
`broadcast_to` operand is read with stride 0, its source from outside). A value the group computes
that anything else reads is an output. Merges that would make a cycle are refused and logged.

A lone elementwise op with nothing to join stays as it is: it is a loop already.
"""

from __future__ import annotations

from lucid_jit.ir.graph import Graph
from lucid_jit.passes.fusion import Plan, finish, is_elementwise
from lucid_jit.passes.registry import register


@register("fuse_elementwise")
def fuse_elementwise(graph: Graph) -> Graph:
    plan = Plan(graph)
    candidates = [i for i, node in enumerate(graph.nodes) if is_elementwise(node)]
    for i in candidates:
        plan.claim(i, "elementwise")
        for v in graph.nodes[i].inputs:
            p = plan.producer_of(v)
            if p is not None and p not in plan.free and is_elementwise(graph.nodes[p]):
                plan.merge(p, i, v, i)
    sources = list(graph.inputs) + [v for i, node in enumerate(graph.nodes)
                                     if i not in plan.free for v in node.outputs]
    for v in sources:
        siblings = [u for u in plan.readers(v) if is_elementwise(graph.nodes[u])]
        for u in siblings[1:]:
            plan.merge(siblings[0], u)
    return finish(plan, "fuse_elementwise")
