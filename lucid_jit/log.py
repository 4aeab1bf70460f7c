"""`LUCID_JIT_LOG`: a comma-separated list of what the compiler reports on stderr.

`recompiles` (why a call retraced, field by field), `passes` (the graph after each pass, with the
pass's name and time), `graph_breaks`, `fusion` (the fused groups and why edges stayed unfused),
`compile` (numba's compiles: what and how long, see compiletime.py), `guards`, or `all`. The
variable is read when a message is about to be written, so it can be changed while a program
runs.
"""

from __future__ import annotations

import os
import sys

TOPICS = ("recompiles", "passes", "graph_breaks", "guards", "fusion", "compile")


def enabled(topic: str) -> bool:
    spec = os.environ.get("LUCID_JIT_LOG", "")
    if not spec:
        return False
    names = {s.strip() for s in spec.split(",")}
    return topic in names or "all" in names


def write(topic: str, message: str) -> None:
    """Write a message for a topic (callers check `enabled` first when the message is costly)."""
    if enabled(topic):
        print(f"[lucid_jit:{topic}] {message}", file=sys.stderr, flush=True)
