"""Graphs as text, one line per node: `%5: f32[32,128] = relu %4`. Fused bodies are indented."""

from __future__ import annotations

import numpy as np

from lucid.ops.movement import Slice, Slot
from lucid_jit.ir.graph import CONST, Graph, Value


def format_graph(graph: Graph, title: str | None = None) -> str:
    names: dict[int, str] = {}
    lines = [] if title is None else [title]
    _format(graph, names, lines, indent="", header="graph")
    return "\n".join(lines)


def _name(v: Value, names: dict[int, str]) -> str:
    if v.id not in names:
        names[v.id] = f"%{len(names)}"
    return names[v.id]


def _format(graph: Graph, names: dict[int, str], lines: list[str], indent: str, header: str):
    ins = []
    for v, label in zip(graph.inputs, graph.input_names, strict=True):
        ins.append(f"{_name(v, names)}: {v.aval}" + (f" {label}" if label else ""))
    if len(ins) <= 3:
        lines.append(f"{indent}{header}({', '.join(ins)}):")
    else:
        lines.append(f"{indent}{header}(")
        lines.extend(f"{indent}    {s}," for s in ins)
        lines.append(f"{indent}):")
    for node in graph.nodes:
        outs = ", ".join(f"{_name(v, names)}: {v.aval}" for v in node.outputs)
        args = " ".join(_name(v, names) for v in node.inputs)
        attrs = format_attrs(node)
        text = f"{indent}  {outs} = {node.op.name}"
        if args:
            text += f" {args}"
        if attrs:
            text += f" {{{attrs}}}" if node.op is not CONST else f" {attrs}"
        lines.append(text)
        if node.body is not None:
            _format(node.body, names, lines, indent + "    ", "body")
    outs = ", ".join(_name(v, names) for v in graph.outputs)
    lines.append(f"{indent}  return {outs}")


def format_attrs(node) -> str:
    if node.op is CONST:
        return _const(node.attrs["value"])
    return ", ".join(f"{k}={_attr(v)}" for k, v in node.attrs.items())


def _const(arr: np.ndarray) -> str:
    if arr.ndim == 0:
        return str(arr.dtype.type(arr.item())) if arr.dtype.kind == "f" else repr(arr.item())
    if arr.size <= 8:
        return np.array2string(arr, separator=", ").replace("\n", "")
    return f"<{arr.size} values>"


def _attr(v) -> str:
    if isinstance(v, np.dtype) or (isinstance(v, type) and issubclass(v, np.generic)):
        return str(np.dtype(v))
    if isinstance(v, Slice):
        text = ("" if v.start is None else str(v.start)) + ":" + \
            ("" if v.stop is None else str(v.stop))
        return text if v.step is None else f"{text}:{v.step}"
    if isinstance(v, Slot):
        return f"t{v.k}"
    if isinstance(v, tuple):
        return "(" + ", ".join(_attr(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, np.ndarray):
        return _const(v)
    return repr(v)
