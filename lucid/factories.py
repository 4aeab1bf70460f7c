"""Tensor factories: tensor, zeros, ones, full, arange, linspace, eye, rand, randn, ... and
manual_seed. zeros/ones/full and the random ones go through primitives (`full`, `uniform`,
`normal`, `randint`), so inside a compiled function they become graph nodes."""

from __future__ import annotations

import numpy as np

from lucid import device as _device
from lucid import dtypes, ops
from lucid.ops.registry import CURRENT_TRACER, op_error
from lucid.tensor import Tensor, _check_device, _shape_arg


def lucid_tracing() -> bool:
    return CURRENT_TRACER.get() is not None


def _finish(t: Tensor, requires_grad: bool, device) -> Tensor:
    if _check_device(device) == "cuda" and isinstance(t.data, np.ndarray) and \
            not lucid_tracing():
        t.data = _device.to_device(t.data)
    if requires_grad:
        t.requires_grad_(True)
    return t


def tensor(data, dtype=None, device="cpu", requires_grad: bool = False) -> Tensor:
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


def full(size, fill_value, *, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    if dtype is None:
        dtype = dtypes.infer_from_data(fill_value)
    t = ops.full(shape=_shape_arg((size,) if isinstance(size, int) else tuple(size)),
                 value=fill_value, dtype=dtypes.as_dtype(dtype))
    return _finish(t, requires_grad, device)


def zeros(*size, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    return full(_shape_arg(size), 0, dtype=dtype or dtypes.DEFAULT_FLOAT, device=device,
                requires_grad=requires_grad)


def ones(*size, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    return full(_shape_arg(size), 1, dtype=dtype or dtypes.DEFAULT_FLOAT, device=device,
                requires_grad=requires_grad)


def empty(*size, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def full_like(t: Tensor, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    return full(t.shape, fill_value, dtype=dtype or t.dtype, device=device or t.device,
                requires_grad=requires_grad)


def zeros_like(t: Tensor, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    return full_like(t, 0, dtype=dtype, device=device, requires_grad=requires_grad)


def ones_like(t: Tensor, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    return full_like(t, 1, dtype=dtype, device=device, requires_grad=requires_grad)


def arange(start, end=None, step=1, *, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = dtypes.DEFAULT_INT if ints else dtypes.DEFAULT_FLOAT
    data = np.arange(start, end, step, dtype=dtypes.as_dtype(dtype))
    return _finish(Tensor._wrap(data), requires_grad, device)


def linspace(start, end, steps: int, *, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    data = np.linspace(start, end, steps, dtype=dtypes.as_dtype(dtype or dtypes.DEFAULT_FLOAT))
    return _finish(Tensor._wrap(data), requires_grad, device)


def logspace(start, end, steps: int, base: float = 10.0, *, dtype=None, device="cpu",
             requires_grad=False) -> Tensor:
    """base ** linspace(start, end, steps)."""
    data = np.logspace(start, end, steps, base=base,
                       dtype=dtypes.as_dtype(dtype or dtypes.DEFAULT_FLOAT))
    return _finish(Tensor._wrap(data), requires_grad, device)


def eye(n: int, m: int | None = None, *, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    data = np.eye(n, m, dtype=dtypes.as_dtype(dtype or dtypes.DEFAULT_FLOAT))
    return _finish(Tensor._wrap(data), requires_grad, device)


def rand(*size, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    t = ops.uniform(shape=_shape_arg(size), low=0.0, high=1.0,
                    dtype=dtypes.as_dtype(dtype or dtypes.DEFAULT_FLOAT))
    return _finish(t, requires_grad, device)


def randn(*size, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    t = ops.normal(shape=_shape_arg(size), mean=0.0, std=1.0,
                   dtype=dtypes.as_dtype(dtype or dtypes.DEFAULT_FLOAT))
    return _finish(t, requires_grad, device)


def rand_like(t: Tensor, *, dtype=None, device=None) -> Tensor:
    return rand(t.shape, dtype=dtype or t.dtype, device=device or t.device)


def randn_like(t: Tensor, *, dtype=None, device=None) -> Tensor:
    return randn(t.shape, dtype=dtype or t.dtype, device=device or t.device)


def randint(low: int, high: int | None = None, size=(), *, dtype=None, device="cpu",
            requires_grad: bool = False) -> Tensor:
    """Random integers in [low, high) from lucid's generator (a `randint` node under a trace:
    fresh numbers on every compiled call); a floating `dtype` gets them converted."""
    if high is None:
        low, high = 0, low
    dtype = dtypes.as_dtype(dtype or dtypes.DEFAULT_INT)
    shape = _shape_arg((size,) if isinstance(size, int) else tuple(size))
    if not int(high) > int(low):
        raise op_error("randint", [], f"needs low < high, got low={low}, high={high}")
    t = ops.randint(shape=shape, low=int(low), high=int(high),
                    dtype=dtype if dtype.kind in "iu" else dtypes.int64)
    if t.dtype != dtype:
        t = ops.cast(t, dtype=dtype)
    return _finish(t, requires_grad, device)


def manual_seed(seed: int) -> None:
    """Seed lucid's generator (used by rand, randn, randint, dropout and parameter
    initialization): the same seed gives the same numbers, eagerly and compiled, on every
    device."""
    ops.GENERATOR.seed(seed)


def seed() -> int:
    """Seed the generator from the operating system's entropy and return that seed."""
    import secrets

    value = secrets.randbits(63)
    manual_seed(value)
    return value


def initial_seed() -> int:
    """The seed the generator was last seeded with (a random one at start-up)."""
    return ops.GENERATOR.initial_seed


def get_rng_state() -> Tensor:
    """The generator's state, an int64 tensor [key, counter] (restore it with set_rng_state)."""
    return Tensor._wrap(ops.GENERATOR.get_state())


def set_rng_state(state) -> None:
    ops.GENERATOR.set_state(state.numpy() if isinstance(state, Tensor) else state)
