"""CUDA kernels for kernel bodies (fused groups and plain ops), with numba.cuda.

A body is split into phases exactly as for the CPU (`codegen/body.py`), and each phase's
math comes from the same `BodyMath` (the scalar expression of every elementwise op, constants,
accumulators); what differs is the loop around it:

- a loop phase with no reduction is one grid-stride kernel over the phase's elements; each thread
  turns its flat index into the n-d index `j0, j1, ...` and reads every operand there (index 0 on
  its broadcast dimensions);
- a loop phase with reductions is a block reduction: one block per kept row (grid-stride over
  rows), its threads stride over the reduced elements, each accumulates privately (float sums in
  float64, as on the CPU), then a shared-memory tree combines them. Elementwise values of the
  phase that are stored are stored in the same pass;
- a matmul phase is a tiled shared-memory matmul: TILE x TILE threads per TM x TM output tile,
  each thread computing RB x RB outputs in registers (batch in the grid's z); when the next
  phase is elementwise over the matmul's shape (bias, activation), that phase runs in the matmul
  kernel on each accumulator, before the single store.

Each kernel is its own module, named by the hash of its text: nothing shape-specific is in it
(extents are arguments), so one kernel serves every batch size, and eager device ops (one-node
graphs) and compiled graphs share kernels. Values one phase leaves for a later one go through
temporaries the caller allocates.
"""

from __future__ import annotations

import math

import numpy as np

from lucid import ops
from lucid_jit.codegen.body import (
    REDUCTIONS,
    BodyMath,
    _is_free,
    np_type,
    reduced_axes,
    supported_node,
    typed,
)
from lucid_jit.codegen.cuda.launch import HEADER, Launch, _uses, grid_stride
from lucid_jit.codegen.cuda.lowering import LOWERING, MATH
from lucid_jit.codegen.elementops import unflatten as _unflatten
from lucid_jit.ir.graph import CONST, Graph, Node, Value


def supported_cuda_body(body: Graph) -> bool:
    """Whether the CUDA emitter can run this body as kernels."""
    producer = body.producers()
    for n in body.nodes:
        if not supported_node(n, LOWERING, "cuda"):
            return False
        if n.op is ops.matmul and any(
                v.id in producer and _is_free(producer[v.id]) for v in n.inputs):
            return False
    return True


class CudaBody(BodyMath):
    """The launches for one body. `scalars` are the body inputs the caller passes as host
    scalars (0-d host arrays: lifted floats, CPU scalars next to device tensors)."""

    MATH = MATH

    def __init__(self, body: Graph, scalars=frozenset(), fastmath: bool = False) -> None:
        super().__init__(body)
        self.fastmath = fastmath
        self.scalars = frozenset(scalars)
        self.names: dict[int, str] = {}
        self.temps: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
        self.copies: list[tuple[str, str]] = []  # (output, input it returns as is)
        self.launches: list[Launch] = []
        self._outs = {v.id for v in body.outputs}
        self._emit()

    # ------------------------------------------------------------------ planning helpers

    def _materialized(self, v: Value, phase: int) -> bool:
        return v.id in self._outs or bool(self._readers.get(v.id, set()) - {phase})

    def _array(self, v: Value) -> str:
        name = self.names.get(v.id)
        if name is None:
            name = f"t{len(self.temps)}"
            self.temps[name] = (tuple(v.shape), v.dtype)
            self.names[v.id] = name
        return name

    # ------------------------------------------------------------------ the body

    def _emit(self) -> None:
        body = self.body
        for k, v in enumerate(body.inputs):
            self.names[v.id] = f"a{k}"
        late: list[tuple[int, Value]] = []  # outputs made by free nodes: stored by a fill
        for k, v in enumerate(body.outputs):
            if v.id in self.names:  # an input returned as is, or the same value twice
                self.copies.append((f"o{k}", self.names[v.id]))
                continue
            p = self.producer.get(v.id)
            if p is not None and _is_free(p):
                late.append((k, v))
                self.names[v.id] = f"o{k}"
                continue
            self.names[v.id] = f"o{k}"
        k = 0
        while k < len(self.phases):
            ph = self.phases[k]
            if ph.kind == "matmul":
                nxt = self.phases[k + 1] if k + 1 < len(self.phases) else None
                m = ph.nodes[0].output
                fuse = (nxt is not None and nxt.kind == "loop" and nxt.shape == m.shape
                        and not nxt.reduced)
                self._matmul(k, ph, nxt if fuse else None)
                k += 2 if fuse else 1
                continue
            if ph.reduced:
                self._reduce(k, ph)
            else:
                self._elementwise(k, ph)
            k += 1
        for k, v in late:
            self._fill(f"o{k}", v)

    # ------------------------------------------------------------------ element bodies

    def _element(self, phases, L, idx: list[str], local: dict[int, str], launch: Launch):
        """Loads, statements and stores computing `phases`' nodes at index `idx` of the
        iteration space L (reductions excluded: returned as (node, operand local) pairs)."""
        r = len(L)
        loads: list[str] = []
        stmts: list[str] = []
        stores: list[str] = []
        reductions: list[tuple[Node, str]] = []
        cache: dict[str, str] = {}

        def read(v: Value) -> str:
            if v.id in local:
                return local[v.id]
            free = self.free_read(v)
            if isinstance(free, Value):  # a broadcast: its source, broadcast dims at index 0
                return read_at(free)
            return free if free is not None else read_at(v)

        def read_at(v: Value) -> str:
            p = self.producer.get(v.id)
            if p is not None and _is_free(p) and v.id not in self.names:
                return read(v)
            arr = self.names[v.id]
            if self.input_index.get(arr) in self.scalars:
                return arr
            shape = (1,) * (r - len(v.shape)) + tuple(v.shape)
            ix = [("0" if shape[d] == 1 and L[d] != 1 else idx[d]) for d in range(r - v.ndim, r)]
            key = f"{arr}[{', '.join(ix) if ix else '0'}]"
            name = cache.get(key)
            if name is None:
                name = cache[key] = f"x{len(cache)}"
                loads.append(f"{name} = {key}")
            return name

        for ph in phases:
            for n in ph.nodes:
                if n.op.name in REDUCTIONS:
                    reductions.append((n, read(n.inputs[0])))
                    continue
                expr = self._expr(n, [read(v) for v in n.inputs])
                name = f"v{len(local)}"
                local[n.output.id] = name
                stmts.append(f"{name} = {expr}")
                if self._materialized(n.output, self._phase_of[n.output.id]):
                    arr = self._array(n.output)
                    ix = ", ".join(idx) if idx else "0"
                    stores.append(f"{arr}[{ix}] = {name}")
        return loads, stmts, stores, reductions

    def _finish(self, launch: Launch, lines: list[str], sizes: list[int],
                extra: list[str] = ()) -> None:
        """Fill in the kernel's parameters (sizes, then arrays and scalars in order of use,
        then constants) and its module text."""
        text = "\n".join(lines)
        used = []
        for name in sorted({*self.names.values(), *self.temps},
                           key=lambda s: (s[0], int(s[1:]))):
            if _uses(text, name):
                used.append(name)
        consts = [f"c{k}" for k in range(len(self.consts)) if _uses(text, f"c{k}")]
        params = [f"p{d}" for d in range(len(sizes))] + list(extra) + used + consts
        launch.args = [("size", int(s)) for s in sizes]
        launch.args += [("size", int(s)) for s in launch.extra_sizes]
        for name in used:
            if self.input_index.get(name) in self.scalars:
                launch.args.append(("scalar", self.input_index[name]))
            else:  # 0-d arrays are passed as 1-element ones (indexed [0])
                launch.args.append(("array0" if self._ndim(name) == 0 else "array", name))
        for c in consts:
            value, dtype = self.consts[int(c[1:])]
            launch.args.append(("const", value, dtype))
        decorator = "@cuda.jit(fastmath=True)" if self.fastmath else "@cuda.jit"
        src = [decorator, f"def kernel({', '.join(params)}):"]
        src += ["    " + ln for ln in lines]
        launch.text = HEADER + "\n".join(src) + "\n"
        self.launches.append(launch)

    def _ndim(self, name: str) -> int:
        if name in self.temps:
            return len(self.temps[name][0])
        if name in self.input_index:
            return self.body.inputs[self.input_index[name]].ndim
        return self.body.outputs[self.output_index[name]].ndim

    # ------------------------------------------------------------------ kernels

    def _elementwise(self, k: int, ph) -> None:
        L = ph.shape
        r = len(L)
        launch = Launch("", "elem", (math.prod(L),))
        idx = [f"j{d}" for d in range(r)]
        loads, stmts, stores, _ = self._element([ph], L, idx, {}, launch)
        self._finish(launch, grid_stride(L, loads + stmts + stores), list(L))

    def _fill(self, out: str, v: Value) -> None:
        """An output that is a fill, a constant or a broadcast: stored by its own loop."""
        L = v.shape
        r = len(L)
        launch = Launch("", "elem", (math.prod(L),))
        idx = [f"j{d}" for d in range(r)]
        self.names.pop(v.id, None)
        reader_loads: list[str] = []
        value = self._free_read(v, L, idx, reader_loads)
        self.names[v.id] = out
        body = reader_loads + [f"{out}[{', '.join(idx) if idx else '0'}] = {value}"]
        self._finish(launch, grid_stride(L, body), list(L))

    def _free_read(self, v: Value, L, idx, loads) -> str:
        r = len(L)
        p = self.producer[v.id]
        while p.op is ops.broadcast_to:
            src = p.inputs[0]
            q = self.producer.get(src.id)
            if q is None or not _is_free(q) or src.id in self.names:
                arr = self.names[src.id]
                if self.input_index.get(arr) in self.scalars:
                    return arr
                shape = (1,) * (r - len(src.shape)) + tuple(src.shape)
                ix = [("0" if shape[d] == 1 and L[d] != 1 else idx[d])
                      for d in range(r - src.ndim, r)]
                loads.append(f"x0 = {arr}[{', '.join(ix) if ix else '0'}]")
                return "x0"
            p = q
        if p.op is CONST:
            return self._const(p.attrs["value"].reshape(()).item(), v.dtype)
        return self._const(p.attrs["value"], v.dtype)

    def _reduce(self, k: int, ph) -> None:
        """Block reductions: one kernel per set of reduced axes in the phase (the phase's
        stores go with the first). Where there are too few kept rows to fill the device and
        the rows are long, each row is split over `ns` blocks: the first kernel writes each
        block's partial result to a temporary, and a second combines a row's partials."""
        from lucid_jit.codegen.cuda import runtime

        L = ph.shape
        r = len(L)
        groups: dict[tuple, list[Node]] = {}
        for n in ph.nodes:
            if n.op.name in REDUCTIONS:
                groups.setdefault(reduced_axes(n), []).append(n)
        first = True
        for axes, nodes in groups.items():
            kept = [d for d in range(r) if d not in axes]
            rows = math.prod(L[d] for d in kept)
            ns = runtime.reduce_split(rows, math.prod(L[d] for d in axes))
            launch = Launch("", "reduce", (rows * ns,))
            idx = [f"j{d}" for d in range(r)]
            local: dict[int, str] = {}
            loads, stmts, stores, reds = self._element([ph], L, idx, local, launch)
            if not first:  # this group recomputes the values its reductions read; no stores
                stores = []
            first = False
            reds = [(n, x) for n, x in reds if n in nodes]
            acc_dts = [self._cuda_acc_dtype(n) for n, _ in reds]
            nk = " * ".join(f"p{d}" for d in kept) or "1"
            nr = " * ".join(f"p{d}" for d in axes) or "1"
            lines = [f"nk = {nk}", f"nr = {nr}", "tid = cuda.threadIdx.x"]
            lines += [f"sm{j} = cuda.shared.array(REDUCE_BLOCK, {np_type(dt)})"
                      for j, dt in enumerate(acc_dts)]
            if ns == 1:  # a block per row
                lines += ["row = cuda.blockIdx.x", "while row < nk:"]
                first_q, q_step = "tid", "REDUCE_BLOCK"
            else:  # ns blocks per row, each taking every ns-th stretch of REDUCE_BLOCK
                lines += ["b = cuda.blockIdx.x", "while b < nk * ns:",
                          "    row = b // ns", "    part = b - row * ns"]
                first_q, q_step = "part * REDUCE_BLOCK + tid", "REDUCE_BLOCK * ns"
            body = _unflatten("row", [idx[d] for d in kept], [f"p{d}" for d in kept])
            body += [f"acc{j} = {self._cuda_acc_init(n)}" for j, (n, _) in enumerate(reds)]
            body += [f"q = {first_q}", "while q < nr:"]
            inner = _unflatten("q", [idx[d] for d in axes], [f"p{d}" for d in axes])
            inner += loads + stmts + stores
            inner += [self._acc_update(n, f"acc{j}", x) for j, (n, x) in enumerate(reds)]
            inner.append(f"q += {q_step}")
            body += ["    " + ln for ln in inner]
            body += self._tree([n for n, _ in reds])
            if ns == 1:
                body += self._reduced_stores(reds, axes, idx, r)
                body += ["cuda.syncthreads()", "row += cuda.gridDim.x"]
                lines += ["    " + ln for ln in body]
                self._finish(launch, lines, list(L))
                continue
            parts = []
            for dt in acc_dts:
                parts.append(f"t{len(self.temps)}")
                self.temps[parts[-1]] = ((rows, ns), dt)
            body.append("if tid == 0:")
            body += [f"    {w}[row, part] = sm{j}[0]" for j, w in enumerate(parts)]
            body += ["cuda.syncthreads()", "b += cuda.gridDim.x"]
            lines += ["    " + ln for ln in body]
            launch.extra_sizes = [ns]
            self._finish(launch, lines, list(L), ["ns"])
            self._combine(reds, acc_dts, parts, axes, kept, L, ns)

    def _combine(self, reds, acc_dts, parts, axes, kept, L, ns) -> None:
        """The second kernel of a split reduction: a block per row combines its ns partials."""
        r = len(L)
        idx = [f"j{d}" for d in range(r)]
        launch = Launch("", "reduce", (math.prod(L[d] for d in kept),))
        lines = [f"nk = {' * '.join(f'p{d}' for d in kept) or '1'}", "tid = cuda.threadIdx.x"]
        lines += [f"sm{j} = cuda.shared.array(REDUCE_BLOCK, {np_type(dt)})"
                  for j, dt in enumerate(acc_dts)]
        lines += ["row = cuda.blockIdx.x", "while row < nk:"]
        body = _unflatten("row", [idx[d] for d in kept], [f"p{d}" for d in kept])
        body += [f"acc{j} = {self._cuda_acc_init(n)}" for j, (n, _) in enumerate(reds)]
        body += ["q = tid", "while q < ns:"]
        for j, ((n, _), w) in enumerate(zip(reds, parts, strict=True)):
            body += [f"    y{j} = {w}[row, q]", "    " + self._acc_update(n, f"acc{j}", f"y{j}")]
        body.append("    q += REDUCE_BLOCK")
        body += self._tree([n for n, _ in reds])
        body += self._reduced_stores(reds, axes, idx, r)
        body += ["cuda.syncthreads()", "row += cuda.gridDim.x"]
        lines += ["    " + ln for ln in body]
        launch.extra_sizes = [ns]
        self._finish(launch, lines, list(L), ["ns"])

    @staticmethod
    def _tree(nodes) -> list[str]:
        """Lines combining each thread's accumulator accj in shared array smj, leaving a block's
        result in smj[0] (NaN wins a max, as in NumPy)."""
        lines = [f"sm{j}[tid] = acc{j}" for j in range(len(nodes))]
        lines += ["cuda.syncthreads()", "s = REDUCE_BLOCK // 2", "while s > 0:", "    if tid < s:"]
        for j, n in enumerate(nodes):
            a, b = f"sm{j}[tid]", f"sm{j}[tid + s]"
            if n.op.name == "sum":
                lines.append(f"        {a} = {a} + {b}")
            else:
                lines.append(f"        y{j} = {b}")
                lines.append(f"        if y{j} > {a} or y{j} != y{j}:")
                lines.append(f"            {a} = y{j}")
        return lines + ["    cuda.syncthreads()", "    s //= 2"]

    def _reduced_stores(self, reds, axes, idx, r) -> list[str]:
        """Thread 0 stores each reduction's result from smj[0] (in its output's dtype)."""
        lines = ["if tid == 0:"]
        for j, (n, _) in enumerate(reds):
            out = self._array(n.output)
            keep = n.attrs.get("keepdims", False)
            ix = [("0" if d in axes else idx[d]) for d in range(r) if keep or d not in axes]
            lines.append(f"    {out}[{', '.join(ix) if ix else '0'}] = "
                         f"{typed(f'sm{j}[0]', n.output.dtype)}")
        return lines

    def _cuda_acc_dtype(self, n: Node):
        if n.op.name == "max" and n.output.dtype.kind == "b":
            return np.dtype(np.int64)
        return self._acc_dtype(n)

    def _cuda_acc_init(self, n: Node) -> str:
        if n.op.name == "max" and n.output.dtype.kind == "b":
            return "np.int64(0)"
        return self._acc_init(n)

    def _matmul(self, k: int, ph, epilogue) -> None:
        node = ph.nodes[0]
        a, b = node.inputs
        m = node.output
        L = m.shape
        r = len(L)
        batch = math.prod(L[:-2])
        launch = Launch("", "matmul", (L[-2], L[-1], batch))
        kdim = a.shape[-1]
        launch.extra_sizes = [kdim]
        idx = [f"j{d}" for d in range(r)]
        na, nb = self.names[a.id], self.names[b.id]
        dt = np_type(m.dtype)
        row, col = idx[-2], idx[-1]
        bidx = idx[:-2]
        pm, pn = f"p{r - 2}", f"p{r - 1}"
        # An operand with fewer batch axes than the output (as in a lowered conv2d) reads the
        # trailing ones; the primitive's own operands have all of them, or b none.
        a_ix = ", ".join(bidx[len(bidx) - (a.ndim - 2):] + [row, "k0 + tx"])
        b_ix = ", ".join(bidx[len(bidx) - (b.ndim - 2):] + ["k0 + ty", col])
        # Each thread computes RB x RB outputs: rows ty + i*TILE and columns tx + j*TILE of the
        # block's TM x TM tile (TM = TILE * RB), from TM x TILE and TILE x TM shared tiles.
        lines = [f"sa = cuda.shared.array((TM, TILE), {dt})",
                 f"sb = cuda.shared.array((TILE, TM), {dt})",
                 f"acc = cuda.local.array((RB, RB), {dt})",
                 f"ar = cuda.local.array(RB, {dt})",
                 f"br = cuda.local.array(RB, {dt})",
                 "tx = cuda.threadIdx.x",
                 "ty = cuda.threadIdx.y",
                 "row0 = cuda.blockIdx.y * TM",  # (c0, c1, ... are the constants)
                 "col0 = cuda.blockIdx.x * TM"]
        lines += _unflatten("cuda.blockIdx.z", bidx, [f"p{d}" for d in range(r - 2)])
        lines += ["for ri in range(RB):",
                  "    for ci in range(RB):",
                  f"        acc[ri, ci] = {dt}(0)",
                  "for k0 in range(0, pk, TILE):",
                  "    for ri in range(RB):",
                  f"        {row} = row0 + ty + ri * TILE",
                  f"        if {row} < {pm} and k0 + tx < pk:",
                  f"            sa[ty + ri * TILE, tx] = {na}[{a_ix}]",
                  "        else:",
                  f"            sa[ty + ri * TILE, tx] = {dt}(0)",
                  f"        {col} = col0 + tx + ri * TILE",
                  f"        if k0 + ty < pk and {col} < {pn}:",
                  f"            sb[ty, tx + ri * TILE] = {nb}[{b_ix}]",
                  "        else:",
                  f"            sb[ty, tx + ri * TILE] = {dt}(0)",
                  "    cuda.syncthreads()",
                  "    for kk in range(TILE):",
                  "        for ri in range(RB):",
                  "            ar[ri] = sa[ty + ri * TILE, kk]",
                  "            br[ri] = sb[kk, tx + ri * TILE]",
                  "        for ri in range(RB):",
                  "            for ci in range(RB):",
                  "                acc[ri, ci] += ar[ri] * br[ci]",
                  "    cuda.syncthreads()",
                  "for ri in range(RB):",
                  f"    {row} = row0 + ty + ri * TILE",
                  "    for ci in range(RB):",
                  f"        {col} = col0 + tx + ci * TILE",
                  f"        if {row} < {pm} and {col} < {pn}:",
                  "            mm = acc[ri, ci]"]
        tail = []
        readers = self._readers.get(m.id, set()) - {k, k + 1 if epilogue is not None else k}
        if m.id in self._outs or readers or epilogue is None:
            tail.append(f"{self._array(m)}[{', '.join(idx)}] = mm")
        if epilogue is not None:
            local = {m.id: "mm"}
            loads, stmts, stores, _ = self._element([epilogue], L, idx, local, launch)
            tail += loads + stmts + stores
        lines += ["            " + ln for ln in tail]
        self._finish(launch, lines, list(L), extra=["pk"])
