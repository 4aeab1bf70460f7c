"""What every CUDA kernel module shares: its header (the device math functions and launch
constants it may use), the `Launch` record a program binds, and the grid-stride loop."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field

from lucid_jit.codegen.cuda.lowering import MATH
from lucid_jit.codegen.elementops import unflatten

# The device functions kernels call (devmath's), both dtypes each.
MATH_NAMES = tuple(sorted({impl.format(s=s) for impl in MATH.values() for s in ("f32", "f64")}))
HEADER = ('"""A lucid_jit CUDA kernel, shared by every graph and eager device op that needs it.'
          '"""\n'
          "import numpy as np\n"
          "from numba import cuda\n\n"
          "from lucid_jit.codegen.cuda.devmath import (  # noqa: F401\n"
          + textwrap.fill(", ".join(MATH_NAMES) + ",", 96, initial_indent="    ",
                          subsequent_indent="    ") + "\n)\n"
          "from lucid_jit.codegen.cuda.runtime import RB, REDUCE_BLOCK, TILE, TM  # noqa: F401\n"
          "\n\n")


@dataclass
class Launch:
    """One kernel launch of a body: its module text, how much work (for the launch
    configuration), and its arguments: ("size", int), ("array", body name), ("scalar", body
    input index) for a host scalar input, ("const", value, dtype)."""

    text: str
    kind: str  # "elem", "reduce" or "matmul"
    work: tuple[int, ...]
    args: list = field(default_factory=list)
    extra_sizes: list = field(default_factory=list)


def _uses(text: str, name: str) -> bool:
    """Whether identifier `name` occurs in text."""
    return re.search(rf"\b{name}\b", text) is not None


def grid_stride(L, body: list[str]) -> list[str]:
    """A grid-stride loop over the elements of shape L (sizes p0, p1, ...): each iteration sets
    the n-d index j0, j1, ... and runs `body`."""
    r = len(L)
    idx = [f"j{d}" for d in range(r)]
    lines = [f"n = {' * '.join(f'p{d}' for d in range(r)) or '1'}",
             "i = cuda.grid(1)",
             "step = cuda.gridsize(1)",
             "while i < n:"]
    lines += ["    " + ln for ln in unflatten("i", idx, [f"p{d}" for d in range(r)])]
    lines += ["    " + ln for ln in body]
    return lines + ["    i += step"]
