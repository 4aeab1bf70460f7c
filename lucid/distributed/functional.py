"""Out-of-place collectives: each returns a new tensor and is differentiable (its gradient is the
matching collective, see `lucid/ops/collective.py`). Under `lucid.compile` each is a graph node.
"""

from __future__ import annotations

from lucid import ops
from lucid.distributed import comm
from lucid.tensor import Tensor


def _op(op) -> str:
    """A ReduceOp (or its name) as the primitive's attribute; "avg" is handled by the caller."""
    name = getattr(op, "value", op)
    if not isinstance(name, str):
        raise TypeError(f"unknown reduce op {op!r}")
    return name.lower()


def all_reduce(x: Tensor, op="sum") -> Tensor:
    """Every rank gets the reduction (sum, avg, prod, max or min) of every rank's x."""
    name = _op(op)
    if name == "avg":
        return ops.all_reduce(x, reduce="sum") / comm.world().size
    return ops.all_reduce(x, reduce=name)


def broadcast(x: Tensor, src: int = 0) -> Tensor:
    """Every rank gets rank src's x."""
    return ops.broadcast(x, src=int(src), world=comm.world().size)


def all_gather(x: Tensor, dim: int = 0) -> Tensor:
    """The ranks' tensors concatenated along `dim`, in rank order, on every rank."""
    size = comm.world().size
    if dim % max(x.ndim, 1) == 0:
        return ops.all_gather(x, world=size)
    return ops.all_gather(x.transpose(0, dim), world=size).transpose(0, dim)


def reduce_scatter(x: Tensor, op="sum", dim: int = 0) -> Tensor:
    """Rank r gets block r (of world-size equal blocks along `dim`) of the reduction of every
    rank's x."""
    name = _op(op)
    size = comm.world().size
    average = name == "avg"
    name = "sum" if average else name
    if dim % max(x.ndim, 1) == 0:
        out = ops.reduce_scatter(x, reduce=name, world=size)
    else:
        out = ops.reduce_scatter(x.transpose(0, dim), reduce=name, world=size).transpose(0, dim)
    return out / size if average else out
