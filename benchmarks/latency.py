"""How long a user waits: fresh processes from start to the N-th training step done.

Run as `python -m benchmarks.latency [--quick] [--out PATH]` (part of `make bench`). Each figure
is the wall time of a whole fresh process (interpreter start, imports, building the model, N
steps of benchmarks.peers' rows), which loads only the system it times:

- lucid.compile "async" (the default) and "sync", with an empty cache (cold) and again with the
  cache the cold run filled (warm). An async process's workers finish, after it exits, the
  compile they started: "async again" is a second process started at once (while they may still
  compile), "async warm" one started once they are done;
- jax.jit (where installed; it keeps no compile cache across processes by default, so its cold
  and warm runs are alike).

Targets (issue "A compile pipeline that never stalls the user"): the seed MLP's 300 steps from a
cold cache within 1.5x jax.jit's time; the CIFAR Net and the tiny GPT reach their 30th step from a
cold cache within a warm process's time plus 3 s; the seed step's first call at a new batch size
(after it runs native) within 20 ms, with no numba compile. Runs are in sequence (never two
processes at once: the machine has 2 cores and the async mode's workers use them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
STEPS = {"seed_mlp": 300, "cifar_net": 30, "tiny_gpt": 30}


def _child(system: str, row: str, steps: int) -> None:
    """In the timed process: `steps` training steps of `row` on `system`."""
    from benchmarks import peers

    if system == "jax":
        run = peers._jax_step(row)
    else:
        run = peers._step(peers._Lib("lucid"), row, compiled=True)
    for _ in range(steps):
        run()
    print("DONE", flush=True)


def _time(system: str, row: str, steps: int, cache: str, mode: str = "sync") -> float:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env.update(LUCID_JIT_CACHE_DIR=cache, LUCID_JIT_MODE=mode,
               BENCH_PEERS="jax" if system == "jax" else "")
    code = f"from benchmarks.latency import _child; _child({system!r}, {row!r}, {steps})"
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=1800)
    wall = time.perf_counter() - t
    if done.returncode != 0 or "DONE" not in done.stdout:
        raise RuntimeError(f"{system} {row} failed:\n{done.stderr[-3000:]}")
    return wall


def _new_batch_child(row: str) -> None:
    """In the timed process: the row's step compiled ("sync") and called until it runs native,
    then its first call at each of three new batch sizes (3/4, 5/8 and 1/2 of the batch): each
    call's ms and numba compiles, and the tiers, as JSON."""
    import lucid
    import lucid_jit
    from benchmarks import peers

    lib = peers._Lib("lucid")
    params, x, y = peers._data(row)
    _, forward, loss_fn, _, _, opt_name, lr = peers.ROWS[row]
    p = {k: lib.tensor(v, requires_grad=k not in peers.FROZEN) for k, v in params.items()}
    trained = [t for k, t in p.items() if k not in peers.FROZEN]
    opt = (lucid.optim.SGD(trained, lr=lr, momentum=0.9) if opt_name == "sgd"
           else lucid.optim.Adam(trained, lr=lr))

    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(lib.F, forward(lib.F, p, x), y)
        loss.backward()
        opt.step()
        return loss

    fn = lucid.compile(step, mode="sync")
    tx, ty = lib.tensor(x), lib.tensor(y)
    for _ in range(10):
        fn(tx, ty).item()
    sizes, ms, compiles = [x.shape[0] * k // 8 for k in (6, 5, 4)], [], []
    for n in sizes:
        tx, ty = lib.tensor(x[:n]), lib.tensor(y[:n])
        before = lucid_jit.cache_info()["numba_compiles"]
        t = time.perf_counter()
        fn(tx, ty).item()
        ms.append((time.perf_counter() - t) * 1e3)
        compiles.append(lucid_jit.cache_info()["numba_compiles"] - before)
    e = fn.last_entry
    tiers = [e.backend.program(g).tier for g in (e.forward, e.backward) if g is not None]
    print("NEWBATCH", json.dumps({"batches": sizes, "first_call_ms": ms, "tiers": tiers,
                                  "median_ms": sorted(ms)[1], "compiles": sum(compiles)}))


def new_batch(row: str) -> dict:
    """A new batch size after warm-up, in a fresh process with a cache of its own."""
    cache = tempfile.mkdtemp(prefix="lucid_jit_latency_")
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env.update(LUCID_JIT_CACHE_DIR=cache, BENCH_PEERS="")
    code = f"from benchmarks.latency import _new_batch_child; _new_batch_child({row!r})"
    try:
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=1800)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("NEWBATCH ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"new batch {row} failed:\n{done.stderr[-3000:]}")
    return json.loads(line.split(" ", 1)[1])


def _jax_available() -> bool:
    try:
        import jax  # noqa: F401
    except Exception:  # noqa: BLE001
        return False
    return True


def _workers_of(cache: str) -> list[int]:
    """pids of the compile workers (lucid_jit.codegen.cpu.background) using this cache."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes()
            if b"lucid_jit.codegen.cpu.background" not in cmdline:
                continue
            if f"LUCID_JIT_CACHE_DIR={cache}".encode() in (proc / "environ").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def _wait_for_workers(cache: str, limit: float = 300.0) -> float:
    """Seconds until no compile worker of `cache` is left (the ones an exited process left to
    finish their job)."""
    t = time.perf_counter()
    while _workers_of(cache) and time.perf_counter() - t < limit:
        time.sleep(0.2)
    return time.perf_counter() - t


def bench_row(row: str, steps: int, jax: bool, modes=("async", "sync")) -> dict:
    out: dict = {"steps": steps}
    for mode in modes:
        cache = tempfile.mkdtemp(prefix="lucid_jit_latency_")
        try:
            out[f"lucid_{mode}_cold_s"] = _time("lucid", row, steps, cache, mode)
            if mode == "async":
                out["lucid_async_again_s"] = _time("lucid", row, steps, cache, mode)
                out["lucid_async_finishing_s"] = _wait_for_workers(cache)
            out[f"lucid_{mode}_warm_s"] = _time("lucid", row, steps, cache, mode)
            _wait_for_workers(cache)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    if jax:
        out["jax_s"] = _time("jax", row, steps, tempfile.gettempdir())
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=list(STEPS))
    parser.add_argument("--modes", nargs="*", choices=("async", "sync"),
                        default=["async", "sync"], help="lucid's compile modes to time (a cold "
                        "sync run of the tiny GPT takes minutes)")
    parser.add_argument("--out", type=Path, default=RESULTS / "latency.json")
    args = parser.parse_args(argv)
    jax = _jax_available()
    results = {}
    for row in args.only or STEPS:
        r = results[row] = bench_row(row, STEPS[row], jax, args.modes)
        line = f"{row:9s} {r['steps']} steps, whole process (s): lucid"
        for mode in args.modes:
            line += f" | {mode} cold {r[f'lucid_{mode}_cold_s']:.1f}"
            if mode == "async":
                line += (f" again {r['lucid_async_again_s']:.1f} (its workers done "
                         f"{r['lucid_async_finishing_s']:.1f} s later)")
            line += f" warm {r[f'lucid_{mode}_warm_s']:.1f}"
        if "jax_s" in r:
            line += f" | jax.jit {r['jax_s']:.1f}"
        print(line, flush=True)
        if "async" not in args.modes:
            continue
        if row == "seed_mlp" and "jax_s" in r:
            ratio = r["lucid_async_cold_s"] / r["jax_s"]
            print(f"          async cold / jax.jit {ratio:.2f}x (target <= 1.5x)", flush=True)
        elif row != "seed_mlp":
            extra = r["lucid_async_cold_s"] - r["lucid_async_warm_s"]
            print(f"          async cold - warm {extra:.1f} s (target <= 3 s)", flush=True)
    if "seed_mlp" in (args.only or STEPS):
        nb = results["new_batch_seed_mlp"] = new_batch("seed_mlp")
        times = ", ".join(f"{b}: {t:.1f}" for b, t in zip(nb["batches"], nb["first_call_ms"],
                                                         strict=True))
        print(f"seed_mlp  new batch sizes after warm-up, first call ms ({times}; median "
              f"{nb['median_ms']:.1f}), {nb['compiles']} numba compiles, tiers {nb['tiers']} "
              "(target <= 20 ms, 0 compiles)", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
