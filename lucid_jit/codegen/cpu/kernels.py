"""A CPU kernel for one fused group (or one plain op): the body's phases as loop nests over its
iteration spaces (see `codegen/body.py` for the phase plan and the scalar math both targets
share), compiled with `numba.njit`.

Values read only inside their phase are scalar locals, never stored; values read by a later
phase or returned are stored into arrays (the kernel's output arguments, or temporaries it
allocates). Free nodes cost nothing: a `full` or one-element constant is a typed scalar argument,
hoisted out of the loops, and a `broadcast_to` reads its source with index 0 on the broadcast
dimensions. Adjacent loop dimensions that every access treats alike (all indexed, or all
broadcast) are collapsed into one, so a 4-d elementwise group over contiguous arrays is one flat
loop LLVM vectorizes. A matmul phase is one BLAS call (`np.dot` with `out=`), or one per batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lucid_jit.codegen.body import (
    PARALLEL_MIN,
    REDUCTIONS,
    BodyMath,
    Phase,
    _is_free,
    _tuple,
    keepdims_shape,
    np_type,
    reduced_axes,
)
from lucid_jit.codegen.cpu.lowering import MATH
from lucid_jit.ir.graph import Graph, Value

# Kernel sources made in this process, by what they depend on (the body's structure with its
# shapes, the in-place outputs, whether parallel loops are allowed): a graph traced again (a new
# batch size) re-emits the kernels whose shapes did not change (an optimizer's update) from here.
_MADE: dict[tuple, KernelSource] = {}
_MADE_MAX = 4096


def kernel_source(body: Graph, same: dict[int, int] | None = None, *,
                  parallel: bool = False) -> KernelSource:
    """`KernelSource(body, same, parallel=...)`, shared with an earlier one made alike."""
    key = (body.structure(), tuple(sorted((same or {}).items())), parallel)
    made = _MADE.get(key)
    if made is None:
        made = KernelSource(body, same, parallel=parallel)
        if len(_MADE) >= _MADE_MAX:
            _MADE.clear()
        _MADE[key] = made
    return made


class KernelSource(BodyMath):
    """Builds one kernel's source. `extents` lists, per phase, the iteration shape the caller
    passes (as ints, in order); `consts` the scalar constants (value, dtype) it passes after the
    arrays; `c_inputs` which inputs must be C-contiguous (a 2-d matmul operand need not be)."""

    MATH = MATH


    def __init__(self, body: Graph, same: dict[int, int] | None = None, *,
                 parallel: bool = False) -> None:
        super().__init__(body)
        # Loops over at least PARALLEL_MIN elements (and without a reduction) run their outer
        # loop with prange; `self.parallel` says whether any did (the kernel then needs
        # njit(parallel=True)).
        self.parallel_allowed = parallel
        self.parallel = False
        # output index -> input index: the output is written into that input's array (an
        # in-place update). One name for both lets LLVM see that each element is read before
        # it is written at the same index, so the loop still vectorizes.
        self.same = dict(same or {})
        self.lines: list[str] = []
        self.extents: list[tuple[int, ...]] = []
        self.names: dict[int, str] = {}  # value id -> array name (inputs, outputs, temps)
        self.c_inputs = [False] * len(body.inputs)
        self._emit()

    # ------------------------------------------------------------------ helpers

    def _materialized(self, v: Value) -> bool:
        if v.id not in self._phase_of:
            return True  # a body input
        if v.id in {o.id for o in self.body.outputs}:
            return True
        if self.phases[self._phase_of[v.id]].kind == "matmul":
            return True
        if v.id in self.phases[self._phase_of[v.id]].reduced:
            return True
        return bool(self._readers.get(v.id, set()) - {self._phase_of[v.id]})

    # ------------------------------------------------------------------ whole kernel

    def _emit(self) -> None:
        body = self.body
        outputs = {}
        for k, v in enumerate(body.inputs):
            self.names[v.id] = f"a{k}"
        for k, v in enumerate(body.outputs):
            if k in self.same:
                self.names[v.id] = f"a{self.same[k]}"
                continue
            if v.id in self.names:  # an input returned as is, or the same value twice
                outputs[k] = v
                continue
            self.names[v.id] = f"o{k}"
        self._alias_matmul_outputs()
        code: list[str] = []
        for k, ph in enumerate(self.phases):
            code.append(f"# phase {k}: " + (f"matmul, {len(ph.shape)}-d" if ph.kind == "matmul"
                                            else f"loop over {len(ph.shape)}-d: "
                                            + ", ".join(n.op.name for n in ph.nodes)))
            self.extents.append(ph.shape)
            if ph.kind == "matmul":
                code.extend(self._matmul(k, ph))
            else:
                code.extend(self._loop(k, ph))
        for k, v in outputs.items():  # outputs that are inputs or repeats: copy
            code.append(f"o{k}[...] = {self.names[v.id]}")
        ext = [f"p{k}_{d}" for k, ph in enumerate(self.phases) for d in range(len(ph.shape))]
        params = (ext + [f"a{k}" for k in range(len(body.inputs))]
                  + [f"o{k}" for k in range(len(body.outputs)) if k not in self.same]
                  + [f"c{k}" for k in range(len(self.consts))])
        self.params = params
        self.lines = [f"def {{name}}({', '.join(params)}):"] + ["    " + ln for ln in code]
        if len(self.lines) == 1:
            self.lines.append("    pass")

    def _alias_matmul_outputs(self) -> None:
        """A matmul whose result only the next loop phase reads, and that phase returns a value
        of the same shape and dtype: the matmul writes straight into that output and the loop
        updates it in place (each element is read before it is written, at the same index)."""
        outs = {v.id for v in self.body.outputs}
        # An output written into an input's array (an in-place update) whose old value the
        # kernel still reads cannot take the matmul's result early: it would overwrite the
        # numbers the loop reads (`w - lr * (x.T @ g)` computed into w).
        read = {i.id for n in self.body.nodes for i in n.inputs}
        busy = {f"a{j}" for j in self.same.values() if self.body.inputs[j].id in read}
        for k, ph in enumerate(self.phases[:-1]):
            if ph.kind != "matmul":
                continue
            m = ph.nodes[0].output
            nxt = self.phases[k + 1]
            if m.id in outs or self._readers.get(m.id, set()) != {k + 1} or nxt.kind != "loop" \
                    or nxt.shape != m.shape or nxt.reduced:
                continue
            for n in reversed(nxt.nodes):
                v = n.output
                if v.id in outs and v.shape == m.shape and v.dtype == m.dtype and \
                        (self.names.get(v.id) in self.input_index or
                         self.names.get(v.id) in self.output_index) and \
                        self.names[v.id] not in busy:
                    self.names[m.id] = self.names[v.id]
                    break

    def _alloc(self, v: Value, shape_expr: str) -> list[str]:
        if v.id in self.names:
            return []
        name = f"t{len(self.names)}"
        self.names[v.id] = name
        return [f"{name} = np.empty({shape_expr}, {np_type(v.dtype)})"]

    # ------------------------------------------------------------------ matmul

    def _matmul(self, k: int, ph: Phase) -> list[str]:
        node = ph.nodes[0]
        a, b = node.inputs
        m = node.output
        ext = [f"p{k}_{d}" for d in range(len(m.shape))]
        code = self._alloc(m, _tuple(ext))
        na, nb, no = self.names[a.id], self.names[b.id], self.names[m.id]
        for v in (a, b):
            if len(m.shape) > 2 and self.names.get(v.id) in self.input_index:
                self.c_inputs[self.input_index[self.names[v.id]]] = True
        if len(m.shape) == 2:
            code.append(f"np.dot({na}, {nb}, {no})")
            return code
        batch = " * ".join(ext[:-2])
        M, N = ext[-2], ext[-1]
        K = f"{na}.shape[-1]"
        if len(b.shape) == 2:
            code.append(f"np.dot({na}.reshape(({batch} * {M}, {K})), {nb}, "
                        f"{no}.reshape(({batch} * {M}, {N})))")
            return code
        # An `a` with fewer batch axes than the output (a lowered conv2d's weight) has the
        # trailing ones: product bi of the output takes a's matrix bi % (a's batch size).
        a_batch = " * ".join(ext[len(ext) - len(a.shape):-2]) or "1"
        a_ix = "bi" if len(a.shape) == len(m.shape) else f"bi % ({a_batch})"
        code += [f"a3 = {na}.reshape(({a_batch}, {M}, {K}))",
                 f"b3 = {nb}.reshape(({batch}, {K}, {N}))",
                 f"o3 = {no}.reshape(({batch}, {M}, {N}))",
                 f"for bi in range({batch}):",
                 f"    np.dot(a3[{a_ix}], b3[bi], o3[bi])"]
        return code

    # ------------------------------------------------------------------ loops

    def _loop(self, k: int, ph: Phase) -> list[str]:
        """One loop phase: allocations, views of the arrays it reads and writes (with the loop
        dims every access treats alike collapsed), then the loop nest."""
        L = ph.shape
        ext = [f"p{k}_{d}" for d in range(len(L))]
        body = self._loop_body(ph, ext)
        grid = _Collapsed(L, body.accesses, ext)
        code = list(body.allocs)
        views: dict[tuple, str] = {}

        def view_of(arr, shape) -> str:
            if not L:  # a 0-d loop: the 0-d array itself
                return arr
            key = (arr, grid.pattern(shape))
            if key not in views:
                views[key] = f"{arr}_{len(views)}"
                code.append(f"{views[key]} = {grid.view(arr, shape)}")
            return views[key]

        hoisted, loads = [], []  # reads the same at every element; reads in the innermost body
        for loc, arr, shape, ndim in body.reads:
            pat = grid.pattern(shape)
            if all(p == "b" for p in pat):
                hoisted.append(f"{loc} = {arr}[{', '.join(['0'] * ndim) or '()'}]")
            else:
                loads.append(f"{loc} = {view_of(arr, shape)}[{grid.index(pat)}]")
        stores = [f"{view_of(arr, L)}[{grid.index(grid.pattern(L))}] = {loc}"
                  for arr, loc in body.stores]
        code += hoisted
        inner = loads + body.stmts
        if not body.reductions:
            par = self.parallel_allowed and grid.n > 0 and int(np.prod(L)) >= PARALLEL_MIN
            self.parallel |= par
            return code + grid.nest(range(grid.n), inner + stores, parallel=par)
        patterns = {grid.pattern(acc) for *_, acc in body.reductions}
        if len(patterns) == 1 and _is_trailing(next(iter(patterns))):
            return code + self._trailing_reductions(body, grid, next(iter(patterns)),
                                                    inner, stores)
        return code + self._general_reductions(body, grid, inner, stores)

    def _loop_body(self, ph: Phase, ext: list[str]) -> _LoopBody:
        """What the phase computes at each element: the arrays it reads (and at which aligned
        shape), its statements, the values it stores, its reductions, and the allocations of
        the arrays it writes."""
        L = ph.shape
        r = len(L)
        out = _LoopBody()
        local: dict[int, str] = {}  # value id -> local scalar in the loop body

        def aligned(shape):
            return (1,) * (r - len(shape)) + tuple(shape)

        def read(v: Value) -> str:
            if v.id in local:
                return local[v.id]
            free = self.free_read(v)
            if isinstance(free, Value):  # a broadcast: its source, broadcast dims at index 0
                return read_array(free, aligned(free.shape))
            if free is not None:
                local[v.id] = free
                return free
            return read_array(v, aligned(v.shape))

        def read_array(v: Value, shape) -> str:
            src = self.producer.get(v.id)
            if src is not None and _is_free(src) and v.id not in self.names:
                return read(v)  # a broadcast of a fill or constant: the scalar
            arr = self.names[v.id]
            if arr in self.input_index:
                self.c_inputs[self.input_index[arr]] = True
            for loc, a, s, _ in out.reads:
                if (a, s) == (arr, shape):
                    return loc
            name = f"r{len(out.reads)}_{arr}"
            out.reads.append((name, arr, shape, v.ndim))
            out.accesses.append(shape)
            return name

        for n in ph.nodes:
            if n.op.name in REDUCTIONS:
                x = read(n.inputs[0])
                axes, keep = reduced_axes(n), n.attrs.get("keepdims", False)
                dims = [("1" if d in axes else ext[d]) for d in range(r) if keep or d not in axes]
                out.allocs += self._alloc(n.output, _tuple(dims))
                acc = aligned(keepdims_shape(n))
                out.reductions.append((n, self.names[n.output.id], x, acc))
                out.accesses.append(acc)
                continue
            name = f"v{len(local)}"
            out.stmts.append(f"{name} = {self._expr(n, [read(v) for v in n.inputs])}")
            local[n.output.id] = name
            if self._materialized(n.output):
                out.allocs += self._alloc(n.output, _tuple(ext))
                out.stores.append((self.names[n.output.id], name))
                out.accesses.append(L)
        return out

    def _trailing_reductions(self, body, grid, pat, inner, stores) -> list[str]:
        """Reductions over the innermost (collapsed) dims: a scalar accumulator per kept
        element, stored after its inner loops."""
        kept = [i for i, p in enumerate(pat) if p == "f"]
        red = [i for i, p in enumerate(pat) if p == "b"]
        code, init, update, final = [], [], [], []
        for j, (n, arr, x, _) in enumerate(body.reductions):
            s = f"s{j}"
            init.append(f"{s} = {self._acc_init(n)}")
            update.append(self._acc_update(n, s, x))
            oview = f"{arr}_k"
            code.append(f"{oview} = {arr}.reshape({_tuple([grid.ext[i] for i in kept] or ['1'])})")
            idx = ", ".join(f"i{i}" for i in kept) or "0"
            final.append(f"{oview}[{idx}] = {s}")
        inner_nest = grid.nest(red, inner + update + stores)
        return code + grid.nest(kept, init + inner_nest + final)

    def _general_reductions(self, body, grid, inner, stores) -> list[str]:
        """Any other reductions: accumulator arrays indexed like the reduced result (keepdims),
        copied into the results after the loop."""
        code, update, finals = [], [], []
        # Where every reduction reduces the innermost dim, the innermost loop accumulates
        # into scalars, added to the accumulator arrays once per row (a bias gradient's sum
        # over (N, HW) keeps per channel: its loop then runs in registers).
        last = grid.n - 1
        rowwise = grid.n >= 2 and all(grid.pattern(acc)[last] == "b"
                                      for *_, acc in body.reductions)
        init, combine = [], []
        for j, (n, arr, x, acc_shape) in enumerate(body.reductions):
            pat = grid.pattern(acc_shape)
            dims = [grid.ext[i] if p == "f" else "1" for i, p in enumerate(pat)]
            code.append(f"acc{j} = np.full({_tuple(dims)}, {self._acc_init(n)}, "
                        f"{np_type(self._acc_dtype(n))})")
            if rowwise:
                init.append(f"row{j} = {self._acc_init(n)}")
                update.append(self._acc_update(n, f"row{j}", x))
                combine.append(self._acc_update(n, f"acc{j}[{grid.index(pat)}]", f"row{j}"))
            else:
                update.append(self._acc_update(n, f"acc{j}[{grid.index(pat)}]", x))
            finals += [f"{arr}_f = {arr}.reshape(({arr}.size,))",
                       f"acc{j}_f = acc{j}.reshape((acc{j}.size,))",
                       f"for j in range({arr}.size):",
                       f"    {arr}_f[j] = acc{j}_f[j]"]
        if rowwise:
            row = grid.nest([last], inner + update + stores)
            return code + grid.nest(range(last), init + row + combine) + finals
        return code + grid.nest(range(grid.n), inner + update + stores) + finals


@dataclass
class _LoopBody:
    """What one loop phase computes at each element (see `KernelSource._loop_body`)."""

    reads: list[tuple] = field(default_factory=list)  # (local, array, aligned shape, rank)
    stmts: list[str] = field(default_factory=list)
    stores: list[tuple[str, str]] = field(default_factory=list)  # (array, local)
    reductions: list[tuple] = field(default_factory=list)  # (node, array, operand, acc shape)
    accesses: list[tuple] = field(default_factory=list)  # every shape accessed, aligned to L
    allocs: list[str] = field(default_factory=list)


class _Collapsed:
    """A loop phase's iteration space with adjacent dims that every access treats alike (all
    indexed, or all broadcast) merged into one: a contiguous elementwise loop is flat."""

    def __init__(self, L, accesses, ext: list[str]) -> None:
        self.L = L
        patterns = [tuple("b" if s == 1 and L[d] != 1 else "f" for d, s in enumerate(shape))
                    for shape in accesses]
        groups: list[list[int]] = []
        for d in range(len(L)):
            if groups and all(p[d] == p[groups[-1][-1]] for p in patterns):
                groups[-1].append(d)
            else:
                groups.append([d])
        self.groups = groups
        self.n = len(groups)
        self.ext = [" * ".join(ext[d] for d in g) for g in groups]  # each group's extent

    def pattern(self, shape) -> tuple[str, ...]:
        """Per group: "f" (indexed) or "b" (broadcast: index 0) for an access of `shape`."""
        L = self.L
        return tuple("b" if all(shape[d] == 1 and L[d] != 1 for d in g) else "f"
                     for g in self.groups)

    def view(self, arr: str, shape) -> str:
        """`arr` reshaped to the collapsed dims (extent 1 where it is broadcast)."""
        dims = [self.ext[i] if p == "f" else "1" for i, p in enumerate(self.pattern(shape))]
        return f"{arr}.reshape({_tuple(dims)})"

    @staticmethod
    def index(pat) -> str:
        if not pat:
            return "()"
        return ", ".join(f"i{i}" if p == "f" else "0" for i, p in enumerate(pat))

    def nest(self, dims, body: list[str], parallel: bool = False) -> list[str]:
        """Loops over the collapsed dims `dims` (outermost first) around body; the outermost
        with prange when `parallel`."""
        out = list(body)
        dims = list(dims)
        for i in reversed(dims):
            loop = "prange" if parallel and i == dims[0] else "range"
            out = [f"for i{i} in {loop}({self.ext[i]}):"] + ["    " + ln for ln in out]
        return out


def _is_trailing(pat) -> bool:
    """f...fb...b: the reduced groups are innermost."""
    s = "".join(pat)
    return "b" in s and "bf" not in s
