"""`lucid_jit.explain(fn, *args)`: what the compiler did with a function, as a report.

The report collects, for every cache entry of a compiled function, the graphs at each stage (traced,
optimized, backward, backward optimized), the node count after every pass, the guards the entry
checks before it runs, what it writes back after a call, and the time each compile stage took;
and, for the function, its graph breaks and why it was retraced. `str(report)` is the text (built
by `report.py`); the attributes are the same facts as data, for tests and tools.

`record_compiled()` collects every `CompiledFunction` created while it is active: it is how
`python -m lucid_jit explain script.py` finds the compiled functions of a script it runs.
"""

from __future__ import annotations

import functools
import os
import runpy
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from lucid_jit.api import CompiledFunction, CompiledModule
from lucid_jit.explain import text as fmt
from lucid_jit.ir.graph import Graph

GRAPH_STAGES = ("traced", "optimized", "backward", "backward_optimized")


@dataclass(frozen=True)
class GraphBreakInfo:
    """A cache entry that runs eagerly: why the trace stopped and on which line of user code."""

    entry: int
    reason: str
    location: str
    signature: str


@dataclass
class EntryReport:
    """One cache entry, described. `kind` is "compiled" or "eager" (a graph break)."""

    index: int
    kind: str
    signature: str
    why: list[str]
    graphs: dict[str, Graph | None] = field(default_factory=dict)
    # "forward" / "backward": [(stage, nodes)], from "traced" through each pass to "optimized".
    node_counts: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    pass_seconds: dict[str, list[float]] = field(default_factory=dict)
    # (stage, seconds): trace, autodiff, passes, codegen, then numba's compiles per call
    times: list[tuple[str, float]] = field(default_factory=list)
    # (which call, wall seconds): the call that traced the entry, then each program's calls
    # before it settled on its tier (the calls that may compile)
    first_calls: list[tuple[str, float]] = field(default_factory=list)
    guards: list[tuple[str, str]] = field(default_factory=list)  # (kind, text)
    write_backs: list[str] = field(default_factory=list)
    returns: list[str] = field(default_factory=list)
    graph_break: GraphBreakInfo | None = None
    raw: Any = None  # the CompiledEntry or EagerEntry itself

    @property
    def compile_seconds(self) -> float:
        return sum(s for _, s in self.times)


class ExplainReport:
    """What the compiler did with one compiled function, up to the moment the report was made."""

    def __init__(self, compiled: CompiledFunction, result: Any = None) -> None:
        self.compiled = compiled
        self.result = result
        self.name = compiled.name
        self.calls = getattr(compiled, "calls", 0)
        self.backend = compiled.backend_name
        self.backend_runs_on = getattr(compiled.backend, "name", compiled.backend_name)
        self.pipeline = compiled.pipeline
        self.cache_limit = compiled.cache_limit
        self.fullgraph = getattr(compiled, "fullgraph", False)
        self.recompiles: list[tuple[str, list[str]]] = [(n, list(r))
                                                        for n, r in compiled.recompiles]
        self.entries = [self._entry(i, e) for i, e in enumerate(compiled.entries)]

    # ------------------------------------------------------------------ the data

    @property
    def graph_breaks(self) -> list[GraphBreakInfo]:
        return [e.graph_break for e in self.entries if e.graph_break is not None]

    @property
    def node_counts(self) -> dict[int, dict[str, list[tuple[str, int]]]]:
        """Entry index -> {"forward": [(stage, nodes), ...], "backward": [...]}."""
        return {e.index: e.node_counts for e in self.entries if e.kind == "compiled"}

    @property
    def compile_times(self) -> dict[int, list[tuple[str, float]]]:
        return {e.index: e.times for e in self.entries if e.kind == "compiled"}

    def _entry(self, index: int, raw) -> EntryReport:
        signature = fmt.describe_key(raw.key, self.compiled.fn)
        if index == 0:
            why = ["the first call"]
        elif index - 1 < len(self.recompiles):
            why = self.recompiles[index - 1][1]
        else:
            why = []
        if raw.kind == "eager":
            info = GraphBreakInfo(index, raw.reason, raw.location, signature)
            return EntryReport(index, "eager", signature, why, guards=fmt.describe_guards(raw),
                               graph_break=info, raw=raw)
        graphs = {"traced": raw.traced, "optimized": raw.forward,
                  "backward": raw.backward_traced, "backward_optimized": raw.backward}
        counts, seconds = {}, {}
        stats = getattr(raw, "pass_stats", None) or {}
        for part, before, after in (("forward", raw.traced, raw.forward),
                                    ("backward", raw.backward_traced, raw.backward)):
            if before is None:
                counts[part], seconds[part] = [], []
                continue
            steps = list(stats.get(part, ()))
            counts[part] = ([("traced", len(before))] + [(s.name, s.nodes_after) for s in steps]
                            + [("optimized", len(after))])
            seconds[part] = [s.seconds for s in steps]
        times = [(s.name, s.seconds) for s in raw.stages]
        first = []
        if raw.first_call_seconds is not None:
            first.append(("call 1 (traced, compiled, ran)", raw.first_call_seconds))
        for graph in (raw.forward, raw.backward):
            if graph is None:
                continue
            for r in raw.backend.compile_records(graph):
                if r.compiles:
                    times.append((f"numba: {r.describe()}", r.numba_seconds))
                    times += [(f"    {name}", t) for name, t in r.functions]
                if r.call and (r.part != "forward" or r.call > 1):  # (call 1: the traced one)
                    first.append((f"{r.part} call {r.call} ({r.tier} tier)", r.seconds))
        return EntryReport(
            index, "compiled", signature, why, graphs=graphs, node_counts=counts,
            pass_seconds=seconds, times=times, first_calls=first,
            guards=fmt.describe_guards(raw), write_backs=fmt.describe_effects(raw),
            returns=fmt.describe_returns(raw), raw=raw)

    # ------------------------------------------------------------------ the text

    def format(self, graphs: bool = True) -> str:
        """The report as text; `graphs=False` leaves out the IR dumps (summaries only)."""
        return fmt.format_report(self, graphs=graphs)

    def __str__(self) -> str:
        return self.format()

    def __repr__(self) -> str:
        return (f"<ExplainReport {self.name}: {fmt.plural(len(self.entries), 'cache entry')}, "
                f"{fmt.plural(len(self.graph_breaks), 'graph break')}, "
                f"{fmt.plural(len(self.recompiles), 'recompile')}>")


def _compiled_of(fn) -> tuple[CompiledFunction, tuple]:
    """The CompiledFunction behind fn (and arguments bound to it), compiling fn if it is not."""
    if isinstance(fn, functools.partial) and isinstance(fn.func, CompiledFunction):
        return fn.func, fn.args  # a compiled method, bound by CompiledFunction.__get__
    if isinstance(fn, CompiledModule):
        return fn._compiled_forward, ()
    if isinstance(fn, CompiledFunction):
        return fn, ()
    from lucid_jit.api import compile as _compile

    compiled = _compile(fn)
    if isinstance(compiled, CompiledModule):
        compiled = compiled._compiled_forward
    return compiled, ()


def explain(fn, *args, **kwargs) -> ExplainReport:
    """Report what the compiler did with `fn`.

    `fn` is a compiled function or module (its cache so far is reported), or a plain function or
    module (compiled here). With arguments, `fn(*args, **kwargs)` is called first, and its result is
    the report's `.result`. `print(report)` shows everything; `report.format(graphs=False)` leaves
    out the graphs."""
    compiled, bound = _compiled_of(fn)
    result = None
    if args or kwargs:
        result = compiled(*bound, *args, **kwargs)
    return ExplainReport(compiled, result)


from lucid_jit.explain.script import record_compiled, run_script  # noqa: E402
