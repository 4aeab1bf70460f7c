"""Samplers: the order in which a DataLoader visits a map-style dataset's indices, and
`BatchSampler`, which groups them into batches. Random ones draw from a `lucid.Generator`, else
from the process-wide generator (a fresh seed per pass), so `lucid.manual_seed` makes the
shuffling reproducible."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from lucid.random import Generator, draw_seed, randperm, uniform_draws
from lucid.tensor import Tensor


class Sampler:
    """Yields dataset indices (subclasses define `__iter__`, and `__len__` where known)."""

    def __init__(self, data_source=None) -> None:
        pass

    def __iter__(self) -> Iterator[int]:
        raise NotImplementedError


def check_positive_int(name: str, value) -> None:
    """PyTorch's error for a count that must be a positive int (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} should be a positive integer value, but got {name}={value}")


def _pass_generator(generator: Generator | None) -> Generator:
    """The generator of one pass: the given one, else a new one seeded from the process-wide
    generator."""
    return generator if generator is not None else Generator().manual_seed(draw_seed())


class SequentialSampler(Sampler):
    def __init__(self, data_source) -> None:
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A random order of the indices (a new one each pass); with `replacement`, `num_samples`
    indices drawn independently."""

    def __init__(self, data_source, replacement: bool = False, num_samples: int | None = None,
                 generator: Generator | None = None) -> None:
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement should be a boolean value, but got "
                            f"replacement={replacement}")
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        check_positive_int("num_samples", self.num_samples)

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n = len(self.data_source)
        gen = _pass_generator(self.generator)
        if self.replacement:
            u = uniform_draws(self.num_samples, gen, "RandomSampler")
            yield from np.minimum((u * n).astype(np.int64), n - 1).tolist()
            return
        for _ in range(self.num_samples // n):
            yield from randperm(n, generator=gen).tolist()
        yield from randperm(n, generator=gen).tolist()[:self.num_samples % n]

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices in a random order (a new one each pass)."""

    def __init__(self, indices: Sequence[int], generator: Generator | None = None) -> None:
        self.indices = indices
        self.generator = generator

    def __iter__(self):
        for i in randperm(len(self.indices), generator=_pass_generator(self.generator)).tolist():
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """`num_samples` indices drawn with probabilities proportional to `weights` (with or
    without replacement)."""

    def __init__(self, weights, num_samples: int, replacement: bool = True,
                 generator: Generator | None = None) -> None:
        check_positive_int("num_samples", num_samples)
        if not isinstance(replacement, bool):
            raise ValueError(f"replacement should be a boolean value, but got "
                             f"replacement={replacement}")
        w = np.asarray(weights.numpy() if isinstance(weights, Tensor) else weights, np.float64)
        if w.ndim != 1:
            raise ValueError(f"weights should be a 1d sequence but given weights have shape "
                             f"{tuple(w.shape)}")
        if (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
            raise ValueError("weights must be finite, non-negative and not all zero")
        if not replacement and num_samples > int((w > 0).sum()):
            raise ValueError("cannot draw more samples than there are non-zero weights without "
                             "replacement")
        self.weights = w
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator

    def __iter__(self):
        gen = _pass_generator(self.generator)
        u = uniform_draws(self.num_samples if self.replacement else len(self.weights), gen,
                          "WeightedRandomSampler")
        if self.replacement:
            cdf = np.cumsum(self.weights)
            idx = np.searchsorted(cdf, u * cdf[-1], side="right")
            yield from np.minimum(idx, len(self.weights) - 1).tolist()
            return
        # without replacement: the largest keys u ** (1 / w) (Efraimidis and Spirakis, 2006)
        with np.errstate(divide="ignore"):
            keys = np.where(self.weights > 0, np.log(np.maximum(u, 1e-300)) / self.weights,
                            -np.inf)
        yield from np.argsort(-keys, kind="stable")[:self.num_samples].tolist()

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Groups another sampler's indices into lists of `batch_size` (the last one shorter,
    unless `drop_last`)."""

    def __init__(self, sampler, batch_size: int, drop_last: bool) -> None:
        check_positive_int("batch_size", batch_size)
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got "
                             f"drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self):
        batch = []
        for idx in self.sampler:
            batch.append(idx)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
