"""What the fusion passes share: a plan of which nodes go together, its legality check, the growth
rules, building fused nodes, and the log of decisions.

A `Plan` starts with every node alone and a pass merges clusters of nodes. A merge is refused when
the merged cluster would not be convex (a path leaves it and comes back: the kernel would wait on
itself). The plan keeps the dataflow as a DAG (successor and predecessor sets) with each cluster
contracted to one vertex, so a merge is legal exactly when contracting keeps that graph acyclic.
Groups made by an earlier pass are single fused nodes by then, so no pass can make a cycle, alone
or with another.

Free nodes cost nothing inside a loop: `full` fills, one-element `const`s and `broadcast_to` (a
stride-0 read of its source, which stays outside). They are never merged; each group takes the
free nodes its loop reads, or a copy when something else reads them too. Every other node is in at
most one group, so fusion never computes anything twice; a value a group computes that anything
outside it reads (or that the graph returns) is an output of the fused node. A cluster of one node
that reads no free node stays a plain node: it is one loop (or one matmul, one reduction) already.
Random ops never join a group (`make_fused` refuses them), so every fused node is pure.

Decisions are logged on the result graph (`Graph.log`, carried through later passes): the groups
made, and for each edge left between two fusible-looking kernels, why (`fusion_report(graph)`,
`LUCID_JIT_LOG=fusion`).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping

from lucid import ops
from lucid_jit import log
from lucid_jit.ir.graph import CONST, FUSED, Graph, Node, Value
from lucid_jit.passes.fusion_log import FusedGroup, FusionLog

REDUCTIONS = (ops.sum, ops.max)

# ----------------------------------------------------------------------------- node classes


def is_free(node: Node) -> bool:
    """A node a loop computes for free: a fill, a one-element constant, a broadcast read."""
    if node.body is not None:
        return False
    if node.op is CONST:
        return node.attrs["value"].size == 1
    return node.op is ops.full or node.op is ops.broadcast_to


def is_elementwise(node: Node) -> bool:
    return node.body is None and node.op.kind == "elementwise" and node.op.pure


def impure_chain(nodes) -> list[int]:
    """The indices of the impure nodes (random draws, collectives), in program order."""
    return [i for i, node in enumerate(nodes) if node.body is None and not node.op.pure]


def reads_free_inputs(node: Node) -> bool:
    """Whether a loop over this node's iteration space reads its free inputs in place (a matmul
    wants real operands: a fill or broadcast it reads stays a node of its own)."""
    return is_elementwise(node) or node.op in REDUCTIONS


# ----------------------------------------------------------------------------- the plan


class Plan:
    """Which nodes of `graph` go together. Nodes are named by their index in `graph.nodes`; a
    cluster by its representative's index; `kind` marks the clusters that become fused nodes."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.nodes = graph.nodes
        self.producer: dict[int, int] = {}
        self.users: dict[int, list[int]] = {}
        for i, node in enumerate(graph.nodes):
            for v in node.inputs:
                readers = self.users.setdefault(v.id, [])
                if not readers or readers[-1] != i:
                    readers.append(i)
            for v in node.outputs:
                self.producer[v.id] = i
        self.graph_outputs = {v.id for v in graph.outputs}
        self.free = {i for i, node in enumerate(graph.nodes) if is_free(node)}
        self.rep: dict[int, int] = {}
        self.members: dict[int, list[int]] = {}
        self.kind: dict[int, str] = {}
        self.reasons: dict[tuple[int, int], str] = {}
        # Free nodes are left out of the dataflow graph: a broadcast's source feeds its readers
        # directly (it can never close a cycle a direct edge would not).
        # The contracted dataflow: cluster -> the clusters it feeds / that feed it.
        self.succ: dict[int, set[int]] = {}
        self.pred: dict[int, set[int]] = {}
        for i, node in enumerate(graph.nodes):
            if i in self.free:
                continue
            self.rep[i] = i
            self.members[i] = [i]
            preds = self.pred[i] = set()
            self.succ[i] = set()
            for v in node.inputs:
                for p in self._sources(v):
                    preds.add(p)
                    self.succ[p].add(i)
        # Impure nodes keep their program order (random draws take the generator's counters,
        # and every rank must call collectives alike): each one follows the one before it.
        impure = impure_chain(graph.nodes)
        for a, b in zip(impure, impure[1:], strict=False):
            self.pred[b].add(a)
            self.succ[a].add(b)

    def _sources(self, v: Value) -> list[int]:
        p = self.producer.get(v.id)
        if p is None:
            return []
        if p not in self.free:
            return [p]
        return [s for w in self.nodes[p].inputs for s in self._sources(w)]

    # ------------------------------------------------------------------ queries

    def cluster(self, i: int) -> int:
        """The representative of i's cluster (a free node is its own)."""
        root = i
        while self.rep.get(root, root) != root:
            root = self.rep[root]
        while self.rep.get(i, i) != root:
            self.rep[i], i = root, self.rep[i]
        return root

    def alone(self, i: int) -> bool:
        """Not free, and in no cluster yet."""
        return i in self.rep and self.rep[i] == i and len(self.members[i]) == 1 and \
            i not in self.kind

    def readers(self, v: Value) -> list[int]:
        return self.users.get(v.id, [])

    def producer_of(self, v: Value) -> int | None:
        return self.producer.get(v.id)

    # ------------------------------------------------------------------ decisions

    def claim(self, i: int, kind: str) -> int:
        """Mark i's cluster as one that becomes a fused node of this kind; its representative."""
        rep = self.cluster(i)
        self.kind[rep] = kind
        return rep

    def reject(self, value: Value, consumer: int, reason: str) -> None:
        """Why `value` does not flow inside a kernel into node `consumer` (the first reason
        stays)."""
        outs = self.nodes[consumer].outputs
        if outs:
            self.reasons.setdefault((value.id, outs[0].id), reason)

    def merge(self, a: int, b: int, value: Value | None = None,
              consumer: int | None = None) -> bool:
        """Merge b's cluster into a's unless that makes a cycle (then log why on the edge
        `value -> consumer` and return False)."""
        ra, rb = self.cluster(a), self.cluster(b)
        if ra == rb:
            return True
        if self._reaches(ra, rb) or self._reaches(rb, ra):
            if value is not None and consumer is not None:
                self.reject(value, consumer, "would create a cycle (a path leaves the group "
                                             "and comes back)")
            return False
        succ, pred = self.succ, self.pred
        for p in pred.pop(rb):
            succ[p].discard(rb)
            if p != ra:
                succ[p].add(ra)
                pred[ra].add(p)
        for s in succ.pop(rb):
            pred[s].discard(rb)
            if s != ra:
                pred[s].add(ra)
                succ[ra].add(s)
        self.rep[rb] = ra
        self.members[ra].extend(self.members.pop(rb))
        kind = self.kind.pop(rb, None)
        if kind is not None:
            self.kind.setdefault(ra, kind)
        return True

    def _reaches(self, src: int, dst: int) -> bool:
        """Whether a path of two or more edges leads from cluster src to cluster dst."""
        succ = self.succ
        stack = [s for s in succ[src] if s != dst]
        seen = set(stack)
        while stack:
            for s in succ[stack.pop()]:
                if s == dst:
                    return True
                if s not in seen:
                    seen.add(s)
                    stack.append(s)
        return False


# ----------------------------------------------------------------------------- growth rules


def pull_side_operands(plan: Plan, rep: int, i: int) -> None:
    """Merge into rep's cluster the elementwise producers of node i's operands that only the
    cluster reads (a ReLU backward's `gt` mask beside a gradient matmul's epilogue)."""
    stack = [i]
    while stack:
        m = stack.pop()
        for v in plan.nodes[m].inputs:
            p = plan.producer_of(v)
            if p is None or p in plan.free or plan.cluster(p) == plan.cluster(rep):
                continue
            if not is_elementwise(plan.nodes[p]) or not plan.alone(p):
                continue
            if any(plan.cluster(u) != plan.cluster(rep) for u in plan.readers(v)):
                plan.reject(v, m, "value also used outside the epilogue")
            elif plan.merge(rep, p, v, m):
                stack.append(p)


def grow_epilogue(plan: Plan, rep: int, tail: Value) -> None:
    """Extend rep's cluster (a matmul, a reduction) past its value `tail` with the elementwise ops
    applied to it, segment by segment: a segment is the ops from the current tail up to the next
    point where a single value is live again (a chain, or a diamond such as leaky_relu's
    `where(x > 0, x, x * slope)`). Growth stops where the uses fan out to something that is not
    elementwise."""
    while True:
        segment = _next_segment(plan, tail)
        if not segment:
            return
        for u in segment:
            inside = [v for v in plan.nodes[u].inputs
                      if plan.cluster(plan.producer.get(v.id, -1)) == plan.cluster(rep)]
            if not plan.merge(rep, u, inside[0] if inside else tail, u):
                return
            pull_side_operands(plan, rep, u)
        (tail,) = plan.nodes[segment[-1]].outputs


def _next_segment(plan: Plan, tail: Value) -> list[int]:
    pending: dict[int, set[int]] = {}
    heap: list[int] = []

    def live(v: Value) -> None:
        readers = set(plan.readers(v))
        if readers:
            pending[v.id] = readers
            for u in readers:
                heapq.heappush(heap, u)

    live(tail)
    fanout = len(pending.get(tail.id, ()))
    taken: list[int] = []
    while heap:
        u = heapq.heappop(heap)
        if taken and taken[-1] == u:
            continue
        reads = list({v.id: v for v in plan.nodes[u].inputs
                      if v.id in pending and u in pending[v.id]}.values())
        if not is_elementwise(plan.nodes[u]) or not plan.alone(u):
            if fanout > 1:
                for r in plan.readers(tail):
                    if is_elementwise(plan.nodes[r]):
                        plan.reject(tail, r, f"value has {fanout} users, which do not rejoin "
                                             f"before {plan.nodes[u].op.name}")
            elif not plan.alone(u) and u in plan.rep:
                for v in reads:
                    plan.reject(v, u, "consumer is already in another group")
            return []
        taken.append(u)
        for v in reads:
            pending[v.id].discard(u)
            if not pending[v.id]:
                del pending[v.id]
        (out,) = plan.nodes[u].outputs
        live(out)
        if not pending or (len(pending) == 1 and out.id in pending):
            return taken
    return taken


# ----------------------------------------------------------------------------- building


def finish(plan: Plan, pass_name: str) -> Graph:
    """The graph with the plan's clusters made fused nodes (the input graph itself when there are
    none), with its decision log recorded."""
    result, made = _emit(plan)
    previous = plan.graph.log
    reasons = dict(previous.reasons) if previous else {}
    for key, reason in plan.reasons.items():
        reasons.setdefault(key, reason)
    groups = (previous.groups if previous else ()) + tuple(made)
    entry = FusionLog(groups, result, reasons)
    if result is plan.graph:  # nothing fused: the same graph, its log annotated (not rebuilt)
        result.log = entry
    else:
        result = result.replace(log=entry)
    if log.enabled("fusion"):
        lines = [f"{g}" for g in made] or ["no groups"]
        lines += [f"unfused {e}" for e in entry.unfused]
        log.write("fusion", f"--- {pass_name}:\n  " + "\n  ".join(lines))
    return result


def _emit(plan: Plan) -> tuple[Graph, list[FusedGroup]]:
    nodes, n = plan.nodes, len(plan.nodes)
    groups: dict[int, tuple[list[int], list[int]]] = {}
    for rep in sorted(plan.kind):
        if plan.cluster(rep) != rep:
            continue
        members = sorted(plan.members[rep])
        attached = _attached(plan, members)
        if len(members) + len(attached) >= 2:
            groups[rep] = (members, attached)
    if not groups:
        return plan.graph, []

    home = {m: rep for rep, (members, _) in groups.items() for m in members}
    owners: dict[int, set[int]] = {}
    for rep, (_, attached) in groups.items():
        for f in attached:
            owners.setdefault(f, set()).add(rep)
    top_free = _top_level_free(plan, home, owners)
    top = [i for i in range(n) if (i not in plan.free and i not in home) or i in top_free]

    # Which kernels (unit keys: i for a top-level node, n + rep for a group) read each value.
    readers: dict[int, set[int]] = {}
    for i in top:
        for v in nodes[i].inputs:
            readers.setdefault(v.id, set()).add(i)
    for rep, (members, attached) in groups.items():
        for j in members + attached:
            for v in nodes[j].inputs:
                readers.setdefault(v.id, set()).add(n + rep)

    taken = {node.attrs.get("name") for node in nodes if node.op is FUSED}
    names = (f"fused_{k}" for k in range(len(taken), len(taken) + 2 * n + 1)
             if f"fused_{k}" not in taken)
    fused: dict[int, Node] = {}
    made: list[FusedGroup] = []
    for rep in sorted(groups, key=lambda r: groups[r][0][0]):
        members, attached = groups[rep]
        clones = {f for f in attached if f in top_free or len(owners[f]) > 1}
        outputs = [v for m in members for v in nodes[m].outputs
                   if v.id in plan.graph_outputs or readers.get(v.id, set()) - {n + rep}]
        name = next(names)
        fused[rep] = make_fused(nodes, sorted(members + attached), clones, outputs,
                                plan.kind[rep], name)
        made.append(FusedGroup(name, plan.kind[rep],
                               tuple(node.op.name for node in fused[rep].body.nodes)))

    # Order: a topological order of the kernels, each as close to its first node as it can be.
    unit_of: dict[int, int] = {}
    position: dict[int, int] = {}
    for i in top:
        position[i] = i
        unit_of.update((v.id, i) for v in nodes[i].outputs)
    for rep, node in fused.items():
        position[n + rep] = groups[rep][0][0]
        unit_of.update((v.id, n + rep) for v in node.outputs)
    feeds: dict[int, set[int]] = {unit: set() for unit in position}
    waiting = dict.fromkeys(position, 0)
    for unit in position:
        inputs = nodes[unit].inputs if unit < n else fused[unit - n].inputs
        for v in inputs:
            src = unit_of.get(v.id)
            if src is not None and src != unit and unit not in feeds[src]:
                feeds[src].add(unit)
                waiting[unit] += 1
    impure = impure_chain(nodes)
    for a, b in zip(impure, impure[1:], strict=False):
        if b not in feeds[a]:
            feeds[a].add(b)
            waiting[b] += 1
    # Kahn's algorithm, always taking the ready unit with the smallest position.
    ready = [(position[u], u) for u, k in waiting.items() if k == 0]
    heapq.heapify(ready)
    new_nodes = []
    while ready:
        _, u = heapq.heappop(ready)
        new_nodes.append(nodes[u] if u < n else fused[u - n])
        for s in feeds[u]:
            waiting[s] -= 1
            if not waiting[s]:
                heapq.heappush(ready, (position[s], s))
    if len(new_nodes) != len(position):
        raise AssertionError("fusion made a cycle between kernels")
    return plan.graph.replace(nodes=new_nodes), made


def _attached(plan: Plan, members: Iterable[int]) -> list[int]:
    """The free nodes a group's loop reads in place (transitively: a broadcast of a fill)."""
    found: set[int] = set()
    stack = [v for m in members if reads_free_inputs(plan.nodes[m]) for v in plan.nodes[m].inputs]
    while stack:
        p = plan.producer_of(stack.pop())
        if p is not None and p in plan.free and p not in found:
            found.add(p)
            stack.extend(plan.nodes[p].inputs)
    return sorted(found)


def _top_level_free(plan: Plan, home: Mapping[int, int],
                    owners: Mapping[int, set[int]]) -> set[int]:
    """Free nodes that stay in the graph: returned, read by a top-level node, read by a group
    member that wants a real operand (a matmul), or unused already."""
    top: set[int] = set()
    for i in sorted(plan.free, reverse=True):  # readers come after their producers
        node = plan.nodes[i]
        if any(v.id in plan.graph_outputs for v in node.outputs):
            top.add(i)
            continue
        readers = [u for v in node.outputs for u in plan.readers(v)]
        if not readers and i not in owners:
            top.add(i)
        for u in readers:
            if u in plan.free:
                needed = u in top
            else:
                needed = u not in home or not reads_free_inputs(plan.nodes[u])
            if needed:
                top.add(i)
                break
    return top


def make_fused(nodes: tuple[Node, ...], indices: list[int], clones: set[int],
               outputs: list[Value], kind: str, name: str) -> Node:
    """A fused node over nodes[indices] (in program order): one body input per value read from
    outside, the nodes in `clones` copied with fresh outputs, the others moved in as they are."""
    local: dict[int, Value] = {}
    external: dict[int, Value] = {}
    inputs: list[Value] = []
    body_nodes: list[Node] = []
    for i in indices:
        node = nodes[i]
        ins = []
        for v in node.inputs:
            if v.id in local:
                ins.append(local[v.id])
                continue
            if v.id not in external:
                external[v.id] = Value(v.shape, v.dtype)
                inputs.append(v)
            ins.append(external[v.id])
        if not node.op.pure:
            raise ValueError(f"{name}: the impure op {node.op.name} cannot join a fused group")
        outs = tuple(Value(v.shape, v.dtype) for v in node.outputs) if i in clones \
            else node.outputs
        same = all(a is b for a, b in zip(ins, node.inputs, strict=True)) and outs is node.outputs
        body_nodes.append(node if same else Node(node.op, ins, outs, node.attrs, node.body))
        local.update((v.id, w) for v, w in zip(node.outputs, outs, strict=True))
    body = Graph([external[v.id] for v in inputs], body_nodes, [local[v.id] for v in outputs])
    return Node(FUSED, inputs, outputs, {"kind": kind, "name": name}, body)


# ----------------------------------------------------------------------------- the log
