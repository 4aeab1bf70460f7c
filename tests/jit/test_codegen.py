"""The cpu backend's generated code: tiers, in-place updates, host ops, vectorization, the source
a user reads, and the module cache (a new batch size and a second process compile nothing; a
corrupt entry is rebuilt).

Every other compiled-vs-eager test (test_compiled_ops, test_compiled_models, test_fuzz, ...) runs
on this backend too: it is the default.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import lucid
import lucid.nn as nn
import lucid.nn.functional as F
import lucid_jit
from lucid_jit.codegen import loader
from lucid_jit.codegen.cpu.backend import NumbaBackend, Program

ROOT = Path(__file__).resolve().parents[2]


def _program(compiled, stage="forward") -> Program:
    entry = compiled.last_entry
    return entry.backend.program(entry.forward if stage == "forward" else entry.backward)


def _chain(x, w, b):
    return F.leaky_relu(x * w + b) * x.sigmoid() + x.tanh()


def _chain_eager(x, w, b):
    return _chain(x, w, b)


# ----------------------------------------------------------------------------- tiers


def test_tiers_give_the_same_results_and_go_native():
    rng = np.random.default_rng(0)
    x = lucid.tensor(rng.standard_normal((64, 33)).astype(np.float32))
    w = lucid.tensor(np.float32(0.7))
    b = lucid.tensor(np.float32(-0.2))
    compiled = lucid.compile(_chain)
    expected = _chain_eager(x, w, b).numpy()
    tiers = []
    for _ in range(Program.NATIVE_AFTER + 1):
        out = compiled(x, w, b)
        tiers.append(_program(compiled).tier)
        np.testing.assert_allclose(out.numpy(), expected, rtol=2e-6, atol=1e-6)
    assert tiers[0] == "python" and tiers[-1] == "native"
    assert len(compiled.entries) == 1


def test_chain_is_one_kernel_and_vectorizes():
    x = lucid.tensor(np.linspace(-4, 4, 4096, dtype=np.float32))
    w, b = lucid.tensor(np.float32(1.5)), lucid.tensor(np.float32(0.25))
    compiled = lucid.compile(_chain)
    compiled(x, w, b)
    program = _program(compiled)
    assert program.emitted.kernels == 1 and program.emitted.segments == 1
    (kernel,) = [k for k in vars(program.module).values()
                 if getattr(k, "py_func", None) is not None and k.__module__.startswith(
                     "lucid_jit_generated.k_")]
    llvm = "".join(kernel.inspect_llvm().values())
    assert "<8 x float>" in llvm or "<4 x float>" in llvm
    for libm in ("@expf", "@tanhf", "@logf"):
        assert libm not in llvm


# ----------------------------------------------------------------------------- in place


def _adam_step():
    lucid.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2), nn.Sigmoid())
    opt = lucid.optim.Adam(model.parameters(), lr=0.01)
    crit = nn.BCELoss()

    def step(x, y):
        opt.zero_grad()
        loss = crit(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return model, opt, step


def test_parameters_and_optimizer_state_update_in_place():
    x = lucid.rand(4, 8)
    y = lucid.randint(0, 2, (4, 2)).float()
    model, opt, step = _adam_step()
    eager_model, _, eager_step = _adam_step()
    compiled = lucid.compile(step)
    for _ in range(4):
        compiled(x, y)
        eager_step(x, y)
    arrays = [p.data for p in model.parameters()]
    versions = [p._version[0] for p in model.parameters()]
    state = [s["exp_avg"].data for s in opt.state.values()]
    loss = compiled(x, y)
    eager_loss = eager_step(x, y)
    program = _program(compiled)
    assert program.tier == "native"
    # params (4), exp_avg, exp_avg_sq and step (4 each): written by the native code itself
    assert len(program.emitted.inplace) == 16
    assert all(p.data is a for p, a in zip(model.parameters(), arrays, strict=True))
    assert all(s["exp_avg"].data is a for s, a in zip(opt.state.values(), state, strict=True))
    assert [p._version[0] for p in model.parameters()] == [v + 1 for v in versions]
    np.testing.assert_allclose(loss.item(), eager_loss.item(), rtol=1e-5)
    for p, q in zip(model.parameters(), eager_model.parameters(), strict=True):
        np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-4, atol=1e-6)


def test_in_place_update_of_a_non_contiguous_argument():
    """An in-place target passed as a transposed view: the native code works on a contiguous
    copy and writes it back."""
    def f(a, g):
        a.sub_(g * 0.5)
        return a.sum()

    compiled = lucid.compile(f)
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    g = lucid.ones(4, 3)
    for _ in range(Program.NATIVE_AFTER + 1):
        a = lucid.tensor(base.copy()).T
        b = lucid.tensor(base.copy()).T
        out = compiled(a, g)
        expected = f(b, g)
        np.testing.assert_allclose(a.numpy(), b.numpy())
        np.testing.assert_allclose(out.item(), expected.item())


# ----------------------------------------------------------------------------- host ops


def test_host_ops_run_between_native_segments(monkeypatch):
    """Ops the lowering table sends to the host (here the gather and its scatter-add, which
    have native kernels normally) run through lucid's eager implementations between native
    segments, with the draw and the rest native."""
    from lucid_jit.codegen.cpu import lowering
    from lucid_jit.codegen.lowering import HOST, Lowering

    for name in ("getitem", "scatter_add"):
        monkeypatch.setitem(lowering.LOWERING, name, Lowering(HOST, "a test's host op"))

    def f(x, t):
        noise = lucid.randn(*x.shape) * 0.0
        return F.cross_entropy(x * 2.0 + noise, t)

    x = lucid.randn(6, 5, requires_grad=True)
    t = lucid.tensor(np.array([0, 4, 2, 1, 3, 0]))
    compiled = lucid.compile(f)
    for _ in range(Program.NATIVE_AFTER + 1):
        loss = compiled(x, t)
        loss.backward()
        got = x.grad.numpy().copy()
        x.grad = None
        want = f(x, t)
        want.backward()
        np.testing.assert_allclose(loss.item(), want.item(), rtol=1e-6)
        np.testing.assert_allclose(got, x.grad.numpy(), rtol=1e-5, atol=1e-7)
        x.grad = None
    entry = compiled.last_entry
    hosts = [n for g in (entry.forward, entry.backward) if g is not None
             for n in entry.backend.program(g).emitted.host_nodes]
    assert "getitem" in hosts and "scatter_add" in hosts and "normal" not in hosts


# ----------------------------------------------------------------------------- the source


def test_source_is_shape_generic_and_runs_by_itself(tmp_path):
    def f(x, w):
        return (x @ w).relu().sum(dim=1)

    w = lucid.randn(5, 7)
    compiled = lucid.compile(f)
    compiled(lucid.randn(3, 5), w)
    compiled(lucid.randn(11, 5), w)  # a new batch size: a new entry, the same module
    first, second = (e.backend.program(e.forward) for e in compiled.entries)
    assert first.text == second.text and first.module is second.module
    text = compiled.source()
    assert "def run(" in text and "@njit" in text and "def native_segment0" in text
    path = tmp_path / "graph.py"
    path.write_text(text)
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert "float32 (11,)" in done.stdout


def test_fastmath_reaches_the_generated_code():
    compiled = lucid.compile(lambda x: (x * 2.0).exp().sum(), fastmath=True)
    compiled(lucid.randn(8))
    assert "fastmath=True" in compiled.source()
    assert isinstance(compiled.last_entry.backend, NumbaBackend)


def test_fastmath_on_the_reference_backend_is_an_error_not_ignored():
    with pytest.raises(lucid.LucidError, match="fastmath applies to generated code"):
        lucid.compile(lambda x: x * 2.0, backend="reference", fastmath=True)


# ----------------------------------------------------------------------------- cache


def test_new_batch_size_compiles_nothing():
    def f(x, w, b):
        return ((x @ w + b).relu() * 0.5).sum()

    w, b = lucid.randn(6, 4), lucid.randn(4)
    compiled = lucid.compile(f)
    for _ in range(Program.NATIVE_AFTER + 1):
        compiled(lucid.randn(8, 6), w, b)
    before = lucid_jit.cache_info()["numba_compiles"]
    for _ in range(Program.NATIVE_AFTER + 1):
        x = lucid.randn(13, 6)
        np.testing.assert_allclose(compiled(x, w, b).item(), f(x, w, b).item(), rtol=1e-5)
    assert len(compiled.entries) == 2
    assert _program(compiled).tier == "native"
    assert lucid_jit.cache_info()["numba_compiles"] == before


_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import lucid, lucid_jit
    lucid.manual_seed(0)
    w = lucid.randn(6, 4)
    def f(x):
        return (x @ w).tanh().sum(dim=0)
    compiled = lucid.compile(f)
    x = lucid.randn(5, 6)
    for _ in range(4):
        out = compiled(x)
    np.testing.assert_allclose(out.numpy(), f(x).numpy(), rtol=1e-5, atol=1e-6)
    print(json.dumps(lucid_jit.cache_info()))
""")


def _run_script(cache: Path) -> dict:
    env = dict(os.environ, LUCID_JIT_CACHE_DIR=str(cache), LUCID_JIT_NATIVE_AFTER="2")
    done = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_second_process_compiles_nothing_and_a_corrupt_entry_is_rebuilt(tmp_path):
    cache = tmp_path / "cache"
    first = _run_script(cache)
    assert first["numba_compiles"] > 0 and first["graphs_on_disk"] == 1
    second = _run_script(cache)
    assert second["numba_compiles"] == 0 and second["numba_cache_hits"] > 0
    # corrupt the graph module and numba's files: rebuilt, not trusted
    directory = Path(second["dir"])
    (module,) = directory.glob("m_*.py")
    module.write_text(module.read_text().replace("def run(", "def broken(", 1))
    for f in (directory / "__pycache__").iterdir():
        f.write_bytes(b"not a numba cache file")
    third = _run_script(cache)
    assert third["numba_compiles"] > 0
    assert loader.text_hash(module.read_text()) == module.stem[2:]


def test_cache_clear_empties_the_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("LUCID_JIT_CACHE_DIR", str(tmp_path / "c"))
    # a computation no other test compiles (this process may have loaded those already)
    lucid.compile(lambda x: (x.exp() * x.tanh() - x.sigmoid()).abs().sqrt())(lucid.randn(3))
    info = lucid_jit.cache_info()
    assert info["graphs_on_disk"] >= 1 and info["kernels_on_disk"] >= 1
    assert info["dir"].startswith(str(tmp_path))
    lucid_jit.cache_clear()
    info = lucid_jit.cache_info()
    assert info["graphs_on_disk"] == 0 and info["kernels_on_disk"] == 0


def test_large_outputs_are_recycled_once_their_tensors_die():
    x = lucid.randn(1 << 19)  # 2 MiB of float32: pooled
    w, b = lucid.tensor(np.float32(0.5)), lucid.tensor(np.float32(0.1))
    compiled = lucid.compile(_chain)
    for _ in range(Program.NATIVE_AFTER + 1):
        compiled(x, w, b)
    assert len(_program(compiled).pool) == 1
    kept = [compiled(x, w, b) for _ in range(3)]  # alive: three buffers
    assert len({id(t.data) for t in kept}) == 3
    first = id(kept[0].data)
    del kept
    y = compiled(x, w, b)  # the last buffer's tensor died: used again
    assert id(y.data) in {first} | {id(b) for s in _program(compiled).pool for b in s}
    np.testing.assert_allclose(y.numpy(), _chain_eager(x, w, b).numpy(), rtol=2e-6, atol=1e-6)
    z = compiled(x * 2.0, w, b)  # y is alive: z gets another buffer
    assert not np.shares_memory(y.data, z.data)


def test_a_training_step_at_a_new_batch_size_compiles_nothing():
    """Folding makes the mean's gradient seed a fill at any batch size, so the step's graph, and
    its module, are the same text at batch 4 and 7."""
    _, _, step = _adam_step()
    compiled = lucid.compile(step)
    for _ in range(Program.NATIVE_AFTER + 2):
        compiled(lucid.rand(4, 8), lucid.randint(0, 2, (4, 2)).float())
    before = lucid_jit.cache_info()["numba_compiles"]
    for _ in range(Program.NATIVE_AFTER + 1):
        compiled(lucid.rand(7, 8), lucid.randint(0, 2, (7, 2)).float())
    assert lucid_jit.cache_info()["numba_compiles"] == before
    assert _program(compiled).tier == "native"
    texts = {e.backend.program(e.forward).text for e in compiled.entries[1:]}
    assert len(texts) == 1


# ----------------------------------------------------------------------------- heavy nodes


def _two_layers(x, w1, w2):
    h = (x @ w1).tanh()
    h = h - h.mean(dim=1, keepdim=True)  # light kernels between the matmuls
    h = h / (h * h).sum(dim=1, keepdim=True).sqrt()
    return (h @ w2).relu().sum(dim=1)


def _two_layers_numpy(x, w1, w2):
    h = np.tanh(x @ w1)
    h = h - h.mean(axis=1, keepdims=True)
    h = h / np.sqrt((h * h).sum(axis=1, keepdims=True))
    return np.maximum(h @ w2, 0).sum(axis=1)


def test_heavy_nodes_run_from_python_between_native_segments(monkeypatch):
    """Matmuls made heavy: the native tier calls their kernels from a Python segment and
    compiles only the light stretches; values, gradients and the cache check are unchanged."""
    from lucid_jit.codegen.cpu import module, plan

    monkeypatch.setattr(module, "_HEAVY_CHOICES", {})
    monkeypatch.setattr(module, "heavy", plan._has_matmul)
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in ((9, 5), (5, 7), (7, 3))]
    x, w1, w2 = (lucid.tensor(a) for a in arrays)
    w1.requires_grad_(True)
    compiled = lucid.compile(_two_layers)
    for _ in range(Program.NATIVE_AFTER + 1):
        out = compiled(x, w1, w2)
        np.testing.assert_allclose(out.numpy(), _two_layers_numpy(*arrays), rtol=1e-5, atol=1e-5)
        out.sum().backward()
        got, w1.grad = w1.grad.numpy(), None
        x64, w64, w2_64 = (a.astype(np.float64) for a in arrays)
        want = _finite_difference(
            lambda w, x64=x64, w2_64=w2_64: _two_layers_numpy(x64, w, w2_64).sum(), w64)
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)
    program = _program(compiled)
    assert program.tier == "native"
    native = program.module.NATIVE
    python = [f for f in native if not hasattr(f, "signatures")]
    assert python and len(python) < len(native), native  # both kinds of segment
    assert all(f.__name__.startswith("segment") for f in python)
    assert "heavy kernels" in program.text
    assert loader.native_cached(program.text)


def _finite_difference(f, w, eps=1e-6):
    grad = np.zeros_like(w)
    for i in np.ndindex(w.shape):
        up, down = w.copy(), w.copy()
        up[i] += eps
        down[i] -= eps
        grad[i] = (f(up) - f(down)) / (2 * eps)
    return grad


def test_a_heavy_choice_stays_with_the_graph_at_a_new_batch_size(monkeypatch):
    """Heaviness depends on sizes, the module text must not: a batch size that would tip the
    matmuls back to light makes the same text, and compiles nothing."""
    from lucid_jit.codegen.cpu import module, plan

    monkeypatch.setattr(module, "_HEAVY_CHOICES", {})
    monkeypatch.setattr(module, "heavy",
                        lambda n: plan._has_matmul(n) and n.outputs[0].shape[0] >= 8)
    w1, w2 = lucid.randn(5, 7), lucid.randn(7, 3)
    compiled = lucid.compile(_two_layers)
    for _ in range(Program.NATIVE_AFTER + 1):
        compiled(lucid.randn(9, 5), w1, w2)
    before = lucid_jit.cache_info()["numba_compiles"]
    for _ in range(Program.NATIVE_AFTER + 1):
        x = lucid.randn(4, 5)
        np.testing.assert_allclose(compiled(x, w1, w2).numpy(),
                                   _two_layers_numpy(x.numpy(), w1.numpy(), w2.numpy()),
                                   rtol=1e-5, atol=1e-5)
    first, second = (e.backend.program(e.forward) for e in compiled.entries)
    assert first.text == second.text and "heavy kernels" in first.text
    assert lucid_jit.cache_info()["numba_compiles"] == before


def test_the_cost_model_keeps_small_steps_native_and_splits_large_matmuls():
    from lucid import ops
    from lucid_jit.codegen.cpu import plan
    from lucid_jit.ir.graph import Node, Value

    def matmul(m, k, n):
        a, b = Value((m, k), np.dtype(np.float32)), Value((k, n), np.dtype(np.float32))
        return Node(ops.matmul, [a, b], [Value((m, n), np.dtype(np.float32))], {})

    assert not plan.heavy(matmul(32, 64, 128))  # the seed MLP's first layer: ~30 us
    assert plan.heavy(matmul(512, 512, 512))  # ~13 ms
    assert 0 < plan.work_ns(matmul(32, 64, 128)) < plan.work_ns(matmul(64, 64, 128))


def test_a_long_run_of_light_nodes_is_cut_into_bounded_segments():
    # numba's compile time grows faster than a function's length: no segment exceeds
    # SEGMENT_NODES nodes, whatever the graph, and the pieces compute what one function would.
    from lucid_jit.codegen.cpu import module

    ws = [lucid.tensor(np.eye(3, dtype=np.float32) * (1.0 + 0.01 * k)) for k in range(60)]

    def chain(x):
        for w in ws:
            x = x @ w
        return x

    compiled = lucid.compile(chain)
    x = lucid.ones(2, 3)
    out = compiled(x)
    program = _program(compiled)
    n_nodes = len(program.graph.nodes)
    assert n_nodes > module.SEGMENT_NODES == 40
    assert program.emitted.segments >= -(-n_nodes // module.SEGMENT_NODES)
    np.testing.assert_allclose(out.numpy(), chain(x).numpy(), rtol=1e-5)
