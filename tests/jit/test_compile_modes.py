"""The compile modes (lucid_jit/codegen/cpu/background.py): "async" never makes a call wait for
numba (calls run the reference interpreter over the optimized graph until a worker process has
put the native code in the disk cache), "sync" compiles as calls need it, and `precompile`
compiles ahead without running anything. Every path gives eager's results."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

import lucid
import lucid.nn as nn
import lucid_jit
from lucid.optim import Adam
from tests.models import train_step

RTOL = 2e-5


def assert_close(actual, expected, what: str, rtol: float = RTOL) -> None:
    np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=rtol, atol=1e-6,
                               err_msg=what)


def _programs(compiled):
    entry = compiled.last_entry
    graphs = (entry.forward, entry.backward)
    return [entry.backend.program(g) for g in graphs if g is not None]


def _wait(compiled) -> None:
    for program in _programs(compiled):
        for job in program._jobs:
            job.result(timeout=600)


def _net(seed: int):
    lucid.manual_seed(seed)
    return nn.Sequential(nn.Linear(7, 13), nn.Tanh(), nn.Linear(13, 3))


def test_an_async_training_step_runs_at_once_and_goes_native_when_its_code_is_ready():
    models = {mode: _net(11) for mode in ("eager", "async")}
    opts = {mode: Adam(m.parameters(), lr=0.03) for mode, m in models.items()}
    loss_fn = nn.MSELoss()
    steps = {"eager": train_step(models["eager"], opts["eager"], loss_fn),
             "async": lucid.compile(train_step(models["async"], opts["async"], loss_fn),
                                    mode="async")}
    compiles_before = lucid_jit.cache_info()["numba_compiles"]
    batches = [(lucid.randn(5, 7), lucid.randn(5, 3)) for _ in range(12)]
    tiers = []
    for i, (x, y) in enumerate(batches):
        if i == 6:  # let the worker finish: the next call loads its code from the disk cache
            _wait(steps["async"])
        expected = steps["eager"](x, y)
        loss = steps["async"](x, y)
        assert_close(loss, expected, f"step {i}: loss", rtol=RTOL)
        for p, pe in zip(models["async"].parameters(), models["eager"].parameters(),
                         strict=True):
            assert_close(p, pe, f"step {i}: parameter", rtol=RTOL)
        tiers.append(tuple(p.tier for p in _programs(steps["async"])))
        if i == 5:  # nothing compiled in this process while calls ran on the interpreter
            assert lucid_jit.cache_info()["numba_compiles"] == compiles_before
    assert set(tiers[1]) == {"interpreter"}
    assert set(tiers[-1]) == {"native"}, tiers
    compiled = [p for p in _programs(steps["async"]) if p._jobs]
    assert compiled
    # what the worker compiled, per function, is in the program's records and in explain
    (record,) = [r for r in compiled[0].compile_records if r.tier == "native (worker)"]
    assert record.compiles >= 1 and record.numba_seconds > 0
    assert any(name.endswith("native_segment0") for name, _ in record.functions)
    report = str(lucid_jit.explain(steps["async"]))
    assert "native (worker) tier" in report and "native_segment0" in report


def test_async_results_equal_sync_results():
    def f(x, w):
        e = ((x @ w).sin() * 1.75 + x.sum(dim=1, keepdim=True)).exp()
        return e / e.sum(dim=1, keepdim=True)

    w = lucid.randn(6, 6)
    runs = {mode: lucid.compile(f, mode=mode) for mode in ("async", "sync")}
    for i in range(4):
        x = lucid.randn(9, 6)
        want = f(x, w).numpy()
        got = {mode: c(x, w).numpy() for mode, c in runs.items()}
        np.testing.assert_allclose(got["async"], want, rtol=RTOL, atol=1e-6, err_msg=f"{i}")
        np.testing.assert_allclose(got["sync"], got["async"], rtol=RTOL, atol=1e-6)
    assert _programs(runs["sync"])[0].tier == "native"


def test_precompile_compiles_without_running_and_the_first_call_is_native():
    model = _net(5)
    opt = Adam(model.parameters(), lr=0.01)
    before = [p.numpy().copy() for p in model.parameters()]
    step = lucid.compile(train_step(model, opt, nn.MSELoss()), mode="async")
    x, y = lucid.randn(4, 7), lucid.randn(4, 3)
    assert step.precompile(x, y) is step
    for p, b in zip(model.parameters(), before, strict=True):  # nothing ran
        np.testing.assert_array_equal(p.numpy(), b)
    assert all(p.tier == "python" and p.calls == 0 for p in _programs(step))
    assert opt.state == {}
    compiles = lucid_jit.cache_info()["numba_compiles"]
    # (the first real step creates Adam's state: a new signature, traced and run on the
    # interpreter; precompiling it too makes the next calls native at once)
    step(x, y)
    step.precompile(x, y)
    compiles = lucid_jit.cache_info()["numba_compiles"]
    step(x, y)
    assert {p.tier for p in _programs(step)} == {"native"}
    assert lucid_jit.cache_info()["numba_compiles"] == compiles


def test_a_precompiled_module_runs_its_forward_natively_at_once():
    model = _net(8)
    compiled = lucid.compile(model, mode="async")
    x = lucid.randn(3, 7)
    assert compiled.precompile(x) is compiled
    compiles = lucid_jit.cache_info()["numba_compiles"]
    out = compiled(x)
    forward = _programs(compiled._compiled_forward)[0]
    assert forward.tier == "native"
    assert lucid_jit.cache_info()["numba_compiles"] == compiles
    np.testing.assert_allclose(out.numpy(), _net(8)(x).numpy(), rtol=RTOL, atol=1e-6)
    # (the backward was compiled for C-ordered inputs; the forward saves a transposed weight
    # for it, so its first call may compile that layout: it still runs natively and right)
    out.sum().backward()
    eager = _net(8)
    eager(x).sum().backward()
    for p, pe in zip(model.parameters(), eager.parameters(), strict=True):
        np.testing.assert_allclose(p.grad.numpy(), pe.grad.numpy(), rtol=RTOL, atol=1e-6)
    assert {p.tier for p in _programs(compiled._compiled_forward)} == {"native"}


def test_the_worker_compiles_the_layouts_the_call_has():
    """A compiled forward under autograd: its backward's inputs include a transposed (F-order)
    weight and a read-only view; the worker mimics them, so the native call compiles nothing."""
    model = _net(9)
    compiled = lucid.compile(model, mode="async")
    x = lucid.randn(3, 7)
    for _ in range(3):
        compiled(x).sum().backward()
    _wait(compiled._compiled_forward)
    compiles = lucid_jit.cache_info()["numba_compiles"]
    for _ in range(3):  # the first loads the worker's code from the disk cache
        compiled(x).sum().backward()
    assert {p.tier for p in _programs(compiled._compiled_forward)} == {"native"}
    assert lucid_jit.cache_info()["numba_compiles"] == compiles


def test_random_draws_are_eagers_on_the_interpreter_and_on_the_native_tier():
    import lucid.nn.functional as F

    w = lucid.randn(16, 16)

    def f(x):
        return F.dropout((x @ w).relu(), 0.5, training=True).sum(dim=1)

    compiled = lucid.compile(f, mode="async")
    x = lucid.randn(4, 16)
    tiers = []
    for i in range(6):
        if i == 4:
            _wait(compiled)
        lucid.manual_seed(100 + i)
        expected = f(x)
        lucid.manual_seed(100 + i)
        assert_close(compiled(x), expected, f"call {i}")
        tiers.append(_programs(compiled)[0].tier)
    assert tiers[0] == "interpreter" and tiers[-1] == "native", tiers


def test_workers_share_a_large_programs_segments_and_compile_what_the_call_loads(monkeypatch):
    """A step longer than SEGMENT_NODES is several njit functions: each worker compiles its
    share (the others stand in as zeros of their outputs), and the calls then compile nothing."""
    from lucid_jit.codegen.cpu import background, module

    monkeypatch.setattr(module, "SEGMENT_NODES", 6)

    def deep(seed):
        lucid.manual_seed(seed)
        return nn.Sequential(*[m for _ in range(4) for m in (nn.Linear(9, 9), nn.Tanh())],
                             nn.Linear(9, 2))

    models = {mode: deep(21) for mode in ("eager", "async")}
    opts = {mode: Adam(m.parameters(), lr=0.02) for mode, m in models.items()}
    steps = {"eager": train_step(models["eager"], opts["eager"], nn.MSELoss()),
             "async": lucid.compile(train_step(models["async"], opts["async"], nn.MSELoss()),
                                    mode="async")}
    batches = [(lucid.randn(6, 9), lucid.randn(6, 2)) for _ in range(8)]
    for i, (x, y) in enumerate(batches):
        if i == 4:
            _wait(steps["async"])
            compiles = lucid_jit.cache_info()["numba_compiles"]
        assert_close(steps["async"](x, y), steps["eager"](x, y), f"step {i}: loss")
    (program,) = _programs(steps["async"])
    assert program.emitted.segments >= 2
    assert len(program._jobs) == min(background.workers(), program.emitted.segments)
    assert program.tier == "native"
    assert lucid_jit.cache_info()["numba_compiles"] == compiles
    for p, pe in zip(models["async"].parameters(), models["eager"].parameters(), strict=True):
        assert_close(p, pe, "parameter")


def test_an_unknown_mode_is_an_error(monkeypatch):
    with pytest.raises(ValueError, match="mode must be one of async, sync, not 'fast'"):
        lucid.compile(lambda x: x + 1, mode="fast")
    monkeypatch.setenv("LUCID_JIT_MODE", "eager")
    with pytest.raises(ValueError, match="LUCID_JIT_MODE"):
        lucid.compile(lambda x: x + 1)


_EXITS_EARLY = textwrap.dedent("""
    import sys, time
    import lucid, lucid.nn as nn
    import lucid_jit
    from lucid.optim import Adam
    from tests.models import train_step

    lucid.manual_seed(5)
    model = nn.Sequential(nn.Linear(6, 11), nn.Tanh(), nn.Linear(11, 2))
    step = lucid.compile(train_step(model, Adam(model.parameters(), lr=0.01), nn.MSELoss()),
                         mode="async")
    x, y = lucid.randn(4, 6), lucid.randn(4, 2)
    before = lucid_jit.cache_info()["numba_compiles"]
    for _ in range(int(sys.argv[1])):
        step(x, y).item()
    entry = step.last_entry
    program = entry.backend.program(entry.forward)
    if sys.argv[1] == "3":  # the job is with a worker: exit while it compiles
        assert program._jobs
        while not all(job.running() or job.done() for job in program._jobs):
            time.sleep(0.02)
        time.sleep(0.3)
        print("EXITING", all(not job.done() for job in program._jobs), flush=True)
    else:
        print("TIER", program.tier, lucid_jit.cache_info()["numba_compiles"] - before)
""")


def test_a_compile_in_flight_at_exit_finishes_and_the_next_process_runs_native(tmp_path):
    """A process that exits while a worker compiles its step leaves the worker to finish that
    job; the next process finds the native code on disk and runs native from its first call,
    compiling nothing."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    script = tmp_path / "exits_early.py"
    script.write_text(_EXITS_EARLY)
    env = dict(os.environ, LUCID_JIT_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(root),
               LUCID_JIT_NATIVE_AFTER="2", LUCID_JIT_FINISH_AFTER_EXIT_S="120")

    def run(calls: str) -> str:
        done = subprocess.run([sys.executable, str(script), calls], cwd=root, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    assert "EXITING True" in run("3")
    deadline = time.monotonic() + 240
    while not list((tmp_path / "cache").rglob("m_*.native_segment0-*.nbi")):
        assert time.monotonic() < deadline, "the worker did not finish its job after the exit"
        time.sleep(0.5)
    assert "TIER native 0" in run("2")  # the second call: the graph A compiled


def test_one_process_at_a_time_compiles_a_segment(tmp_path):
    """The lock a worker compiles each segment under: a second holder waits for the first."""
    import threading
    import time

    from lucid_jit.codegen.cpu.background import _locked

    lock, order = tmp_path / "m_0.0.lock", []

    def second():
        with _locked(lock):
            order.append("second")

    with _locked(lock):
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.3)
        order.append("first")
    thread.join(timeout=30)
    assert order == ["first", "second"]
    assert (lock.stat().st_mode & 0o777) == 0o600
