"""Reduction fusion: the elementwise ops producing a `sum` or `max` operand run inside the
reduction's loop, and the elementwise ops applied to the reduced value (a mean's division, the
log of a log-sum-exp) run after it, in one kernel.

    %1 = mul %0 %0 ; %2 = sum %1 {axes=None} ; %4 = div %2 %3 ; return %4
      ->
    %4 = fused %0 %3 {kind='reduction', name='fused_0'}
        body(%5, %6):
          %1 = mul %5 %5 ; %2 = sum %1 {axes=None} ; %4 = div %2 %6
          return %4

Producers join transitively (softmax's exp and shift, a loss's whole elementwise body, a bias
gradient's backward mask); one that something else also reads joins all the same, and its value
becomes another output of the kernel: nothing is computed twice. A producer another reduction's
group already took is read, not recomputed. The reduced value's elementwise uses join as a matmul's
epilogue does. `argmax` is left alone.
"""

from __future__ import annotations

from lucid_jit.ir.graph import Graph
from lucid_jit.passes.fusion import REDUCTIONS, Plan, finish, grow_epilogue, is_elementwise
from lucid_jit.passes.registry import register


@register("fuse_reduction")
def fuse_reduction(graph: Graph) -> Graph:
    plan = Plan(graph)
    for i, node in enumerate(graph.nodes):
        if node.op in REDUCTIONS and node.body is None and plan.alone(i):
            rep = plan.claim(i, "reduction")
            pull_producers(plan, rep, i)
            grow_epilogue(plan, rep, node.output)
    return finish(plan, "fuse_reduction")


def pull_producers(plan: Plan, rep: int, i: int) -> None:
    """Merge into rep's cluster the elementwise producers of node i's inputs, transitively (a
    reduction's loop computes its operand as it goes). A producer others read too joins all the
    same: its value becomes an output of the group, nothing is computed twice."""
    stack = [i]
    while stack:
        m = stack.pop()
        for v in plan.nodes[m].inputs:
            p = plan.producer_of(v)
            if p is None or p in plan.free or plan.cluster(p) == plan.cluster(rep):
                continue
            if not is_elementwise(plan.nodes[p]):
                continue
            if not plan.alone(p):
                plan.reject(v, m, "producer already in another group (its value is read, not "
                                  "recomputed)")
            elif plan.merge(rep, p, v, m):
                stack.append(p)
