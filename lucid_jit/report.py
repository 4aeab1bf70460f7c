"""The text of an explain report."""

from __future__ import annotations


def format_report(report) -> str:
    lines = [f"=== lucid_jit.explain: {report.name} ==="]
    lines.append(f"cache entries: {len(report.entries)}; graph breaks: "
                 f"{len(report.graph_breaks)}; recompiles: {len(report.recompiles)}")
    for i, entry in enumerate(report.entries):
        lines.append("")
        lines.append(f"--- entry {i}: {entry.kind}")
        if entry.kind == "eager":
            lines.append(f"graph break: {entry.reason} ({entry.location})")
            continue
        for title, graph in (("traced", entry.traced), ("optimized", entry.forward),
                             ("backward", entry.backward_traced),
                             ("backward optimized", entry.backward)):
            if graph is not None:
                lines.append(f"{title} graph ({len(graph)} nodes):")
                lines.append(str(graph))
        lines.append("write-backs:")
        lines.extend(f"  {e.describe()}" for e in entry.effects) if entry.effects else \
            lines.append("  none")
        lines.append("compile time:")
        lines.extend(f"  {s.name}: {s.seconds * 1e3:.2f} ms ({s.nodes} nodes)"
                     for s in entry.stages)
    for name, reasons in report.recompiles:
        lines.append(f"recompile of {name}: " + "; ".join(reasons))
    return "\n".join(lines)
