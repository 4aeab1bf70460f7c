"""Running a script and collecting the functions it compiles: how `python -m lucid_jit explain
script.py` finds what to report."""

from __future__ import annotations

import os
import runpy
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from lucid_jit.api import CompiledFunction

# ----------------------------------------------------------------------------- recording

# The lists of the active `record_compiled()` blocks (a registry: one list per open block).
_RECORDERS: list[list[CompiledFunction]] = []
_ORIGINAL_INIT: list = []


def _recording_init(self, *args, **kwargs) -> None:
    _ORIGINAL_INIT[0](self, *args, **kwargs)
    for found in _RECORDERS:
        found.append(self)


@contextmanager
def record_compiled() -> Iterator[list[CompiledFunction]]:
    """Collect every CompiledFunction created inside the block (compiled modules included: their
    forward is one). The list holds strong references, so functions that a script made in a local
    scope can still be reported after it returns."""
    found: list[CompiledFunction] = []
    if not _RECORDERS:
        _ORIGINAL_INIT[:] = [CompiledFunction.__init__]
        CompiledFunction.__init__ = _recording_init
    _RECORDERS.append(found)
    try:
        yield found
    finally:
        del _RECORDERS[next(i for i, f in enumerate(_RECORDERS) if f is found)]
        if not _RECORDERS:
            CompiledFunction.__init__ = _ORIGINAL_INIT.pop()


def run_script(path: str, argv: list[str]) -> tuple[int, list[CompiledFunction]]:
    """Run a Python file as `__main__` (with `sys.argv` set and its directory first on `sys.path`),
    recording the functions it compiles. Returns its exit status and those functions; an uncaught
    exception is printed and gives status 1."""
    path = os.path.abspath(path)
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [path, *argv]
    sys.path.insert(0, os.path.dirname(path))
    status = 0
    with record_compiled() as found:
        try:
            runpy.run_path(path, run_name="__main__")
        except SystemExit as exc:
            status = _exit_status(exc.code)
        except Exception:
            import traceback

            traceback.print_exc()
            status = 1
        finally:
            sys.argv = saved_argv
            sys.path[:] = saved_path
    return status, found


def _exit_status(code) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1
