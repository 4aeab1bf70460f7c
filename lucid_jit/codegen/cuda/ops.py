"""CUDA kernels for single ops outside fused bodies: the element kernels of `codegen/elementops.py`
(written once for both targets), each wrapped in a grid-stride loop over its elements.

On the device, a scatter-add adds atomically (repeated indices from different threads), and an
index out of range cannot raise inside a kernel: the first thread to find one records (node,
index, axis) in the program's `err` array with a compare-and-swap and reads index 0 instead; the
program checks `err` after its launches and raises NumPy's IndexError message.
"""

from __future__ import annotations

import math

from lucid_jit.codegen.body import np_type
from lucid_jit.codegen.cuda.launch import HEADER, Launch, grid_stride
from lucid_jit.codegen.elementops import ElementKernel, element_kernels
from lucid_jit.ir.graph import Node

_ATOMIC = ("float32", "float64", "int32", "int64")  # dtypes cuda.atomic.add takes


class _Device:
    """The element kernels' two target-specific pieces, for the device."""

    @staticmethod
    def add_at(array: str, index: str, value: str) -> str:
        return f"cuda.atomic.add({array}, {index}, {value})"

    @staticmethod
    def out_of_range(code: int, value: str, axis: int, size: str, var: str) -> list[str]:
        return [f"if cuda.atomic.compare_and_swap(err, 0, {code}) == 0:",
                f"    err[1] = {value}",
                f"    err[2] = {axis}",
                f"{var} = 0"]

    @staticmethod
    def math(name: str) -> str:
        return f"{name}_f64"  # devmath's


DEVICE = _Device()


def launches(node: Node, err_code: int = 0) -> tuple[list[Launch], bool] | None:
    """The launches of a single op's kernel(s) (a scatter-add: a zero fill first), and whether
    they record index errors; None for a form without one (the program runs it on the host)."""
    kernels = element_kernels(node, DEVICE, err_code)
    if kernels is None:
        return None
    out = []
    for kernel in kernels:
        if kernel.zero:
            v = node.output
            if v.dtype.name not in _ATOMIC:
                return None
            zero = ElementKernel(tuple(v.shape), [f"o0[{_ix(v.ndim)}] = {np_type(v.dtype)}(0)"],
                                 params=["o0"])
            out.append(_launch(zero, node))
        out.append(_launch(kernel, node))
    return out, any(k.fallible for k in kernels)


def movement_launch(node: Node) -> Launch:
    """The copy kernel of a reshape, permute or broadcast_to (also strided copies)."""
    (kernel,) = element_kernels(node, DEVICE)
    return _launch(kernel, node)


def _ix(ndim: int) -> str:
    return ", ".join(f"j{d}" for d in range(ndim)) if ndim else "0"


def _launch(kernel: ElementKernel, node: Node) -> Launch:
    """A grid-stride kernel over the kernel's shape: arguments its extents (p0, p1, ...), its
    sizes, a draw's key and counter (("seed", "rk"/"rc"), bound per call by the program), then
    its arrays (a program names a node's inputs a0, a1, ... and its output o0; those the
    kernel reads flat are ("flat", name))."""
    params = list(kernel.params) + (["err"] if kernel.fallible else [])
    seeds = ["rk", "rc"] if kernel.seeded else []
    names = ([f"p{d}" for d in range(len(kernel.shape))] + [n for n, _ in kernel.sizes] + seeds
             + params)
    src = ["@cuda.jit", f"def kernel({', '.join(names)}):"]
    src += ["    " + ln for ln in grid_stride(kernel.shape, kernel.body)]
    launch = Launch(HEADER + "\n".join(src) + "\n", "elem", (math.prod(kernel.shape),))
    launch.args = [("size", int(s)) for s in kernel.shape]
    launch.args += [("size", int(v)) for _, v in kernel.sizes]
    launch.args += [("seed", name) for name in seeds]
    for p in params:
        if p == "err":
            launch.args.append(("array", "err"))
            continue
        local, value = _local(p, node)
        kind = ("flat" if p in kernel.flat_arrays else "array0" if value.ndim == 0
                else "array")
        launch.args.append((kind, local))
    return launch


def _local(param: str, node: Node):
    """The program's name for a kernel parameter, and the value it is: inputs a0, a1, ...;
    index tensors i0, i1, ... are the inputs after the first; o0 the output."""
    k = int(param[1:])
    if param[0] == "o":
        return f"o{k}", node.outputs[k]
    if param[0] == "i":
        return f"a{k + 1}", node.inputs[k + 1]
    return f"a{k}", node.inputs[k]
