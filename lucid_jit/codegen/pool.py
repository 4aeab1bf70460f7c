"""Output buffers reused across calls: the one pool both backends draw graph outputs from.

A compiled function called in a loop returns a new tensor per call; allocating its array afresh
each time costs page faults (CPU) or device allocations (CUDA). Instead each output has a slot
of buffers: a buffer whose tensor has died (nothing but the pool holds it) is given out again,
else a new one is made. A slot keeps up to `DEPTH` buffers: `y = f(x)` in a loop still holds the
last result while the next call runs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence


class OutputPool:
    DEPTH = 4

    def __init__(self, avals: Sequence[tuple], empty: Callable) -> None:
        """`avals`: (shape, dtype) per output; `empty(shape, dtype)` makes a buffer."""
        self.avals = list(avals)
        self.empty = empty
        self.slots: list[list] = [[] for _ in self.avals]

    def __len__(self) -> int:
        return len(self.slots)

    def __iter__(self):
        """The slots: per output, its buffers."""
        return iter(self.slots)

    def take(self, k: int):
        """A buffer for output k that no one else holds."""
        slot = self.slots[k]
        for buf in slot:
            # references: the slot's list, `buf`, getrefcount's argument
            if sys.getrefcount(buf) <= 3:
                return buf
        shape, dtype = self.avals[k]
        buf = self.empty(shape, dtype)
        slot.append(buf)
        if len(slot) > self.DEPTH:
            del slot[0]
        return buf

    def take_all(self) -> tuple:
        return tuple(self.take(k) for k in range(len(self.slots)))
