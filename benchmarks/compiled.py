"""Compiled benchmarks: `lucid.compile` (the cpu backend, generated numba code) against eager lucid.

Run as `python -m benchmarks.compiled [--quick] [--out PATH]` (or `make bench`, after the eager
benchmark). Five cases:

1. seed 001's training step (Linear 64->128, ReLU, Linear 128->2, Sigmoid, BCE, Adam; batch 32),
   the whole step compiled; also the "python side" of a compiled call (the call minus its native
   program call alone) and the hand-written NumPy step as a reference;
2. a large MLP step (784->1024->1024->10, batch 512, cross-entropy, SGD with momentum) against
   the GEMM floor: the step's matmul FLOPs over NumPy's float32 matmul rate, measured here;
3. an elementwise chain on 16M float32, forward and forward+backward, against a memory floor
   (np.copyto of 64 MiB);
4. seed 004's SimpleCNN on 3x32x32 images, batch 32: eval forward and a training step;
5. compile latency of case 1 in fresh subprocesses: cold (empty cache dir), warm (same dir),
   and a retrace for a new batch size.

Every timing of a case is taken side by side in one process, interleaved round by round, so
machine noise hits all alike; each figure is the median over rounds. Compiled functions are warmed
up (traced, compiled, on the native tier) before timing, and their first results are checked
against eager. Where `import torch` works, cases 1-3 also get torch eager and `torch.compile`
columns. Prints a table and writes JSON to benchmarks/results/compiled.json. A case that fails
is skipped with a printed note (and the exit status is 1).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

try:  # the peer loads first: lucid's process settings (made at its first compile) come after
    import torch  # noqa: F401
except Exception:  # noqa: BLE001 (absent or broken: no torch columns)
    pass

import numba  # noqa: E402
import numpy as np  # noqa: E402

import lucid  # noqa: E402
import lucid.nn as nn
import lucid.nn.functional as F  # noqa: N812
import lucid_jit
from benchmarks.run import SeedMLP, _numpy_seed_step, _time_per_call
from examples.simple_cnn import SimpleCNN

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
WARMUP = 6  # calls before timing: trace, retrace (grads appear), native tier from call 2 on
SETTLE = 0.25  # seconds between timed thunks of the BLAS-heavy cases (see _medians)

TARGETS = {
    "seed_compiled_us": 35.0,  # compiled seed step, at most
    "seed_speedup": 20.0,  # eager / compiled, at least
    "seed_python_side_us": 5.0,  # compiled call minus its native program call, at most
    "large_vs_floor": 1.15,  # compiled large step / GEMM floor, at most
    "chain_forward_ms": 15.0,  # at 16M elements
    "chain_fwd_bwd_ms": 25.0,
    "warm_start_s": 0.3,  # warm cache: compile + first calls to the native tier
    "retrace_ms": 20.0,  # a new batch size with a warm cache
}


# ----------------------------------------------------------------------------- helpers


def _verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


def _medians(thunks: dict, rounds: int, settle: float = 0.0) -> dict[str, float]:
    """{name: (fn, number)} -> {name: median seconds per call}, interleaved round by round.
    A thunk may also be (fn, number, after): `after()` runs after each of its rounds, untimed.

    `settle`: seconds to sleep after each thunk's round. Thread pools spin for a while after
    their work (OpenBLAS ~0.1 s): numpy's OpenBLAS and the one numba's matmuls call (scipy's)
    are two pools, and on a 2-core machine one still spinning slows the next thunk's BLAS
    calls ~3x. Settling times each thunk from a quiet machine, not in another's wake."""
    times: dict[str, list[float]] = {name: [] for name in thunks}
    for _ in range(rounds):
        for name, spec in thunks.items():
            fn, number = spec[0], spec[1]
            times[name].append(_time_per_call(fn, number))
            if len(spec) > 2:
                spec[2]()
            if settle:
                time.sleep(settle)
    return {name: statistics.median(t) for name, t in times.items()}


def _warm(fn, calls: int = WARMUP) -> float:
    """Call fn `calls` times; the seconds they took (tracing and compiling included)."""
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return time.perf_counter() - t0


def _compiles() -> int:
    return lucid_jit.cache_info()["numba_compiles"]


def _tier(compiled) -> str:
    """The tier ("python" or "native") of the forward graph of the entry that ran last."""
    compiled = getattr(compiled, "_compiled_forward", compiled)  # a CompiledModule's function
    entry = compiled.last_entry
    prog = entry.backend.program(entry.forward)
    return prog.tier if prog is not None else "-"


def _close(actual, expected, what: str, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    a = np.asarray(actual.numpy() if hasattr(actual, "numpy") else actual)
    e = np.asarray(expected.numpy() if hasattr(expected, "numpy") else expected)
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol,
                               err_msg=f"{what}: differs from eager lucid")


def _cpu_busy(seconds: float = 1.0) -> float | None:
    """The fraction of all CPUs busy over `seconds` of this process sleeping: other processes'
    load (from /proc/stat; None where there is none). On a small machine it skews every
    multithreaded timing here (BLAS, numba, torch) far beyond what interleaving evens out."""
    def sample():
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1.0 - (idle1 - idle0) / max(total1 - total0, 1)


def _torch():
    """torch, where it imports; None otherwise (it is never a dependency)."""
    try:
        import torch
    except Exception:  # noqa: BLE001 (absent or broken: no torch columns)
        return None
    return torch


def _torch_compile(torch, fn, warm, notes: list[str], what: str):
    """torch.compile(fn), warmed up by `warm(compiled)`; None (with a note) where it fails."""
    try:
        compiled = torch.compile(fn)
        warm(compiled)
    except Exception as exc:  # noqa: BLE001 (torch's failure, not ours: drop the column)
        notes.append(f"{what}: torch.compile failed: {type(exc).__name__}: "
                     f"{str(exc).splitlines()[0] if str(exc) else ''}")
        return None
    return compiled


def _copy_params(torch, tmodel, lmodel) -> None:
    with torch.no_grad():
        for tp, lp in zip(tmodel.parameters(), lmodel.parameters(), strict=True):
            tp.copy_(torch.from_numpy(lp.numpy().copy()))


# ----------------------------------------------------------------------------- 1: seed step



def _training_step(model, opt, loss_fn):
    """The step every case times (lucid or torch alike): forward, loss, backward, update."""

    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step

def _seed_step(batch: int = 32):
    """Seed 001's training step, as a function of (x, y), with its data."""
    lucid.manual_seed(0)
    model = SeedMLP()
    x = lucid.rand(batch, 64)
    y = lucid.randint(0, 2, (batch, 2)).float()
    crit = nn.BCELoss()
    opt = lucid.optim.Adam(model.parameters(), lr=0.01)

    step = _training_step(model, opt, crit)

    return step, x, y, model


def _native_call(compiled, call):
    """(thunk running the compiled call's native program alone, restore): the arguments of
    the program's `run` are captured from one call; `restore()` puts back the arrays it
    writes in place (parameters), so repeated calls do not train the model away."""
    entry = compiled.last_entry
    prog = entry.backend.program(entry.forward)
    if prog.tier != "native":
        raise RuntimeError(f"the compiled step is on the {prog.tier!r} tier after warm-up")
    module = prog.module
    original = module.run
    captured = {}

    def spy(args, *rest, **kw):
        captured["args"] = args
        return original(args, *rest, **kw)

    module.run = spy
    try:
        call()
    finally:
        module.run = original
    args = captured["args"]
    saved = [a.copy() for a in args]
    arena = prog._new_arena()

    def native():
        return module.run(args, prog.D, prog.K, prog.H, prog.C, module.NATIVE,
                          prog.pool.take_all() if prog.pool else (), arena)

    def restore():
        for a, s in zip(args, saved, strict=True):
            np.copyto(a, s)

    return native, restore


def _torch_seed(torch, lmodel, x, y):
    tmodel = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(),
                                 torch.nn.Linear(128, 2), torch.nn.Sigmoid())
    _copy_params(torch, tmodel, lmodel)
    tx, ty = torch.from_numpy(x.numpy().copy()), torch.from_numpy(y.numpy().copy())
    crit = torch.nn.BCELoss()
    opt = torch.optim.Adam(tmodel.parameters(), lr=0.01)

    step = _training_step(tmodel, opt, crit)

    return step, tx, ty


def bench_seed(quick: bool, torch, notes: list[str]) -> dict:
    rounds = 7 if quick else 15
    eager, x, y, _ = _seed_step()
    step, cx, cy, _ = _seed_step()
    compiled = lucid.compile(step)
    c0 = _compiles()
    for i in range(3):  # identically initialised: the same losses, step by step
        _close(compiled(cx, cy), eager(x, y), f"seed step loss, call {i + 1}")
    warm_s = _warm(lambda: compiled(cx, cy))
    numba_compiles = _compiles() - c0
    native, restore = _native_call(compiled, lambda: compiled(cx, cy))
    _warm(lambda: eager(x, y), 20)
    # The NumPy step has no clamping of its own: after ~500 steps on one batch its log
    # overflows. A fresh one per round (untimed) keeps it finite.
    np_step = [_numpy_seed_step()]

    def np_fresh():
        np_step[0] = _numpy_seed_step()

    _warm(np_step[0], 20)
    thunks = {"eager": (lambda: eager(x, y), 10 if quick else 20),
              "compiled": (lambda: compiled(cx, cy), 200 if quick else 500),
              "native": (native, 200 if quick else 500, restore),
              "numpy": (lambda: np_step[0](), 100 if quick else 200, np_fresh)}
    if torch is not None:
        lmodel = _seed_step()[3]  # torch gets the same initial weights and data
        tstep, tx, ty = _torch_seed(torch, lmodel, x, y)
        loss = tstep(tx, ty)
        _close(loss.detach().numpy(), _seed_step()[0](x, y), "torch seed step loss")
        thunks["torch"] = (lambda: tstep(tx, ty), 50 if quick else 100)
        tcomp = _torch_compile(torch, _torch_seed(torch, lmodel, x, y)[0],
                               lambda f: [f(tx, ty) for _ in range(WARMUP)], notes, "seed step")
        if tcomp is not None:
            thunks["torch.compile"] = (lambda: tcomp(tx, ty), 100 if quick else 200)
    np_fresh()
    med = _medians(thunks, rounds)
    for name, loss in (("eager", eager(x, y)), ("compiled", compiled(cx, cy))):
        if not np.isfinite(loss.item()):
            raise AssertionError(f"seed step: the {name} loss is {loss.item()} after timing")
    us = {k: v * 1e6 for k, v in med.items()}
    python_side = us["compiled"] - us["native"]
    speedup = us["eager"] / us["compiled"]
    return {
        "eager_us": us["eager"], "compiled_us": us["compiled"], "native_call_us": us["native"],
        "python_side_us": python_side, "numpy_us": us["numpy"],
        "torch_us": us.get("torch"), "torch_compile_us": us.get("torch.compile"),
        "speedup": speedup, "compiled_vs_numpy": us["compiled"] / us["numpy"],
        "tier": _tier(compiled), "entries": len(compiled.entries),
        "warmup_s": warm_s, "numba_compiles": numba_compiles, "rounds": rounds,
        "targets": {"compiled_us": TARGETS["seed_compiled_us"],
                    "speedup": TARGETS["seed_speedup"],
                    "python_side_us": TARGETS["seed_python_side_us"]},
        "meets": {"compiled_us": us["compiled"] <= TARGETS["seed_compiled_us"],
                  "speedup": speedup >= TARGETS["seed_speedup"],
                  "python_side_us": python_side <= TARGETS["seed_python_side_us"]},
    }


# ----------------------------------------------------------------------------- 2: large step

LARGE = (784, 1024, 1024, 10)
LARGE_BATCH = 512


def _large_step():
    lucid.manual_seed(1)
    i, h1, h2, o = LARGE
    model = nn.Sequential(nn.Linear(i, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU(),
                          nn.Linear(h2, o))
    x = lucid.randn(LARGE_BATCH, i)
    y = lucid.randint(0, o, (LARGE_BATCH,))  # int64 class indices
    opt = lucid.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    step = _training_step(model, opt, F.cross_entropy)

    return step, x, y, model


def _gemm_floor():
    """(thunk running the step's eight float32 matmuls at their shapes and layouts, their
    FLOPs, a thunk for one 512x784 @ 784x1024 matmul, its FLOPs)."""
    rng = np.random.default_rng(0)
    m, (i, h1, h2, o) = LARGE_BATCH, LARGE

    def r(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    x, w1, w2, w3 = r(m, i), r(h1, i), r(h2, h1), r(o, h2)
    a1, a2, g3, g2, g1 = r(m, h1), r(m, h2), r(m, o), r(m, h2), r(m, h1)

    def step_matmuls():
        a1 @ w2.T  # noqa: B018 (each product is what's timed)
        x @ w1.T  # noqa: B018
        a2 @ w3.T  # noqa: B018
        g3 @ w3  # noqa: B018  grad-input, layer 3
        g2 @ w2  # noqa: B018  grad-input, layer 2
        g3.T @ a2  # noqa: B018  grad-weights
        g2.T @ a1  # noqa: B018
        g1.T @ x  # noqa: B018

    flops = 2 * m * (i * h1 + h1 * h2 + h2 * o)  # forward
    flops += 2 * m * (h2 * o + h1 * h2)  # grad-input, layers 3 and 2
    flops += 2 * m * (i * h1 + h1 * h2 + h2 * o)  # grad-weight, all three
    return step_matmuls, flops, (lambda: x @ w1.T), 2 * m * i * h1


def _torch_large(torch, lmodel, x, y):
    i, h1, h2, o = LARGE
    tmodel = torch.nn.Sequential(torch.nn.Linear(i, h1), torch.nn.ReLU(),
                                 torch.nn.Linear(h1, h2), torch.nn.ReLU(),
                                 torch.nn.Linear(h2, o))
    _copy_params(torch, tmodel, lmodel)
    tx, ty = torch.from_numpy(x.numpy().copy()), torch.from_numpy(y.numpy().copy())
    opt = torch.optim.SGD(tmodel.parameters(), lr=0.01, momentum=0.9)

    step = _training_step(tmodel, opt, torch.nn.functional.cross_entropy)

    return step, tx, ty


def bench_large(quick: bool, torch, notes: list[str]) -> dict:
    rounds = 3 if quick else 7
    eager, x, y, _ = _large_step()
    step, cx, cy, _ = _large_step()
    compiled = lucid.compile(step)
    c0 = _compiles()
    for i in range(3):
        _close(compiled(cx, cy), eager(x, y), f"large step loss, call {i + 1}", rtol=1e-4)
    warm_s = _warm(lambda: compiled(cx, cy))
    numba_compiles = _compiles() - c0
    matmuls, flops, one, one_flops = _gemm_floor()
    _warm(matmuls, 3)
    thunks = {"eager": (lambda: eager(x, y), 1), "compiled": (lambda: compiled(cx, cy), 1),
              "matmuls": (matmuls, 1), "one": (one, 3)}
    if torch is not None:
        lmodel = _large_step()[3]
        tstep, tx, ty = _torch_large(torch, lmodel, x, y)
        _close(tstep(tx, ty).detach().numpy(), _large_step()[0](x, y), "torch large step loss",
               rtol=1e-4)
        thunks["torch"] = (lambda: tstep(tx, ty), 1)
        tcomp = _torch_compile(torch, _torch_large(torch, lmodel, x, y)[0],
                               lambda f: [f(tx, ty) for _ in range(WARMUP)], notes, "large step")
        if tcomp is not None:
            thunks["torch.compile"] = (lambda: tcomp(tx, ty), 1)
    med = _medians(thunks, rounds, settle=SETTLE)
    ms = {k: v * 1e3 for k, v in med.items()}
    rate = flops / med["matmuls"]  # FLOP/s over the step's own matmul shapes
    floor_ms = flops / rate * 1e3
    vs_floor = ms["compiled"] / floor_ms
    return {
        "eager_ms": ms["eager"], "compiled_ms": ms["compiled"], "floor_ms": floor_ms,
        "torch_ms": ms.get("torch"), "torch_compile_ms": ms.get("torch.compile"),
        "step_gflop": flops / 1e9, "numpy_gemm_gflops": rate / 1e9,
        "numpy_gemm_512x784x1024_gflops": one_flops / med["one"] / 1e9,
        "speedup": ms["eager"] / ms["compiled"], "compiled_vs_floor": vs_floor,
        "eager_vs_floor": ms["eager"] / floor_ms, "tier": _tier(compiled),
        "entries": len(compiled.entries), "warmup_s": warm_s, "numba_compiles": numba_compiles,
        "rounds": rounds, "target_vs_floor": TARGETS["large_vs_floor"],
        "meets": {"vs_floor": vs_floor <= TARGETS["large_vs_floor"]},
    }


# ----------------------------------------------------------------------------- 3: elementwise


def _chain(w, b, leaky_relu, sigmoid, tanh):
    def f(x):
        return leaky_relu(x * w + b) * sigmoid(x) + tanh(x)

    return f


def bench_chain(quick: bool, torch, notes: list[str]) -> dict:
    n = 2**20 if quick else 2**24
    rounds = 5 if quick else 7
    lucid.manual_seed(2)
    w = lucid.tensor(np.float32(1.5))
    b = lucid.tensor(np.float32(-0.25))
    f = _chain(w, b, F.leaky_relu, F.sigmoid, F.tanh)
    cf = lucid.compile(f)
    x = lucid.randn(n)
    xg = lucid.randn(n, requires_grad=True)
    g = lucid.randn(n)
    c0 = _compiles()
    for _ in range(2):
        _close(cf(x), f(x), "chain forward")

    def fwd_bwd(fn):
        def run():
            xg.grad = None
            fn(xg).backward(g)
        return run

    eager_fb, compiled_fb = fwd_bwd(f), fwd_bwd(cf)
    for _ in range(2):
        eager_fb()
        expected = xg.grad
        compiled_fb()
        _close(xg.grad, expected, "chain input gradient")
    warm_s = _warm(lambda: cf(x)) + _warm(compiled_fb)
    numba_compiles = _compiles() - c0
    src = np.ones(2**24, np.float32)  # 64 MiB, whatever n is: the floor is per 16M elements
    dst = np.empty_like(src)
    thunks = {"eager": (lambda: f(x), 1), "compiled": (lambda: cf(x), 1),
              "eager_fb": (eager_fb, 1), "compiled_fb": (compiled_fb, 1),
              "copy": (lambda: np.copyto(dst, src), 1)}
    if torch is not None:
        tw, tb = torch.tensor(1.5), torch.tensor(-0.25)
        tf = _chain(tw, tb, torch.nn.functional.leaky_relu, torch.sigmoid, torch.tanh)
        tx = torch.from_numpy(x.numpy().copy())
        txg = torch.from_numpy(xg.numpy().copy()).requires_grad_(True)
        tg = torch.from_numpy(g.numpy().copy())
        _close(tf(tx).numpy(), f(x), "torch chain forward")

        def torch_fb(fn):
            def run():
                txg.grad = None
                fn(txg).backward(tg)
            return run

        thunks["torch"] = (lambda: tf(tx), 1)
        thunks["torch_fb"] = (torch_fb(tf), 1)
        tcf = _torch_compile(torch, tf, lambda c: [(c(tx), torch_fb(c)()) for _ in range(3)],
                             notes, "elementwise chain")
        if tcf is not None:
            thunks["torch.compile"] = (lambda: tcf(tx), 1)
            thunks["torch.compile_fb"] = (torch_fb(tcf), 1)
    med = _medians(thunks, rounds, settle=SETTLE)
    ms = {k: v * 1e3 for k, v in med.items()}
    scale = 2**24 / n  # targets and floors are for 16M elements
    fwd_target, fb_target = (t / scale for t in (TARGETS["chain_forward_ms"],
                                                   TARGETS["chain_fwd_bwd_ms"]))
    floor = ms["copy"] / scale
    return {
        "elements": n, "eager_ms": ms["eager"], "compiled_ms": ms["compiled"],
        "eager_fwd_bwd_ms": ms["eager_fb"], "compiled_fwd_bwd_ms": ms["compiled_fb"],
        "torch_ms": ms.get("torch"), "torch_compile_ms": ms.get("torch.compile"),
        "torch_fwd_bwd_ms": ms.get("torch_fb"),
        "torch_compile_fwd_bwd_ms": ms.get("torch.compile_fb"),
        "copy_64mib_ms": ms["copy"], "forward_floor_ms": floor, "fwd_bwd_floor_ms": 2 * floor,
        "speedup": ms["eager"] / ms["compiled"],
        "fwd_bwd_speedup": ms["eager_fb"] / ms["compiled_fb"],
        "tier": _tier(cf), "entries": len(cf.entries), "warmup_s": warm_s,
        "numba_compiles": numba_compiles, "rounds": rounds,
        "targets": {"forward_ms": fwd_target, "fwd_bwd_ms": fb_target},
        "meets": {"forward_ms": ms["compiled"] <= fwd_target,
                  "fwd_bwd_ms": ms["compiled_fb"] <= fb_target},
    }


# ----------------------------------------------------------------------------- 4: SimpleCNN


# The network is examples/simple_cnn.py's (seed 004's).


def _cnn_step():
    """A training step: cross-entropy over the 64 output channels at each of the 8x8
    positions (int64 targets), SGD with momentum."""
    lucid.manual_seed(3)
    model = SimpleCNN()
    x = lucid.randn(32, 3, 32, 32)
    y = lucid.randint(0, 64, (32, 8, 8))
    opt = lucid.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    step = _training_step(model, opt, F.cross_entropy)

    return step, x, y, model


def bench_cnn(quick: bool, torch, notes: list[str]) -> dict:
    rounds = 3 if quick else 5
    _, x, _, model = _cnn_step()
    model.eval()
    cmodel = lucid.compile(model)
    cforward = cmodel._compiled_forward  # its CompiledFunction: entries, tiers
    c0 = _compiles()
    with lucid.no_grad():
        for _ in range(2):
            _close(cmodel(x), model(x), "SimpleCNN eval forward", rtol=1e-4, atol=1e-5)
        fwd_warm_s = _warm(lambda: cmodel(x))
    eager, ex, ey, _ = _cnn_step()
    step, cx, cy, _ = _cnn_step()
    compiled = lucid.compile(step)
    for i in range(3):
        _close(compiled(cx, cy), eager(ex, ey), f"SimpleCNN step loss, call {i + 1}",
               rtol=1e-4)
    step_warm_s = _warm(lambda: compiled(cx, cy))
    numba_compiles = _compiles() - c0

    def forward(fn):
        def run():
            with lucid.no_grad():
                return fn(x)
        return run

    thunks = {"eager": (forward(model), 1), "compiled": (forward(cmodel), 1),
              "eager_step": (lambda: eager(ex, ey), 1),
              "compiled_step": (lambda: compiled(cx, cy), 1)}
    med = _medians(thunks, rounds, settle=SETTLE)
    ms = {k: v * 1e3 for k, v in med.items()}
    return {
        "batch": 32, "eager_ms": ms["eager"], "compiled_ms": ms["compiled"],
        "eager_step_ms": ms["eager_step"], "compiled_step_ms": ms["compiled_step"],
        "speedup": ms["eager"] / ms["compiled"],
        "step_speedup": ms["eager_step"] / ms["compiled_step"],
        "tier": _tier(cmodel), "step_tier": _tier(compiled),
        "entries": len(cforward.entries), "step_entries": len(compiled.entries),
        "warmup_s": fwd_warm_s + step_warm_s, "numba_compiles": numba_compiles,
        "rounds": rounds,
    }


# ----------------------------------------------------------------------------- 5: latency


def _latency_child(retrace: bool) -> None:
    """Runs in a fresh process (see bench_latency): prints one line, LATENCY {json}."""
    step, x, y, _ = _seed_step()
    before = lucid_jit.cache_info()
    c0, h0 = before["numba_compiles"], before["numba_cache_hits"]
    t0 = time.perf_counter()
    compiled = lucid.compile(step)
    ends, tiers = [], []
    while len(ends) < 3 or (tiers[-1] != "native" and len(ends) < 8):
        compiled(x, y)
        ends.append(time.perf_counter() - t0)
        tiers.append(_tier(compiled))
    native_at = tiers.index("native") + 1 if "native" in tiers else None
    info = lucid_jit.cache_info()
    out = {"call1_s": ends[0], "calls1to3_s": ends[2], "ready_s": ends[-1],
           "native_at_call": native_at, "tiers": tiers, "entries": len(compiled.entries),
           "numba_compiles": info["numba_compiles"] - c0,
           "numba_cache_hits": info["numba_cache_hits"] - h0,
           "on_disk_before": {k: before[k] for k in ("graphs_on_disk", "kernels_on_disk",
                                                     "numba_files")},
           "cache_dir": info["dir"]}
    if retrace:
        _warm(lambda: compiled(x, y), 5)
        x64, y64 = lucid.rand(64, 64), lucid.randint(0, 2, (64, 2)).float()
        c1, entries = _compiles(), len(compiled.entries)
        t = time.perf_counter()
        compiled(x64, y64)
        out.update(retrace_s=time.perf_counter() - t, retrace_numba_compiles=_compiles() - c1,
                   retrace_new_entries=len(compiled.entries) - entries,
                   retrace_tier=_tier(compiled))
        c2 = _compiles()  # and the next call at batch 64 (the native tier, where it moves)
        t = time.perf_counter()
        compiled(x64, y64)
        out.update(retrace_call2_s=time.perf_counter() - t,
                   retrace_call2_numba_compiles=_compiles() - c2,
                   retrace_call2_tier=_tier(compiled))
    print("LATENCY " + json.dumps(out), flush=True)


def _run_child(cache_dir: str, retrace: bool) -> dict:
    env = dict(os.environ, LUCID_JIT_CACHE_DIR=cache_dir)
    code = f"from benchmarks.compiled import _latency_child; _latency_child({retrace})"
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    wall = time.perf_counter() - t
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("LATENCY ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"latency subprocess failed (exit {proc.returncode}):\n"
                           f"{proc.stdout[-2000:]}{proc.stderr[-4000:]}")
    return dict(json.loads(lines[-1][len("LATENCY "):]), process_wall_s=wall)


def bench_latency(quick: bool, torch, notes: list[str]) -> dict:
    cache_dir = tempfile.mkdtemp(prefix="lucid_jit_bench_")
    try:
        cold = _run_child(cache_dir, retrace=False)
        warm = _run_child(cache_dir, retrace=True)
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    retrace_ms = warm["retrace_s"] * 1e3
    return {
        "cold": cold, "warm": warm, "retrace_ms": retrace_ms,
        "retrace_numba_compiles": warm["retrace_numba_compiles"],
        "targets": {"warm_ready_s": TARGETS["warm_start_s"], "retrace_ms": TARGETS["retrace_ms"],
                    "retrace_numba_compiles": 0},
        "meets": {"warm_ready_s": warm["ready_s"] <= TARGETS["warm_start_s"],
                  "retrace_ms": retrace_ms <= TARGETS["retrace_ms"],
                  "retrace_numba_compiles": warm["retrace_numba_compiles"] == 0},
    }


# ----------------------------------------------------------------------------- report


def _opt(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _row(label: str, *cells: str) -> str:
    return f"{label:<18}" + "".join(f"{c:>12}" for c in cells)


def _print_seed(r: dict) -> None:
    print("1. Seed 001 training step (Linear 64->128, ReLU, Linear 128->2, Sigmoid, BCE, Adam; "
          "batch 32), microseconds per step")
    print(_row("", "us/step", "vs compiled"))
    c = r["compiled_us"]
    for label, key in (("lucid eager", "eager_us"), ("lucid.compile", "compiled_us"),
                       ("  native call", "native_call_us"), ("numpy by hand", "numpy_us"),
                       ("torch eager", "torch_us"), ("torch.compile", "torch_compile_us")):
        v = r[key]
        if v is None:  # no torch here
            continue
        print(_row(label, _opt(v, ".1f"), "-" if v is None else f"{v / c:.2f}x"))
    t, m = r["targets"], r["meets"]
    print(f"compiled {c:.1f} us (target <= {t['compiled_us']:.0f} us: "
          f"{_verdict(m['compiled_us'])}); speedup over eager {r['speedup']:.1f}x (target >= "
          f"{t['speedup']:.0f}x: {_verdict(m['speedup'])})")
    print(f"python side of a compiled call {r['python_side_us']:.1f} us (target <= "
          f"{t['python_side_us']:.0f} us: {_verdict(m['python_side_us'])}); compiled / numpy "
          f"{r['compiled_vs_numpy']:.2f}x; tier {r['tier']}, {r['entries']} entries")


def _print_large(r: dict) -> None:
    print(f"2. Large MLP step (784->1024->1024->10, ReLU, batch {LARGE_BATCH}, cross-entropy, "
          "SGD momentum), milliseconds per step")
    print(_row("", "ms/step", "vs floor"))
    f = r["floor_ms"]
    for label, key in (("lucid eager", "eager_ms"), ("lucid.compile", "compiled_ms"),
                       ("GEMM floor", "floor_ms"), ("torch eager", "torch_ms"),
                       ("torch.compile", "torch_compile_ms")):
        v = r[key]
        if v is None:  # no torch here
            continue
        print(_row(label, _opt(v, ".2f"), "-" if v is None else f"{v / f:.2f}x"))
    print(f"floor: {r['step_gflop']:.2f} GFLOP of matmuls at numpy's {r['numpy_gemm_gflops']:.1f}"
          f" GFLOP/s (the step's shapes; 512x784 @ 784x1024 alone: "
          f"{r['numpy_gemm_512x784x1024_gflops']:.1f} GFLOP/s)")
    print(f"compiled / floor {r['compiled_vs_floor']:.2f}x (target <= {r['target_vs_floor']:.2f}x:"
          f" {_verdict(r['meets']['vs_floor'])}); speedup over eager {r['speedup']:.2f}x; "
          f"tier {r['tier']}")


def _print_chain(r: dict) -> None:
    n = r["elements"]
    print(f"3. Elementwise chain leaky_relu(x*w + b) * sigmoid(x) + tanh(x), {n} float32 "
          f"(2**{n.bit_length() - 1}), milliseconds")
    print(_row("", "forward", "fwd+bwd"))
    for label, a, b in (("lucid eager", "eager_ms", "eager_fwd_bwd_ms"),
                        ("lucid.compile", "compiled_ms", "compiled_fwd_bwd_ms"),
                        ("memory floor", "forward_floor_ms", "fwd_bwd_floor_ms"),
                        ("torch eager", "torch_ms", "torch_fwd_bwd_ms"),
                        ("torch.compile", "torch_compile_ms", "torch_compile_fwd_bwd_ms")):
        if r[a] is None and r[b] is None:  # no torch here
            continue
        print(_row(label, _opt(r[a], ".2f"), _opt(r[b], ".2f")))
    t, m = r["targets"], r["meets"]
    print(f"forward {r['compiled_ms']:.2f} ms (target <= {t['forward_ms']:.2f} ms: "
          f"{_verdict(m['forward_ms'])}), {r['speedup']:.1f}x eager, "
          f"{r['compiled_ms'] / r['forward_floor_ms']:.2f}x floor; fwd+bwd "
          f"{r['compiled_fwd_bwd_ms']:.2f} ms (target <= {t['fwd_bwd_ms']:.2f} ms: "
          f"{_verdict(m['fwd_bwd_ms'])}), {r['fwd_bwd_speedup']:.1f}x eager, "
          f"{r['compiled_fwd_bwd_ms'] / r['fwd_bwd_floor_ms']:.2f}x floor")
    print(f"floor: np.copyto of 64 MiB {r['copy_64mib_ms']:.2f} ms (x read, y write); "
          "fwd+bwd floor 2x that" + ("" if n == 2**24 else f", scaled to {n} elements"))


def _print_cnn(r: dict) -> None:
    print("4. Seed 004 SimpleCNN, 3x32x32, batch 32, milliseconds")
    print(_row("", "eval fwd", "train step"))
    print(_row("lucid eager", f"{r['eager_ms']:.2f}", f"{r['eager_step_ms']:.2f}"))
    print(_row("lucid.compile", f"{r['compiled_ms']:.2f}", f"{r['compiled_step_ms']:.2f}"))
    print(f"compiled is {r['speedup']:.2f}x eager (forward), {r['step_speedup']:.2f}x eager "
          f"(step); tiers {r['tier']}/{r['step_tier']}")


def _print_latency(r: dict) -> None:
    print("5. Compile latency of the seed step, fresh processes (LUCID_JIT_CACHE_DIR: a new "
          "temp dir), seconds from lucid.compile")
    print(_row("", "call 1", "calls 1-3", "to native", "at call", "compiles", "cache hits"))
    for label in ("cold", "warm"):
        c = r[label]
        print(_row(label, f"{c['call1_s']:.3f}", f"{c['calls1to3_s']:.3f}", f"{c['ready_s']:.3f}",
                   str(c["native_at_call"]), str(c["numba_compiles"]),
                   str(c["numba_cache_hits"])))
    t, m, w = r["targets"], r["meets"], r["warm"]
    print(f"warm start {r['warm']['ready_s']:.3f} s (target <= {t['warm_ready_s']} s: "
          f"{_verdict(m['warm_ready_s'])}); retrace to batch 64: {r['retrace_ms']:.1f} ms "
          f"(target <= {t['retrace_ms']:.0f} ms: {_verdict(m['retrace_ms'])}), "
          f"{r['retrace_numba_compiles']} numba compiles (target 0: "
          f"{_verdict(m['retrace_numba_compiles'])}), tier {w['retrace_tier']}; its next call "
          f"{w['retrace_call2_s'] * 1e3:.1f} ms, {w['retrace_call2_numba_compiles']} compiles, "
          f"tier {w['retrace_call2_tier']}")


CASES = {
    "seed_step": (bench_seed, _print_seed),
    "large_step": (bench_large, _print_large),
    "elementwise_chain": (bench_chain, _print_chain),
    "simple_cnn": (bench_cnn, _print_cnn),
    "compile_latency": (bench_latency, _print_latency),
}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer rounds, a 2**20-element chain (a smoke run)")
    parser.add_argument("--out", type=Path, default=RESULTS / "compiled.json")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    busy_before = _cpu_busy()
    if busy_before is not None and busy_before > 0.2:
        print(f"WARNING: other processes keep {busy_before:.0%} of the CPUs busy; multithreaded "
              "timings (BLAS, numba, torch) will be skewed, by up to 100x\n", flush=True)
    torch = _torch()
    notes: list[str] = []
    results: dict = {}
    failed = []
    for name, (bench, report) in CASES.items():
        t = time.perf_counter()
        try:
            r = bench(args.quick, torch, notes)
        except Exception as exc:  # noqa: BLE001 (report it and go on with the other cases)
            failed.append(name)
            results[name] = {"error": f"{type(exc).__name__}: {exc}",
                             "traceback": traceback.format_exc()}
            print(f"{name}: SKIPPED, it failed:\n{traceback.format_exc()}", flush=True)
            continue
        r["seconds"] = time.perf_counter() - t
        results[name] = r
        report(r)
        print(f"({r['seconds']:.0f} s)\n", flush=True)
    for note in notes:
        print("note:", note)
    machine = {"python": sys.version.split()[0], "numpy": np.__version__,
               "numba": numba.__version__, "platform": platform.platform(),
               "processor": platform.machine(), "cpus": os.cpu_count(),
               "torch": None if torch is None else torch.__version__,
               "jit_cache_dir": lucid_jit.cache_info()["dir"],
               "native_after": os.environ.get("LUCID_JIT_NATIVE_AFTER", "2"),
               "cpu_busy_before": busy_before, "cpu_busy_after": _cpu_busy()}
    result = {"benchmark": "compiled", "quick": args.quick, "machine": machine, **results,
              "notes": notes, "failed": failed, "seconds": time.perf_counter() - started}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out} ({result['seconds']:.0f} s)")
    if failed:
        print(f"{len(failed)} case(s) failed and were skipped: {', '.join(failed)}")
        sys.exit(1)
    return result


if __name__ == "__main__":
    main()
