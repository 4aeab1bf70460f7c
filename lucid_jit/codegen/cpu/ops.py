"""CPU kernels for single ops outside fused bodies: the element kernels of `codegen/elementops.py`
(written once for both targets), each wrapped in nested loops over its elements.

On the CPU a scatter-add adds in place (its loop is serial, so repeated indices accumulate as
with np.add.at), and an index out of range raises at once, before anything later in the graph
runs: an IndexError tagged `INDEX_ERROR` with (index, axis, size), which the program turns into
NumPy's message and reports as the caller's error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lucid_jit.codegen.body import PARALLEL_MIN
from lucid_jit.codegen.elementops import INDEX_ERROR, ElementKernel, element_kernels
from lucid_jit.ir.graph import Node


class _Host:
    """The element kernels' two target-specific pieces, for numba code."""

    @staticmethod
    def add_at(array: str, index: str, value: str) -> str:
        return f"{array}[{index}] += {value}"

    @staticmethod
    def out_of_range(code: int, value: str, axis: int, size: str, var: str) -> list[str]:
        return [f"raise IndexError({INDEX_ERROR!r}, {value}, {axis}, {size})"]

    @staticmethod
    def math(name: str) -> str:
        return f"np.{name}"


HOST_TARGET = _Host()


@dataclass
class CpuKernel:
    """A kernel's text (its function named `{name}`), its parameters in order, and what the
    caller passes: the loop extents and sizes (ints), a draw's key and counter (`seeded`), then
    arrays named by `params` (a0, i0, o0, ...: see ElementKernel; those in `flat_arrays`
    flat).
    `parallel`: the text uses prange (njit(parallel=True))."""

    lines: list[str]
    params: list[str]
    extents: list[int]
    arrays: list[str]
    zero: bool
    parallel: bool
    fallible: bool
    seeded: bool = False
    flat_arrays: tuple = ()


def cpu_kernels(node: Node, *, parallel: bool = False) -> list[CpuKernel] | None:
    """The kernels of a single op, or None for a form the element kernels lack (host op)."""
    kernels = element_kernels(node, HOST_TARGET)
    if kernels is None:
        return None
    return [_wrap(k, parallel) for k in kernels]


def fallible(node: Node) -> bool:
    """Whether the node's kernel can raise at run time (an index tensor out of range)."""
    kernels = element_kernels(node, HOST_TARGET)
    return kernels is not None and any(k.fallible for k in kernels)


def _wrap(kernel: ElementKernel, parallel: bool) -> CpuKernel:
    """Nested loops over the kernel's shape (the outermost a prange when the loop is large,
    elements are independent and the graph allows threads), the body innermost. `i`, the flat
    index, is computed from the j's where the body reads it."""
    shape = kernel.shape
    r = len(shape)
    ext = [f"p{d}" for d in range(r)]
    par = parallel and not kernel.serial and r > 0 and math.prod(shape) >= PARALLEL_MIN
    lines: list[str] = []
    if kernel.zero:  # (one flat loop over the output's own, C-contiguous buffer: a memset)
        lines += ["zf = o0.reshape(o0.size)", "for zi in range(zf.size):", "    zf[zi] = 0"]
    depth = 0
    for d in range(r):
        rng = "prange" if par and d == 0 else "range"
        lines.append("    " * depth + f"for j{d} in {rng}({ext[d]}):")
        depth += 1
    pad = "    " * depth
    if kernel.flat:
        flat = "j0" if r else "0"
        for d in range(1, r):
            flat = f"({flat}) * {ext[d]} + j{d}"
        lines.append(pad + f"i = {flat}")
    lines += [pad + ln for ln in kernel.body]
    seeds = ["rk", "rc"] if kernel.seeded else []
    params = ext + [n for n, _ in kernel.sizes] + seeds + list(kernel.params)
    text = [f"def {{name}}({', '.join(params)}):"] + ["    " + ln for ln in lines]
    return CpuKernel(text, params, [*shape, *(v for _, v in kernel.sizes)], list(kernel.params),
                     kernel.zero, par, kernel.fallible, kernel.seeded, kernel.flat_arrays)


def input_error(exc: BaseException) -> IndexError | None:
    """NumPy's IndexError for a kernel's tagged one (an index tensor out of range), marked as
    the inputs' fault (the code ran as compiled: no retry, no recompile); None for any other."""
    args = getattr(exc, "args", ())
    if not (isinstance(exc, IndexError) and len(args) == 4 and args[0] == INDEX_ERROR):
        return None
    _, value, axis, size = args
    err = IndexError(f"index {value} is out of bounds for axis {axis} with size {size}")
    err.lucid_host_op = "native"
    if hasattr(err, "add_note"):
        err.add_note("(in a compiled graph: a gather or scatter-add's index tensor)")
    return err
