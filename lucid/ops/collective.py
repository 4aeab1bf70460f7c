"""Collective primitives: operations over every process of a distributed job (lucid.distributed).

Each is impure: the passes never merge, drop or reorder collectives (every rank must call them in
the same order), and a compiled function runs them as host nodes between its native segments.
The gradient of a collective is its matching collective:

- `all_reduce` (sum): y_r = sum_s x_s, so dL/dx_s = sum_r g_r: an all_reduce of the gradients
  (for max and min, that sum where x_s is the result; for a product, times y / x_s);
- `broadcast` from src: y_r = x_src, so the src rank's gradient is sum_r g_r, the others' zero;
- `all_gather` (concatenated along dim 0): rank s's gradient is block s of sum_r g_r, a
  reduce_scatter of the gradients;
- `reduce_scatter` (sum): y_r = sum_s x_s[block r], so rank s's gradient is the concatenation
  of every rank's g_r, an all_gather (max, min and product as for all_reduce).

`all_reduce(check=False)` skips the ranks' agreement check (comm.py) for callers that verified
what every rank sends beforehand (DistributedDataParallel's buckets, checked at wrap time).
`world` (the job's size) is an attribute of the ops whose shape depends on it, so a graph's
shapes are known while tracing. `barrier` returns a 0-d token no one needs to read.
"""

from __future__ import annotations

import numpy as np

from lucid.ops.registry import Aval, DTypeError, ShapeError, defop, op_error

# The dtypes collectives move (MPI's types for them); comm.py numbers them in this order.
DTYPES = ("float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
          "uint64")


def _world():
    from lucid.distributed import comm

    return comm.world()


def _check_dtype(name: str, x: Aval) -> None:
    if np.dtype(x.dtype).name not in DTYPES:
        raise op_error(name, [x], "collectives take float32, float64 and integer tensors",
                       DTypeError)


def _reduce_op(name: str, x: Aval, reduce: str) -> None:
    from lucid.distributed.comm import REDUCE_OPS

    if reduce not in REDUCE_OPS:
        raise op_error(name, [x], f"unknown reduce op {reduce!r} (one of {', '.join(REDUCE_OPS)})",
                       ValueError)


def _all_reduce_infer(x: Aval, *, reduce: str, check: bool = True) -> Aval:
    _check_dtype("all_reduce", x)
    _reduce_op("all_reduce", x, reduce)
    return x


def _through(reduce: str, total, x, y):
    """The gradient reaching x from y = reduce_over_ranks(x), given total = the sum over ranks
    of the gradients of y: all of it for a sum; where x is the max (min) for max (min), every
    tied rank taking it; total * y / x for a product."""
    if reduce == "sum":
        return total
    if reduce == "prod":
        return total * y / x
    from lucid.ops.elementwise import cast, eq

    return total * cast(eq(x, y), dtype=total.dtype)


def _all_reduce_vjp(g, out, x, *, reduce, check=True):
    return (_through(reduce, all_reduce(g, reduce="sum", check=check), x, out),)


all_reduce = defop("all_reduce", kind="collective", pure=False,
                   impl=lambda x, *, reduce, check=True: _world().all_reduce(x, reduce, check),
                   infer=_all_reduce_infer, vjp=_all_reduce_vjp, attrs=("reduce", "check"))


def _broadcast_infer(x: Aval, *, src: int, world: int) -> Aval:
    _check_dtype("broadcast", x)
    if not 0 <= src < world:
        raise op_error("broadcast", [x], f"src={src} is not a rank of a job of {world}",
                       ValueError)
    return x


def _broadcast_vjp(g, out, x, *, src, world):
    total = all_reduce(g, reduce="sum")  # (every rank takes part, whichever keeps the sum)
    if _world().rank == src:
        return (total,)
    from lucid.ops.creation import zeros_like

    return (zeros_like(g),)


broadcast = defop("broadcast", kind="collective", pure=False, save=(),
                  impl=lambda x, *, src, world: _world().broadcast(x, src),
                  infer=_broadcast_infer, vjp=_broadcast_vjp, attrs=("src", "world"))


def _all_gather_infer(x: Aval, *, world: int) -> Aval:
    _check_dtype("all_gather", x)
    if not x.shape:
        raise op_error("all_gather", [x], "needs a tensor of at least one dimension (the "
                                          "ranks' tensors are concatenated along dim 0)")
    return Aval((x.shape[0] * world, *x.shape[1:]), x.dtype)


all_gather = defop("all_gather", kind="collective", pure=False, save=(),
                   impl=lambda x, *, world: _world().all_gather(x),
                   infer=_all_gather_infer,
                   vjp=lambda g, out, x, *, world: (reduce_scatter(g, reduce="sum", world=world),),
                   attrs=("world",))


def _reduce_scatter_infer(x: Aval, *, reduce: str, world: int) -> Aval:
    _check_dtype("reduce_scatter", x)
    _reduce_op("reduce_scatter", x, reduce)
    if not x.shape or x.shape[0] % world:
        raise op_error("reduce_scatter", [x], f"dim 0 must split evenly over the {world} ranks",
                       ShapeError)
    return Aval((x.shape[0] // world, *x.shape[1:]), x.dtype)


def _reduce_scatter_vjp(g, out, x, *, reduce, world):
    total = all_gather(g, world=world)
    if reduce == "sum":
        return (total,)
    return (_through(reduce, total, x, all_gather(out, world=world)),)


reduce_scatter = defop("reduce_scatter", kind="collective", pure=False,
                       impl=lambda x, *, reduce, world: _world().reduce_scatter(x, reduce),
                       infer=_reduce_scatter_infer, vjp=_reduce_scatter_vjp,
                       attrs=("reduce", "world"))


def _barrier_impl():
    _world().barrier()
    return np.zeros((), np.int32)


barrier = defop("barrier", kind="collective", pure=False, impl=_barrier_impl,
                infer=lambda: Aval((), np.dtype(np.int32)))
