"""The verifier: a graph is well formed SSA in topological order, and every node's output avals
are what its op's shape rule says they are."""

from __future__ import annotations

from lucid.ops.registry import LucidError
from lucid_jit.ir.graph import Graph


class VerifyError(LucidError):
    """A graph broke an IR invariant (a compiler bug, not a user error)."""


def verify(graph: Graph, where: str = "graph") -> Graph:
    """Check SSA, order and shapes; return the graph (so it can be chained) or raise VerifyError."""
    defined: set[int] = set()
    for v in graph.inputs:
        if v.id in defined:
            raise VerifyError(f"{where}: input {v} is listed twice")
        defined.add(v.id)
    for i, node in enumerate(graph.nodes):
        for v in node.inputs:
            if v.id not in defined:
                raise VerifyError(f"{where}: node {i} ({node.op.name}) reads {v} before it is "
                                  "defined")
        if node.body is not None:
            verify(node.body, f"{where}: body of node {i}")
            if len(node.body.inputs) != len(node.inputs) or \
                    len(node.body.outputs) != len(node.outputs):
                raise VerifyError(f"{where}: node {i} ({node.op.name}) and its body disagree on "
                                  "the number of inputs or outputs")
            for v, b in zip(node.inputs, node.body.inputs, strict=True):
                if v.aval != b.aval:
                    raise VerifyError(f"{where}: node {i} ({node.op.name}) passes {v.aval} to a "
                                      f"body input of {b.aval}")
            inferred = [v.aval for v in node.body.outputs]
        else:
            try:
                inferred = [node.op.infer(*[v.aval for v in node.inputs], **node.attrs)]
            except LucidError as exc:
                raise VerifyError(f"{where}: node {i} ({node.op.name}) fails its shape rule: "
                                  f"{exc}") from exc
        for v, aval in zip(node.outputs, inferred, strict=True):
            if v.aval != aval:
                raise VerifyError(f"{where}: node {i} ({node.op.name}) says {v.aval}, its shape "
                                  f"rule says {aval}")
            if v.id in defined:
                raise VerifyError(f"{where}: {v} is defined twice (node {i}, {node.op.name})")
            defined.add(v.id)
    for v in graph.outputs:
        if v.id not in defined:
            raise VerifyError(f"{where}: output {v} is never defined")
    return graph
