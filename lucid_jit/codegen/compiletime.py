"""How long compiling takes, and telling the user about it.

Tracing, autodiff, the passes and code generation are timed as an entry's stages (`Stage`). The
larger part of a cold start is numba's: kernels compile at their first call, and the native tier
(one njit function per segment) at the call that switches to it. A listener on numba's compile
events adds up numba's compile time; each program records, for every call before it settles on
its tier (the only calls that can compile), the call's wall time and the numba time and compile
count inside it (`CompileRecord`). `explain` shows them, and:

- `LUCID_JIT_LOG=compile` logs each compile as it happens: before a native tier that is not on
  disk yet ("compiling ..., N lines"), and after every call that compiled, with its duration;
- a compile of `LONG_COMPILE_SECONDS` or more (`LUCID_JIT_LONG_COMPILE_SECONDS`, default 2) is
  mentioned once per process by default, as a `LongCompileWarning`
  (`warnings.filterwarnings("ignore", category=LongCompileWarning)` turns it off).
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

from lucid.ops.registry import user_stacklevel
from lucid_jit import log

# Seconds of numba compiling in one call that earn the one-time warning.
LONG_COMPILE_SECONDS = float(os.environ.get("LUCID_JIT_LONG_COMPILE_SECONDS", "2"))


class LongCompileWarning(UserWarning):
    """A compile took long (once per process). Later calls, and later processes, reuse it."""


@dataclass(frozen=True)
class CompileRecord:
    """One call of a program before it settled: which, on which tier, how long it took (wall
    time), and how much of that numba spent compiling (and how many functions)."""

    part: str  # "forward", "backward", or "graph" for a program made outside an entry
    call: int  # (0: compiled ahead or by a worker, not in a call)
    tier: str  # "python" (kernels called from Python), "native" (one njit function), "cuda",
    #            or "native (worker)": compiled by a worker process (async mode)
    seconds: float
    numba_seconds: float
    compiles: int
    functions: tuple = ()  # (function, seconds) per numba compile, in order

    def describe(self) -> str:
        what = f"{self.compiles} numba compile{'s' if self.compiles != 1 else ''}"
        when = f"call {self.call}" if self.call else "ahead of its calls"
        return f"{self.part}, {when} ({self.tier} tier): {what}"


class _NumbaClock:
    """Numba's total compile time and count in this process (its "numba:compile" events fire
    only for real compiles, not for loads from its disk cache). Compiles run under numba's
    compiler lock, one at a time, so one nesting depth suffices."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.count = 0
        self.functions: list[tuple[str, float]] = []  # (function, seconds) per compile
        self._depth = 0
        self._start = 0.0
        self._name = "?"

    def on_start(self, event) -> None:
        if self._depth == 0:
            self._start = time.perf_counter()
            self._name = function_name(event)
        self._depth += 1

    def on_end(self, event) -> None:
        self._depth -= 1
        if self._depth == 0:
            seconds = time.perf_counter() - self._start
            self.seconds += seconds
            self.count += 1
            self.functions.append((self._name, seconds))


def function_name(event) -> str:
    """What a compile event compiles: `m_<hash8>.native_segment0`, `k_<hash8>.kernel`, or a
    runtime helper's module and name."""
    data = getattr(event, "data", None) or {}
    fn = getattr(data.get("dispatcher"), "py_func", None)
    if fn is None:
        return "?"
    module = getattr(fn, "__module__", "") or ""
    stem = module.rsplit(".", 1)[-1]
    if module.startswith("lucid_jit_generated.") and "_" in stem:
        prefix, digest = stem.split("_", 1)
        stem = f"{prefix}_{digest[:8]}"
    return f"{stem}.{fn.__qualname__}"


_CLOCK = _NumbaClock()
_LOCK = threading.Lock()
_STATE = {"installed": False, "warned": False}


def _install() -> None:
    """Register the clock with numba (imported here, not when lucid_jit is)."""
    from numba.core import event

    class Listener(event.Listener):
        def on_start(self, ev):
            _CLOCK.on_start(ev)

        def on_end(self, ev):
            _CLOCK.on_end(ev)

    event.register("numba:compile", Listener())


def numba_totals() -> tuple[float, int]:
    """(seconds, compiles) numba has spent compiling in this process so far."""
    if not _STATE["installed"]:
        with _LOCK:
            if not _STATE["installed"]:
                _install()
                _STATE["installed"] = True
    return _CLOCK.seconds, _CLOCK.count


@contextmanager
def timed(records: list, name: str, part: str, call: int, tier: str, announce: str | None):
    """Time one call of a program that may compile; append its CompileRecord to `records`.
    `announce` is logged before the call (what is about to compile and its size)."""
    if announce is not None and log.enabled("compile"):
        log.write("compile", f"{name} {part}: compiling {announce}")
    seconds0, count0 = numba_totals()
    first = len(_CLOCK.functions)
    t0 = time.perf_counter()
    try:
        yield
    finally:
        wall = time.perf_counter() - t0
        seconds1, count1 = numba_totals()
        record = CompileRecord(part, call, tier, wall, seconds1 - seconds0, count1 - count0,
                               tuple(_CLOCK.functions[first:]))
        records.append(record)
        if record.compiles:
            _report(name, record)


def functions_since(first: int) -> list[tuple[str, float]]:
    """(function, seconds) of the numba compiles after the first `first` of this process."""
    numba_totals()
    return list(_CLOCK.functions[first:])


def _report(name: str, record: CompileRecord) -> None:
    text = (f"{name} {record.describe()}: {record.numba_seconds:.2f} s compiling, "
            f"{record.seconds:.2f} s for the call")
    log.write("compile", text)
    if record.numba_seconds >= LONG_COMPILE_SECONDS and not _STATE["warned"] \
            and not log.enabled("compile"):
        _STATE["warned"] = True
        warnings.warn(f"lucid.compile: {name}, {record.part} call {record.call} "
                      f"({record.tier} tier), spent {record.numba_seconds:.1f} s compiling with "
                      "numba. Later calls reuse the code, "
                      "and so do later processes (numba's cache on disk). LUCID_JIT_LOG=compile "
                      "logs every compile; lucid_jit.explain(fn) shows the times per stage",
                      LongCompileWarning, stacklevel=user_stacklevel())
