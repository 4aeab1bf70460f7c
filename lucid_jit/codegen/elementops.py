"""Kernels of single ops outside fused bodies, written once for both targets.

Each is a loop over the elements of an output (a scatter's: over its values): an `ElementKernel`
holds the body for one element (it reads the element's index j0, j1, ... and, where `flat` says
so, its flat index i), the size arguments it reads besides the loop's extents (p0, p1, ...), and
its array parameters. The CUDA backend wraps a body in a grid-stride loop (`cuda/ops.py`), the
CPU backend in nested loops (`cpu/ops.py`). The two differences are spelled by the `Target`:
adding into an element that other elements may also hit (a scatter-add with repeated indices),
and an index out of range (recorded on the device and raised after the call; raised at once on
the CPU, before anything later in the graph runs).

- movement: reshape, permute, broadcast_to (a copy, both arrays indexed n-d);
- getitem with a basic index (ints, slices, None, Ellipsis) and its adjoint scatter_add;
- getitem and scatter_add with index tensors (NumPy's advanced indexing): a gather, and a zero
  fill then an add per value;
- pad (constant), concat, unfold (im2col) and fold (its adjoint, gathering: each output element
  sums the columns covering it, in a fixed order, so no element is written twice), max_pool2d
  (a NaN wins, padding never does) and its gradient (each window adds its gradient at its
  first maximum), argmax (the first maximum, or the first NaN);
- random draws (uniform, normal, randint): lucid's Philox4x32-10 (`lucid/ops/philox.py`), one
  loop iteration per counter block writing that block's elements, so the numbers are eager's.

Window attributes are in the text; sizes are arguments, so batch sizes share kernels.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from lucid import ops
from lucid.ops import philox
from lucid.ops.conv import _out_hw
from lucid.ops.movement import Slice, Slot
from lucid_jit.codegen.body import np_type
from lucid_jit.ir.graph import Node

INDEX_ERROR = "lucid_jit index out of range"  # the first argument of a CPU kernel's IndexError


class Target(Protocol):
    def add_at(self, array: str, index: str, value: str) -> str:
        """A statement adding value into array[index], which other elements may also hit."""

    def out_of_range(self, code: int, value: str, axis: int, size: str, var: str) -> list[str]:
        """Lines for an index `value` out of range for an axis of `size`: record or raise it
        (`code` names the node); after them `var` must hold an index that is in range."""

    def math(self, name: str) -> str:
        """The float64 function `name` (log, sqrt, cos, sin) in kernel text."""


@dataclass
class ElementKernel:
    """One loop over `shape` running `body` per element. `params` are the array parameters in
    order (inputs "a0", "a1", ..., index tensors "i0", ..., outputs "o0"), `sizes` extra int
    arguments (name, value). `zero` fills the output with zeros first (a scatter-add);
    `serial`: elements may write the same output element (no parallel loop on the CPU);
    `fallible`: an index may be out of range. `seeded`: a random draw, which takes the
    generator's key and the draw's first counter as uint64 scalars `rk`, `rc` (after the
    sizes). `flat_arrays`: parameters passed flat (1-d, their C-order elements)."""

    shape: tuple[int, ...]
    body: list[str]
    params: list[str] = field(default_factory=lambda: ["a0", "o0"])
    sizes: list[tuple[str, int]] = field(default_factory=list)
    flat: bool = False
    zero: bool = False
    serial: bool = False
    fallible: bool = False
    seeded: bool = False
    flat_arrays: tuple[str, ...] = ()


def _ix(items) -> str:
    return ", ".join(items) if items else "0"


def _j(n: int) -> list[str]:
    return [f"j{d}" for d in range(n)]


def unflatten(flat: str, idx: list[str], dims: list[str]) -> list[str]:
    """Lines setting the n-d index `idx` (C order over `dims`) from the flat index `flat`."""
    if not idx:
        return []
    if len(idx) == 1:
        return [f"{idx[0]} = {flat}"]
    lines = [f"rem = {flat}"]
    for d in range(len(idx) - 1, 0, -1):
        lines.append(f"{idx[d]} = rem % {dims[d]}")
        lines.append(f"rem = rem // {dims[d]}")
    lines.append(f"{idx[0]} = rem")
    return lines


# ----------------------------------------------------------------------------- the dispatcher


def element_kernels(node: Node, target: Target, code: int = 0) -> list[ElementKernel] | None:
    """The kernel(s) of a single op on either target; None for a form neither has (the caller
    runs it on the host). `code` identifies the node in index errors."""
    op = node.op
    if op.kind == "random":
        return random_kernels(node, target)
    if op in (ops.reshape, ops.permute, ops.broadcast_to):
        return [movement(node)]
    if op in (ops.getitem, ops.scatter_add):
        if basic_index(node):
            return [slice_kernel(node) if op is ops.getitem else scatter_slice_kernel(node)]
        kernel = index_kernel(node, target, code, scatter=op is ops.scatter_add)
        return None if kernel is None else [kernel]
    if op is ops.max_pool2d_grad:
        return [max_pool_grad_kernel(node, target)]
    builder = {ops.pad: pad_kernel, ops.unfold: unfold_kernel, ops.fold: fold_kernel,
               ops.max_pool2d: max_pool_kernel, ops.argmax: argmax_kernel,
               ops.concat: concat_kernel}.get(op)
    return None if builder is None else [builder(node)]


def basic_index(node: Node) -> bool:
    """getitem and scatter_add nodes whose index has no index arrays."""
    return len(node.inputs) == 1 and all(
        it is None or it is Ellipsis or isinstance(it, (int, Slice)) for it in node.attrs["index"])


# ----------------------------------------------------------------------------- movement


def movement(node: Node) -> ElementKernel:
    """A copy for a reshape, permute or broadcast_to: each output element reads its source
    element, both indexed n-d (so either array may be a strided view). A permute that keeps the
    last axis copies whole rows instead (`permute_rows`)."""
    x, v = node.inputs[0], node.output
    L = v.shape
    r = len(L)
    if node.op is ops.permute and r >= 2 and node.attrs["axes"][-1] == r - 1:
        return permute_rows(node)
    idx = _j(r)
    body: list[str] = []
    sizes: list[tuple[str, int]] = []
    flat = False
    if node.op is ops.permute:
        src = ["0"] * x.ndim
        for d, a in enumerate(node.attrs["axes"]):
            src[a] = idx[d]
    elif node.op is ops.broadcast_to:
        shape = (1,) * (r - x.ndim) + tuple(x.shape)
        src = [("0" if shape[d] == 1 and L[d] != 1 else idx[d]) for d in range(r - x.ndim, r)]
    else:  # reshape: flat index in C order, then the source's n-d index
        sizes = [(f"q{d}", s) for d, s in enumerate(x.shape)]
        src = [f"s{d}" for d in range(x.ndim)]
        body += unflatten("i", src, [f"q{d}" for d in range(x.ndim)])
        flat = True
    body.append(f"o0[{_ix(idx)}] = a0[{_ix(src)}]")
    return ElementKernel(tuple(L), body, sizes=sizes, flat=flat)


def permute_rows(node: Node) -> ElementKernel:
    """A permute keeping the last axis: one contiguous row per iteration of the other output
    axes, both arrays flat at unsigned indices (the row copy vectorizes). The source row starts
    at sum_d j_d * stride(axes[d]), the strides (in elements, of the C-contiguous source) being
    size arguments."""
    x, v = node.inputs[0], node.output
    axes = node.attrs["axes"]
    r = v.ndim
    strides = [math.prod(x.shape[a + 1:]) for a in range(x.ndim)]
    flat = "j0"
    for d in range(1, r - 1):
        flat = f"({flat}) * p{d} + j{d}"
    src = " + ".join(f"j{d} * t{d}" for d in range(r - 1))
    body = [f"ob = ({flat}) * nw",
            f"ab = {src}",
            "for j in range(nw):",
            "    o0[np.uint64(ob + j)] = a0[np.uint64(ab + j)]"]
    sizes = [("nw", v.shape[-1])] + [(f"t{d}", strides[axes[d]]) for d in range(r - 1)]
    return ElementKernel(tuple(v.shape[:-1]), body, sizes=sizes, flat_arrays=("a0", "o0"))


# ----------------------------------------------------------------------------- indexing


def _expand(index, ndim: int) -> list:
    """The index's items with Ellipsis (or the missing trailing axes) as full slices."""
    items = list(index)
    named = sum(1 for it in items if it is not None and it is not Ellipsis)
    full = [Slice(None, None, None)] * (ndim - named)
    if Ellipsis in items:
        k = items.index(Ellipsis)
        return items[:k] + full + items[k + 1:]
    return items + full


def resolve_index(index, shape, array_shapes):
    """NumPy indexing, resolved for a kernel: (out_shape, source), where source[d] says how
    source axis d is indexed: ("int", k), ("slice", start, step, out axis) or ("array", k, [its
    index expressions over the output's j's]). With index tensors (advanced indexing), their
    broadcast shape (ints count as 0-d ones) takes the output axes where the first advanced
    index stood if they are all adjacent, else at the front. Without them, an int just drops
    its axis (the broadcast shape is then empty)."""
    items = _expand(index, len(shape))
    adv = [p for p, it in enumerate(items) if not (it is None or isinstance(it, Slice))]
    bshape = tuple(np.broadcast_shapes(*array_shapes)) if array_shapes else ()
    adjacent = not adv or adv == list(range(adv[0], adv[-1] + 1))
    out: list[int] = []
    bstart = 0 if not adjacent else None
    if not adjacent:
        out += bshape
    source: list[tuple] = []
    for p, item in enumerate(items):
        if item is None:
            out.append(1)
            continue
        size = shape[len(source)]
        if isinstance(item, Slice):
            start, stop, step = slice(item.start, item.stop, item.step).indices(size)
            source.append(("slice", start, step, len(out)))
            out.append(len(range(start, stop, step)))
            continue
        if adjacent and p == adv[0]:
            bstart = len(out)
            out += bshape
        if isinstance(item, Slot):
            s = array_shapes[item.k]
            lead = len(bshape) - len(s)
            ix = [("0" if s[d] == 1 and bshape[lead + d] != 1 else f"j{bstart + lead + d}")
                  for d in range(len(s))]
            source.append(("array", item.k, ix))
        else:
            source.append(("int", item % size))
    return tuple(out), source


def _index_lines(source, target: Target | None, code: int) -> tuple[list[str], list[str]]:
    """(lines loading and checking each index tensor's element, the source index expressions):
    negative indices count from the end, as in NumPy; one out of range goes to the target."""
    lines, src = [], []
    for d, item in enumerate(source):
        if item[0] == "int":
            src.append(str(item[1]))
        elif item[0] == "slice":
            _, start, step, axis = item
            src.append(f"{start} + j{axis} * {step}" if step != 1 else
                       (f"{start} + j{axis}" if start else f"j{axis}"))
        else:
            _, k, ix = item
            lines += [f"w{d} = i{k}[{_ix(ix)}]",
                      f"v{d} = w{d} + q{d} if w{d} < 0 else w{d}",
                      f"if v{d} < 0 or v{d} >= q{d}:"]
            lines += ["    " + ln for ln in target.out_of_range(code, f"w{d}", d, f"q{d}",
                                                                   f"v{d}")]
            src.append(f"v{d}")
    return lines, src


def slice_kernel(node: Node) -> ElementKernel:
    """getitem with a basic index: output element j reads the source at start + j * step
    along each sliced axis, the fixed position along each int-indexed one."""
    x, v = node.inputs[0], node.output
    _, source = resolve_index(node.attrs["index"], x.shape, [])
    _, src = _index_lines(source, None, 0)
    return ElementKernel(tuple(v.shape), [f"o0[{_ix(_j(v.ndim))}] = a0[{_ix(src)}]"])


def scatter_slice_kernel(node: Node) -> ElementKernel:
    """scatter_add with a basic index (getitem's adjoint): zeros, except where the index selects
    an element of the target, which takes the matching value (a basic index never repeats)."""
    v = node.output
    g_shape, source = resolve_index(node.attrs["index"], v.shape, [])
    hit, gix = [], ["0"] * len(g_shape)  # (new axes of g stay at 0)
    for d, item in enumerate(source):
        if item[0] == "int":
            hit.append(f"j{d} == {item[1]}")
            continue
        _, start, step, axis = item
        off = f"(j{d} - {start})" if start else f"j{d}"
        gix[axis] = f"{off} // {step}" if step != 1 else off
        if step != 1:
            hit.append(f"{off} % {step} == 0")
        hit.append(f"0 <= {gix[axis]} < {g_shape[axis]}")
    out = f"o0[{_ix(_j(v.ndim))}]"
    body = [f"if {' and '.join(hit) or 'True'}:", f"    {out} = a0[{_ix(gix)}]", "else:",
            f"    {out} = {np_type(v.dtype)}(0)"]
    return ElementKernel(tuple(v.shape), body)


def index_kernel(node: Node, target: Target, code: int, scatter: bool) -> ElementKernel | None:
    """getitem with index tensors: each output element reads the source at the indices its
    position picks; scatter_add with them (a gather's adjoint): each value adds itself where
    its indices point, into a target zeroed first (repeated indices accumulate, as with
    np.add.at). None for an index form not resolved here."""
    x = node.inputs[0]
    arrays = node.inputs[1:]
    target_shape = node.attrs["shape"] if scatter else x.shape
    out_shape, source = resolve_index(node.attrs["index"], target_shape,
                                      [a.shape for a in arrays])
    loop_shape = tuple(x.shape if scatter else node.output.shape)
    if out_shape != loop_shape:
        return None
    lines, src = _index_lines(source, target, code)
    j = _ix(_j(len(loop_shape)))
    if scatter:
        at = src[0] if len(src) == 1 else f"({', '.join(src)})"  # (1-d: an int, not a tuple)
        lines.append(target.add_at("o0", at, f"a0[{j}]"))
    else:
        lines.append(f"o0[{j}] = a0[{_ix(src)}]")
    params = ["a0", *(f"i{k}" for k in range(len(arrays))), "o0"]
    sizes = [(f"q{d}", target_shape[d]) for d in range(len(target_shape))]
    return ElementKernel(loop_shape, lines, params, sizes, zero=scatter, serial=scatter,
                         fallible=True)


# ----------------------------------------------------------------------------- padding, concat


def pad_kernel(node: Node) -> ElementKernel:
    """Constant padding: the source element where j falls inside it, else the value."""
    x, v = node.inputs[0], node.output
    pads = node.attrs["pads"]
    value = literal(node.attrs.get("value", 0.0), v.dtype)
    inside = [f"{lo} <= j{d} < {lo} + {x.shape[d]}" for d, (lo, _) in enumerate(pads)
              if v.shape[d] != x.shape[d]]
    src = [f"j{d} - {lo}" if lo else f"j{d}" for d, (lo, _) in enumerate(pads)]
    out = f"o0[{_ix(_j(v.ndim))}]"
    if not inside:
        body = [f"{out} = a0[{_ix(src)}]"]
    else:
        body = [f"if {' and '.join(inside)}:", f"    {out} = a0[{_ix(src)}]", "else:",
                f"    {out} = {value}"]
    return ElementKernel(tuple(v.shape), body)


def concat_kernel(node: Node) -> ElementKernel:
    """concat along an axis: output element j reads the input whose stretch of that axis holds
    j's position (the stretches' ends e1, e2, ... are size arguments)."""
    v, xs = node.output, node.inputs
    axis = node.attrs["axis"]
    idx = _j(v.ndim)
    out = f"o0[{_ix(idx)}]"
    body = [f"t = j{axis}"]
    ends = []
    for k in range(len(xs)):
        src = list(idx)
        src[axis] = f"t - e{k}" if k else "t"
        read = f"{out} = a{k}[{_ix(src)}]"
        if k == len(xs) - 1:
            body += (["else:", "    " + read] if k else [read])
        else:
            body += [f"{'if' if k == 0 else 'elif'} t < e{k + 1}:", "    " + read]
        if k:
            ends.append((f"e{k}", sum(x.shape[axis] for x in xs[:k])))
    return ElementKernel(tuple(v.shape), body, [*(f"a{k}" for k in range(len(xs))), "o0"], ends)


def literal(value, dtype) -> str:
    """A constant of `dtype` in kernel text (infinities and NaN by name)."""
    if dtype.kind == "b":
        return f"np.bool_({bool(value)})"
    value = float(value) if dtype.kind == "f" else int(value)
    text = repr(value) if math.isfinite(value) else \
        ("np.nan" if math.isnan(value) else ("-np.inf" if value < 0 else "np.inf"))
    return f"{np_type(dtype)}({text})"


# ----------------------------------------------------------------------------- windows


def _window(node: Node):
    a = node.attrs
    return a["kernel"], a["stride"], a["padding"], a["dilation"]


def unfold_kernel(node: Node) -> ElementKernel:
    """im2col: output (N, C*kh*kw, OH*OW) (layout "knl": (C*kh*kw, N, OH*OW)), looped over in
    its own order, (N, C*kh*kw, OH) or (C*kh*kw, N, OH), each iteration writing one output row
    of OW columns: the input at channel r // kk, kernel offset r % kk and window (y, x), or 0 in
    the padding. The columns whose window lies inside the input form one range [lo, hi),
    computed once per row, so the copy loop has no bounds checks; both arrays are indexed flat
    with unsigned indices (no negative-index wraparound), which lets the copy vectorize (3x
    faster than n-d signed indexing, faster than NumPy's strided copy)."""
    x, v = node.inputs[0], node.output
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _window(node)
    oh, ow = _out_hw("unfold", [], x.shape[2:], (kh, kw), (sh, sw), (ph, pw), (dh, dw))
    zero = f"{np_type(v.dtype)}(0)"
    knl = node.attrs.get("layout", "nkl") == "knl"
    # (row r, image b): the loops follow the output's order, so the writes are sequential
    r, b = ("j0", "j1") if knl else ("j1", "j0")
    out = "o0[np.uint64(ob + j3)]"
    col = f"j3 * {sw}" if sw != 1 else "j3"
    body = [f"c = {r} // {kh * kw}",
            f"ki = ({r} // {kw}) % {kh}",
            f"kj = {r} % {kw}",
            f"iy = j2 * {sh} + ki * {dh} - {ph}",
            f"x0 = kj * {dw} - {pw}",
            (f"ob = ({r} * p1 + {b}) * nl + j2 * ow" if knl
             else f"ob = ({b} * p1 + {r}) * nl + j2 * ow"),
            f"ab = (({b} * nc + c) * h + iy) * w + x0",
            "lo = 0",
            "hi = 0",
            "if 0 <= iy < h:",  # columns j3 with 0 <= j3 * sw + x0 < w
            f"    lo = min(ow, max(0, ({sw - 1} - x0) // {sw}))",
            f"    hi = max(lo, min(ow, (w - x0 + {sw - 1}) // {sw}))",
            "for j3 in range(lo):",
            f"    {out} = {zero}",
            "for j3 in range(lo, hi):",
            f"    {out} = a0[np.uint64(ab + {col})]",
            "for j3 in range(hi, ow):",
            f"    {out} = {zero}"]
    n, c, rows = x.shape[0], x.shape[1], x.shape[1] * kh * kw
    return ElementKernel((rows, n, oh) if knl else (n, rows, oh), body,
                         sizes=[("nc", c), ("h", x.shape[2]), ("w", x.shape[3]), ("ow", ow),
                                ("nl", oh * ow)],
                         flat_arrays=("a0", "o0"))


def fold_kernel(node: Node) -> ElementKernel:
    """col2im (unfold's adjoint): output element (b, c, y, x) sums, over the kernel offsets in
    row-major order, the column entries of the windows that cover it (the host's order too);
    the columns are read in either layout."""
    v = node.output
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _window(node)
    oh, ow = _out_hw("fold", [], v.shape[2:], (kh, kw), (sh, sw), (ph, pw), (dh, dw))
    if (sh, sw) == (1, 1):
        return _fold_rows(node, oh, ow)
    r = f"j1 * {kh * kw} + ki * {kw} + kj"
    row = f"{r}, j0" if node.attrs.get("layout", "nkl") == "knl" else f"j0, {r}"
    body = [f"acc = {np_type(v.dtype)}(0)",
            f"for ki in range({kh}):",
            f"    ty = j2 + {ph} - ki * {dh}",
            f"    if ty >= 0 and ty % {sh} == 0 and ty // {sh} < oh:",
            f"        for kj in range({kw}):",
            f"            tx = j3 + {pw} - kj * {dw}",
            f"            if tx >= 0 and tx % {sw} == 0 and tx // {sw} < ow:",
            f"                acc += a0[{row}, (ty // {sh}) * ow + tx // {sw}]",
            "o0[j0, j1, j2, j3] = acc"]
    return ElementKernel(tuple(v.shape), body, sizes=[("oh", oh), ("ow", ow)])


def _fold_rows(node: Node, oh: int, ow: int) -> ElementKernel:
    """fold at stride 1, one output row (b, c, y) per iteration: the row is zeroed, then each
    kernel offset whose window row oy = y + ph - ki*dh exists adds its columns over the one
    range of x they cover; the same sums in the same order as the element form, with flat
    unsigned indices (no bounds checks or wraparound in the inner loops: they vectorize)."""
    v = node.output
    (kh, kw), _, (ph, pw), (dh, dw) = _window(node)
    n, c, h, w = v.shape
    rows = c * kh * kw
    col = (f"((j1 * {kh * kw} + ki * {kw} + kj) * p0 + j0) * nl" if
           node.attrs.get("layout", "nkl") == "knl" else
           f"(j0 * {rows} + j1 * {kh * kw} + ki * {kw} + kj) * nl")
    body = ["ob = ((j0 * p1 + j1) * p2 + j2) * w",
            "for x in range(w):",
            f"    o0[np.uint64(ob + x)] = {np_type(v.dtype)}(0)",
            f"for ki in range({kh}):",
            f"    oy = j2 + {ph} - ki * {dh}",
            "    if 0 <= oy < oh:",
            f"        for kj in range({kw}):",
            f"            sx = {pw} - kj * {dw}",  # column ox = x + sx
            "            lo = min(w, max(0, -sx))",
            "            hi = max(lo, min(w, ow - sx))",
            f"            ab = {col} + oy * ow + sx",
            "            for x in range(lo, hi):",
            "                o0[np.uint64(ob + x)] += a0[np.uint64(ab + x)]"]
    return ElementKernel((n, c, h), body, sizes=[("w", w), ("oh", oh), ("ow", ow),
                                                 ("nl", oh * ow)],
                         flat_arrays=("a0", "o0"))


def _window_scan(node: Node, x: str) -> list[str]:
    """Loops over output element (j2, j3)'s window that read each of its elements inside the
    input into `y` (at (iy, ix)); the caller's lines after these are indented 16 spaces."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _window(node)
    return [f"for ki in range({kh}):",
            f"    iy = j2 * {sh} + ki * {dh} - {ph}",
            "    if 0 <= iy < h:",
            f"        for kj in range({kw}):",
            f"            ix = j3 * {sw} + kj * {dw} - {pw}",
            "            if 0 <= ix < w:",
            f"                y = {x}[j0, j1, iy, ix]"]


def _window_offsets(node: Node) -> list[str]:
    """A window's elements as flat offsets from its first, in row-major order: expressions in
    the input's width `w` (a size argument, so image sizes share kernels)."""
    (kh, kw), _, _, (dh, dw) = _window(node)
    return [(f"{ki * dh} * w + {kj * dw}" if ki else f"{kj * dw}")
            for ki in range(kh) for kj in range(kw)]


def max_pool_kernel(node: Node) -> ElementKernel:
    """The max over each window: input positions outside the array (padding, or past the edge
    in ceil mode) never win; a NaN does, as with np.maximum."""
    x, v = node.inputs[0], node.output
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _window(node)
    if (ph, pw) == (0, 0) and not node.attrs["ceil_mode"]:
        # Every window inside the input: one row of windows per iteration, each window's
        # elements at flat offsets, indexed unsigned (no bounds checks, no wraparound).
        n, c, h, w = x.shape
        _, _, oh, ow = v.shape
        offsets = _window_offsets(node)
        body = [f"ib = ((j0 * p1 + j1) * h + j2 * {sh}) * w",
                "ob = ((j0 * p1 + j1) * p2 + j2) * ow",
                "for j3 in range(ow):",
                f"    base = ib + j3 * {sw}",
                "    m = a0[np.uint64(base)]"]
        for off in offsets[1:]:
            body += [f"    y = a0[np.uint64(base + {off})]",
                     "    if (y > m or y != y) and m == m:",
                     "        m = y"]
        body.append("    o0[np.uint64(ob + j3)] = m")
        return ElementKernel((n, c, oh), body, sizes=[("h", h), ("w", w), ("ow", ow)],
                             flat_arrays=("a0", "o0"))
    body = [f"m = {np_type(v.dtype)}(-np.inf)", *_window_scan(node, "a0"),
            "                if y > m or y != y:",
            "                    if m == m:",
            "                        m = y",
            "o0[j0, j1, j2, j3] = m"]
    return ElementKernel(tuple(v.shape), body, sizes=[("h", x.shape[2]), ("w", x.shape[3])])


def max_pool_grad_kernel(node: Node, target: Target) -> ElementKernel:
    """max_pool2d's gradient: each window finds its first maximum again (row-major; the first
    NaN, if any; a padding position first in the window keeps the gradient, which is then
    dropped) and adds its gradient there, into a zeroed result. Windows that do not overlap
    (stride at least the dilated kernel, the usual 2x2/2) never hit one element twice, so the
    loop is parallel; overlapping ones add as a scatter does (serial on the CPU, atomically on
    the device)."""
    g, x = node.inputs
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _window(node)
    overlap = (kh - 1) * dh + 1 > sh or (kw - 1) * dw + 1 > sw
    if (ph, pw) == (0, 0) and not node.attrs["ceil_mode"]:
        # Every window lies inside the input: no bounds to check, and the scan is one compare
        # and select per element; a window holding a NaN (flagged on the way) is scanned again
        # for its first NaN. One row of windows per iteration, indexed flat and unsigned (no
        # wraparound code in the inner loops).
        n, c, h, w = x.shape
        _, _, oh, ow = g.shape
        offsets = _window_offsets(node)
        value = "a0[np.uint64(gb + j3)]"
        add = (target.add_at("o0", "np.uint64(base + at)", value) if overlap
               else f"o0[np.uint64(base + at)] += {value}")
        body = [f"ib = ((j0 * p1 + j1) * h + j2 * {sh}) * w",
                "gb = ((j0 * p1 + j1) * p2 + j2) * ow",
                "for j3 in range(ow):",
                f"    base = ib + j3 * {sw}",
                "    best = a1[np.uint64(base)]",
                "    at = 0",
                "    nan = best != best"]
        for off in offsets[1:]:
            body += [f"    y = a1[np.uint64(base + {off})]",
                     "    nan |= y != y",
                     "    if y > best:",
                     "        best = y",
                     f"        at = {off}"]
        body += ["    if nan:",
                 "        at = -1"]
        for off in offsets:
            body += [f"        if at < 0 and a1[np.uint64(base + {off})] != "
                     f"a1[np.uint64(base + {off})]:",
                     f"            at = {off}"]
        body.append("    " + add)
        return ElementKernel((n, c, oh), body, params=["a0", "a1", "o0"],
                             sizes=[("h", h), ("w", w), ("ow", ow)], zero=True,
                             serial=overlap, flat_arrays=("a0", "a1", "o0"))
    add = (target.add_at("o0", "(j0, j1, by, bx)", "a0[j0, j1, j2, j3]") if overlap
           else "o0[j0, j1, by, bx] += a0[j0, j1, j2, j3]")
    # at: -1 nothing seen, 0 a padding position first (it keeps the maximum unless an element
    # beats -inf), 1 an element of the input at (by, bx)
    body = [f"best = {np_type(x.dtype)}(-np.inf)",
            f"iy = j2 * {sh} - {ph}",
            f"ix = j3 * {sw} - {pw}",
            "at = -1 if 0 <= iy < h and 0 <= ix < w else 0",
            "by = 0",
            "bx = 0",
            *_window_scan(node, "a1"),
            "                if at < 0 or y > best or (y != y and best == best):",
            "                    best = y",
            "                    at = 1",
            "                    by = iy",
            "                    bx = ix",
            "if at == 1:",
            "    " + add]
    return ElementKernel(tuple(g.shape), body, params=["a0", "a1", "o0"],
                         sizes=[("h", x.shape[2]), ("w", x.shape[3])], zero=True,
                         serial=overlap)


def argmax_kernel(node: Node) -> ElementKernel:
    """Each output element scans its row (the axis, or every element when axis is None) for the
    first maximum; the first NaN wins, as in NumPy."""
    x, v = node.inputs[0], node.output
    axis, keep = node.attrs.get("axis"), node.attrs.get("keepdims", False)
    red = list(range(x.ndim)) if axis is None else [axis]
    # the output's index names: kept axes take j's in order (keepdims adds 0-size-1 axes)
    names: dict[int, str] = {}
    k = 0
    for d in range(x.ndim):
        if d in red:
            if keep:
                k += 1
            continue
        names[d] = f"j{k}"
        k += 1
    src_t = [names.get(d, f"t{d}") for d in range(x.ndim)]
    body = ["best = a0[" + _ix([names.get(d, "0") for d in range(x.ndim)]) + "]",
            "at = 0",
            "t = 1",
            "while t < nr and best == best:"]
    body += ["    " + ln for ln in unflatten("t", [f"t{d}" for d in red], [f"q{d}" for d in red])]
    body += [f"    y = a0[{_ix(src_t)}]",
             "    if y > best or y != y:",
             "        best = y",
             "        at = t",
             "    t += 1",
             f"o0[{_ix(_j(v.ndim))}] = np.int64(at)"]
    sizes = [("nr", math.prod(x.shape[d] for d in red))] + [(f"q{d}", x.shape[d]) for d in red]
    return ElementKernel(tuple(v.shape), body, sizes=sizes)


# ----------------------------------------------------------------------------- random draws


def _u64(value: int) -> str:
    return f"np.uint64({value:#x})"


def philox_lines(block: str) -> list[str]:
    """Lines setting c0..c3 to Philox4x32-10's words for counter rc + `block` under key rk
    (philox.py's arithmetic: 32-bit values held in uint64 scalars)."""
    m, s = _u64(philox.MASK), "np.uint64(32)"
    lines = [f"c = rc + np.uint64({block})",
             f"c0 = c & {m}",
             f"c1 = c >> {s}",
             "c2 = np.uint64(0)",
             "c3 = np.uint64(0)",
             f"k0 = rk & {m}",
             f"k1 = rk >> {s}"]
    for r in range(philox.ROUNDS):
        if r:
            lines += [f"k0 = (k0 + {_u64(philox.WEYL[0])}) & {m}",
                      f"k1 = (k1 + {_u64(philox.WEYL[1])}) & {m}"]
        lines += [f"h0 = c0 * {_u64(philox.MULTIPLIERS[0])}",
                  f"h1 = c2 * {_u64(philox.MULTIPLIERS[1])}",
                  f"c0 = (h1 >> {s}) ^ c1 ^ k0",
                  f"c2 = (h0 >> {s}) ^ c3 ^ k1",
                  f"c1 = h1 & {m}",
                  f"c3 = h0 & {m}"]
    return lines


def _u24(word: str, plus: bool = False) -> str:
    inner = f"(({word} >> np.uint64(8)) + np.uint64(1))" if plus else f"({word} >> np.uint64(8))"
    return f"np.float64({inner}) * {2.0 ** -24!r}"


def _u53(hi: str, lo: str, plus: bool = False) -> str:
    bits = f"((({hi} >> np.uint64(5)) << np.uint64(26)) + ({lo} >> np.uint64(6))"
    bits += " + np.uint64(1))" if plus else ")"
    return f"np.float64({bits}) * {2.0 ** -53!r}"


def _draw_values(node: Node, target: Target) -> tuple[list[str], list[str]]:
    """(lines computing a block's elements from c0..c3, the elements' expressions in order)."""
    name, a, v = node.op.name, node.attrs, node.output
    cast = np_type(v.dtype)
    single = v.dtype.itemsize == 4
    words = ["c0", "c1", "c2", "c3"]
    if name == "randint":
        span, low = _u64(a["high"] - a["low"]), int(a["low"])
        lines = [f"x{k} = ({words[2 * k]} << np.uint64(32)) | {words[2 * k + 1]}"
                 for k in range(2)]
        return lines, [f"{cast}(np.int64(x{k} % {span}) + np.int64({low}))" for k in range(2)]
    if name == "uniform":
        lo, sp = float(a["low"]), float(a["high"]) - float(a["low"])
        us = ([_u24(w) for w in words] if single else
              [_u53("c0", "c1"), _u53("c2", "c3")])
        return [], [f"{cast}({lo!r} + {sp!r} * ({u}))" for u in us]
    mean, std = float(a["mean"]), float(a["std"])
    pairs = ([(_u24("c0", True), _u24("c1")), (_u24("c2", True), _u24("c3"))] if single else
             [(_u53("c0", "c1", True), _u53("c2", "c3"))])
    lines, values = [], []
    log, sqrt, cos, sin = (target.math(f) for f in ("log", "sqrt", "cos", "sin"))
    for k, (u1, u2) in enumerate(pairs):
        lines += [f"r{k} = {sqrt}(-2.0 * {log}({u1}))",
                  f"t{k} = {philox.TWO_PI!r} * ({u2})"]
        values += [f"{cast}({mean!r} + {std!r} * (r{k} * {cos}(t{k})))",
                   f"{cast}({mean!r} + {std!r} * (r{k} * {sin}(t{k})))"]
    return lines, values


def random_kernels(node: Node, target: Target) -> list[ElementKernel]:
    """A draw: one loop over its full counter blocks (every element stored, no checks), then,
    where the size is not a multiple of the elements per block, one iteration for the last
    block storing only the elements that exist. Uniforms and integers loop serially on the CPU:
    numba's parallel loops do not vectorize a body that stores several elements per iteration,
    and the vectorized serial loop was faster on 2 cores (4M float32: 5.1 ms against 6.5 ms);
    normals (log, cos and sin, scalar either way) loop in parallel."""
    n = node.output.size
    per = philox.per_block(node.op.name, node.output.dtype)
    full, tail = divmod(n, per)
    lines, values = _draw_values(node, target)
    serial = node.op.name != "normal"
    kernels = []
    if full:
        body = philox_lines("j0") + lines + [f"e = j0 * {per}"]
        body += [f"o0[e + {t}] = {x}" if t else f"o0[e] = {x}" for t, x in enumerate(values)]
        kernels.append(ElementKernel((full,), body, ["o0"], serial=serial, seeded=True,
                                     flat_arrays=("o0",)))
    if tail:
        body = philox_lines("nb") + lines + [f"e = nb * {per}"]
        body += [f"o0[e + {t}] = {x}" for t, x in enumerate(values[:tail])]
        kernels.append(ElementKernel((1,), body, ["o0"], sizes=[("nb", full)], serial=serial,
                                     seeded=True, flat_arrays=("o0",)))
    return kernels


class Draws:
    """A graph's random draws, for one call: the generator's key and each draw's first counter
    (`slots` in graph order, which is eager's order), from one `take` for all of them. Calling
    it returns a uint64 array [key, counter of draw 0, counter of draw 1, ...]."""

    def __init__(self, nodes: list[Node]) -> None:
        sizes = [philox.blocks(n.op.name, n.output.dtype, n.output.size) for n in nodes]
        self.slots = {id(n): k for k, n in enumerate(nodes)}
        self.total = sum(sizes)
        self.offsets = np.array([0, *itertools.accumulate(sizes[:-1])], np.uint64)

    def __call__(self) -> np.ndarray:
        from lucid.ops.creation import GENERATOR

        key, start = GENERATOR.take(self.total)
        state = np.empty(1 + len(self.offsets), np.uint64)
        state[0] = key
        np.add(self.offsets, np.uint64(start), out=state[1:])
        return state
