"""Generators of their own and random permutations: `lucid.Generator` and `lucid.randperm`.

A `Generator` is a Philox key and counter of its own (lucid/ops/philox.py), apart from the
process-wide one that `manual_seed` seeds: code that shuffles data with its own generator draws the
same permutations whatever else draws numbers. `randperm` sorts n uniform draws (53-bit floats,
ties as good as impossible), so a seed gives the same permutation on every machine.
"""

from __future__ import annotations

import numpy as np

from lucid import dtypes, ops
from lucid.ops import philox
from lucid.ops.registry import CURRENT_TRACER, op_error
from lucid.tensor import Tensor, _check_device


class Generator:
    """A random number generator of its own (PyTorch's `torch.Generator`): `manual_seed(s)`
    seeds it and returns it; `get_state()`/`set_state()` save and restore it. It starts from a
    random seed, as the process-wide generator does."""

    def __init__(self, device: str = "cpu") -> None:
        _check_device(device)
        self.device = device
        self._philox = philox.Generator()

    def manual_seed(self, seed: int) -> Generator:
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise TypeError(f"manual_seed expected an int, got {type(seed).__name__}")
        self._philox.seed(int(seed))
        return self

    def seed(self) -> int:
        """Seed from the operating system's entropy; the seed."""
        seed = int.from_bytes(np.random.default_rng().bytes(8), "little") & (2 ** 63 - 1)
        self._philox.seed(seed)
        return seed

    def initial_seed(self) -> int:
        return self._philox.initial_seed

    def get_state(self) -> Tensor:
        return Tensor._wrap(self._philox.get_state())

    def set_state(self, state) -> Generator:
        self._philox.set_state(state.numpy() if isinstance(state, Tensor) else state)
        return self

    def __repr__(self) -> str:
        return f"<lucid.Generator device={self.device}>"


def _philox_of(generator: Generator | None, what: str) -> philox.Generator:
    if generator is None:
        return ops.GENERATOR
    if not isinstance(generator, Generator):
        raise TypeError(f"{what}: generator must be a lucid.Generator, not "
                        f"{type(generator).__name__}")
    return generator._philox


def uniform_draws(n: int, generator: Generator | None = None, what: str = "draw") -> np.ndarray:
    """n float64 uniforms in [0, 1) from `generator` (else the process-wide one)."""
    gen = _philox_of(generator, what)
    key, counter = gen.take(philox.blocks("uniform", np.float64, n))
    return philox.draw("uniform", (n,), np.float64, key, counter, low=0.0, high=1.0)


def draw_seed(generator: Generator | None = None) -> int:
    """A 63-bit seed drawn from `generator` (else the process-wide one): what a loader's epoch
    or a worker seeds from, so that `manual_seed` makes them reproducible."""
    gen = _philox_of(generator, "draw_seed")
    key, counter = gen.take(philox.blocks("randint", np.int64, 1))
    value = philox.draw("randint", (1,), np.int64, key, counter, low=0, high=2 ** 62)
    return int(value[0])


def randperm(n: int, *, generator: Generator | None = None, dtype=None, device: str = "cpu",
             requires_grad: bool = False) -> Tensor:
    """A random permutation of 0 .. n-1 (int64 unless `dtype` says otherwise)."""
    if CURRENT_TRACER.get() is not None:
        CURRENT_TRACER.get().graph_break("randperm inside a compiled function (its draw would be "
                                         "baked into the graph as a constant)")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"randperm(): n must be an int, not {type(n).__name__}")
    if n < 0:
        raise op_error("randperm", [], f"n must be non-negative, got {n}")
    dtype = dtypes.as_dtype(dtype or dtypes.int64)
    perm = np.argsort(uniform_draws(int(n), generator, "randperm"), kind="stable")
    return Tensor(perm.astype(dtype), requires_grad=requires_grad, device=device)
