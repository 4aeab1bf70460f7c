"""`lucid_jit.explain(fn, *args)`: what the compiler did with a function, as a printable report."""

from __future__ import annotations

from lucid_jit.api import CompiledFunction, CompiledModule


class ExplainReport:
    """The graphs, node counts per stage, graph breaks, guards, cache entries, recompiles and
    compile times of a compiled function. `str(report)` is the text."""

    def __init__(self, compiled: CompiledFunction) -> None:
        self.compiled = compiled
        self.name = compiled.name
        self.entries = list(compiled.entries)
        self.recompiles = list(compiled.recompiles)

    @property
    def graph_breaks(self) -> list[tuple[str, str]]:
        return [(e.reason, e.location) for e in self.entries if e.kind == "eager"]

    def __str__(self) -> str:
        from lucid_jit.report import format_report

        return format_report(self)

    def __repr__(self) -> str:
        return (f"<ExplainReport {self.name}: {len(self.entries)} entries, "
                f"{len(self.graph_breaks)} graph breaks>")


def explain(fn, *args, **kwargs) -> ExplainReport:
    """Call fn (compiling it first if it is a plain function) and report what the compiler did."""
    if isinstance(fn, CompiledModule):
        compiled = fn._compiled_forward
    elif isinstance(fn, CompiledFunction):
        compiled = fn
    else:
        from lucid_jit.api import compile as _compile

        compiled = _compile(fn)
        if isinstance(compiled, CompiledModule):
            compiled = compiled._compiled_forward
    if args or kwargs:
        compiled(*args, **kwargs)
    return ExplainReport(compiled)
