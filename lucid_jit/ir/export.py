"""Graphs for other tools: a networkx DiGraph (nodes are values and ops) and DOT text."""

from __future__ import annotations

import networkx as nx

from lucid_jit.ir.graph import Graph
from lucid_jit.ir.printer import format_attrs


def to_networkx(graph: Graph) -> nx.DiGraph:
    """One networkx node per IR node (key: its index) and per graph input (key: "in<i>");
    an edge per value flowing from its producer to each consumer, labelled with the value's aval.
    Graph outputs are the node attribute `output=True` on their producers."""
    g = nx.DiGraph()
    producer: dict[int, object] = {}
    for i, v in enumerate(graph.inputs):
        key = f"in{i}"
        g.add_node(key, op="input", label=f"input {i}: {v.aval}", aval=str(v.aval),
                   name=graph.input_names[i])
        producer[v.id] = key
    for i, node in enumerate(graph.nodes):
        g.add_node(i, op=node.op.name, attrs=format_attrs(node),
                   label=f"{node.op.name} {format_attrs(node)}".strip(),
                   avals=[str(v.aval) for v in node.outputs], fused=node.body is not None)
        for v in node.inputs:
            g.add_edge(producer[v.id], i, aval=str(v.aval))
        for v in node.outputs:
            producer[v.id] = i
    for v in graph.outputs:
        g.nodes[producer[v.id]]["output"] = True
    return g


def to_dot(graph: Graph, name: str = "lucid_graph") -> str:
    """Graphviz DOT text for the graph (inputs as ellipses, ops as boxes, outputs bold)."""
    g = to_networkx(graph)
    lines = [f"digraph {name} {{", "  rankdir=TB;", '  node [fontname="monospace"];']
    for key, data in g.nodes(data=True):
        shape = "ellipse" if data["op"] == "input" else "box"
        style = ', style="bold"' if data.get("output") else ""
        label = _escape(data["label"])
        lines.append(f'  "{key}" [label="{label}", shape={shape}{style}];')
    for a, b, data in g.edges(data=True):
        lines.append(f'  "{a}" -> "{b}" [label="{_escape(data["aval"])}"];')
    lines.append("}")
    return "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
