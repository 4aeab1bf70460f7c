"""Checks that need a job of several processes, run by tests/distributed/test_distributed.py as

    mpiexec -n 2 python -m tests.distributed.mpi_checks <check> [<check> ...]

Every rank runs the same checks; a failed assertion aborts the job with the rank and the error
(lucid.distributed's excepthook), so the test sees a failing exit status and the message. Rank 0
prints one "ok <check>" line per check passed.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile

import numpy as np

import lucid
import lucid.distributed as dist
import lucid.nn as nn
import lucid.nn.functional as F
from lucid.nn.parallel import DistributedDataParallel as DDP
from tests.opinfo import COLLECTIVES

dist.init()
RANK, SIZE = dist.get_rank(), dist.get_world_size()


def _samples(info, dtype, rank):
    return info.samples(np.random.default_rng(100 + rank), dtype)


def _close(a, b, what, rtol=1e-5, atol=1e-6):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=what)


def _as_dtype(arrays, dtype):
    return [a.astype(dtype) if isinstance(a, np.ndarray) else a for a in arrays]


# ----------------------------------------------------------------------------- collectives


def check_values() -> None:
    """Every collective's result against NumPy, from every rank's inputs, in four dtypes."""
    for info in COLLECTIVES:
        for dtype in (np.float32, np.float64, np.int32, np.int64):
            everyone = [_samples(info, np.float64, r) for r in range(SIZE)]
            for k, sample in enumerate(everyone[RANK]):
                xs = [_as_dtype(s[k].args, dtype) if np.dtype(dtype).kind == "f" else
                      [np.round(a * 3).astype(dtype) for a in s[k].args] for s in everyone]
                args = xs[RANK]
                out = info.fn(*[lucid.tensor(a) for a in args], **sample.attrs)
                expected = info.ref(xs, RANK, **sample.attrs)
                assert out.dtype == np.asarray(expected).dtype or info.name == "barrier", \
                    f"{info.name}: dtype {out.dtype}"
                tol = 1e-5 if dtype == np.float32 else 1e-12
                _close(out.numpy(), expected, f"{info.name} {sample.attrs} {dtype}", tol, tol)


def check_gradients() -> None:
    """<u, J v> from the vjp against central differences, both summed over the ranks."""
    mpi = lucid.distributed.comm.world().comm
    rng = np.random.default_rng(7 + RANK)
    eps = 1e-6
    for info in COLLECTIVES:
        if not info.differentiable:
            continue
        for sample in _samples(info, np.float64, RANK):
            (x,) = sample.args
            t = lucid.tensor(x, requires_grad=True)
            out = info.fn(t, **sample.attrs)
            u = rng.standard_normal(out.shape)
            v = rng.standard_normal(x.shape)
            out.backward(lucid.tensor(u))
            analytic = mpi.allreduce(float((t.grad.numpy() * v).sum()))

            def f(z, attrs=sample.attrs, u=u, info=info):
                return mpi.allreduce(float((info.fn(lucid.tensor(z), **attrs).numpy()
                                            * u).sum()))
            numeric = (f(x + eps * v) - f(x - eps * v)) / (2 * eps)
            assert abs(analytic - numeric) <= 1e-6 * max(1.0, abs(numeric)), \
                f"{info.name} {sample.attrs}: vjp {analytic} vs finite differences {numeric}"


def check_compiled() -> None:
    """Collectives inside compiled functions (with math around them, forward and backward)
    give eager's results on every call, across the tiers."""
    for info in COLLECTIVES:
        for k, sample in enumerate(_samples(info, np.float32, RANK)):
            attrs = dict(sample.attrs)
            # (the first sample runs into the native tier; the others stay on the tier of
            # shared kernels, which costs no numba compile of their own)
            calls = 4 if k == 0 else 2
            if info.name == "barrier":
                fn = lucid.compile(lambda: (ops_barrier(), lucid.ones(2) * 3)[1])
                for _ in range(4):
                    _close(fn().numpy(), np.full(2, 3.0), "compiled barrier")
                continue

            def body(x, attrs=attrs, info=info):
                return (info.fn(x.exp() * 0.5, **attrs) + 1.0).tanh()

            compiled = lucid.compile(body)
            (x,) = sample.args
            for call in range(calls):
                xe = lucid.tensor(x + call, requires_grad=True)
                xc = lucid.tensor(x + call, requires_grad=True)
                ye, yc = body(xe), compiled(xc)
                _close(yc.numpy(), ye.numpy(), f"compiled {info.name} {attrs} call {call}")
                if info.differentiable:
                    g = np.linspace(-1, 1, ye.numel()).reshape(ye.shape).astype(np.float32)
                    ye.backward(lucid.tensor(g))
                    yc.backward(lucid.tensor(g))
                    # (tanh' where tanh saturates: one ulp of tanh is a large relative error)
                    _close(xc.grad.numpy(), xe.grad.numpy(),
                           f"compiled {info.name} gradient call {call}", atol=1e-5)


def ops_barrier():
    return lucid.ops.barrier()


def check_inplace_api() -> None:
    """PyTorch's in-place forms: all_reduce (sum, avg, max), broadcast, all_gather(list),
    all_gather_into_tensor, reduce_scatter(list), reduce_scatter_tensor, objects."""
    t = lucid.tensor(np.full(3, RANK + 1.0, np.float32))
    assert dist.all_reduce(t) is None
    _close(t.numpy(), np.full(3, SIZE * (SIZE + 1) / 2), "all_reduce in place")
    t = lucid.tensor(np.full(3, float(RANK), np.float32))
    dist.all_reduce(t, op=dist.ReduceOp.AVG)
    _close(t.numpy(), np.full(3, (SIZE - 1) / 2), "all_reduce avg")
    t = lucid.tensor(np.full(2, float(RANK)))
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    _close(t.numpy(), np.full(2, SIZE - 1.0), "all_reduce max")
    p = nn.Parameter(lucid.tensor(np.full(2, float(RANK), np.float32)))
    dist.broadcast(p, src=SIZE - 1)  # (a parameter: no autograd record, as in PyTorch)
    _close(p.numpy(), np.full(2, SIZE - 1.0), "broadcast in place")
    outs = [lucid.zeros(2, dtype=lucid.int64) for _ in range(SIZE)]
    dist.all_gather(outs, lucid.tensor(np.array([RANK, 10 * RANK])))
    for r, o in enumerate(outs):
        _close(o.numpy(), [r, 10 * r], "all_gather list")
    out = lucid.zeros(2 * SIZE)
    dist.all_gather_into_tensor(out, lucid.tensor(np.full(2, float(RANK), np.float32)))
    _close(out.numpy(), np.repeat(np.arange(SIZE), 2), "all_gather_into_tensor")
    out = lucid.zeros(2)
    dist.reduce_scatter(out, [lucid.tensor(np.full(2, float(r + RANK), np.float32))
                              for r in range(SIZE)])
    _close(out.numpy(), np.full(2, SIZE * RANK + SIZE * (SIZE - 1) / 2), "reduce_scatter")
    out = lucid.zeros(1)
    dist.reduce_scatter_tensor(out, lucid.tensor(np.arange(SIZE, dtype=np.float32)))
    _close(out.numpy(), [SIZE * RANK], "reduce_scatter_tensor")
    objs = [None] * SIZE
    dist.all_gather_object(objs, {"rank": RANK})
    assert objs == [{"rank": r} for r in range(SIZE)]
    lst = [RANK, "x"] if RANK == 0 else [None, None]
    dist.broadcast_object_list(lst, src=0)
    assert lst == [0, "x"]
    assert dist.barrier() is None
    work = dist.all_reduce(lucid.ones(1), async_op=True)
    assert work.wait() and work.is_completed()
    # the collectives counted what they sent
    s = dist.stats()
    assert s.calls["all_reduce"] > 0 and s.bytes["all_reduce"] > 0


def check_mismatch() -> None:
    """Ranks that call a collective on different shapes, or different collectives, all get an
    error naming the ranks, and the job goes on."""
    x = lucid.ones(2 + (RANK == SIZE - 1))
    try:
        dist.all_reduce(x)
    except dist.DistributedError as exc:
        msg = str(exc)
        assert "the ranks disagree" in msg and f"rank {SIZE - 1}: all_reduce of float32[3]" in msg \
            and "float32[2]" in msg, msg
    else:
        raise AssertionError("mismatched shapes were not reported")
    try:
        if RANK == 0:
            dist.broadcast(lucid.ones(2), src=0)
        else:
            dist.all_reduce(lucid.ones(2))
    except dist.DistributedError as exc:
        assert "rank 0: broadcast of float32[2], src=0" in str(exc), str(exc)
    else:
        raise AssertionError("different collectives were not reported")
    t = lucid.tensor(np.full(2, float(RANK), np.float32))
    dist.all_reduce(t)  # the job is still usable
    _close(t.numpy(), np.full(2, SIZE * (SIZE - 1) / 2), "after a mismatch")


# ----------------------------------------------------------------------------- DDP

B, STEPS = 4, 20


def _data(steps=STEPS, features=6, outputs=3):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((steps, SIZE * B, features)).astype(np.float32),
            rng.standard_normal((steps, SIZE * B, outputs)).astype(np.float32))


def _model(bn=False):
    lucid.manual_seed(1)
    layers = [nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3)]
    if bn:
        layers.insert(1, nn.BatchNorm1d(16))
    return nn.Sequential(*layers)


def _mine(a):
    return lucid.tensor(a[RANK * B:(RANK + 1) * B])


def _train(model, opt, compiled, steps, accumulate=1, no_sync=None):
    X, Y = _data(steps)

    def step(x, y, update):
        loss = F.mse_loss(model(x), y)
        loss.backward()
        if update:
            opt.step()
            opt.zero_grad()
        return loss

    fn = lucid.compile(step) if compiled else step
    for i in range(steps):
        update = (i + 1) % accumulate == 0
        x, y = (X[i], Y[i]) if no_sync is None else (_mine(X[i]), _mine(Y[i]))
        if no_sync is not None and not update:
            with no_sync():
                fn(lucid.tensor(x), lucid.tensor(y), update)
        else:
            fn(lucid.tensor(x), lucid.tensor(y), update)
    return fn


def _compare(a, b, what):
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        _close(p.numpy(), q.numpy(), f"{what}: {name}", rtol=2e-5, atol=2e-6)


def check_ddp() -> None:
    """20 steps of DDP (each rank a quarter of the batch) give the parameters of one process
    training on the whole batch, eagerly and compiled (one entry, collectives inside)."""
    for compiled in (False, True):
        model = _model()
        if RANK:  # a different start on the other ranks: the wrapper takes rank 0's
            with lucid.no_grad():
                for p in model.parameters():
                    p.mul_(0.5)
        ddp = DDP(model, bucket_cap_mb=0.001)  # several buckets
        assert len(ddp.reducer.buckets) > 1
        opt = lucid.optim.Adam(ddp.parameters(), lr=0.01) if compiled else \
            lucid.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9)
        ref = _model()
        ref_opt = lucid.optim.Adam(ref.parameters(), lr=0.01) if compiled else \
            lucid.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9)
        _train(ref, ref_opt, False, STEPS)
        fn = _train(ddp, opt, compiled, STEPS, no_sync=ddp.no_sync)
        _compare(ddp.module, ref, f"DDP {'compiled' if compiled else 'eager'}")
        if compiled:  # the step's graph holds the buckets' all-reduces
            text = fn.ir("optimized")
            assert text.count("= all_reduce") == len(ddp.reducer.buckets), text


def check_no_sync() -> None:
    """Gradient accumulation: two backwards under no_sync and one outside, then a step, match
    one process accumulating over the whole batches; eager and compiled."""
    for compiled in (False, True):
        ref = _model()
        _train(ref, lucid.optim.SGD(ref.parameters(), lr=0.05), False, 9, accumulate=3)
        ddp = DDP(_model())
        fn = _train(ddp, lucid.optim.SGD(ddp.parameters(), lr=0.05), compiled, 9,
                    accumulate=3, no_sync=ddp.no_sync)
        _compare(ddp.module, ref, f"no_sync {'compiled' if compiled else 'eager'}")
        del fn


def check_buffers_and_save() -> None:
    """BatchNorm's running statistics follow rank 0's; the state dict has the plain module's
    keys; lucid.save writes a path from rank 0 only; the sampler shards a DataLoader."""
    ddp = DDP(_model(bn=True))
    X, Y = _data(2)
    loss = F.mse_loss(ddp(_mine(X[0])), _mine(Y[0]))
    loss.backward()
    ddp.eval()  # (in eval mode the forward does not update the statistics again)
    ddp(_mine(X[1]))  # its forward first takes rank 0's statistics from the first batch
    mean = ddp.module[1].running_mean.numpy()
    everyone = [None] * SIZE
    dist.all_gather_object(everyone, mean)
    for other in everyone:
        _close(other, everyone[0], "running_mean after the broadcast")
    state = ddp.state_dict()
    assert list(state) == list(ddp.module.state_dict()), list(state)
    ddp.load_state_dict({f"module.{k}": v for k, v in state.items()})
    shared = [tempfile.mkdtemp() if RANK == 0 else None]
    dist.broadcast_object_list(shared, src=0)
    path = os.path.join(shared[0], "ckpt.pt")
    mine = os.path.join(shared[0], f"rank{RANK}.pt")
    lucid.save(ddp, path)
    lucid.save({"r": RANK}, mine)
    lucid.save({"r": RANK}, io.BytesIO())
    dist.barrier()
    files = sorted(os.listdir(shared[0]))
    dist.barrier()  # (every rank has looked before any writes its own file below)
    assert files == ["ckpt.pt", "rank0.pt"], files
    loaded = lucid.load(path)
    assert list(loaded) == list(ddp.module.state_dict())
    lucid.save({"r": RANK}, mine, all_ranks=True)
    dist.barrier()
    assert os.path.exists(mine)
    # DistributedSampler: the ranks' shards are disjoint and cover the (padded) dataset.
    from lucid.utils.data import DataLoader, DistributedSampler, TensorDataset

    data = TensorDataset(lucid.arange(10, dtype=lucid.int64))
    sampler = DistributedSampler(data, shuffle=True, seed=3)
    sampler.set_epoch(1)
    seen = [int(v) for (batch,) in DataLoader(data, batch_size=2, sampler=sampler)
            for v in batch.numpy()]
    everyone = [None] * SIZE
    dist.all_gather_object(everyone, seen)
    flat = sorted(v for part in everyone for v in part)
    assert len(flat) == SIZE * -(-10 // SIZE) and set(flat) == set(range(10)), everyone


def check_cuda() -> None:
    """Device tensors (run with NUMBA_ENABLE_CUDASIM=1 without a GPU): collectives keep them
    on the device, and DDP averages device gradients (the graph path)."""
    x = lucid.tensor(np.full(3, RANK + 1.0, np.float32)).cuda()
    y = dist.functional.all_reduce(x * 2)
    dist.all_reduce(x)
    assert x.device == y.device == "cuda", (x.device, y.device)
    _close(y.cpu().numpy(), np.full(3, SIZE * (SIZE + 1.0)), "device all_reduce")
    ref = _model()
    ddp = DDP(_model().to("cuda"))
    X, Y = _data(2)
    for model, xs, ys in ((ref, X[0], Y[0]), (ddp, _mine(X[0]).cuda(), _mine(Y[0]).cuda())):
        F.mse_loss(model(lucid.tensor(xs) if model is ref else xs),
                   lucid.tensor(ys) if model is ref else ys).backward()
    for p, q in zip(ddp.module.parameters(), ref.parameters(), strict=True):
        assert p.grad.device == "cuda"
        _close(p.grad.cpu().numpy(), q.grad.numpy(), "device DDP gradient", atol=1e-5)


# ----------------------------------------------------------------------------- failures


def check_fail() -> None:
    """Rank 1 raises in the middle of training: the job ends, naming rank 1 and the error."""
    ddp = DDP(_model())
    opt = lucid.optim.SGD(ddp.parameters(), lr=0.1)
    X, Y = _data(6)
    for i in range(6):
        if RANK == 1 and i == 3:
            raise ValueError("planted failure at step 3")
        loss = F.mse_loss(ddp(_mine(X[i])), _mine(Y[i]))
        opt.zero_grad()
        loss.backward()
        opt.step()


def check_leave() -> None:
    """Rank 1 leaves the job early, with a successful exit; rank 0's next collective ends the
    job after the timeout instead of waiting forever."""
    t = lucid.ones(2)
    dist.all_reduce(t)
    if RANK == 1:
        sys.exit(0)
    dist.all_reduce(t)


CHECKS = {name[len("check_"):]: fn for name, fn in list(globals().items())
          if name.startswith("check_")}


if __name__ == "__main__":
    for name in sys.argv[1:]:
        CHECKS[name]()
        dist.barrier()
        if RANK == 0:
            print(f"ok {name}", flush=True)
