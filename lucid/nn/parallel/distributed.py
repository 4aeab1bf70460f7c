"""DistributedDataParallel: one model replica per rank, gradients averaged over the ranks.

At wrap time every rank checks that it holds the same parameters and buffers (names, shapes,
dtypes) as the others, then takes rank 0's values. Each backward then averages the gradients:

- The parameters are split into buckets, in reverse order of registration (backward computes
  the last layers' gradients first), of at most `bucket_cap_mb` MiB each (the first bucket 1 MiB,
  so that communication starts early), one dtype per bucket.
- A post-accumulate hook on each parameter marks its gradient ready. Once every gradient of a
  bucket is ready, and every earlier bucket has started (all ranks must start them in the same
  order), the bucket's gradients are concatenated and summed over the ranks, then divided by the
  world size and written back into `.grad`.
- Eagerly the sum is a nonblocking MPI all-reduce, started as soon as the bucket is ready and
  waited for when backward ends, so it overlaps the rest of backward. Under `lucid.compile` the
  bucket is an `all_reduce` node of the step's graph, placed right after its gradients.
- A bucket with a parameter that got no gradient is reduced when backward ends, with zeros for
  the missing gradient (so ranks that used different parameters still agree).

`no_sync()` skips the averaging (gradients accumulate locally); the next backward outside it
averages the accumulated gradients. `broadcast_buffers` (the default) gives every rank rank 0's
buffers (BatchNorm's running statistics) at the start of each forward.
"""

from __future__ import annotations

import contextlib
import time
import weakref

import numpy as np

from lucid import autograd, ops
from lucid.autograd import no_grad
from lucid.distributed import comm
from lucid.distributed import functional as dist_f
from lucid.nn.modules.module import Module
from lucid.ops.registry import CURRENT_TRACER
from lucid.tensor import Tensor

_MIB = 1 << 20
FIRST_BUCKET_MB = 1.0


class DistributedDataParallel(Module):
    """Wrap `module` so that each backward averages its gradients over every rank of the job
    (`lucid.distributed.init()` first). `device_ids`, `output_device`, `find_unused_parameters`,
    `gradient_as_bucket_view` and `static_graph` are accepted for PyTorch's programs; a
    parameter that gets no gradient is always handled (see the module docstring)."""

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0,
                 broadcast_buffers: bool = True, process_group=None,
                 bucket_cap_mb: float | None = None, find_unused_parameters: bool = False,
                 gradient_as_bucket_view: bool = False, static_graph: bool = False,
                 init_sync: bool = True) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel wraps a Module, got {type(module).__name__}")
        if process_group is not None:
            from lucid.distributed import _check_group

            _check_group(process_group)
        self.world = comm.world()
        self.module = module
        self.broadcast_buffers = bool(broadcast_buffers)
        self.require_backward_grad_sync = True
        self.bucket_cap_mb = 25.0 if bucket_cap_mb is None else float(bucket_cap_mb)
        params = _unique(p for p in module.parameters() if p.requires_grad)
        if init_sync:
            _verify_same_model(self.world, module)
            with no_grad():
                _broadcast_coalesced(list(module.parameters()) + _buffers(module))
        self.reducer = _Reducer(self, params, self.bucket_cap_mb * _MIB)

    def forward(self, *args, **kwargs):
        if self.broadcast_buffers and self.world.size > 1:
            buffers = _buffers(self.module)
            if buffers:
                with no_grad():
                    _broadcast_coalesced(buffers)
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Backward inside the block accumulates gradients locally, without averaging them."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    # The plain module's state: a checkpoint loads into the model with or without the wrapper.
    def state_dict(self, prefix: str = ""):
        return self.module.state_dict(prefix=prefix)

    def load_state_dict(self, state_dict, strict: bool = True):
        if state_dict and all(k.startswith("module.") for k in state_dict):
            state_dict = {k[len("module."):]: v for k, v in state_dict.items()}
        return self.module.load_state_dict(state_dict, strict=strict)

    def extra_repr(self) -> str:
        return ""


def _unique(tensors) -> list:
    seen, out = set(), []
    for t in tensors:
        if id(t) not in seen:
            seen.add(id(t))
            out.append(t)
    return out


def _buffers(module: Module) -> list[Tensor]:
    return _unique(b for b in module.buffers() if b is not None)


def _verify_same_model(world, module: Module) -> None:
    """Every rank holds parameters and buffers of the same names, shapes and dtypes; else an
    error naming the ranks and the first tensor that differs."""
    mine = [(name, tuple(t.shape), str(t.dtype)) for name, t in
            [*module.named_parameters(), *module.named_buffers()] if t is not None]
    everyone = world.all_gather_object(mine)
    for r, theirs in enumerate(everyone):
        if theirs != everyone[0]:
            first = next((a, b) for a, b in zip(everyone[0] + [None], theirs + [None],
                                                strict=False) if a != b)
            raise comm.DistributedError(
                f"DistributedDataParallel: rank {r}'s model differs from rank 0's: "
                f"{first[1] or 'nothing'} on rank {r}, {first[0] or 'nothing'} on rank 0 "
                f"(this is rank {world.rank})")


def _groups_by_dtype(tensors: list[Tensor]) -> list[list[Tensor]]:
    groups: dict[str, list[Tensor]] = {}
    for t in tensors:
        groups.setdefault(str(t.dtype), []).append(t)
    return list(groups.values())


def _flat(tensors: list[Tensor]) -> Tensor:
    from lucid.functions import cat

    return cat([t.reshape(-1) for t in tensors])


def _pieces(flat, tensors: list) -> list:
    """flat (a Tensor or an array) cut into pieces of the tensors' sizes and shapes."""
    out, start = [], 0
    for t in tensors:
        n = int(np.prod(t.shape, dtype=np.int64))
        out.append(flat[start:start + n].reshape(t.shape))
        start += n
    return out


def _broadcast_coalesced(tensors: list[Tensor]) -> None:
    """Overwrite each tensor with rank 0's, one broadcast per dtype (in place; no_grad)."""
    for group in _groups_by_dtype(tensors):
        flat = dist_f.broadcast(_flat(group), 0)
        for t, piece in zip(group, _pieces(flat, group), strict=True):
            t.copy_(piece)


class _Bucket:
    def __init__(self, index: int, params: list) -> None:
        self.index = index
        self.params = params


class _Reducer:
    """The buckets of one DistributedDataParallel and the state of the backward in progress."""

    def __init__(self, owner: DistributedDataParallel, params: list, cap_bytes: float) -> None:
        self.owner = weakref.ref(owner)
        self.world = owner.world
        self.buckets: list[_Bucket] = []
        open_: dict[str, list] = {}  # dtype -> the bucket being filled
        for p in reversed(params):
            key = str(p.dtype)
            bucket = open_.setdefault(key, [])
            cap = min(FIRST_BUCKET_MB * _MIB, cap_bytes) if not self.buckets else cap_bytes
            if bucket and sum(map(_nbytes, bucket)) + _nbytes(p) > cap:
                self.buckets.append(_Bucket(len(self.buckets), bucket))
                bucket = open_[key] = []
            bucket.append(p)
        for bucket in open_.values():
            if bucket:
                self.buckets.append(_Bucket(len(self.buckets), bucket))
        self.bucket_of = {id(p): b.index for b in self.buckets for p in b.params}
        self.pass_ = None
        self.pending: list[set[int]] = []
        self.next = 0
        self.inflight: list = []
        me = weakref.ref(self)
        self.handles = [p.register_post_accumulate_grad_hook(_hook(me)) for p in params]

    # ------------------------------------------------------------------ backward

    def ready(self, p) -> None:
        owner = self.owner()
        if owner is None or not owner.require_backward_grad_sync or self.world.size == 1:
            return
        current = autograd.current_backward()
        if self.pass_ is not current:
            self.pass_ = current
            self.pending = [{id(q) for q in b.params} for b in self.buckets]
            self.next = 0
            self.inflight = []
            autograd.queue_callback(self.finish)
        self.pending[self.bucket_of[id(p)]].discard(id(p))
        while self.next < len(self.buckets) and not self.pending[self.next]:
            self.launch(self.buckets[self.next])
            self.next += 1
        for request, *_ in self.inflight:
            request.Test()  # (MPI makes progress inside its calls)

    def finish(self) -> None:
        """When backward ends: start the buckets still waiting (a parameter without a gradient
        in this backward), then complete every all-reduce and write the averages back."""
        try:
            while self.next < len(self.buckets):
                self.launch(self.buckets[self.next])
                self.next += 1
            for request, out, bucket, start in self.inflight:
                self.world.finish(request, "all_reduce", out.nbytes, start)
                out /= self.world.size
                for p, piece in zip(bucket.params, _pieces(out, bucket.params), strict=True):
                    p.grad = Tensor._share(piece)
        finally:
            self.pass_ = None
            self.inflight = []

    def launch(self, bucket: _Bucket) -> None:
        grads = [p.grad if p.grad is not None else _zeros(p) for p in bucket.params]
        if CURRENT_TRACER.get() is None and all(isinstance(g.data, np.ndarray) for g in grads):
            start = time.perf_counter()
            flat = np.concatenate([g.data.reshape(-1) for g in grads])
            request, out = self.world.start_all_reduce(flat)
            self.inflight.append((request, out, bucket, start))
            return
        # Under a trace (or on a device): graph ops, written back at once. (The buckets were
        # checked alike on every rank at wrap time: no agreement check per call.)
        with no_grad():
            flat = ops.all_reduce(_flat(grads), reduce="sum", check=False) / self.world.size
            for p, piece in zip(bucket.params, _pieces(flat, bucket.params), strict=True):
                p.grad = piece


def _nbytes(t) -> int:
    return int(np.prod(t.shape, dtype=np.int64)) * np.dtype(t.dtype).itemsize


def _hook(reducer_ref):
    def hook(p):
        reducer = reducer_ref()
        if reducer is not None:
            reducer.ready(p)
    return hook


def _zeros(p) -> Tensor:
    from lucid.ops.creation import zeros_like

    return zeros_like(p.detach())
