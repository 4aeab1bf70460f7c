"""What a backend does with each op: one lowering table per backend (`cpu/lowering.py`,
`cuda/lowering.py`), keyed by op name, every op of lucid's registry in every table.

A row (`Lowering`) says how a node of that op runs:

- `BODY`: inside a kernel body: loops over elementwise math (the op's `scalar` template), sum and
  max reductions, matrix products; the fusion passes put several in one kernel;
- `FREE`: costs nothing inside a body: a fill is a scalar, a broadcast a stride-0 read;
- `VIEW`: a reshape, transpose or broadcast of its operand (a view on the CPU; a copy kernel on
  CUDA, whose programs return fresh arrays);
- `OWN`: a kernel of its own (argmax; on CUDA slicing, gathers, pad, concat, pooling, ...);
- `LOWERED`: rewritten into ops the backend runs (CUDA's conv2d: unfold and a matmul);
- `HOST`: a declared fallback: the op's eager implementation runs between the native code, for
  the reason given.

`when(node)` narrows a row (the dtypes a kernel handles, the index forms it knows): where it
does not hold the node runs on the host. `place(table, node)` is the one answer to "does this node
run natively here, and how"; a test walks the registry against every table.

An elementwise op's scalar math is its `Op.scalar` template, read by both emitters (`body.py`):
operands `{0}`, `{1}`, ..., typed constants `{zero}` and `{one}` of the first operand's dtype, and
math functions `{exp}`, `{sqrt}`, ... that each backend's `MATH` table maps to its own
implementation (`{s}` there: "f32" or "f64", the operand's dtype).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lucid import ops
from lucid.ops.registry import REGISTRY, LucidError
from lucid_jit.ir.graph import CONST, FUSED, Graph, Node

BODY, FREE, VIEW, OWN, LOWERED, HOST = "body", "free", "view", "own", "lowered", "host"


@dataclass(frozen=True)
class Lowering:
    how: str
    why: str = ""  # for HOST: why the op is not native on this backend
    when: Callable[[Node], bool] | None = None


def numeric(node: Node) -> bool:
    """Every operand and result is bool, int or float (what kernels handle)."""
    return all(v.dtype.kind in "biuf" for v in (*node.inputs, *node.outputs))


def float_result(node: Node) -> bool:
    """Numeric operands and a float result (what matrix products are computed for)."""
    return numeric(node) and node.output.dtype.kind == "f"


def elementwise_rows(**overrides: Lowering) -> dict[str, Lowering]:
    """A BODY row for every elementwise op with a scalar template (its math), so that a new
    elementwise op needs no row of its own; `overrides` replace rows by op name."""
    rows = {name: Lowering(BODY, when=numeric) for name, op in REGISTRY.items()
            if op.kind == "elementwise" and op.scalar is not None}
    rows.update(overrides)
    return rows


def collective_rows() -> dict[str, Lowering]:
    """A HOST row for every collective (lucid.distributed): MPI moves host arrays between the
    processes, so a compiled graph runs each one between its native segments."""
    return {name: Lowering(HOST, "a collective: MPI exchanges the data between processes, "
                                 "between the native segments")
            for name, op in REGISTRY.items() if op.kind == "collective"}


def linalg_rows() -> dict[str, Lowering]:
    """A HOST row for every linear-algebra primitive (inv, solve, determinants, Cholesky):
    LAPACK runs them between the native segments."""
    return {name: Lowering(HOST, "a LAPACK routine, run between the native segments")
            for name, op in REGISTRY.items() if op.kind == "linalg"}


def place(table: dict[str, Lowering], node: Node, backend: str) -> Lowering:
    """How `node` runs on the backend whose table this is. A fused node is a BODY when its
    backend can run every member (`body.supported_body`); a const is FREE if it is one element,
    else a constant array the program passes in (OWN)."""
    if node.op is FUSED:
        return Lowering(BODY)
    if node.op is CONST:
        return Lowering(FREE if node.outputs[0].size == 1 else OWN, when=numeric)
    row = table.get(node.op.name)
    if row is None:
        raise LucidError(f"lucid_jit: the {backend} backend has no lowering for op "
                         f"{node.op.name!r} (add a row to its lowering table)")
    if row.how != HOST and row.when is not None and not row.when(node):
        return Lowering(HOST, f"{node.op.name}: the {backend} kernel does not handle "
                              f"{', '.join(str(v.aval) for v in node.inputs)}")
    return row


def missing(table: dict[str, Lowering]) -> list[str]:
    """The registered ops a table has no row for (the coverage test wants none)."""
    return sorted(name for name in REGISTRY if name not in table)


def lowered(node: Node) -> list[Node]:
    """The nodes a LOWERED node is rewritten into (for conv2d: `passes/lower.lower_conv2d`;
    the fusion pipeline has usually done it already, see there)."""
    from lucid_jit.passes.lower import lower_conv2d

    if node.op is ops.conv2d:
        return lower_conv2d(node)
    raise LucidError(f"lucid_jit: no lowering rewrites op {node.op.name!r}")


def expand_lowered(graph: Graph, table: dict[str, Lowering], backend: str) -> Graph:
    """The graph with every node the table lowers replaced by what it is rewritten into (the
    graph itself when there is none)."""
    nodes: list[Node] = []
    for node in graph.nodes:
        if node.op is not FUSED and place(table, node, backend).how == LOWERED:
            nodes += lowered(node)
        else:
            nodes.append(node)
    return graph if len(nodes) == len(graph.nodes) else graph.replace(nodes=nodes)
