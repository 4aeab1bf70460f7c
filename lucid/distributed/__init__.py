"""lucid.distributed: data-parallel training over MPI (PyTorch's `torch.distributed`, on mpi4py).

    import lucid.distributed as dist
    dist.init()                              # under `mpiexec -n 2 python train.py`
    dist.all_reduce(t)                       # in place, like torch.distributed
    y = dist.functional.all_reduce(x)        # out of place, differentiable

The in-place forms (`all_reduce`, `broadcast`, `all_gather`, `all_gather_into_tensor`,
`reduce_scatter`, `reduce_scatter_tensor`) write into their tensors without recording autograd
history, as PyTorch's do; `functional` has the differentiable forms. Both work eagerly and under
`lucid.compile`, where each collective is a node of the graph. Only the whole job (`group=None`)
is supported as a group. See comm.py for the checks, waits, timeouts and abort on failure.
"""

from __future__ import annotations

import builtins
import enum

from lucid import ops
from lucid.autograd import no_grad
from lucid.distributed import functional
from lucid.distributed.comm import DistributedError, Stats, World
from lucid.distributed.comm import initialized as is_initialized
from lucid.distributed.comm import world as _world
from lucid.ops.registry import LucidError, user_location
from lucid.tensor import Tensor


class ReduceOp(enum.Enum):
    SUM = "sum"
    AVG = "avg"
    PRODUCT = "prod"
    MAX = "max"
    MIN = "min"


class Backend:
    MPI = "mpi"


def is_available() -> bool:
    """Whether mpi4py (and with it an MPI library) can be imported."""
    import importlib.util

    return importlib.util.find_spec("mpi4py") is not None


def init(backend: str = "mpi", *, timeout: float | None = None,
         abort_on_error: bool = True, **_ignored) -> World:
    """Join the MPI job (`mpiexec -n N python script.py`; alone, a job of one). `timeout`
    bounds every wait for the other ranks (seconds; default `LUCID_DISTRIBUTED_TIMEOUT` or
    1800). With `abort_on_error`, an uncaught exception on one rank aborts the whole job with
    that rank's error instead of leaving the others waiting. Calling it again does nothing."""
    if str(backend).lower() != "mpi":
        raise ValueError(f"lucid.distributed.init: backend {backend!r} is not supported "
                         "(lucid runs on MPI: backend='mpi')")
    from lucid.distributed import comm

    if timeout is not None and hasattr(timeout, "total_seconds"):
        timeout = timeout.total_seconds()  # (a datetime.timedelta, as PyTorch takes)
    return comm.init(timeout, abort_on_error)


def init_process_group(backend: str = "mpi", **kwargs) -> World:
    """PyTorch's name for `init` (init_method, rank and world_size come from MPI)."""
    return init(backend, **{k: v for k, v in kwargs.items()
                            if k in ("timeout", "abort_on_error")})


def destroy_process_group(group=None) -> None:
    _check_group(group)
    from lucid.distributed import comm

    comm.destroy()


def get_rank(group=None) -> int:
    """This process's rank (0 when lucid.distributed is not initialized, as for one process)."""
    _check_group(group)
    return _world().rank if is_initialized() else 0


def get_world_size(group=None) -> int:
    _check_group(group)
    return _world().size if is_initialized() else 1


def get_local_rank() -> int:
    """This process's rank among the job's processes on this machine (to pick a device)."""
    return _world().local_rank if is_initialized() else 0


def get_local_world_size() -> int:
    return _world().local_size if is_initialized() else 1


def is_main_process() -> bool:
    """Rank 0, or a process that is not part of a job (it prints and saves checkpoints)."""
    return get_rank() == 0


def get_backend(group=None) -> str:
    _check_group(group)
    _world()
    return Backend.MPI


def stats() -> Stats:
    """Calls, payload bytes and seconds per collective since init (or the last reset)."""
    return _world().stats


def reset_stats() -> None:
    _world().stats = Stats()


def _check_group(group) -> None:
    if group is not None and group is not GroupMember.WORLD:
        raise DistributedError(f"lucid.distributed: process groups other than the whole job "
                               f"are not supported (group={group!r}) ({user_location()})")


class GroupMember:
    WORLD = object()


group = GroupMember


class _Done:
    """What `async_op=True` returns: lucid's collectives complete before they return."""

    def wait(self, timeout=None) -> bool:
        return True

    def is_completed(self) -> bool:
        return True


def _one_per_rank(name: str, what: str, items: list) -> None:
    size = _world().size
    if len(items) != size:
        raise DistributedError(f"lucid.distributed.{name}: {what} has {len(items)} tensors "
                               f"for a job of {size} ranks ({user_location()})")


def _finish(async_op: bool):
    return _Done() if async_op else None


def _tensor(t, name: str) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"lucid.distributed.{name}: expected a Tensor, got "
                        f"{type(t).__name__} ({user_location()})")
    return t


# ----------------------------------------------------------------------------- in place


def all_reduce(tensor: Tensor, op=ReduceOp.SUM, group=None, async_op: bool = False):
    """Reduce `tensor` over every rank, in place: each rank ends with the result."""
    _check_group(group)
    _tensor(tensor, "all_reduce")
    with no_grad():
        tensor.copy_(functional.all_reduce(tensor, op))
    return _finish(async_op)


def broadcast(tensor: Tensor, src: int = 0, group=None, async_op: bool = False):
    """Overwrite `tensor` on every rank with rank src's, in place."""
    _check_group(group)
    _tensor(tensor, "broadcast")
    with no_grad():
        tensor.copy_(functional.broadcast(tensor, src))
    return _finish(async_op)


def all_gather(tensor_list: list, tensor: Tensor, group=None, async_op: bool = False):
    """Fill tensor_list[r] with rank r's `tensor`, on every rank."""
    _check_group(group)
    _tensor(tensor, "all_gather")
    _one_per_rank("all_gather", "tensor_list", tensor_list)
    with no_grad():
        gathered = functional.all_gather(tensor.reshape(1, *tensor.shape))
        for r, out in enumerate(tensor_list):
            out.copy_(gathered[r])
    return _finish(async_op)


def all_gather_into_tensor(output_tensor: Tensor, input_tensor: Tensor, group=None,
                           async_op: bool = False):
    """output_tensor = the ranks' input tensors concatenated along dim 0."""
    _check_group(group)
    with no_grad():
        _copy_into(output_tensor, functional.all_gather(_tensor(input_tensor, "all_gather")),
                   "all_gather_into_tensor")
    return _finish(async_op)


def reduce_scatter(output: Tensor, input_list: list, op=ReduceOp.SUM, group=None,
                   async_op: bool = False):
    """output = on rank r, the reduction over ranks of input_list[r]."""
    _check_group(group)
    _one_per_rank("reduce_scatter", "input_list", input_list)
    from lucid.functions import stack

    with no_grad():
        out = functional.reduce_scatter(stack(list(input_list)), op)
        _copy_into(output, out.reshape(out.shape[1:]), "reduce_scatter")
    return _finish(async_op)


def reduce_scatter_tensor(output: Tensor, input: Tensor, op=ReduceOp.SUM, group=None,
                          async_op: bool = False):
    """output = on rank r, block r (along dim 0) of the reduction over ranks of input."""
    _check_group(group)
    with no_grad():
        _copy_into(output, functional.reduce_scatter(_tensor(input, "reduce_scatter"), op),
                   "reduce_scatter_tensor")
    return _finish(async_op)


def _copy_into(out: Tensor, value: Tensor, name: str) -> None:
    _tensor(out, name)
    if out.shape != value.shape:
        raise DistributedError(f"lucid.distributed.{name}: the output has shape "
                               f"{tuple(out.shape)}, the result {tuple(value.shape)} "
                               f"({user_location()})")
    out.copy_(value)


def barrier(group=None, async_op: bool = False):
    """Wait until every rank has reached this call."""
    _check_group(group)
    ops.barrier()
    return _finish(async_op)


# ----------------------------------------------------------------------------- Python objects


def all_gather_object(object_list: list, obj, group=None) -> None:
    """object_list[r] = rank r's (picklable) obj, on every rank."""
    _check_group(group)
    gathered = _world().all_gather_object(obj)
    if len(object_list) != len(gathered):
        raise DistributedError(f"lucid.distributed.all_gather_object: object_list has "
                               f"{len(object_list)} slots for a job of {len(gathered)} ranks")
    object_list[:] = gathered


def broadcast_object_list(object_list: list, src: int = 0, group=None) -> None:
    """object_list's items replaced by rank src's, on every rank."""
    _check_group(group)
    object_list[:] = _world().broadcast_object(list(object_list), src)


# ----------------------------------------------------------------------------- rank-aware output


def print(*args, all_ranks: bool = False, **kwargs) -> None:  # noqa: A001 (print's spelling)
    """print() on rank 0 only; with all_ranks=True on every rank, prefixed with its rank."""
    if all_ranks:
        builtins.print(f"[rank {get_rank()}]", *args, **kwargs)
    elif is_main_process():
        builtins.print(*args, **kwargs)


__all__ = [
    "Backend", "DistributedError", "GroupMember", "LucidError", "ReduceOp", "Stats", "World",
    "all_gather", "all_gather_into_tensor", "all_gather_object", "all_reduce", "barrier",
    "broadcast", "broadcast_object_list", "destroy_process_group", "functional", "get_backend",
    "get_local_rank", "get_local_world_size", "get_rank", "get_world_size", "group", "init",
    "init_process_group", "is_available", "is_initialized", "is_main_process", "print",
    "reduce_scatter", "reduce_scatter_tensor", "reset_stats", "stats",
]
