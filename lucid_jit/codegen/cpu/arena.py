"""The memory plan of a cpu graph: the intermediates kernels write get buffers in one arena, a
byte array the Program makes once per entry (and size) and passes to every call, instead of a
fresh allocation per value per call.

Placement is by liveness: a value lives from the node that writes it to the last node that reads it
or a view of it (reshapes and transposes are views of the same bytes); two values whose lives
overlap never share bytes (a permute that a copy kernel makes is a value of its own), and others
reuse them. Values that leave the call (graph outputs, or what an output is a view of), values
written into an input (in place) and pooled outputs are not in the arena, nor are single elements
(`np.empty` compiles faster than a view of the arena, and costs as little to run). Offsets are
64-byte aligned; a value is a typed, reshaped view of its bytes (`A_f4[start:stop].reshape(shape)`,
`A_f4` the arena viewed once per segment as the dtype's elements), with start and stop read from
the graph's size table, so the module text does not depend on the sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

from lucid_jit.codegen.cpu.plan import view
from lucid_jit.ir.graph import Graph, Value

ALIGN = 64


@dataclass(frozen=True)
class Slot:
    """Where a value lives in the arena: bytes [start, start + nbytes)."""

    start: int
    nbytes: int


def plan_arena(g: Graph, writes: list[bool], excluded: set[int]) -> tuple[dict[int, Slot], int]:
    """(value id -> Slot, arena bytes) for the outputs of the nodes flagged in `writes` (those
    that write a buffer of their own: kernels), except `excluded` ids and anything an output
    of the graph views."""
    index = {id(n): k for k, n in enumerate(g.nodes)}
    root: dict[int, int] = {}  # value id -> the buffer's value id (through views)
    for n in g.nodes:
        if view(n):
            src = n.inputs[0].id
            root[n.output.id] = root.get(src, src)
    escaping = {root.get(v.id, v.id) for v in g.outputs} | {v.id for v in g.outputs}
    last: dict[int, int] = {}
    for k, n in enumerate(g.nodes):
        for v in n.inputs:
            r = root.get(v.id, v.id)
            last[r] = k
    candidates: list[tuple[Value, int, int]] = []  # (value, first, last)
    for n, w in zip(g.nodes, writes, strict=True):
        if not w:
            continue
        for v in n.outputs:
            if v.id in escaping or v.id in excluded or v.size <= 1:
                continue
            candidates.append((v, index[id(n)], last.get(v.id, index[id(n)])))
    placed: list[tuple[int, int, int, int]] = []  # (start, end byte, first, last)
    slots: dict[int, Slot] = {}
    total = 0
    for v, first, end in sorted(candidates, key=lambda c: -c[0].size * c[0].dtype.itemsize):
        nbytes = v.size * v.dtype.itemsize
        busy = sorted((s, e) for s, e, f, lst in placed if f <= end and first <= lst)
        start = 0
        for s, e in busy:
            if start + nbytes <= s:
                break
            start = max(start, _aligned(e))
        placed.append((start, start + nbytes, first, end))
        slots[v.id] = Slot(start, nbytes)
        total = max(total, start + nbytes)
    return slots, _aligned(total)


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN
