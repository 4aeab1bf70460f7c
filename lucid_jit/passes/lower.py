"""Lowering before fusion: conv2d becomes what its eager implementation computes (unfold in the
"knl" layout, a reshape of the weight, one matmul over every image's columns, NCHW again), so
the passes see through it.

    %3 = conv2d %0 %1 {stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1}
      ->
    %4 = unfold %0 {kernel=(3, 3), ..., layout='knl'} ; %5 = reshape %4 (K, N*L) ;
    %6 = reshape %1 (O, K) ; %7 = matmul %6 %5 ; %8 = reshape %7 (O, N, OH, OW) ;
    %3 = permute %8 (1, 0, 2, 3)

In a training step the backward's weight gradient unfolds the same input in the same layout:
cse then keeps one unfold. The passes fuse what follows the permute as for any other value.
"""

from __future__ import annotations

from lucid import ops
from lucid_jit.ir.graph import Graph, Node, Value
from lucid_jit.passes._util import rewrite
from lucid_jit.passes.registry import register


@register("lower_conv")
def lower_conv(graph: Graph) -> Graph:
    if not any(node.op is ops.conv2d for node in graph.nodes):
        return graph
    return rewrite(graph, lambda node, defs: lower_conv2d(node) if node.op is ops.conv2d
                   and node.body is None else None)


def lower_conv2d(node: Node) -> list[Node]:
    """conv2d as its eager implementation computes it: the columns as (G, K, N*L), one matmul
    with the weight as (G, O/G, K) (2-d without groups), then (O, N, OH, OW) to NCHW."""
    x, w = node.inputs
    out = node.output
    n = x.shape[0]
    o, cg, kh, kw = w.shape
    groups = node.attrs["groups"]
    _, _, oh, ow = out.shape
    k, length = cg * kh * kw, oh * ow
    lead = (groups,) if groups > 1 else ()
    window = {"kernel": (kh, kw), "stride": node.attrs["stride"],
              "padding": node.attrs["padding"], "dilation": node.attrs["dilation"],
              "layout": "knl"}
    cols = Value((groups * k, n, length), x.dtype)
    cols2 = Value(lead + (k, n * length), x.dtype)
    wm = Value(lead + (o // groups, k), w.dtype)
    y = Value(lead + (o // groups, n * length), x.dtype)
    y4 = Value((o, n, oh, ow), x.dtype)
    return [Node(ops.unfold, (x,), (cols,), window),
            Node(ops.reshape, (cols,), (cols2,), {"shape": cols2.shape}),
            Node(ops.reshape, (w,), (wm,), {"shape": wm.shape}),
            Node(ops.matmul, (wm, cols2), (y,), {}),
            Node(ops.reshape, (y,), (y4,), {"shape": y4.shape}),
            Node(ops.permute, (y4,), (out,), {"axes": (1, 0, 2, 3)})]
