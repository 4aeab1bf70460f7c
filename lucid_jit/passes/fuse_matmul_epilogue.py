"""Matmul epilogue fusion: a matmul and the elementwise ops applied to its result (a bias add, an
activation, a backward mask) become one kernel that applies them to each output element as it is
written.

    %2 = matmul %0 %1 ; %4 = broadcast_to %3 ; %5 = add %2 %4 ; %6 = relu %5 ; return %6
      ->
    %6 = fused %0 %1 %3 {kind='matmul_epilogue', name='fused_0'}
        body(%7, %8, %9):
          %2 = matmul %7 %8 ; %4 = broadcast_to %9 ; %5 = add %2 %4 ; %6 = relu %5
          return %6

The epilogue follows the matmul's value through elementwise ops, segment by segment, while the uses
rejoin into one value (a chain, or a diamond like leaky_relu's); it stops where they fan out to
anything else. Operands of epilogue ops that only the epilogue reads join it too (the `gt` mask of
a ReLU backward, fills, broadcasts of a bias). The matmul's own operands are never fused.
"""

from __future__ import annotations

from lucid import ops
from lucid_jit.ir.graph import Graph
from lucid_jit.passes.fusion import Plan, finish, grow_epilogue
from lucid_jit.passes.registry import register


@register("fuse_matmul_epilogue")
def fuse_matmul_epilogue(graph: Graph) -> Graph:
    plan = Plan(graph)
    for i, node in enumerate(graph.nodes):
        if node.op is ops.matmul and node.body is None:
            grow_epilogue(plan, plan.claim(i, "matmul_epilogue"), node.output)
    return finish(plan, "fuse_matmul_epilogue")
