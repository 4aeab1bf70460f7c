"""The fusion passes' decisions, carried by the graph they made (`Graph.log`): the groups made,
and for each edge left between two fusible-looking kernels, why (`fusion_report(graph)`,
`LUCID_JIT_LOG=fusion`)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

from lucid import ops
from lucid_jit.ir.graph import FUSED, Graph, Node, Value


@dataclass(frozen=True)
class FusedGroup:
    """One fused node a pass made: its name, kind and body ops in order."""

    name: str
    kind: str
    ops: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}): {', '.join(self.ops)}"


@dataclass(frozen=True)
class UnfusedEdge:
    """A value flowing between two kernels that could look fusible, and why it is not fused."""

    producer: str
    consumer: str
    aval: str
    reason: str

    def __str__(self) -> str:
        return f"{self.producer} -> {self.consumer} [{self.aval}]: {self.reason}"


class FusionLog:
    """The fusion decisions behind a graph: every group made so far, and the edges left
    (`unfused`: worked out when first read, by `explain` or the fusion log; a retrace for a new
    batch size never reads them)."""

    def __init__(self, groups: tuple[FusedGroup, ...], graph: Graph,
                 reasons: Mapping[tuple[int, int], str]) -> None:
        self.groups = groups
        self.reasons = reasons
        self._graph = graph

    @functools.cached_property
    def unfused(self) -> tuple[UnfusedEdge, ...]:
        return tuple(_unfused_edges(self._graph, self.reasons))

    def lines(self) -> list[str]:
        return [str(g) for g in self.groups] + [f"unfused {e}" for e in self.unfused]


def fusion_log(graph: Graph) -> FusionLog | None:
    """The decisions of the fusion passes that made `graph` (None if none ran): carried by the
    graph itself (`Graph.log`), through any later pass that rewrites it."""
    return graph.log if isinstance(graph.log, FusionLog) else None


def fusion_report(graph: Graph) -> list[str]:
    """The fusion decisions as lines of text: `fused_0 (matmul_epilogue): matmul, ...` per group,
    then `unfused <producer> -> <consumer> [<aval>]: <reason>` per edge left between kernels."""
    entry = fusion_log(graph)
    return entry.lines() if entry is not None else []


def _looks_fusible(node: Node) -> bool:
    return node.op is FUSED or node.op.kind in ("elementwise", "reduction", "matmul", "random")


def _describe(node: Node) -> str:
    if node.op is FUSED:
        return node.attrs["name"]
    return f"{node.op.name} {node.outputs[0].aval}" if node.outputs else node.op.name


def _unfused_edges(graph: Graph, reasons: Mapping[tuple[int, int], str]) -> list[UnfusedEdge]:
    """One edge per (producer, consumer, reason), its avals listed: `[f32[] x3, f32[4]]`."""
    producers = graph.producers()
    avals: dict[tuple[str, str, str], list[str]] = {}
    for consumer in graph.nodes:
        if not _looks_fusible(consumer):
            continue
        seen: set[int] = set()
        for v in consumer.inputs:
            producer = producers.get(v.id)
            if v.id in seen or producer is None or not _looks_fusible(producer):
                continue
            seen.add(v.id)
            reason = _reason(producer, consumer, v, reasons)
            key = (_describe(producer), _describe(consumer), reason)
            avals.setdefault(key, []).append(str(v.aval))
    edges = []
    for (producer, consumer, reason), seen_avals in avals.items():
        counts = {a: seen_avals.count(a) for a in seen_avals}
        text = ", ".join(a if k == 1 else f"{a} x{k}" for a, k in counts.items())
        edges.append(UnfusedEdge(producer, consumer, text, reason))
    return edges


def _reason(producer: Node, consumer: Node, v: Value,
            reasons: Mapping[tuple[int, int], str]) -> str:
    readers = [consumer]
    if consumer.op is FUSED:
        inner = consumer.body.inputs[consumer.inputs.index(v)]
        readers = [m for m in consumer.body.nodes if inner in m.inputs]
    made_by = producer
    if producer.op is FUSED:
        inner = producer.body.outputs[producer.outputs.index(v)]
        made_by = next(m for m in producer.body.nodes if inner in m.outputs)
    for m in readers:
        if m.outputs and (v.id, m.outputs[0].id) in reasons:
            return reasons[v.id, m.outputs[0].id]
    ops_read = {m.op for m in readers}
    if not producer.op.pure:
        return f"impure op ({producer.op.name}) is never fused"
    if ops.broadcast_to in ops_read:
        return "shapes differ (broadcast)"
    if ops.matmul in ops_read:
        return "consumer is a matmul (matmul operands are not fused)"
    if ops.argmax in ops_read or made_by.op is ops.argmax:
        return "argmax is not fused"
    if made_by.op.kind == "reduction":
        return "producer is a reduction (its value is complete only after its loop)"
    if made_by.op is ops.matmul:
        return "producer is a matmul whose value is not followed by an elementwise epilogue"
    if producer.op is FUSED:
        return f"producer is already in {producer.attrs['name']} ({producer.attrs['kind']})"
    if consumer.op is FUSED:
        return f"consumer is already in {consumer.attrs['name']} ({consumer.attrs['kind']})"
    return "not fused"
