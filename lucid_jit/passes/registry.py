"""The pass registry and the pipeline runner.

A pass is a pure `Graph -> Graph` function in its own file, registered by name with
`@register("dce")`. A pipeline is a list of pass names; `run_pipeline` runs one, timing each pass,
optionally verifying the graph after each, and printing it when `LUCID_JIT_LOG=passes`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lucid_jit import log
from lucid_jit.ir.graph import Graph
from lucid_jit.ir.printer import format_graph
from lucid_jit.ir.verify import verify as verify_graph

Pass = Callable[[Graph], Graph]

PASSES: dict[str, Pass] = {}

# simplify exposes constants and fills to fold, fold exposes identities (x * 1) to simplify, and
# both leave duplicates for cse and dead nodes for dce: two rounds reach a fixed point in practice.
PIPELINES: dict[str, list[str]] = {
    "default": ["simplify", "fold", "cse", "dce", "simplify", "fold", "cse", "dce"],
    "cleanup": ["cse", "dce"],
    "none": [],
}
# The native backends' pipeline: convolutions lowered to unfold and matmul (so cse and fusion see
# through them), the default one, then fusion. Epilogues first, so a matmul keeps its
# bias and activation; then reductions take their elementwise producers; elementwise fusion gets
# what is left. A last dce drops whatever fusion left unread.
PIPELINES["fusion"] = ["lower_conv"] + PIPELINES["default"] + [
    "fuse_matmul_epilogue", "fuse_reduction", "fuse_elementwise", "dce"]


def register(name: str) -> Callable[[Pass], Pass]:
    """Register a pass under `name` (a decorator)."""
    def decorate(fn: Pass) -> Pass:
        if name in PASSES:
            raise ValueError(f"pass {name!r} is already registered")
        PASSES[name] = fn
        return fn
    return decorate


@dataclass(frozen=True)
class PassStat:
    """What one pass of a pipeline did: its name, its time, and the node counts around it."""

    name: str
    seconds: float
    nodes_before: int
    nodes_after: int


def run_pipeline(graph: Graph, pipeline: str | Sequence[str] = "default", *,
                 verify: bool = False) -> tuple[Graph, list[PassStat]]:
    """Run a pipeline (a name in PIPELINES, or a list of pass names) over a graph."""
    names = _pass_names(pipeline)
    if verify:
        verify_graph(graph, "pipeline input")
    stats: list[PassStat] = []
    for name in names:
        before = len(graph)
        start = time.perf_counter()
        result = PASSES[name](graph)
        stat = PassStat(name, time.perf_counter() - start, before, len(result))
        graph = result
        stats.append(stat)
        if verify:
            verify_graph(graph, f"after {name}")
        if log.enabled("passes"):
            title = (f"--- after {name} ({stat.seconds * 1e3:.2f} ms): "
                     f"{stat.nodes_before} -> {stat.nodes_after} nodes")
            log.write("passes", format_graph(graph, title))
    return graph, stats


def _pass_names(pipeline: str | Sequence[str]) -> list[str]:
    if isinstance(pipeline, str):
        if pipeline not in PIPELINES:
            raise KeyError(f"unknown pipeline {pipeline!r}; known: {', '.join(PIPELINES)}")
        pipeline = PIPELINES[pipeline]
    unknown = [name for name in pipeline if name not in PASSES]
    if unknown:
        raise KeyError(f"unknown pass {unknown[0]!r}; known: {', '.join(PASSES)}")
    return list(pipeline)
