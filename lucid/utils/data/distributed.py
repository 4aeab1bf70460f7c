"""DistributedSampler: each rank of a distributed job takes its own share of a dataset."""

from __future__ import annotations

import math
from collections.abc import Iterator

from lucid.utils.data.sampler import Sampler


class DistributedSampler(Sampler):
    """The indices of `dataset` for one rank of `num_replicas` (default: the job's size and
    this process's rank). With `shuffle`, each epoch's order is a permutation drawn from a
    generator seeded with `seed + epoch` (call `set_epoch` before each epoch; every rank must
    use the same seed); rank r takes every num_replicas-th index from position r. When the
    dataset does not split evenly, the list is padded with indices from its start (every rank
    gets ceil(n / num_replicas)) or, with `drop_last`, cut to a multiple of num_replicas."""

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        from lucid import distributed as dist

        if num_replicas is None:
            num_replicas = dist.get_world_size()
        if rank is None:
            rank = dist.get_rank()
        if isinstance(num_replicas, bool) or not isinstance(num_replicas, int) \
                or num_replicas <= 0:
            raise ValueError(f"num_replicas should be a positive integer, got {num_replicas!r}")
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval "
                             f"[0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        n = len(dataset)
        if drop_last and n % num_replicas:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            from lucid.random import Generator, randperm

            g = Generator()
            g.manual_seed(self.seed + self.epoch)
            indices = randperm(n, generator=g).tolist()
        else:
            indices = list(range(n))
        if not self.drop_last:
            padding = self.total_size - len(indices)
            if padding > 0:
                indices += (indices * math.ceil(padding / max(len(indices), 1)))[:padding]
        else:
            indices = indices[:self.total_size]
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose order to draw next (with shuffle, each epoch differs)."""
        self.epoch = epoch
