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


def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *,
                generator: Generator | None = None) -> Tensor:
    """Indices drawn from the categorical distributions in input's rows (non-negative weights,
    not necessarily normalized), with or without replacement; int64 of shape (rows,
    num_samples) or (num_samples,). Draws come from `generator` (else lucid's)."""
    if CURRENT_TRACER.get() is not None:
        CURRENT_TRACER.get().graph_break("multinomial inside a compiled function (it samples on "
                                         "the host: the function runs eagerly)")
    w = np.asarray(input.detach().numpy(), np.float64)
    if w.ndim not in (1, 2):
        raise RuntimeError("prob_dist must be 1 or 2 dim")
    rows = w.reshape(-1, w.shape[-1])
    n = rows.shape[1]
    if num_samples <= 0:
        raise RuntimeError("cannot sample n_sample <= 0 samples")
    if not replacement and num_samples > n:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without "
                           "replacement")
    if not np.isfinite(rows).all() or (rows < 0).any():
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    if (rows.sum(1) <= 0).any():
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
    u = uniform_draws(rows.shape[0] * (num_samples if replacement else n), generator,
                      "multinomial")
    if replacement:
        cdf = np.cumsum(rows, 1)
        u = u.reshape(rows.shape[0], num_samples) * cdf[:, -1:]
        out = np.stack([np.searchsorted(c, uu, side="right") for c, uu in zip(cdf, u,
                                                                              strict=True)])
        out = np.minimum(out, n - 1)
    else:
        if num_samples > (rows > 0).sum(1).min():
            raise RuntimeError("invalid multinomial distribution (with replacement=False, not "
                               "enough non-negative category to sample)")
        # the largest keys log(u) / w (Efraimidis and Spirakis, 2006): a weighted draw without
        # replacement, in the order drawn
        with np.errstate(divide="ignore"):
            keys = np.where(rows > 0, np.log(np.maximum(u.reshape(rows.shape), 1e-300)) / rows,
                            -np.inf)
        out = np.argsort(-keys, axis=1, kind="stable")[:, :num_samples]
    out = out.astype(np.int64)
    return Tensor(out if w.ndim == 2 else out[0], device=input.device)


def manual_seed(seed: int) -> None:
    """lucid.random.manual_seed is lucid.manual_seed (PyTorch's torch.random spelling)."""
    from lucid.factories import manual_seed as seed_all

    seed_all(seed)


def seed() -> int:
    from lucid.factories import seed as reseed

    return reseed()


def initial_seed() -> int:
    from lucid.factories import initial_seed as first

    return first()


def get_rng_state():
    from lucid.factories import get_rng_state as state

    return state()


def set_rng_state(state) -> None:
    from lucid.factories import set_rng_state as restore

    restore(state)
