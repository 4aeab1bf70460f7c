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

import numpy as np

from lucid import ops
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
from lucid_jit.ir.graph import CONST, Graph, Node, Value


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
                        self.names.get(v.id, "").startswith(("o", "a")) and \
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
            if len(a.shape) > 2 and v.id in self.names and self.names[v.id].startswith("a"):
                self.c_inputs[int(self.names[v.id][1:])] = True
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
        code += [f"a3 = {na}.reshape(({batch}, {M}, {K}))",
                 f"b3 = {nb}.reshape(({batch}, {K}, {N}))",
                 f"o3 = {no}.reshape(({batch}, {M}, {N}))",
                 f"for bi in range({batch}):",
                 "    np.dot(a3[bi], b3[bi], o3[bi])"]
        return code

    # ------------------------------------------------------------------ loops

    def _loop(self, k: int, ph: Phase) -> list[str]:
        L = ph.shape
        r = len(L)
        code: list[str] = []
        local: dict[int, str] = {}  # value id -> local scalar in the loop body
        accesses: dict[str, tuple[int, ...]] = {}  # array name -> its shape aligned to L

        def aligned(shape):
            return (1,) * (r - len(shape)) + tuple(shape)

        reads: list[tuple] = []  # (local, array, aligned shape, array's rank)
        hoisted: list[str] = []
        stmts: list[str] = []
        stores: list[tuple[str, str]] = []  # (array, local)
        reductions: list[tuple[Node, str]] = []  # (node, accumulator array)

        def read(v: Value) -> str:
            if v.id in local:
                return local[v.id]
            p = self.producer.get(v.id)
            if p is not None and _is_free(p) and v.id not in self.names:
                if p.op is CONST:
                    name = self._const(p.attrs["value"].reshape(()).item(), v.dtype)
                elif p.op is ops.full:
                    name = self._const(p.attrs["value"], v.dtype)
                else:  # broadcast_to: read its source with the broadcast dims at index 0
                    return read_array(p.inputs[0], aligned(p.inputs[0].shape))
                local[v.id] = name
                return name
            return read_array(v, aligned(v.shape))

        def read_array(v: Value, shape) -> str:
            src = self.producer.get(v.id)
            if src is not None and _is_free(src) and v.id not in self.names:
                return read(v)  # a broadcast of a fill or constant: the scalar
            arr = self.names[v.id]
            if arr.startswith("a"):
                self.c_inputs[int(arr[1:])] = True
            key = (arr, shape)
            name = f"r{len(reads)}_{arr}"
            for loc, a, s, _ in reads:
                if (a, s) == key:
                    return loc
            reads.append((name, arr, shape, v.ndim))
            accesses[arr + repr(shape)] = shape
            return name

        for n in ph.nodes:
            if n.op.name in REDUCTIONS:
                acc_shape = keepdims_shape(n)
                x = read(n.inputs[0])
                out = n.output
                code += self._alloc(out, "_SHAPE_")  # fixed below, once the extents are known
                reductions.append((n, self.names[out.id], x, aligned(acc_shape)))
                accesses[self.names[out.id] + "acc"] = aligned(acc_shape)
                continue
            args = [read(v) for v in n.inputs]
            expr = self._expr(n, args)
            name = f"v{len(local)}"
            local[n.output.id] = name
            stmts.append(f"{name} = {expr}")
            if self._materialized(n.output):
                shape_expr = _tuple([f"p{k}_{d}" for d in range(r)])
                code += self._alloc(n.output, shape_expr)
                stores.append((self.names[n.output.id], name))
                accesses[self.names[n.output.id]] = L

        # collapse adjacent dims every access treats alike
        patterns = []
        for shape in accesses.values():
            patterns.append(tuple("b" if s == 1 and L[d] != 1 else "f"
                                  for d, s in enumerate(shape)))
        groups: list[list[int]] = []
        for d in range(r):
            if groups and all(p[d] == p[groups[-1][-1]] for p in patterns):
                groups[-1].append(d)
            else:
                groups.append([d])
        ext = [f"p{k}_{d}" for d in range(r)]
        gext = [" * ".join(ext[d] for d in g) for g in groups]

        def pattern(shape):
            return tuple("b" if all(shape[d] == 1 and L[d] != 1 for d in g) else "f"
                         for g in groups)

        def view(arr, shape):
            pat = pattern(shape)
            dims = [gext[i] if p == "f" else "1" for i, p in enumerate(pat)]
            return f"{arr}.reshape({_tuple(dims)})", pat

        def index(pat):
            if not pat:
                return "()"
            return ", ".join(f"i{i}" if p == "f" else "0" for i, p in enumerate(pat))

        # fix up reduction result allocations: their shapes are the kept extents
        fixed = []
        for line in code:
            if "_SHAPE_" in line:
                arr = line.split(" = ")[0]
                n = next(rn for rn, a, *_ in reductions if a == arr)
                axes = reduced_axes(n)
                keep = n.attrs.get("keepdims", False)
                dims = [("1" if d in axes else ext[d]) for d in range(r)
                        if keep or d not in axes]
                line = line.replace("_SHAPE_", _tuple(dims))
            fixed.append(line)
        code = fixed
        ng = len(groups)
        views: dict[tuple, str] = {}
        loads: list[str] = []  # read statements in the innermost body
        for loc, arr, shape, ndim in reads:
            pat = pattern(shape)
            if all(p == "b" for p in pat):
                hoisted.append(f"{loc} = {arr}[{', '.join(['0'] * ndim) or '()'}]")
                continue
            key = (arr, pat)
            if key not in views:
                vname = f"{arr}_{len(views)}"
                views[key] = vname
                code.append(f"{vname} = {view(arr, shape)[0]}")
            loads.append(f"{loc} = {views[key]}[{index(pat)}]")
        store_lines = []
        for arr, loc in stores:
            key = (arr, pattern(L))
            if key not in views:
                vname = f"{arr}_{len(views)}"
                views[key] = vname
                code.append(f"{vname} = {view(arr, L)[0]}")
            store_lines.append(f"{views[key]}[{index(pattern(L))}] = {loc}")
        code += hoisted
        inner = loads + stmts
        red_pats = {pattern(acc) for _, _, _, acc in reductions}
        trailing = (len(red_pats) == 1 and _is_trailing(next(iter(red_pats))))
        if not reductions:
            par = self.parallel_allowed and ng > 0 and int(np.prod(L)) >= PARALLEL_MIN
            self.parallel |= par
            code += _nest(groups, gext, range(ng), inner + store_lines, parallel=par)
            return code
        if trailing:
            pat = next(iter(red_pats))
            kept = [i for i, p in enumerate(pat) if p == "f"]
            red = [i for i, p in enumerate(pat) if p == "b"]
            init, update, final = [], [], []
            for j, (n, arr, x, _) in enumerate(reductions):
                s = f"s{j}"
                init.append(f"{s} = {self._acc_init(n)}")
                update.append(self._acc_update(n, s, x))
                oview = f"{arr}_k"
                code.append(f"{oview} = {arr}.reshape({_tuple([gext[i] for i in kept] or ['1'])})")
                idx = ", ".join(f"i{i}" for i in kept) or "0"
                final.append(f"{oview}[{idx}] = {s}")
            inner_nest = _nest(groups, gext, red, inner + update + store_lines)
            code += _nest(groups, gext, kept, init + inner_nest + final)
            return code
        # general: accumulator arrays indexed like the reduced result (keepdims)
        update = []
        finals = []
        for j, (n, arr, x, acc_shape) in enumerate(reductions):
            pat = pattern(acc_shape)
            dims = [gext[i] if p == "f" else "1" for i, p in enumerate(pat)]
            acc_dtype = self._acc_dtype(n)
            code.append(f"acc{j} = np.full({_tuple(dims)}, {self._acc_init(n)}, "
                        f"{np_type(acc_dtype)})")
            s = f"acc{j}[{index(pat)}]"
            update.append(self._acc_update(n, s, x))
            finals += [f"{arr}_f = {arr}.reshape(({arr}.size,))",
                       f"acc{j}_f = acc{j}.reshape((acc{j}.size,))",
                       f"for j in range({arr}.size):",
                       f"    {arr}_f[j] = acc{j}_f[j]"]
        code += _nest(groups, gext, range(ng), inner + update + store_lines)
        code += finals
        return code

def _is_trailing(pat) -> bool:
    """f...fb...b: the reduced groups are innermost."""
    s = "".join(pat)
    return "b" in s and "bf" not in s


def _nest(groups, gext, dims, body: list[str], parallel: bool = False) -> list[str]:
    out = list(body)
    dims = list(dims)
    for i in reversed(dims):
        loop = "prange" if parallel and i == dims[0] else "range"
        out = [f"for i{i} in {loop}({gext[i]}):"] + ["    " + ln for ln in out]
    return out
