"""The graph IR: immutable SSA values and nodes in topological (program) order.

A `Value` is defined once, by a graph input or by one node's output, and carries its abstract value
(shape and dtype). A `Node` applies an `Op` from lucid's registry (or one of the compiler's own: a
constant, or a fused group that owns a body graph) to input values, with keyword attrs. A `Graph`
is its inputs, its nodes in an order where every value is defined before use, and its outputs.
Passes never mutate a graph: they build a new one.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from types import MappingProxyType

import numpy as np

from lucid import dtypes
from lucid.ops.registry import Aval, Op

_IDS = itertools.count()


class Value:
    """One SSA value: shape and dtype, nothing computed. Under a trace it is also what a traced
    Tensor's `.data` holds, so it offers the array attributes Tensor reads (shape, dtype, ndim)."""

    __slots__ = ("id", "shape", "dtype", "__weakref__")

    def __init__(self, shape: tuple[int, ...], dtype) -> None:
        self.id = next(_IDS)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)

    @property
    def aval(self) -> Aval:
        return Aval(self.shape, self.dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    def __repr__(self) -> str:
        return f"<Value #{self.id} {self.aval}>"


def _const_infer(*, value):
    return Aval(value.shape, value.dtype)


def _const_impl(*, value):
    return value


# A constant made inside a compiled function (a Python number, an array built while tracing).
# It is the compiler's own op, not one of lucid's primitives, so it is not in lucid's REGISTRY.
CONST = Op("const", "creation", _const_impl, _const_infer, attrs=("value",))


def _fused_unavailable(*_, **__):
    raise TypeError("fused: a fused node runs its body (see Node.body); it has no impl or shape "
                    "rule of its own")


# A group of nodes the fusion passes made into one kernel: `body` holds the original nodes, reading
# one body input per external input; attrs `kind` ("elementwise", "matmul_epilogue",
# "reduction") and `name` ("fused_3"). The passes never put an impure op (a random draw) in a
# body, so a fused node is pure: CSE may merge two with the same body, DCE may drop an unused one.
FUSED = Op("fused", "fused", _fused_unavailable, _fused_unavailable, attrs=("kind", "name"))


class Node:
    """`outputs = op(*inputs, **attrs)`; `body` is the sub-graph of a fused node."""

    __slots__ = ("op", "inputs", "outputs", "attrs", "body")

    def __init__(self, op: Op, inputs: Iterable[Value], outputs: Iterable[Value],
                 attrs: Mapping | None = None, body: Graph | None = None) -> None:
        self.op = op
        self.inputs = tuple(inputs)
        self.outputs = tuple(outputs)
        self.attrs = MappingProxyType(dict(attrs or {}))
        self.body = body

    @property
    def output(self) -> Value:
        (out,) = self.outputs
        return out

    def attr_key(self) -> tuple:
        """The attrs as a hashable key (constants by their bytes), for CSE and hashing."""
        return tuple((k, _hashable(v)) for k, v in sorted(self.attrs.items()))

    def __repr__(self) -> str:
        return f"<Node {self.op.name} {len(self.inputs)}->{len(self.outputs)}>"


def _hashable(v):
    if isinstance(v, np.ndarray):
        return ("array", v.dtype.str, v.shape, v.tobytes())
    if isinstance(v, (list, tuple)):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, np.dtype):
        return ("dtype", v.str)
    if isinstance(v, (float, np.floating)):
        return ("float", type(v).__name__, float(v).hex() if v == v else "nan")
    if isinstance(v, (bool, np.bool_)):
        return ("bool", bool(v))
    if isinstance(v, dict):
        return tuple((k, _hashable(x)) for k, x in sorted(v.items()))
    if isinstance(v, Graph):
        return ("graph", id(v))
    return v


class Graph:
    """inputs, nodes (topologically ordered), outputs. Immutable: its use-def maps are computed
    once, on first use.

    `log` is an annotation, not IR: what the passes that made the graph decided (the fusion
    passes' `FusionLog`). It is carried by `replace`, so a pass that rewrites a fused graph keeps
    the log with its result."""

    __slots__ = ("inputs", "nodes", "outputs", "input_names", "log", "_producers", "_users",
                 "__weakref__")

    def __init__(self, inputs: Iterable[Value], nodes: Iterable[Node], outputs: Iterable[Value],
                 input_names: Iterable[str] | None = None, log=None) -> None:
        self.inputs = tuple(inputs)
        self.nodes = tuple(nodes)
        self.outputs = tuple(outputs)
        names = tuple(input_names) if input_names is not None else ()
        self.input_names = names if len(names) == len(self.inputs) else ("",) * len(self.inputs)
        self.log = log
        self._producers: dict[int, Node] | None = None
        self._users: dict[int, list[Node]] | None = None

    def replace(self, *, inputs=None, nodes=None, outputs=None, log=None) -> Graph:
        return Graph(self.inputs if inputs is None else inputs,
                     self.nodes if nodes is None else nodes,
                     self.outputs if outputs is None else outputs,
                     self.input_names if inputs is None else None,
                     self.log if log is None else log)

    def producers(self) -> dict[int, Node]:
        """Value id -> the node that defines it (inputs have none)."""
        if self._producers is None:
            self._producers = {v.id: n for n in self.nodes for v in n.outputs}
        return self._producers

    def users(self) -> dict[int, list[Node]]:
        """Value id -> the nodes that read it, in order."""
        if self._users is None:
            out: dict[int, list[Node]] = {}
            for n in self.nodes:
                for v in n.inputs:
                    out.setdefault(v.id, []).append(n)
            self._users = out
        return self._users

    def structure(self) -> tuple:
        """A hashable key equal for two graphs exactly when they compute the same thing the
        same way: ops, attrs (constants by their bytes), wiring, shapes and dtypes, fused bodies
        alike; value ids and names play no part."""
        index: dict[int, int] = {}
        parts: list = []
        for v in self.inputs:
            index[v.id] = len(index)
            parts.append((v.shape, v.dtype.str))
        for node in self.nodes:
            ins = tuple([index[v.id] for v in node.inputs])
            for v in node.outputs:
                index[v.id] = len(index)
            parts.append((node.op, ins, node.attr_key() if node.attrs else (),
                          tuple([(v.shape, v.dtype.str) for v in node.outputs]),
                          node.body.structure() if node.body is not None else None))
        parts.append(tuple([index[v.id] for v in self.outputs]))
        return tuple(parts)

    def count(self) -> dict[str, int]:
        """Node count per op name (fused bodies not included)."""
        counts: dict[str, int] = {}
        for n in self.nodes:
            counts[n.op.name] = counts.get(n.op.name, 0) + 1
        return counts

    def __len__(self) -> int:
        return len(self.nodes)

    def __str__(self) -> str:
        from lucid_jit.ir.printer import format_graph

        return format_graph(self)

    def __repr__(self) -> str:
        return (f"<Graph {len(self.inputs)} inputs, {len(self.nodes)} nodes, "
                f"{len(self.outputs)} outputs>")


def const_value(node: Node) -> np.ndarray | None:
    """The array of a const node, else None."""
    return node.attrs["value"] if node.op is CONST else None


def make_const(array) -> Node:
    arr = np.array(array)
    arr.flags.writeable = False
    return Node(CONST, (), (Value(arr.shape, arr.dtype),), {"value": arr})


def short(dtype) -> str:
    return dtypes.short_name(np.dtype(dtype))
