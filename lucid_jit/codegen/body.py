"""What every backend's kernels share about a kernel body (a fused group, or one plain op): the
phase plan, and the scalar math of each node (`BodyMath`). The CPU (`cpu/kernels.py`) and CUDA
(`cuda/kernels.py`) emitters differ in the loops and memory around it, not in this.

A body's nodes are split into phases, in order:

- a loop phase is one iteration space. Elementwise nodes of that shape compute a scalar per
  element; a `sum`/`max` accumulates its operand (its iteration space is the operand's shape). A
  node that reads a reduction finished in the current phase starts a new phase (the reduced
  value is complete only after the loop);
- a matmul phase is one matrix product.

Kernels are shape-generic: their arguments are the phases' extents (ints), the input arrays, the
output arrays and the scalar constants, so one kernel serves every batch size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lucid import ops
from lucid_jit.codegen.lowering import BODY, numeric, place
from lucid_jit.ir.graph import CONST, Graph, Node, Value

REDUCTIONS = ("sum", "max")
# Elementwise loops over this many elements split across threads: below it, waking the threads
# costs more than the loop (decided on the traced sizes, so a graph's text changes only where a
# size crosses it).
PARALLEL_MIN = 1 << 18

def np_type(dtype) -> str:
    """The NumPy scalar type's name in generated code: np.float32, np.bool_, ..."""
    dtype = np.dtype(dtype)
    return "np.bool_" if dtype == np.bool_ else f"np.{dtype.name}"


def typed(expr: str, dtype) -> str:
    """expr converted to dtype (a bool from a number is `!= 0`)."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return f"({expr} != 0)"
    return f"{np_type(dtype)}({expr})"


def supported_node(node: Node, table: dict, backend: str) -> bool:
    """Whether a kernel body of this backend can compute this node: a free node (a fill, a
    scalar constant, a broadcast), or one its lowering table runs in a body."""
    if _is_free(node):
        return numeric(node)
    return place(table, node, backend).how == BODY


def supported_body(body: Graph, table: dict, backend: str) -> bool:
    producer = body.producers()
    if any(v.id in producer and _is_free(producer[v.id]) for v in body.outputs):
        return False  # a group returns what its loops read for free: leave it to the host
    return all(supported_node(n, table, backend) for n in body.nodes)


# ----------------------------------------------------------------------------- planning


@dataclass
class Phase:
    kind: str  # "loop" or "matmul"
    shape: tuple[int, ...]  # the iteration space
    nodes: list[Node] = field(default_factory=list)
    reduced: set[int] = field(default_factory=set)  # reductions finished by this phase


def _is_free(node: Node) -> bool:
    return (node.op is CONST and node.attrs["value"].size == 1) or node.op in (ops.full,
                                                                               ops.broadcast_to)


def plan_phases(body: Graph) -> list[Phase]:
    producer = body.producers()

    def computed_deps(node):
        """The computed values node reads (through free nodes)."""
        out, stack = [], list(node.inputs)
        while stack:
            v = stack.pop()
            p = producer.get(v.id)
            if p is None:
                continue
            if _is_free(p):
                stack.extend(p.inputs)
            else:
                out.append(v.id)
        return out

    phases: list[Phase] = []
    for node in body.nodes:
        if _is_free(node):
            continue
        if node.op is ops.matmul:
            phases.append(Phase("matmul", node.output.shape, [node]))
            continue
        shape = node.inputs[0].shape if node.op.name in REDUCTIONS else node.output.shape
        cur = phases[-1] if phases and phases[-1].kind == "loop" else None
        if cur is not None and (cur.shape != shape
                                or any(d in cur.reduced for d in computed_deps(node))):
            cur = None
        if cur is None:
            cur = Phase("loop", shape)
            phases.append(cur)
        cur.nodes.append(node)
        if node.op.name in REDUCTIONS:
            cur.reduced.add(node.output.id)
    return phases


def reduced_axes(node: Node) -> tuple[int, ...]:
    axes = node.attrs.get("axes")
    rank = len(node.inputs[0].shape)
    if axes is None:
        return tuple(range(rank))
    if isinstance(axes, int):
        axes = (axes,)
    return tuple(sorted(a % rank for a in axes)) if rank else ()


def keepdims_shape(node: Node) -> tuple[int, ...]:
    axes = reduced_axes(node)
    return tuple(1 if d in axes else s for d, s in enumerate(node.inputs[0].shape))


# ----------------------------------------------------------------------------- emission


class BodyMath:
    """What the CPU and CUDA emitters share about a kernel body: its phase plan (and which
    phases read each value), each elementwise node as a scalar expression over its operands'
    locals (the op's `scalar` template, its math functions from the target's `MATH` table),
    typed scalar constants (passed as arguments), and the reductions' accumulators. The targets
    differ in loops and memory, not in this."""

    MATH: dict[str, str] = {}  # math function -> the target's implementation ("exp_{s}")

    def __init__(self, body: Graph) -> None:
        # The kernel's parameter names for the body's inputs and outputs, and their positions:
        # a name's position is looked up here, never read off its spelling.
        self.input_index = {f"a{k}": k for k in range(len(body.inputs))}
        self.output_index = {f"o{k}": k for k in range(len(body.outputs))}
        self.consts: list[tuple[object, np.dtype]] = []
        self._const_names: dict[tuple, str] = {}
        # The phase plan both targets loop over: which phase computes each value, and which
        # phases read it (through free nodes).
        self.body = body
        self.phases = plan_phases(body)
        self.producer = body.producers()
        self._phase_of = {v.id: k for k, ph in enumerate(self.phases) for n in ph.nodes
                          for v in n.outputs}
        self._readers: dict[int, set[int]] = {}
        for k, ph in enumerate(self.phases):
            for n in ph.nodes:
                for v in self._computed_reads(n):
                    self._readers.setdefault(v, set()).add(k)

    def _computed_reads(self, node):
        """The computed values node reads (through free nodes)."""
        out, stack = [], list(node.inputs)
        while stack:
            v = stack.pop()
            p = self.producer.get(v.id)
            if p is not None and _is_free(p):
                stack.extend(p.inputs)
            else:
                out.append(v.id)
        return out

    def free_read(self, v: Value):
        """What reading `v` costs nothing for: the typed constant's name (a one-element const, a
        fill), or the Value a broadcast reads (at index 0 on its broadcast dims); None when v is
        computed or stored."""
        p = self.producer.get(v.id)
        if p is None or not _is_free(p) or v.id in self.names:
            return None
        if p.op is CONST:
            return self._const(p.attrs["value"].reshape(()).item(), v.dtype)
        if p.op is ops.full:
            return self._const(p.attrs["value"], v.dtype)
        return p.inputs[0]  # broadcast_to

    def _const(self, value, dtype) -> str:
        dtype = np.dtype(dtype)
        key = (repr(float(value)) if dtype.kind == "f" else int(value), dtype.str)
        name = self._const_names.get(key)
        if name is None:
            name = f"c{len(self.consts)}"
            self._const_names[key] = name
            self.consts.append((value, dtype))
        return name

    def _acc_dtype(self, n: Node):
        dt = n.output.dtype
        if n.op.name == "sum":
            return np.dtype(np.float64) if dt.kind == "f" else np.dtype(np.int64)
        return dt

    def _acc_init(self, n: Node) -> str:
        dt = self._acc_dtype(n)
        if n.op.name == "sum":
            return f"{np_type(dt)}(0)"
        if dt.kind == "f":
            return f"{np_type(dt)}(-np.inf)"
        if dt.kind == "b":
            return "False"
        return f"{np_type(dt)}({np.iinfo(dt).min})"

    def _acc_update(self, n: Node, s: str, x: str) -> str:
        if n.op.name == "sum":
            return f"{s} += {x}"
        if n.output.dtype.kind == "f":
            return f"{s} = {x} if ({x} > {s} or {x} != {x}) else {s}"
        return f"{s} = {x} if {x} > {s} else {s}"

    def _expr(self, n: Node, args: list[str]) -> str:
        dt = n.output.dtype
        src_dt = n.inputs[0].dtype
        if n.op is ops.cast:  # the conversion itself depends on the target dtype
            return typed(args[0], dt)
        template = n.op.scalar
        if template is None:
            raise NotImplementedError(f"{n.op.name} has no scalar template")
        suffix = "f32" if src_dt == np.float32 else "f64"
        fmt = {name: impl.format(s=suffix) for name, impl in self.MATH.items()
               if "{" + name + "}" in template}
        if "{one}" in template:
            fmt["one"] = self._const(1, src_dt)
        if "{zero}" in template:
            fmt["zero"] = self._const(0, src_dt)
        expr = template.format(*args, **fmt)
        if dt == np.bool_ and n.op in (ops.add, ops.mul):  # on bools: "or" and "and", not 2
            return typed(expr, dt)
        if dt.kind in "bf" or dt == np.int64:  # numba keeps float32 math float32
            return expr
        return typed(expr, dt)


def _tuple(items) -> str:
    items = list(items)
    if not items:
        return "()"
    if len(items) == 1:
        return f"({items[0]},)"
    return "(" + ", ".join(items) + ")"
