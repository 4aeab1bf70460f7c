"""Compiling off the critical path: a program's native tier compiled in worker processes.

A cold numba compile of a training step's native tier takes seconds to minutes. In the "async"
compile mode (lucid.compile's default) a program does not wait for it: its first call hands the
job to a worker process and runs on the reference interpreter over the same optimized graph
(NumPy, nothing to compile), and so does every call until the worker is done. The worker
compiles by running the program's native tier once on zero-filled inputs of the traced shapes
and dtypes (which makes numba compile exactly the signatures the real call uses), and numba
writes the machine code to the on-disk cache (numba_cache.py). The program's next call then
loads it from disk and runs native from there on.

Workers are separate Python processes running `python -m lucid_jit.codegen.cpu.background`
(never forks of the caller, whose threads and locks do not survive a fork, and never
multiprocessing's spawn, which would import the user's main script again). There is one per core,
at most four, at a lower priority than the caller (WORKER_NICENESS), so the cores of a small
machine compile while the caller keeps running first; they start on first need, take pickled jobs
on stdin and answer on stdout. A job that fails, or a process that cannot start workers, compiles
in the foreground as the "sync" mode does. A forked child (a data-loading worker) starts workers
of its own if it needs any: the parent's are not its to use.

The caller's exit never waits for a worker. Jobs still queued are dropped; a job a worker has
started is finished, after the caller is gone, so that the next process finds that code on disk
(a short script run twice runs native the second time). A worker left so exits when its job is
done, or after FINISH_AFTER_EXIT_S (`LUCID_JIT_FINISH_AFTER_EXIT_S`; 0 ends it at the caller's
exit, as a kill would). Each native segment is compiled under a lock file beside its module, so a
second process that needs the same code while a worker of an earlier one still compiles it waits
for that compile and loads the result, instead of compiling it again alongside.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

_LOCK = threading.Lock()

# Workers run at a lower scheduling priority (nice +10): where cores are few, the caller's calls
# (on the interpreter meanwhile) get the CPU first and the compile takes what is left.
WORKER_NICENESS = 10
# How long a worker may go on with a job it started after its caller exited (seconds).
FINISH_AFTER_EXIT_S = float(os.environ.get("LUCID_JIT_FINISH_AFTER_EXIT_S", "120"))


@dataclass
class Job:
    """Everything a worker needs to compile one program's native tier (all picklable)."""

    text: str
    kernel_texts: dict[str, str]
    # per graph input: (shape, dtype, strides or None for C order, writeable): numba compiles
    # one signature per layout (C, F, any) and writeability, so the zeros mimic the real ones
    inputs: list[tuple]
    D: np.ndarray
    K: np.ndarray
    H: tuple
    C: tuple
    pool: list[tuple[tuple[int, ...], str]]
    arena_bytes: int
    cache_dir: str
    key: bytes
    # the segments to compile (None: all); the others run as stand-ins returning zeros of
    # their values' shapes, so several workers can compile one program's segments at once
    segments: tuple[int, ...] | None = None
    returns: list = field(default_factory=list)  # per segment: (shape, dtype, layout) returned
    C_specs: list = field(default_factory=list)  # the constant arrays' layouts (input_spec)


def compile_native(job: Job) -> list[tuple[str, float]]:
    """Compile `job`'s native tier in this process by running it on zeros; (function, seconds)
    of each numba compile it took. (In a worker: numba's cache on disk receives the code.)"""
    from lucid_jit.codegen import compiletime, loader

    first = len(compiletime.functions_since(0))
    loader.register_kernels(job.kernel_texts)
    module = loader.load(job.text)
    args = [_zeros_like(*spec) for spec in job.inputs]
    pool = tuple(np.zeros(shape, np.dtype(dtype)) for shape, dtype in job.pool)
    arena = np.zeros(job.arena_bytes + 64, np.uint8)
    start = -arena.ctypes.data % 64
    # (pickling does not keep NumPy's writeable flag, and numba types read-only arrays apart)
    constants = tuple(_zeros_like(*spec) for spec in job.C_specs) if job.C_specs else job.C
    digest = loader.text_hash(job.text)
    segments = tuple(
        (_one_at_a_time(native, loader.cache_dir() / f"m_{digest}.{k}.lock")
         if native.__name__.startswith("native_") else native)
        if job.segments is None or k in job.segments else _stand_in(job.returns[k])
        for k, native in enumerate(module.NATIVE))
    with np.errstate(all="ignore"):
        module.run(args, job.D, job.K, job.H, constants, segments, pool,
                   arena[start:start + job.arena_bytes])
    return compiletime.functions_since(first)


def _one_at_a_time(segment, lock: Path):
    """`segment`, its first call (numba's compile, or its load from the disk cache) made under
    an exclusive lock on `lock`: of several processes compiling the same segment, one compiles
    and the others wait and load its code."""
    def call(*args):
        with _locked(lock):
            return segment(*args)
    return call


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive `flock` on the file `path` (made 0600, never through a symlink); without
    one (no fcntl, a read-only cache) the body runs unlocked."""
    try:
        import fcntl

        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except (ImportError, OSError):
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # (releases the lock)


def _stand_in(returns):
    """A segment another worker compiles: zeros of what it returns, in the layouts it returns
    them (C, F, or strided: "A")."""
    def segment(*args):
        if not returns:
            return None
        return tuple(_zeros_in_layout(shape, dtype, layout) for shape, dtype, layout in returns)
    return segment


def _zeros_in_layout(shape, dtype, layout: str) -> np.ndarray:
    dtype = np.dtype(dtype)
    if layout == "F":
        return np.asfortranarray(np.zeros(shape, dtype))
    if layout == "A" and shape:
        return np.zeros((*shape[:-1], 2 * shape[-1]), dtype)[..., ::2]
    return np.zeros(shape, dtype)


def workers() -> int:
    """How many worker processes compile at once."""
    return max(1, min(4, os.cpu_count() or 1))


def _zeros_like(shape, dtype, strides, writeable) -> np.ndarray:
    """Zeros with this shape, dtype, strides and writeability (C order when strides is None)."""
    dtype = np.dtype(dtype)
    if strides is None:
        arr = np.zeros(shape, dtype)
    else:
        lo = sum(min(0, (n - 1) * st) for n, st in zip(shape, strides, strict=True) if n)
        hi = sum(max(0, (n - 1) * st) for n, st in zip(shape, strides, strict=True) if n)
        extent = 0 if 0 in shape else hi - lo + dtype.itemsize
        buffer = np.zeros(extent + dtype.itemsize, np.uint8)
        arr = np.ndarray(shape, dtype, buffer=buffer, offset=-lo, strides=strides)
    arr.flags.writeable = writeable
    return arr


def input_spec(arr, shape, dtype) -> tuple:
    """What `_zeros_like` needs to mimic `arr` (an input of a call), or a C-ordered writeable
    input of this shape and dtype where there is no call to look at."""
    if arr is None or not isinstance(arr, np.ndarray):
        return (tuple(shape), np.dtype(dtype).str, None, True)
    strides = None if arr.flags.c_contiguous else tuple(arr.strides)
    return (tuple(arr.shape), arr.dtype.str, strides, bool(arr.flags.writeable))


def _work(blob: bytes) -> list[tuple[str, float]]:
    """A worker's task: the job, pickled by the parent (so a job that cannot be pickled fails in
    the parent, at submission)."""
    job = pickle.loads(blob)  # noqa: S301 (from the parent process, over its own pipe)
    from lucid_jit.codegen import loader

    loader.pin(Path(job.cache_dir), job.key)
    return compile_native(job)


# ----------------------------------------------------------------------------- the parent side


class _Worker:
    """One worker process and the thread that feeds it jobs from the shared queue."""

    def __init__(self, jobs: queue.Queue) -> None:
        root = str(Path(__file__).resolve().parents[3])  # where lucid_jit is importable from
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        verbose = bool(os.environ.get("LUCID_JIT_LOG"))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lucid_jit.codegen.cpu.background"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=None if verbose else subprocess.DEVNULL, env=env)
        self.jobs = jobs
        self.sending = threading.Lock()  # held while a job is written to the worker's pipe
        threading.Thread(target=self._feed, daemon=True, name="lucid_jit compile").start()

    def _feed(self) -> None:
        while True:
            item = self.jobs.get()
            if item is None:
                return
            blob, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                with self.sending:
                    _send(self.process.stdin, blob)
                ok, value = pickle.loads(_receive(self.process.stdout))  # noqa: S301
            except Exception as exc:  # noqa: BLE001 (the worker died: this job fails)
                future.set_exception(RuntimeError(f"compile worker failed: {exc!r}"))
                return
            future.seconds = time.perf_counter() - future.submitted
            if ok:
                future.set_result(value)
            else:
                future.set_exception(RuntimeError(value))


def _send(stream, blob: bytes) -> None:
    stream.write(struct.pack("<Q", len(blob)) + blob)
    stream.flush()


def _receive(stream) -> bytes:
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError("the worker's pipe closed")
    (n,) = struct.unpack("<Q", head)
    blob = stream.read(n)
    if len(blob) < n:
        raise EOFError("the worker's pipe closed")
    return blob


_JOBS: queue.Queue = queue.Queue()
_WORKERS: list[_Worker] = []


def _start() -> None:
    with _LOCK:
        if not _WORKERS:
            for _ in range(workers()):
                _WORKERS.append(_Worker(_JOBS))
            atexit.register(_stop)


def _stop() -> None:
    """At exit: drop the queued jobs and close the workers' input. An idle worker ends at once;
    one in the middle of a job finishes it (bounded by FINISH_AFTER_EXIT_S), then ends."""
    while True:
        try:
            item = _JOBS.get_nowait()
        except queue.Empty:
            break
        if item is not None:
            item[1].cancel()
    for worker in _WORKERS:
        try:
            if FINISH_AFTER_EXIT_S > 0:
                # a job half written to the pipe (a worker still starting reads it soon): a
                # moment to finish writing it, or the worker would get half a job
                if worker.sending.acquire(timeout=2.0):
                    worker.sending.release()
                worker.process.stdin.close()
            else:
                worker.process.kill()
        except OSError:
            pass
    for _ in _WORKERS:
        _JOBS.put(None)


def _forget_in_child() -> None:
    """After a fork: the parent's workers and queue belong to the parent."""
    global _JOBS, _LOCK
    _WORKERS.clear()
    _JOBS = queue.Queue()
    _LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def submit(job: Job) -> concurrent.futures.Future | None:
    """Start compiling `job` in a worker; None where no worker can take it (the caller then
    compiles in the foreground)."""
    try:
        blob = pickle.dumps(job)
    except Exception:  # noqa: BLE001 (a host op that does not pickle)
        return None
    try:
        _start()
    except OSError:  # no processes here
        return None
    future: concurrent.futures.Future = concurrent.futures.Future()
    future.submitted, future.seconds = time.perf_counter(), 0.0  # (for the compile record)
    _JOBS.put((blob, future))
    return future


def _serve() -> None:
    """The worker's loop: a job in, (ok, its compiles or the error) out, until stdin ends or
    the caller is gone."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # (nothing but answers on the pipe)
    try:  # background work: the caller's own calls come first on a busy machine
        os.nice(WORKER_NICENESS)
    except (AttributeError, OSError):
        pass
    threading.Thread(target=_watch_caller, args=(os.getppid(),), daemon=True,
                     name="lucid_jit caller watch").start()
    while True:
        try:
            blob = _receive(stdin)
        except EOFError:
            return
        try:
            answer = (True, _work(blob))
        except Exception as exc:  # noqa: BLE001 (reported to the parent, which compiles itself)
            answer = (False, f"{type(exc).__name__}: {exc}")
        try:
            _send(stdout, pickle.dumps(answer))
        except OSError:  # the caller exited meanwhile: the code is on disk, nobody to tell
            return


def _watch_caller(caller: int) -> None:
    """End this worker FINISH_AFTER_EXIT_S after its caller is gone (a job still compiling
    then is abandoned)."""
    while os.getppid() == caller:
        time.sleep(0.5)
    time.sleep(max(0.0, FINISH_AFTER_EXIT_S))
    os._exit(0)


if __name__ == "__main__":
    _serve()
