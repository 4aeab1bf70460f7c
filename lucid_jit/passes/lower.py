"""Lowering before fusion: conv2d becomes what its eager implementation computes (unfold, a
reshape of the weight, one matmul, a reshape to NCHW), so the passes see through it.

    %3 = conv2d %0 %1 {stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1}
      ->
    %4 = unfold %0 {kernel=(3, 3), ...} ; %5 = reshape %1 ; %6 = matmul %5 %4 ; %3 = reshape %6

In a training step the backward's weight gradient unfolds the same input again: cse then keeps
one unfold. The epilogue and elementwise passes fuse what follows the matmul as for any other.
"""

from __future__ import annotations

from lucid import ops
from lucid_jit.ir.graph import Graph, Node, Value
from lucid_jit.passes._util import rewrite
from lucid_jit.passes.registry import register


@register("lower_conv")
def lower_conv(graph: Graph) -> Graph:
    return rewrite(graph, lambda node, defs: lower_conv2d(node) if node.op is ops.conv2d
                   and node.body is None else None)


def lower_conv2d(node: Node) -> list[Node]:
    """conv2d as its eager implementation computes it: unfold, then one matmul of the weight
    as (O, K) (per group: (G, O/G, K)) with every image's columns, reshaped to NCHW."""
    x, w = node.inputs
    out = node.output
    n = x.shape[0]
    o, cg, kh, kw = w.shape
    groups = node.attrs["groups"]
    _, _, oh, ow = out.shape
    k, length = cg * kh * kw, oh * ow
    window = {"kernel": (kh, kw), "stride": node.attrs["stride"],
              "padding": node.attrs["padding"], "dilation": node.attrs["dilation"]}
    cols = Value((n, groups * k, length), x.dtype)
    nodes = [Node(ops.unfold, (x,), (cols,), window)]
    if groups > 1:
        grouped = Value((n, groups, k, length), x.dtype)
        nodes.append(Node(ops.reshape, (cols,), (grouped,), {"shape": grouped.shape}))
        cols = grouped
    wm = Value((groups, o // groups, k) if groups > 1 else (o, k), w.dtype)
    y = Value(((n, groups, o // groups) if groups > 1 else (n, o)) + (length,), x.dtype)
    nodes += [Node(ops.reshape, (w,), (wm,), {"shape": wm.shape}),
              Node(ops.matmul, (wm, cols), (y,), {}),  # (a kernel reads wm's batch axes)
              Node(ops.reshape, (y,), (out,), {"shape": out.shape})]
    return nodes
