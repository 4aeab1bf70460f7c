"""lucid.nn.parallel: DistributedDataParallel (data parallelism on lucid.distributed)."""

from lucid.nn.parallel.distributed import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
