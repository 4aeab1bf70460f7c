"""What the rewriting passes share: rebuilding a graph node by node through a substitution map."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from lucid_jit.ir.graph import Graph, Node, Value

# A rule sees each node (its inputs already renamed) and the nodes defining the new graph's values
# so far. It returns None to keep the node, a Node to emit instead (its outputs stand for the old
# ones, in order), a list of Nodes to emit (the last one's outputs stand for the old ones), or the
# existing Value(s) the node's outputs become (the node is dropped).
Rule = Callable[[Node, Mapping[int, Node]], "Node | Value | Sequence[Value] | None"]


def rename(values: Iterable[Value], subst: Mapping[int, Value]) -> tuple[Value, ...]:
    return tuple(subst.get(v.id, v) for v in values)


def rewrite(graph: Graph, rule: Rule) -> Graph:
    """Rebuild `graph` through `rule`; the graph itself when the rule changed nothing."""
    subst: dict[int, Value] = {}
    defs: dict[int, Node] = {}
    nodes: list[Node] = []
    for old in graph.nodes:
        inputs = rename(old.inputs, subst)
        node = old if inputs == old.inputs else Node(old.op, inputs, old.outputs, old.attrs,
                                                     old.body)
        result = rule(node, defs)
        if isinstance(result, list):  # several nodes: the last one stands for the old node
            for extra in result[:-1]:
                nodes.append(extra)
                defs.update((v.id, extra) for v in extra.outputs)
            result = result[-1]
        if result is None or isinstance(result, Node):
            new = node if result is None else result
            subst.update((o.id, n) for o, n in zip(old.outputs, new.outputs, strict=True)
                         if o is not n)
            nodes.append(new)
            defs.update((v.id, new) for v in new.outputs)
        else:
            values = (result,) if isinstance(result, Value) else tuple(result)
            subst.update((o.id, v) for o, v in zip(old.outputs, values, strict=True))
    outputs = rename(graph.outputs, subst)
    if outputs == graph.outputs and len(nodes) == len(graph.nodes) and \
            all(a is b for a, b in zip(nodes, graph.nodes, strict=True)):
        return graph
    return graph.replace(nodes=nodes, outputs=outputs)
