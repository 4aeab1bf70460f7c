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
    changed = False
    for old in graph.nodes:
        node = old
        if subst:
            inputs = tuple([subst.get(v.id, v) for v in old.inputs])
            if inputs != old.inputs:
                node = Node(old.op, inputs, old.outputs, old.attrs, old.body)
        result = rule(node, defs)
        if result is None:
            changed |= node is not old
            nodes.append(node)
            for v in node.outputs:
                defs[v.id] = node
            continue
        changed = True
        if isinstance(result, list):  # several nodes: the last one stands for the old node
            for extra in result[:-1]:
                nodes.append(extra)
                for v in extra.outputs:
                    defs[v.id] = extra
            result = result[-1]
        if isinstance(result, Node):
            for o, n in zip(old.outputs, result.outputs, strict=True):
                if o is not n:
                    subst[o.id] = n
            nodes.append(result)
            for v in result.outputs:
                defs[v.id] = result
        else:
            values = (result,) if isinstance(result, Value) else tuple(result)
            subst.update((o.id, v) for o, v in zip(old.outputs, values, strict=True))
    if not changed:
        return graph
    return graph.replace(nodes=nodes, outputs=rename(graph.outputs, subst))
