"""The DataLoader: batches of a dataset's samples, in order or shuffled, loaded in this process or
by worker processes, as PyTorch's `torch.utils.data.DataLoader` does.

With `num_workers > 0` each epoch starts that many processes (kept across epochs with
`persistent_workers=True`), made by `multiprocessing` (fork on Linux, as PyTorch's default). A
worker is sent the indices of one batch at a time, loads and collates it, and sends the batch back
through a queue; the loader keeps `prefetch_factor` batches per worker in flight and yields them in
the sampler's order. Workers seed lucid's generator and Python's `random` with the epoch's base
seed plus their id (the base seed is drawn from the loader's `generator`, else from lucid's, so
`lucid.manual_seed` makes workers' draws reproducible); NumPy's global generator is left alone, as
PyTorch leaves it. An exception in a worker is raised in the loop that iterates the loader, with
the worker's traceback; a worker that dies is an error naming its pid, never a hang.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import queue
import random
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lucid.random import Generator, draw_seed
from lucid.tensor import Tensor
from lucid.utils.data.dataset import IterableDataset, TensorDataset
from lucid.utils.data.sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    check_positive_int,
)

# ----------------------------------------------------------------------------- collation


def default_convert(data):
    """NumPy arrays (and NumPy numbers) to tensors, through mappings and sequences; everything
    else as it is (the collate function of a loader with `batch_size=None`)."""
    if isinstance(data, np.ndarray) and data.dtype.kind not in "OSUV":
        return Tensor(data)
    if isinstance(data, np.generic) and not isinstance(data, (np.str_, np.bytes_)):
        return Tensor(np.asarray(data))
    if isinstance(data, Mapping):
        try:
            return type(data)({k: default_convert(v) for k, v in data.items()})
        except TypeError:
            return {k: default_convert(v) for k, v in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        try:
            return type(data)([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data


def default_collate(batch):
    """A list of samples as one batch: tensors, NumPy arrays and numbers stacked into tensors
    (Python floats as float64, ints as int64, bools as bool), strings kept as a list, and dicts,
    named tuples and sequences collated field by field (a tuple of fields gives a list)."""
    from lucid.functions import stack

    elem = batch[0]
    if isinstance(elem, Tensor):
        shapes = {t.shape for t in batch}
        if len(shapes) > 1:
            raise RuntimeError(f"default_collate: stack expects each tensor to be equal size, "
                               f"got shapes {sorted(shapes)}")
        return stack(list(batch), 0)
    if isinstance(elem, np.ndarray):
        if elem.dtype.kind in "OSUV":
            raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, "
                            f"numbers, dicts or lists; found an array of {elem.dtype}")
        return Tensor(np.stack(batch))
    if isinstance(elem, (np.str_, np.bytes_)):
        return list(batch)
    if isinstance(elem, np.generic):
        return Tensor(np.array(batch))
    if isinstance(elem, bool):
        return Tensor(np.array(batch, dtype=np.bool_))
    if isinstance(elem, float):
        return Tensor(np.array(batch, dtype=np.float64))
    if isinstance(elem, int):
        return Tensor(np.array(batch, dtype=np.int64))
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, Mapping):
        collated = {key: default_collate([d[key] for d in batch]) for key in elem}
        try:
            return type(elem)(collated)
        except TypeError:
            return collated
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch, strict=True)))
    if isinstance(elem, Sequence):
        size = len(elem)
        if any(len(e) != size for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        columns = [default_collate(list(s)) for s in zip(*batch, strict=True)]
        if isinstance(elem, tuple):
            return columns
        try:
            return type(elem)(columns)
        except TypeError:
            return columns
    raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, "
                    f"dicts or lists; found {type(elem).__name__}")


# ----------------------------------------------------------------------------- workers


@dataclass(frozen=True)
class WorkerInfo:
    """What `get_worker_info()` returns inside a loader's worker process."""

    id: int
    num_workers: int
    seed: int
    dataset: Any


_WORKER_INFO: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """In a DataLoader worker: its id, the number of workers, its seed and its copy of the
    dataset (an IterableDataset shards itself by these); None in the main process."""
    return _WORKER_INFO


class _Exhausted:
    """A worker's answer when its IterableDataset has no further batch."""


class _WorkerError:
    """An exception raised in a worker, sent back with its traceback."""

    def __init__(self, worker_id: int, where: str) -> None:
        exc_type, exc, _ = sys.exc_info()
        self.exc_type = exc_type
        self.message = (f"Caught {exc_type.__name__} in DataLoader worker process {worker_id} "
                        f"{where}.\nOriginal " + "".join(traceback.format_exc()))

    def reraise(self):
        try:
            error = self.exc_type(self.message)
        except Exception:  # noqa: BLE001 (an exception type whose constructor wants more)
            error = RuntimeError(self.message)
        raise error


def _fetch(dataset, indices, collate_fn, auto_collation: bool):
    if not auto_collation:
        return collate_fn(dataset[indices])
    if type(dataset) is TensorDataset and collate_fn is default_collate:
        # the batch by one indexing per tensor: what stacking its rows gives, without the rows
        return [t[indices] for t in dataset.tensors]
    getitems = getattr(dataset, "__getitems__", None)
    samples = getitems(indices) if getitems is not None else [dataset[i] for i in indices]
    return collate_fn(samples)


def _worker_loop(dataset, index_queue, result_queue, collate_fn, auto_collation, batch_size,
                 drop_last, seed, init_fn, worker_id, num_workers, iterable) -> None:
    global _WORKER_INFO
    import lucid

    parent = os.getppid()
    random.seed(seed)
    lucid.manual_seed(seed)
    _WORKER_INFO = WorkerInfo(worker_id, num_workers, seed, dataset)
    init_error = None
    if init_fn is not None:
        try:
            init_fn(worker_id)
        except Exception:  # noqa: BLE001 (reported with every batch asked of this worker)
            init_error = _WorkerError(worker_id, "in worker_init_fn")
    stream = None
    while True:
        try:
            task = index_queue.get(timeout=5.0)
        except queue.Empty:
            if os.getppid() != parent:  # the loader's process is gone
                return
            continue
        if task is None:
            return
        if task == "reset":  # a new epoch of persistent workers
            stream = None
            continue
        idx, indices = task
        try:
            if init_error is not None:
                data = init_error
            elif iterable:
                if stream is None:
                    stream = iter(dataset)
                if auto_collation:
                    items = list(itertools.islice(stream, batch_size))
                    if not items or (drop_last and len(items) < batch_size):
                        data = _Exhausted()
                    else:
                        data = collate_fn(items)
                else:
                    try:
                        data = collate_fn(next(stream))
                    except StopIteration:
                        data = _Exhausted()
            else:
                data = _fetch(dataset, indices, collate_fn, auto_collation)
        except Exception:  # noqa: BLE001 (sent to the main process, which raises it)
            data = _WorkerError(worker_id, "while loading a batch")
        result_queue.put((idx, data))


# ----------------------------------------------------------------------------- the loader


class DataLoader:
    """Iterate over a dataset in batches (PyTorch's arguments, defaults and errors)."""

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler=None, batch_sampler=None, num_workers: int = 0, collate_fn=None,
                 pin_memory: bool = False, drop_last: bool = False, timeout: float = 0,
                 worker_init_fn=None, multiprocessing_context=None,
                 generator: Generator | None = None, *, prefetch_factor: int | None = None,
                 persistent_workers: bool = False) -> None:
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to "
                             "disable multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing."
                             "let num_workers > 0 to enable multiprocessing, otherwise set "
                             "prefetch_factor to None.")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        if prefetch_factor is not None and prefetch_factor < 1:
            raise ValueError("prefetch_factor option should be a positive integer")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        iterable = isinstance(dataset, IterableDataset)
        if iterable:
            if shuffle not in (None, False):
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle "
                                 f"option, but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified sampler "
                                 f"option, but got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified "
                                 f"batch_sampler option, but got batch_sampler={batch_sampler}")
        else:
            shuffle = bool(shuffle)
            if sampler is not None and shuffle:
                raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, "
                                 "shuffle, sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually "
                             "exclusive with drop_last")
        elif batch_size is not None:
            check_positive_int("batch_size", batch_size)
        if generator is not None and not isinstance(generator, Generator):
            raise TypeError(f"generator must be a lucid.Generator, not "
                            f"{type(generator).__name__}")
        if sampler is None and not iterable:
            sampler = (RandomSampler(dataset, generator=generator) if shuffle
                       else SequentialSampler(dataset))
        if batch_size is not None and batch_sampler is None and not iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        if isinstance(multiprocessing_context, str):
            multiprocessing_context = multiprocessing.get_context(multiprocessing_context)
        self._iterable = iterable
        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler: Sampler | None = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.collate_fn = collate_fn if collate_fn is not None else (
            default_collate if self._auto_collation else default_convert)
        self.pin_memory = pin_memory  # (host memory is all there is to pin to: nothing to do)
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.generator = generator
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers
        self._workers_iter: _WorkersIter | None = None

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None or (self._iterable and self.batch_size is not None)

    def __len__(self) -> int:
        if self._iterable:
            n = len(self.dataset)  # (a TypeError where the stream has no length, as in PyTorch)
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return len(self.batch_sampler if self.batch_sampler is not None else self.sampler)

    def __iter__(self):
        if self.num_workers == 0:
            return self._single_process()
        if self.persistent_workers and self._workers_iter is not None:
            self._workers_iter.new_epoch()
            return self._workers_iter
        it = _WorkersIter(self)
        if self.persistent_workers:
            self._workers_iter = it
        return it

    def _single_process(self):
        collate = self.collate_fn
        if self._iterable:
            stream = iter(self.dataset)
            if not self._auto_collation:
                for item in stream:
                    yield collate(item)
                return
            while True:
                items = list(itertools.islice(stream, self.batch_size))
                if not items or (self.drop_last and len(items) < self.batch_size):
                    return
                yield collate(items)
        order = self.batch_sampler if self._auto_collation else self.sampler
        for indices in order:
            yield _fetch(self.dataset, indices, collate, self._auto_collation)

    def __del__(self):
        it = getattr(self, "_workers_iter", None)
        if it is not None:
            it.shutdown()


class _WorkersIter:
    """One pass (or, with persistent workers, every pass) over a loader with worker processes."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader
        ctx = loader.multiprocessing_context or multiprocessing.get_context()
        self.result_queue = ctx.Queue()
        self.index_queues = []
        self.workers = []
        base_seed = draw_seed(loader.generator)
        for i in range(loader.num_workers):
            index_queue = ctx.Queue()
            index_queue.cancel_join_thread()
            w = ctx.Process(target=_worker_loop, daemon=True, args=(
                loader.dataset, index_queue, self.result_queue, loader.collate_fn,
                loader._auto_collation, loader.batch_size, loader.drop_last, base_seed + i,
                loader.worker_init_fn, i, loader.num_workers, loader._iterable))
            w.start()
            self.index_queues.append(index_queue)
            self.workers.append(w)
        self.closed = False
        self._start_epoch()

    def _start_epoch(self) -> None:
        loader = self.loader
        self.active = [True] * len(self.workers)
        self.tasks: dict[int, int] = {}  # batch index -> the worker loading it
        self.results: dict[int, Any] = {}
        self.send_idx = 0
        self.rcvd_idx = 0
        self.next_worker = 0
        if loader._iterable:
            self.order = None
        else:
            self.order = iter(loader.batch_sampler if loader._auto_collation else loader.sampler)
        for _ in range(loader.prefetch_factor * len(self.workers)):
            self._send_one()

    def new_epoch(self) -> None:
        """Persistent workers: drain what an unfinished pass left in flight, start the next."""
        while self.tasks:
            idx, _ = self._receive()
            self.tasks.pop(idx, None)
        if self.loader._iterable:
            for q in self.index_queues:
                q.put("reset")
        self._start_epoch()

    def _send_one(self) -> None:
        if not any(self.active):
            return
        if self.order is not None:
            indices = next(self.order, None)
            if indices is None:
                return
        else:
            indices = None
        n = len(self.workers)
        for _ in range(n):
            w = self.next_worker
            self.next_worker = (w + 1) % n
            if self.active[w]:
                break
        self.index_queues[w].put((self.send_idx, indices))
        self.tasks[self.send_idx] = w
        self.send_idx += 1

    def _receive(self):
        start = time.monotonic()
        timeout = self.loader.timeout
        while True:
            left = timeout - (time.monotonic() - start) if timeout else 1.0
            wait = min(1.0, max(0.0, left))
            try:
                return self.result_queue.get(timeout=wait)
            except queue.Empty:
                dead = [w.pid for w in self.workers if not w.is_alive()]
                if dead:
                    self.shutdown()
                    raise RuntimeError(f"DataLoader worker (pid(s) {', '.join(map(str, dead))}) "
                                       "exited unexpectedly") from None
                if timeout and time.monotonic() - start >= timeout:
                    self.shutdown()
                    raise RuntimeError(f"DataLoader timed out after {timeout} seconds") from None

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            if self.rcvd_idx >= self.send_idx:
                if not self.loader.persistent_workers:
                    self.shutdown()
                raise StopIteration
            if self.rcvd_idx in self.results:
                data = self.results.pop(self.rcvd_idx)
                self.rcvd_idx += 1
                self._send_one()
                if isinstance(data, _Exhausted):
                    continue
                if isinstance(data, _WorkerError):
                    self.shutdown()
                    data.reraise()
                return data
            if self.closed:
                raise StopIteration
            idx, data = self._receive()
            worker = self.tasks.pop(idx, None)
            if isinstance(data, _Exhausted) and worker is not None:
                self.active[worker] = False
            self.results[idx] = data

    def shutdown(self) -> None:
        if self.closed:
            return
        self.closed = True
        for q in self.index_queues:
            try:
                q.put(None)
            except (OSError, ValueError):
                pass
        for w in self.workers:
            w.join(timeout=5.0)
            if w.is_alive():
                w.terminate()
        for q in [*self.index_queues, self.result_queue]:
            try:
                q.cancel_join_thread()
                q.close()
            except (OSError, ValueError):
                pass

    def __del__(self):
        self.shutdown()
