"""What generated modules import besides the math functions (vmath.py): the helpers that are
the same for every graph."""

from __future__ import annotations

import numpy as np
from numba.extending import overload


def writeback(dst, src):
    """Copy src into dst unless they are one array: after an in-place update of a C-contiguous
    input (the usual case) nothing is copied; numba decides this from the layout when it
    compiles."""
    if dst is not src:
        dst[...] = src


@overload(writeback, jit_options={"cache": True})
def _writeback(dst, src):
    if getattr(dst, "layout", None) == "C":
        return lambda dst, src: None

    def copy(dst, src):
        dst[...] = src

    return copy


__all__ = ["np", "writeback"]
