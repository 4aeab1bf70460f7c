"""The process group: every process of an MPI job, reached through mpi4py.

`init()` joins the job (`mpiexec -n 2 python train.py`; a script run without mpiexec is a job of
one). lucid talks over its own duplicate of MPI_COMM_WORLD, so the user's own mpi4py traffic never
interleaves with it. Every collective first gathers a small description of what each rank calls
(the collective, dtype, shape and attribute) and compares them, so mismatched ranks get an error
naming them on every rank instead of a hang or a silently wrong result; then it moves the data.

Waits poll a nonblocking request: a spin of about a millisecond, then sleeps growing to 1 ms, so a
rank waiting for a slower one (a compile, more ranks than cores) gives its core away. A wait longer
than the timeout (`init(timeout=...)`, `LUCID_DISTRIBUTED_TIMEOUT`, default 1800 s) aborts the
job: a rank that left or hangs never blocks the others forever. An exception that ends a rank's
program aborts the whole job with that rank and the error (`sys.excepthook`).

`stats()` counts each collective's calls, payload bytes and seconds (the benchmark reads them).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from lucid.ops.collective import DTYPES
from lucid.ops.registry import LucidError, user_location

# The ReduceOp names lucid's collectives take, and MPI's op for each.
REDUCE_OPS = ("sum", "prod", "max", "min")
_OPCODE = {"all_reduce": 1, "broadcast": 2, "all_gather": 3, "reduce_scatter": 4, "barrier": 5}
_META = 16  # int64 words of a call's description: op, dtype, ndim, attribute, 12 dims


class DistributedError(LucidError, RuntimeError):
    """A collective the ranks cannot complete together (mismatched calls, no process group)."""


@dataclass
class Stats:
    """Per collective: calls, payload bytes (what this rank sends into it) and seconds spent."""

    calls: dict[str, int] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, nbytes: int, seconds: float) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        self.bytes[name] = self.bytes.get(name, 0) + int(nbytes)
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def total(self) -> dict[str, float]:
        return {"calls": sum(self.calls.values()), "bytes": sum(self.bytes.values()),
                "seconds": sum(self.seconds.values())}


class World:
    """The job: this process's rank, the world size, the rank on this machine, the
    communicator, and the timeout."""

    def __init__(self, mpi, timeout: float) -> None:
        self.MPI = mpi
        self.comm = mpi.COMM_WORLD.Dup()
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        node = self.comm.Split_type(mpi.COMM_TYPE_SHARED)
        self.local_rank, self.local_size = node.Get_rank(), node.Get_size()
        node.Free()
        self.timeout = float(timeout)
        self.stats = Stats()
        self._ops = {"sum": mpi.SUM, "prod": mpi.PROD, "max": mpi.MAX, "min": mpi.MIN}

    # ------------------------------------------------------------------ checks

    def check(self, name: str, array: np.ndarray | None, attr: int = 0) -> None:
        """Raise on every rank, naming the ranks that differ, unless every rank calls the same
        collective on the same dtype and shape (and root or reduce op)."""
        meta = np.zeros(_META, np.int64)
        meta[0], meta[3] = _OPCODE[name], attr
        if array is not None:
            meta[1] = DTYPES.index(array.dtype.name) + 1
            meta[2] = array.ndim
            dims = list(array.shape[:11]) + [int(np.prod(array.shape[11:], dtype=np.int64))]
            meta[4:4 + len(dims)] = dims
        table = np.empty((self.size, _META), np.int64)
        self.wait(self.comm.Iallgather(meta, table), f"{name} (the ranks' agreement check)")
        if (table == table[0]).all():
            return
        groups: dict[tuple, list[int]] = {}
        for r, row in enumerate(table):
            groups.setdefault(tuple(row), []).append(r)
        described = "; ".join(f"rank{'s' if len(rs) > 1 else ''} {', '.join(map(str, rs))}: "
                              f"{_describe(row)}" for row, rs in groups.items())
        raise DistributedError(f"lucid.distributed.{name}: the ranks disagree: {described} "
                               f"(this is rank {self.rank}; {user_location()})")

    # ------------------------------------------------------------------ waiting

    def wait(self, request, what: str) -> None:
        """Complete a nonblocking MPI request: spin briefly, then sleep between tests; abort
        the job after `timeout` seconds."""
        if request.Test():
            return
        start = time.perf_counter()
        spins, delay = 0, 2e-5
        while not request.Test():
            spins += 1
            if spins > 2000:
                time.sleep(delay)
                delay = min(delay * 2, 1e-3)
                if time.perf_counter() - start > self.timeout:
                    self.abort(f"{what} waited more than {self.timeout:g} s for the other ranks "
                               "(a rank left the job or hangs; LUCID_DISTRIBUTED_TIMEOUT sets "
                               "the limit)")

    def abort(self, message: str, code: int = 1) -> None:
        sys.stderr.write(f"lucid.distributed: rank {self.rank} of {self.size}: {message}; "
                         "aborting the job\n")
        sys.stderr.flush()
        self.comm.Abort(code)

    # ------------------------------------------------------------------ the data

    def _timed(self, name: str, nbytes: int, start: float) -> None:
        self.stats.add(name, nbytes, time.perf_counter() - start)

    def all_reduce(self, x: np.ndarray, op: str, check: bool = True) -> np.ndarray:
        start = time.perf_counter()
        x = np.ascontiguousarray(x)
        if check:
            self.check("all_reduce", x, REDUCE_OPS.index(op))
        out = np.empty_like(x)
        self.wait(self.comm.Iallreduce(x, out, self._ops[op]), "all_reduce")
        self._timed("all_reduce", x.nbytes, start)
        return out

    def start_all_reduce(self, x: np.ndarray):
        """Start summing the contiguous array x over the ranks without the agreement check (for
        callers that checked what every rank sends beforehand: DistributedDataParallel's
        buckets); (request, out). `finish(...)` completes it."""
        out = np.empty_like(x)
        return self.comm.Iallreduce(x, out, self.MPI.SUM), out

    def finish(self, request, name: str, nbytes: int, start: float) -> None:
        self.wait(request, name)
        self._timed(name, nbytes, start)

    def broadcast(self, x: np.ndarray, src: int) -> np.ndarray:
        start = time.perf_counter()
        out = np.array(x, order="C", copy=True)
        self.check("broadcast", out, src)
        self.wait(self.comm.Ibcast(out, root=src), "broadcast")
        self._timed("broadcast", out.nbytes, start)
        return out

    def all_gather(self, x: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        x = np.ascontiguousarray(x)
        self.check("all_gather", x)
        out = np.empty((self.size * x.shape[0], *x.shape[1:]), x.dtype)
        self.wait(self.comm.Iallgather(x, out), "all_gather")
        self._timed("all_gather", x.nbytes, start)
        return out

    def reduce_scatter(self, x: np.ndarray, op: str) -> np.ndarray:
        start = time.perf_counter()
        x = np.ascontiguousarray(x)
        self.check("reduce_scatter", x, REDUCE_OPS.index(op))
        out = np.empty((x.shape[0] // self.size, *x.shape[1:]), x.dtype)
        self.wait(self.comm.Ireduce_scatter_block(x, out, self._ops[op]), "reduce_scatter")
        self._timed("reduce_scatter", x.nbytes, start)
        return out

    def barrier(self) -> None:
        start = time.perf_counter()
        self.check("barrier", None)
        self.wait(self.comm.Ibarrier(), "barrier")
        self._timed("barrier", 0, start)

    def all_gather_object(self, obj) -> list:
        self.check("all_gather", None, -1)
        return self.comm.allgather(obj)

    def broadcast_object(self, obj, src: int):
        self.check("broadcast", None, src)
        return self.comm.bcast(obj, root=src)


def _describe(row) -> str:
    name = next(k for k, v in _OPCODE.items() if v == row[0])
    if row[1] == 0:
        return name + ("" if name == "barrier" else " of Python objects")
    shape = tuple(int(d) for d in row[4:4 + min(int(row[2]), 12)])
    attr = int(row[3])
    extra = ""
    if name in ("all_reduce", "reduce_scatter"):
        extra = f", op={REDUCE_OPS[attr]}"
    elif name == "broadcast":
        extra = f", src={attr}"
    return f"{name} of {DTYPES[int(row[1]) - 1]}{list(shape)}{extra}"


# ----------------------------------------------------------------------------- the one world

_WORLD: World | None = None
DEFAULT_TIMEOUT = 1800.0


def world() -> World:
    """The initialized process group; an error naming the caller's line if there is none."""
    if _WORLD is None:
        raise DistributedError("lucid.distributed is not initialized: call "
                               f"lucid.distributed.init() first ({user_location()})")
    return _WORLD


def initialized() -> bool:
    return _WORLD is not None


def init(timeout: float | None = None, abort_on_error: bool = True) -> World:
    """Join the MPI job (once; later calls return the same world)."""
    global _WORLD
    if _WORLD is not None:
        return _WORLD
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise DistributedError(
            "lucid.distributed needs mpi4py and an MPI library: pip install "
            "'lucid-jit[distributed]' (mpi4py and the mpich wheel)") from exc
    if timeout is None:
        timeout = float(os.environ.get("LUCID_DISTRIBUTED_TIMEOUT", DEFAULT_TIMEOUT))
    _WORLD = World(MPI, timeout)
    if abort_on_error and _WORLD.size > 1:
        _install_excepthook(_WORLD)
    return _WORLD


def destroy() -> None:
    """Leave the process group (a later init() joins again)."""
    global _WORLD
    if _WORLD is not None:
        _WORLD.comm.Free()
        _WORLD = None


def _install_excepthook(w: World) -> None:
    """An uncaught exception on one rank aborts the job (the others would wait forever in
    their next collective), after printing its traceback and which rank failed."""
    previous = sys.excepthook

    def hook(kind, value, tb):
        previous(kind, value, tb)
        if _WORLD is w:
            w.abort(f"failed with {kind.__name__}: {value}")

    sys.excepthook = hook
