"""What the CUDA backend generates and how it runs: one grid-stride kernel per fused elementwise
group, block reductions, the tiled matmul with its epilogue fused, shape-generic kernels shared by
batch sizes and by eager device ops, launch configurations bound once, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import lucid
import lucid.nn.functional as F  # noqa: N812
from lucid import LucidError
from lucid_jit.codegen import loader


def _program(compiled, stage="forward"):
    entry = compiled.last_entry
    graph = entry.forward if stage == "forward" else entry.backward
    return entry.backend.program(graph)


def _launches(program) -> int:
    return sum(len(s.calls) for s in program.steps if type(s) is not tuple)


def test_a_fused_elementwise_chain_is_one_grid_stride_kernel():
    f = lucid.compile(lambda x, y: ((x * 2.0 + y).tanh() * x.sigmoid()).exp())
    x, y = lucid.randn(5, 7, device="cuda"), lucid.randn(5, 7, device="cuda")
    out = f(x, y)
    a, b = x.numpy(), y.numpy()
    want = np.exp(np.tanh(a * 2 + b) / (1 + np.exp(-a)))
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-5)
    program = _program(f)
    assert _launches(program) == 1 and not program.host_nodes
    source = f.source()
    assert "@cuda.jit" in source and "cuda.gridsize(1)" in source
    assert "tanh_f32" in source and "sigmoid_f32" in source  # the CPU emitter's math names


def test_fastmath_reaches_the_device_kernels():
    f = lucid.compile(lambda x: (x * 3.0).exp() + 1.0, fastmath=True)
    x = lucid.randn(4, device="cuda")
    np.testing.assert_allclose(f(x).numpy(), np.exp(x.numpy() * 3) + 1, rtol=1e-5)
    assert "@cuda.jit(fastmath=True)" in f.source()
    g = lucid.compile(lambda x: (x * 3.0).exp() + 1.0)
    g(x)
    assert "@cuda.jit\n" in g.source() and "fastmath" not in g.source()


def test_reductions_are_block_reductions():
    f = lucid.compile(lambda x: F.softmax(x, dim=1))
    x = lucid.randn(6, 9, device="cuda")
    a = x.numpy()
    e = np.exp(a - a.max(1, keepdims=True))
    np.testing.assert_allclose(f(x).numpy(), e / e.sum(1, keepdims=True), rtol=1e-5)
    source = f.source()
    assert "cuda.shared.array(REDUCE_BLOCK" in source and "cuda.syncthreads()" in source
    g = lucid.compile(lambda x: x.sum(dim=0) + x.amax(dim=0))
    np.testing.assert_allclose(g(x).numpy(), a.sum(0) + a.max(0), rtol=1e-5)


def test_long_rows_split_over_blocks_and_their_partials_combine():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((40, 37)).astype(np.float32)
    a[3, 5] = np.nan
    x = lucid.tensor(a, device="cuda")
    want = {"sum": a.sum(), "max": np.nan, "mean": a.mean()}

    f = lucid.compile(lambda x: (x.sum(), x.amax(), x.mean(), x * 2))  # one phase, stores too
    s, m, mean, twice = f(x)
    assert "while b < nk * ns" in f.source() and "while q < ns" in f.source()
    np.testing.assert_allclose([s.numpy(), m.numpy(), mean.numpy()], list(want.values()),
                               rtol=1e-5)
    np.testing.assert_array_equal(twice.numpy(), a * 2)

    b = np.nan_to_num(a)
    g = lucid.compile(lambda x: (x.amax(dim=0, keepdim=True), (x > 2).int().amax(dim=0),
                                 x.sum(dim=1)))  # few kept rows: axis 0 of a (2, 740) view
    y = lucid.tensor(b.reshape(2, 740), device="cuda")
    mx, anyrow, rows = g(y.T)
    assert "while b < nk * ns" in g.source()
    np.testing.assert_allclose(mx.numpy(), b.reshape(2, 740).T.max(0, keepdims=True))
    np.testing.assert_array_equal(anyrow.numpy(), (b.reshape(2, 740).T > 2).any(0).astype(np.int32))
    np.testing.assert_allclose(rows.numpy(), b.reshape(2, 740).T.sum(1), rtol=1e-5)
    ints = lucid.tensor(np.arange(1000, dtype=np.int64), device="cuda")
    assert ints.sum().item() == 499500 and ints.amax().item() == 999


def _no_host(compiled):
    progs = [p for e in compiled.entries for p in e.backend.programs.values()]
    assert progs and not [n for p in progs for n in p.host_nodes]


WINDOW_CASES = [
    ("slices", lambda x, w: (x[1:, ::-2, None, ..., 3] * 2 + x[-1, 0, ::3, 1:4].sum()).sum()),
    ("pad", lambda x, w: F.pad(x, (1, 2, 0, 3), value=-0.5).exp().sum()),
    ("argmax", lambda x, w: (x.argmax(dim=1, keepdim=True).float() + x.argmax().float()
                             + x.sum()).sum()),
    ("conv", lambda x, w: F.conv2d(x, w, stride=(2, 1), padding=(1, 2), dilation=(1, 2),
                                   groups=2).tanh().sum()),
    ("concat", lambda x, w: (lucid.cat([x, x[:, :1] * 2, x.exp()], dim=1) ** 2).sum()
     + lucid.stack([x, x.tanh()], dim=-1).sum()),
    ("pool", lambda x, w: F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True).sum()
     + F.avg_pool2d(x, 2).sum()),
]


@pytest.mark.parametrize("name,fn", WINDOW_CASES, ids=[c[0] for c in WINDOW_CASES])
def test_slices_pads_windows_and_argmax_run_in_device_kernels(name, fn):
    rng = np.random.default_rng(7)
    xa = rng.standard_normal((3, 4, 7, 6)).astype(np.float32)
    if name in ("argmax", "pool"):
        xa[1, 2, 3, 4] = np.nan  # NaN wins a max and an argmax
    wa = rng.standard_normal((6, 2, 3, 2)).astype(np.float32)
    results = []
    for device in ("cpu", "cuda"):
        x = lucid.tensor(xa, device=device, requires_grad=True)
        w = lucid.tensor(wa, device=device, requires_grad=True)
        f = lucid.compile(fn) if device == "cuda" else fn
        loss = f(x, w)
        loss.backward()
        results.append([loss.numpy(), x.grad.numpy(),
                        None if w.grad is None else w.grad.numpy()])
    _no_host(f)
    for got, want in zip(results[1], results[0], strict=True):
        if want is None:
            assert got is None
        else:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def _ix(*values):
    return lambda device: lucid.tensor(np.array(values[0] if len(values) == 1 else values),
                                       device=device)


GATHERS = [  # (index maker): rows with repeats; arrays around a slice; arrays apart; int + None
    ("rows", lambda d: (_ix([3, 0, 3, 1])(d),)),
    ("adjacent", lambda d: (_ix([3, 0, -1])(d), slice(1, 4, 2), _ix([[0], [5]])(d))),
    ("apart", lambda d: (_ix([1, 2])(d), slice(None), _ix([0, 4])(d))),
    ("int and new axis", lambda d: (2, None, _ix([[1, 2, 3]])(d))),
]


@pytest.mark.parametrize("name,key", GATHERS, ids=[g[0] for g in GATHERS])
def test_gathers_and_their_scatter_adds_run_in_device_kernels(name, key):
    xa = np.random.default_rng(3).standard_normal((4, 5, 6)).astype(np.float32)
    results = []
    for device in ("cpu", "cuda"):
        x = lucid.tensor(xa, device=device, requires_grad=True)
        y = x[key(device)] * 2 if device == "cpu" else _compiled_with_key(x, key(device))
        (y * y).sum().backward()  # repeated rows accumulate their gradients
        results.append((y.numpy(), x.grad.numpy()))
    np.testing.assert_allclose(results[1][0], results[0][0])
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-6)


def _compiled_with_key(x, key):
    """Compile over the key's tensors (ints, slices and None are fixed parts of the function)."""
    tensors = [k for k in key if isinstance(k, lucid.Tensor)]

    def f(x, *ts):
        it = iter(ts)
        return x[tuple(next(it) if isinstance(k, lucid.Tensor) else k for k in key)] * 2

    compiled = lucid.compile(f)
    out = compiled(x, *tensors)
    _no_host(compiled)
    return out


def test_an_out_of_range_index_on_the_device_is_an_index_error_and_the_call_can_be_retried():
    x = lucid.randn(5, 6, device="cuda")
    f = lucid.compile(lambda x, t: F.cross_entropy(x, t))
    good = lucid.tensor(np.array([0, 1, 2, 1, 0]), device="cuda")
    want = F.cross_entropy(x.cpu(), good.cpu()).item()
    assert f(x, good).item() == pytest.approx(want, rel=1e-6)
    _no_host(f)
    with pytest.raises(IndexError, match="getitem: index 9 is out of bounds for axis 1 with "
                                         "size 6"):
        f(x, lucid.tensor(np.array([0, 1, 9, 1, 0]), device="cuda"))
    with pytest.raises(IndexError, match="index -8 is out of bounds for axis 0 with size 5"):
        x[lucid.tensor(np.array([1, -8]), device="cuda")]  # eagerly too
    assert f(x, good).item() == pytest.approx(want, rel=1e-6)


def test_matmul_bias_and_activation_are_one_tiled_kernel():
    f = lucid.compile(lambda x, w, b: F.relu(x @ w + b))
    x, w, b = (lucid.randn(5, 6, device="cuda"), lucid.randn(6, 9, device="cuda"),
               lucid.randn(9, device="cuda"))
    out = f(x, w, b)
    np.testing.assert_allclose(out.numpy(), np.maximum(x.numpy() @ w.numpy() + b.numpy(), 0),
                               rtol=1e-5, atol=1e-6)
    program = _program(f)
    assert _launches(program) == 1, program.source()
    source = f.source()
    assert "cuda.shared.array((TM, TILE), np.float32)" in source and "cuda.local.array" in source
    bmm = lucid.compile(lambda a, b: a @ b)
    a, c = lucid.randn(3, 5, 4, device="cuda"), lucid.randn(3, 4, 6, device="cuda")
    np.testing.assert_allclose(bmm(a, c).numpy(), a.numpy() @ c.numpy(), rtol=1e-5, atol=1e-6)


def test_kernels_are_shape_generic_and_shared_with_eager_ops():
    f = lucid.compile(lambda x: (x * 3.0).relu().sum(dim=1))
    f(lucid.randn(4, 5, device="cuda"))
    first = set(_program(f).texts)
    f(lucid.randn(7, 5, device="cuda"))  # a new batch size: a retrace, the same kernels
    assert len(f.entries) == 2
    assert set(_program(f).texts) == first
    before = len(loader.loaded_modules())
    lucid.randn(9, 3, device="cuda").relu()  # an eager device op: a one-node graph
    (lucid.randn(9, 3, device="cuda") * 3.0).relu()
    after = len(loader.loaded_modules())
    again = len(loader.loaded_modules())
    lucid.randn(2, 8, device="cuda").relu()  # same op, new shape: no new kernel
    assert len(loader.loaded_modules()) == after == again >= before


def test_launches_are_bound_once_and_calls_load_nothing():
    f = lucid.compile(lambda x, w: (x @ w).sigmoid().mean())
    x, w = lucid.randn(4, 3, device="cuda"), lucid.randn(3, 2, device="cuda")
    f(x, w)
    program = _program(f)
    calls = [c for s in program.steps if type(s) is not tuple for c in s.calls]
    loaded = len(loader.loaded_modules())
    for _ in range(3):
        f(x, w)
    assert _program(f) is program
    assert [c for s in program.steps if type(s) is not tuple for c in s.calls] == calls
    assert len(loader.loaded_modules()) == loaded


def test_lifted_floats_and_cpu_scalars_are_kernel_arguments():
    f = lucid.compile(lambda x, lr: x * lr + lucid.tensor(2.0))
    x = lucid.randn(3, 4, device="cuda")
    for lr in (0.5, 0.25):
        np.testing.assert_allclose(f(x, lr).numpy(), x.numpy() * lr + 2, rtol=1e-6)
    assert len(f.entries) == 1


def test_backend_cuda_needs_device_inputs_and_graphs_need_one_device():
    f = lucid.compile(lambda x: x + 1, backend="cuda")
    with pytest.raises(LucidError, match="inputs are on the cpu"):
        f(lucid.ones(3))
    np.testing.assert_array_equal(f(lucid.ones(3, device="cuda")).numpy(), np.full(3, 2.0))
    w = lucid.ones(3)  # a cpu tensor the function captures
    g = lucid.compile(lambda x: x * w)
    with pytest.raises(LucidError, match="reads a cpu tensor"):
        g(lucid.ones(3, device="cuda"))


def test_the_same_function_compiles_for_each_device():
    f = lucid.compile(lambda x: (x * x).sum())
    cpu, dev = lucid.tensor([1.0, 2.0]), lucid.tensor([1.0, 2.0], device="cuda")
    assert f(cpu).device == "cpu" and f(dev).device == "cuda" and f(cpu).device == "cpu"
    assert [e.backend.name for e in f.entries] == ["cpu", "cuda"]


def test_outputs_reuse_dead_buffers_and_temporaries_are_allocated_once():
    f = lucid.compile(lambda x: F.softmax(x * 2.0, dim=1))
    x = lucid.randn(4, 6, device="cuda")
    kept = [f(x) for _ in range(3)]  # results still alive: each call has its own buffer
    assert len({id(t.data) for t in kept}) == 3
    want = kept[0].numpy()
    program = _program(f)
    temps = [id(a) for s in program.steps if type(s) is not tuple for a in s.temps.values()]
    del kept
    seen = set()
    for _ in range(4):  # each result dies before the next call: its buffer comes back
        out = f(x)
        np.testing.assert_allclose(out.numpy(), want, rtol=1e-6)
        seen.add(id(out.data))
        del out
    assert len(seen) == 1
    assert [id(a) for s in program.steps if type(s) is not tuple
            for a in s.temps.values()] == temps


def test_a_captured_model_moved_to_the_device_fails_the_cpu_guards():
    lucid.manual_seed(0)
    model = lucid.nn.Linear(3, 2)
    x = lucid.randn(4, 3)
    f = lucid.compile(lambda: (model(x_dev[0]) * 2.0).sum())
    x_dev = [x]
    want = f().item()
    assert f.last_entry.device == "cpu"
    model.to("cuda")
    x_dev[0] = x.cuda()
    out = f()  # same arguments (none): the guards see device arrays and retrace for cuda
    assert out.device == "cuda" and f.last_entry.device == "cuda"
    assert len(f.entries) == 2
    np.testing.assert_allclose(out.item(), want, rtol=1e-5)
    model.cpu()
    x_dev[0] = x
    assert f().device == "cpu" and len(f.entries) == 2  # the cpu entry again


def test_random_draws_are_device_kernels_with_eagers_numbers():
    """uniform, normal, randint and dropout's mask run as Philox kernels on the device (no
    host op) and give the CPU's eager numbers for a seed."""
    def draws(x):
        return (lucid.rand(5, 3, device="cuda"), lucid.randn(7, dtype=lucid.float64, device="cuda"),
                F.dropout(x, 0.3), lucid.randint(-2, 9, (3, 3), device="cuda"),
                lucid.randn(2, 3, device="cuda") + 1.0)

    x = lucid.randn(4, 6, device="cuda")
    compiled = lucid.compile(draws)
    for seed in (0, 1):
        lucid.manual_seed(seed)
        want = draws(x)  # eager device ops: drawn on the host
        lucid.manual_seed(seed)
        got = compiled(x)
        for k, (w, g) in enumerate(zip(want, got, strict=True)):
            assert g.device == "cuda" and g.dtype == w.dtype, k
            np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-12, atol=1e-12)
        lucid.manual_seed(seed)
        cpu = lucid.rand(5, 3)
        np.testing.assert_array_equal(got[0].numpy(), cpu.numpy())
    _no_host(compiled)
