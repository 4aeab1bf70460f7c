"""CUDA kernels for single ops outside fused bodies: each a grid-stride loop over its output.

- `movement_launch`: reshape, permute, broadcast_to (and strided copies, `program.copy_array`);
- `slice_launch` / `scatter_slice_launch`: getitem with a basic index (ints, slices, None,
  Ellipsis), and its adjoint scatter_add;
- `pad_launch`: constant padding;
- `unfold_launch` / `fold_launch`: im2col and its adjoint (fold gathers: each output element
  sums the columns that cover it, so no atomics and the same order as the host's);
- `max_pool_launch`: max over each window (NaN wins, padding never does);
- `argmax_launch`: one thread per kept element scans its row (first maximum; a NaN wins);
- `concat_launch`: each output element reads the input whose stretch of the axis holds it;
- `gather_launches` / `scatter_launches`: getitem and scatter_add with index tensors (NumPy's
  advanced indexing; the scatter adds atomically). An out-of-range index is recorded in the
  program's error array, which the program checks after its launches.

Every kernel indexes its arrays n-d, so strided views are fine as operands. Window attributes
are baked into the text; sizes are arguments, so batch sizes share kernels.
"""

from __future__ import annotations

import math

import numpy as np

from lucid import ops
from lucid.ops.conv import _out_hw
from lucid.ops.movement import Slice, Slot
from lucid_jit.codegen.body import np_type
from lucid_jit.codegen.cuda.launch import HEADER, Launch, _unflatten, grid_stride
from lucid_jit.ir.graph import Node


def _grid_launch(out_shape, body: list[str], extra_sizes=(), params=("a0", "o0")) -> Launch:
    """A grid-stride loop over out_shape's elements, unflattened into j0, j1, ... over sizes
    p0, p1, ...; `body` (indented once more) computes element j. Arguments: the sizes, then
    `extra_sizes` (name, value) pairs, then `params` (arrays named a0.., o0)."""
    lines = grid_stride(out_shape, body)
    names = [f"p{d}" for d in range(len(out_shape))]
    names += [name for name, _ in extra_sizes] + list(params)
    src = ["@cuda.jit", f"def kernel({', '.join(names)}):"] + ["    " + ln for ln in lines]
    launch = Launch(HEADER + "\n".join(src) + "\n", "elem", (math.prod(out_shape),))
    launch.args = [("size", int(s)) for s in out_shape]
    launch.args += [("size", int(v)) for _, v in extra_sizes]
    return launch


def _arrays(launch: Launch, node: Node) -> Launch:
    """Append the node's input a0 and output o0 (0-d ones passed as 1-element arrays)."""
    x, v = node.inputs[0], node.output
    launch.args += [("array0" if x.ndim == 0 else "array", "a0"),
                    ("array0" if v.ndim == 0 else "array", "o0")]
    return launch


def _ix(items) -> str:
    return ", ".join(items) if items else "0"

def movement_launch(node: Node) -> Launch:
    """A copy kernel for a reshape, permute or broadcast_to outside any fused group: each output
    element reads its source element, both indexed n-d (so either array may be a strided view)."""
    x, v = node.inputs[0], node.output
    L = v.shape
    r = len(L)
    idx = [f"j{d}" for d in range(r)]
    body: list[str] = []
    extra: list[tuple[str, int]] = []
    if node.op is ops.permute:
        axes = tuple(node.attrs["axes"])
        src = ["0"] * x.ndim
        for d, a in enumerate(axes):
            src[a] = idx[d]
    elif node.op is ops.broadcast_to:
        shape = (1,) * (r - x.ndim) + tuple(x.shape)
        src = [("0" if shape[d] == 1 and L[d] != 1 else idx[d]) for d in range(r - x.ndim, r)]
    else:  # reshape: flat index in C order, then the source's n-d index
        extra = [(f"q{d}", s) for d, s in enumerate(x.shape)]
        src = [f"s{d}" for d in range(x.ndim)]
        body += _unflatten("i", src, [f"q{d}" for d in range(x.ndim)])
    body.append(f"o0[{_ix(idx)}] = a0[{_ix(src)}]")
    return _arrays(_grid_launch(L, body, extra), node)


def _expand(index, ndim: int) -> list:
    """The index's items with Ellipsis (or the missing trailing axes) as full slices."""
    items = list(index)
    named = sum(1 for it in items if it is not None and it is not Ellipsis)
    full = [Slice(None, None, None)] * (ndim - named)
    if Ellipsis in items:
        k = items.index(Ellipsis)
        return items[:k] + full + items[k + 1:]
    return items + full


def _resolve_index(index, shape, array_shapes):
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


def _index_lines(source, err_code) -> tuple[list[str], list[str]]:
    """(lines loading and checking each index tensor's element, the source index expressions):
    negative indices count from the end; an out-of-range one records (code, value, axis) in
    `err` (the first thread to find one wins) and reads index 0 instead."""
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
                      f"if v{d} < 0 or v{d} >= q{d}:",
                      f"    if cuda.atomic.compare_and_swap(err, 0, {err_code}) == 0:",
                      f"        err[1] = w{d}",
                      f"        err[2] = {d}",
                      f"    v{d} = 0"]
            src.append(f"v{d}")
    return lines, src


def slice_launch(node: Node) -> Launch:
    """getitem with a basic index: output element j reads the source at start + j * step
    along each sliced axis, the fixed position along each int-indexed one."""
    x, v = node.inputs[0], node.output
    _, source = _resolve_index(node.attrs["index"], x.shape, [])
    _, src = _index_lines(source, 0)
    body = [f"o0[{_ix([f'j{d}' for d in range(v.ndim)])}] = a0[{_ix(src)}]"]
    return _arrays(_grid_launch(v.shape, body), node)


def scatter_slice_launch(node: Node) -> Launch:
    """scatter_add with a basic index (getitem's adjoint): zeros, except where the index selects
    an element of the target, which takes the matching value (a basic index never repeats)."""
    v = node.output
    g_shape, source = _resolve_index(node.attrs["index"], v.shape, [])
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
    out = f"o0[{_ix([f'j{d}' for d in range(v.ndim)])}]"
    body = [f"if {' and '.join(hit) or 'True'}:", f"    {out} = a0[{_ix(gix)}]", "else:",
            f"    {out} = {np_type(v.dtype)}(0)"]
    return _arrays(_grid_launch(v.shape, body), node)


def supported_basic_index(node: Node) -> bool:
    """getitem and scatter_add nodes whose index has no index arrays."""
    return len(node.inputs) == 1 and all(
        it is None or it is Ellipsis or isinstance(it, (int, Slice)) for it in node.attrs["index"])


def pad_launch(node: Node) -> Launch:
    """Constant padding: the source element where j falls inside it, else the value."""
    x, v = node.inputs[0], node.output
    pads = node.attrs["pads"]
    r = v.ndim
    value = _literal(node.attrs.get("value", 0.0), v.dtype)
    inside = [f"{lo} <= j{d} < {lo} + {x.shape[d]}" for d, (lo, _) in enumerate(pads)
              if v.shape[d] != x.shape[d]]
    src = [f"j{d} - {lo}" if lo else f"j{d}" for d, (lo, _) in enumerate(pads)]
    out = f"o0[{_ix([f'j{d}' for d in range(r)])}]"
    if not inside:
        body = [f"{out} = a0[{_ix(src)}]"]
    else:
        body = [f"if {' and '.join(inside)}:", f"    {out} = a0[{_ix(src)}]", "else:",
                f"    {out} = {value}"]
    return _arrays(_grid_launch(v.shape, body), node)


def _literal(value, dtype) -> str:
    """A constant of `dtype` in kernel text (infinities and NaN by name)."""
    if dtype.kind == "b":
        return f"np.bool_({bool(value)})"
    value = float(value) if dtype.kind == "f" else int(value)
    text = repr(value) if math.isfinite(value) else \
        ("np.nan" if math.isnan(value) else ("-np.inf" if value < 0 else "np.inf"))
    return f"{np_type(dtype)}({text})"


def _window(node: Node):
    a = node.attrs
    return a["kernel"], a["stride"], a["padding"], a["dilation"]


def unfold_launch(node: Node) -> Launch:
    """im2col: output (N, C*kh*kw, OH*OW); element (b, r, l) is the input at channel r // kk,
    kernel offset r % kk and window l, or 0 in the padding."""
    x, v = node.inputs[0], node.output
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _window(node)
    oh, ow = _out_hw("unfold", [], x.shape[2:], (kh, kw), (sh, sw), (ph, pw), (dh, dw))
    zero = f"{np_type(v.dtype)}(0)"
    body = [f"c = j1 // {kh * kw}",
            f"ki = (j1 // {kw}) % {kh}",
            f"kj = j1 % {kw}",
            f"iy = (j2 // ow) * {sh} + ki * {dh} - {ph}",
            f"ix = (j2 % ow) * {sw} + kj * {dw} - {pw}",
            "if 0 <= iy < h and 0 <= ix < w:",
            "    o0[j0, j1, j2] = a0[j0, c, iy, ix]",
            "else:",
            f"    o0[j0, j1, j2] = {zero}"]
    return _arrays(_grid_launch(v.shape, body, [("h", x.shape[2]), ("w", x.shape[3]),
                                                ("ow", ow)]), node)


def fold_launch(node: Node) -> Launch:
    """col2im (unfold's adjoint): output element (b, c, y, x) sums, over the kernel offsets in
    row-major order, the column entries of the windows that cover it (the host's order too)."""
    v = node.output
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _window(node)
    oh, ow = _out_hw("fold", [], v.shape[2:], (kh, kw), (sh, sw), (ph, pw), (dh, dw))
    body = [f"acc = {np_type(v.dtype)}(0)",
            f"for ki in range({kh}):",
            f"    ty = j2 + {ph} - ki * {dh}",
            f"    if ty >= 0 and ty % {sh} == 0 and ty // {sh} < oh:",
            f"        for kj in range({kw}):",
            f"            tx = j3 + {pw} - kj * {dw}",
            f"            if tx >= 0 and tx % {sw} == 0 and tx // {sw} < ow:",
            f"                acc += a0[j0, j1 * {kh * kw} + ki * {kw} + kj, "
            f"(ty // {sh}) * ow + tx // {sw}]",
            "o0[j0, j1, j2, j3] = acc"]
    return _arrays(_grid_launch(v.shape, body, [("oh", oh), ("ow", ow)]), node)


def max_pool_launch(node: Node) -> Launch:
    """The max over each window: input positions outside the array (padding, or past the edge
    in ceil mode) never win; a NaN does, as with np.maximum."""
    x, v = node.inputs[0], node.output
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _window(node)
    dt = np_type(v.dtype)
    body = [f"m = {dt}(-np.inf)",
            f"for ki in range({kh}):",
            f"    iy = j2 * {sh} + ki * {dh} - {ph}",
            "    if 0 <= iy < h:",
            f"        for kj in range({kw}):",
            f"            ix = j3 * {sw} + kj * {dw} - {pw}",
            "            if 0 <= ix < w:",
            "                y = a0[j0, j1, iy, ix]",
            "                if y > m or y != y:",
            "                    if m == m:",
            "                        m = y",
            "o0[j0, j1, j2, j3] = m"]
    return _arrays(_grid_launch(v.shape, body, [("h", x.shape[2]), ("w", x.shape[3])]), node)


def argmax_launch(node: Node) -> Launch:
    """One thread per output element scans its row (the axis, or every element when axis is
    None) for the first maximum; the first NaN wins, as in NumPy."""
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
    body += ["    " + ln for ln in _unflatten("t", [f"t{d}" for d in red],
                                               [f"q{d}" for d in red])]
    body += [f"    y = a0[{_ix(src_t)}]",
             "    if y > best or y != y:",
             "        best = y",
             "        at = t",
             "    t += 1",
             f"o0[{_ix([f'j{d}' for d in range(v.ndim)])}] = np.int64(at)"]
    extra = [("nr", math.prod(x.shape[d] for d in red))]
    extra += [(f"q{d}", x.shape[d]) for d in red]
    return _arrays(_grid_launch(v.shape, body, extra), node)


# ----------------------------------------------------------------------------- index tensors


def _index_launch(node: Node, err_code: int, scatter: bool) -> Launch | None:
    x = node.inputs[0]
    arrays = node.inputs[1:]
    target = node.attrs["shape"] if scatter else x.shape
    out_shape, source = _resolve_index(node.attrs["index"], target,
                                        [a.shape for a in arrays])
    loop_shape = x.shape if scatter else node.output.shape
    if out_shape != tuple(loop_shape):  # (an index form not resolved here: the host runs it)
        return None
    lines, src = _index_lines(source, err_code)
    j = _ix([f"j{d}" for d in range(len(loop_shape))])
    if scatter:  # repeated indices accumulate, as with np.add.at
        at = src[0] if len(src) == 1 else f"({', '.join(src)})"  # (1-d: an int, not a tuple)
        lines.append(f"cuda.atomic.add(o0, {at}, a0[{j}])")
    else:
        lines.append(f"o0[{j}] = a0[{_ix(src)}]")
    params = ["a0", *(f"i{k}" for k in range(len(arrays))), "o0", "err"]
    extra = [(f"q{d}", target[d]) for d in range(len(target))]
    launch = _grid_launch(loop_shape, lines, extra, params)
    launch.args += [("array0" if x.ndim == 0 else "array", "a0")]
    launch.args += [("array0" if a.ndim == 0 else "array", f"a{k + 1}")
                    for k, a in enumerate(arrays)]
    launch.args += [("array0" if len(target) == 0 else "array", "o0"), ("array", "err")]
    return launch


def gather_launches(node: Node, err_code: int) -> list[Launch] | None:
    """getitem with index tensors: each output element reads the source at the indices its
    position picks (None: a form left to the host)."""
    launch = _index_launch(node, err_code, scatter=False)
    return None if launch is None else [launch]


def scatter_launches(node: Node, err_code: int) -> list[Launch] | None:
    """scatter_add with index tensors (a gather's adjoint): zero the target, then each value
    adds itself atomically at the position its indices pick."""
    v = node.output
    if v.dtype.name not in ("float32", "float64", "int32", "int64"):
        return None  # (no atomic add for this dtype)
    launch = _index_launch(node, err_code, scatter=True)
    if launch is None:
        return None
    zero = _grid_launch(v.shape, [f"o0[{_ix([f'j{d}' for d in range(v.ndim)])}] = "
                                  f"{np_type(v.dtype)}(0)"], params=("o0",))
    zero.args.append(("array0" if v.ndim == 0 else "array", "o0"))
    return [zero, launch]


def concat_launch(node: Node) -> Launch:
    """concat along an axis: output element j reads the input whose stretch of that axis holds
    j's position (the stretches' ends e1, e2, ... are size arguments)."""
    v, xs = node.output, node.inputs
    axis = node.attrs["axis"]
    idx = [f"j{d}" for d in range(v.ndim)]
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
    params = [*(f"a{k}" for k in range(len(xs))), "o0"]
    launch = _grid_launch(v.shape, body, ends, params)
    launch.args += [("array", f"a{k}") for k in range(len(xs))] + [("array", "o0")]
    return launch
