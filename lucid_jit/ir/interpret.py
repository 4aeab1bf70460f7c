"""The reference interpreter: runs a graph node by node through `lucid.ops.bind` (so through each
op's eager implementation). Fused nodes run their bodies. It is the reference every backend and
every pass is checked against."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lucid.ops.registry import CURRENT_TRACER, GRAD_ENABLED, bind
from lucid.tensor import Tensor
from lucid_jit.ir.graph import CONST, Graph

_share = Tensor._share


def interpret(graph: Graph, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The graph's outputs for the given input arrays (never traced, never recording grad)."""
    if len(arrays) != len(graph.inputs):
        raise ValueError(f"interpret: the graph takes {len(graph.inputs)} inputs, "
                         f"got {len(arrays)}")
    tracer_token = CURRENT_TRACER.set(None)
    grad_token = GRAD_ENABLED.set(False)
    try:
        return _run(graph, arrays)
    finally:
        GRAD_ENABLED.reset(grad_token)
        CURRENT_TRACER.reset(tracer_token)


def _run(graph: Graph, arrays) -> list[np.ndarray]:
    env: dict[int, np.ndarray] = {v.id: a for v, a in zip(graph.inputs, arrays, strict=True)}
    for node in graph.nodes:
        if node.op is CONST:
            env[node.outputs[0].id] = node.attrs["value"]
            continue
        args = [env[v.id] for v in node.inputs]
        if node.body is not None:
            results = _run(node.body, args)
        else:
            results = [bind(node.op, *[_share(a) for a in args], **node.attrs).data]
        for v, r in zip(node.outputs, results, strict=True):
            env[v.id] = r
    return [env[v.id] for v in graph.outputs]
