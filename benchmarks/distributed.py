"""Data-parallel steps per second with 1 and 2 processes (weak scaling: the same batch per rank).

For the seed MLP (batch 32 per rank, Adam) and the large MLP (784-1024-1024-10, batch 512 per
rank, SGD with momentum), each wrapped in DistributedDataParallel inside one compiled training
step, this runs `mpiexec -n 1` and `mpiexec -n 2` jobs and records per step: the wall time, the
time in collectives (rank 0's waits included: a faster rank waits for a slower one there), and
the bytes all-reduced. From the bytes it estimates what a ring all-reduce would cost over a 10
and a 100 Gb/s network (each rank sends and receives 2 (n - 1) / n of the buckets' bytes).

    python -m benchmarks.distributed [--steps N] [--out FILE]

Three jobs per model: one process with every core (its BLAS threads), one process with the
threads of one rank, and two ranks with cores / 2 threads each (ranks sharing a machine must split
its cores: two ranks of two BLAS threads each on 2 cores ran 3x slower per step). On a 2-core
machine two ranks share the cores one process had to itself, so the figures show the cost of the
collectives and what scaling to more machines would keep, not a speedup on this one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
MODELS = ("seed_mlp", "large_mlp")
NETWORKS = {"10 Gb/s": 10e9, "100 Gb/s": 100e9}


def worker(model_name: str, steps: int) -> None:
    """One rank of the job: warm the compiled step to its native tier, then time it."""
    os.environ.setdefault("LUCID_JIT_MODE", "sync")
    import lucid
    import lucid.distributed as dist
    from benchmarks.compiled import _large_step, _seed_step, _training_step
    from lucid.nn.parallel import DistributedDataParallel

    dist.init()
    _, x, y, model = _seed_step() if model_name == "seed_mlp" else _large_step()
    ddp = DistributedDataParallel(model)
    if model_name == "seed_mlp":
        opt, loss_fn = lucid.optim.Adam(ddp.parameters(), lr=0.01), lucid.nn.BCELoss()
    else:
        opt = lucid.optim.SGD(ddp.parameters(), lr=0.01, momentum=0.9)
        loss_fn = lucid.nn.functional.cross_entropy
    step = lucid.compile(_training_step(ddp, opt, loss_fn))
    for _ in range(5):
        step(x, y)
    dist.barrier()
    dist.reset_stats()
    rounds = []
    for _ in range(3):
        dist.barrier()
        start = time.perf_counter()
        for _ in range(steps):
            step(x, y)
        dist.barrier()
        rounds.append((time.perf_counter() - start) / steps)
    s = dist.stats()
    barrier_s = s.seconds.get("barrier", 0.0)
    total = s.total()
    out = {"model": model_name, "ranks": dist.get_world_size(),
           "step_ms": sorted(rounds)[1] * 1e3,
           "collective_ms_per_step": (total["seconds"] - barrier_s) / (3 * steps) * 1e3,
           "allreduce_bytes_per_step": s.bytes.get("all_reduce", 0) / (3 * steps),
           "allreduce_calls_per_step": s.calls.get("all_reduce", 0) / (3 * steps),
           "gradient_bytes": sum(p.data.nbytes for p in model.parameters()),
           "buckets": len(ddp.reducer.buckets)}
    if dist.get_rank() == 0:
        print("RESULT " + json.dumps(out), flush=True)


def _job(model: str, ranks: int, steps: int, threads: int | None = None) -> dict:
    """One job's result; `threads` limits each rank's BLAS and parallel-loop threads."""
    mpiexec = Path(sys.executable).parent / "mpiexec"
    env = dict(os.environ)
    if threads:
        env.update({k: str(threads) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                               "NUMBA_NUM_THREADS")})
    done = subprocess.run([str(mpiexec), "-n", str(ranks), sys.executable, "-m",
                           "benchmarks.distributed", "--worker", model, "--steps", str(steps)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    if done.returncode:
        raise RuntimeError(f"{model} with {ranks} ranks failed:\n{done.stderr[-3000:]}")
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def ring_seconds(nbytes: float, ranks: int, bits_per_s: float) -> float:
    """A ring all-reduce's transfer time: each rank sends 2 (n - 1) / n of the bytes."""
    return 2 * (ranks - 1) / ranks * nbytes * 8 / bits_per_s


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker")
    parser.add_argument("--steps", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS / "distributed.json"))
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.steps)
        return
    results = []
    for model in MODELS:
        steps = args.steps or (300 if model == "seed_mlp" else 20)
        cores = os.cpu_count() or 1
        # One process with every core; then one core each, as ranks sharing a machine
        # should run (cores / ranks-per-machine threads each, as torchrun's one).
        whole = _job(model, 1, steps)
        one, two = _job(model, 1, steps, max(1, cores // 2)), _job(model, 2, steps,
                                                                    max(1, cores // 2))
        nbytes = two["allreduce_bytes_per_step"]
        compute_ms = one["step_ms"]
        estimates = {}
        for net, bw in NETWORKS.items():
            for n in (2, 8, 64):
                comm_ms = ring_seconds(nbytes, n, bw) * 1e3
                estimates[f"{net}, {n} ranks"] = {
                    "allreduce_ms": comm_ms,
                    "steps_per_s_no_overlap": 1e3 / (compute_ms + comm_ms),
                    "steps_per_s_full_overlap": 1e3 / max(compute_ms, comm_ms)}
        results.append({"model": model, "whole_machine": whole, "one": one, "two": two,
                        "steps_per_s": {"1": 1e3 / one["step_ms"], "2": 1e3 / two["step_ms"]},
                        "weak_scaling_efficiency": one["step_ms"] / two["step_ms"],
                        "samples_per_s_vs_whole_machine_one_process":
                            2 * whole["step_ms"] / two["step_ms"],
                        "network_estimates": estimates})
    RESULTS.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print("\nData-parallel training (compiled DDP step; weak scaling, same batch per rank)")
    print(f"{'model':10} {'ranks':>5} {'threads':>8} {'ms/step':>9} {'steps/s':>8} "
          f"{'coll ms':>8} {'MB/step':>8} {'buckets':>7}")
    for r in results:
        for run, threads in ((r["whole_machine"], "all"), (r["one"], "1/rank"),
                             (r["two"], "1/rank")):
            print(f"{r['model']:10} {run['ranks']:5d} {threads:>8} {run['step_ms']:9.2f} "
                  f"{1e3 / run['step_ms']:8.1f} {run['collective_ms_per_step']:8.3f} "
                  f"{run['allreduce_bytes_per_step'] / 1e6:8.3f} {run['buckets']:7d}")
        print(f"  weak-scaling efficiency (1 rank / 2 ranks, per-step time, equal threads per "
              f"rank): {r['weak_scaling_efficiency']:.2f}; 2 ranks' samples/s vs one process "
              f"using the whole machine: {r['samples_per_s_vs_whole_machine_one_process']:.2f}x")
        for name, e in r["network_estimates"].items():
            print(f"  {name:22}: all-reduce {e['allreduce_ms']:8.3f} ms/step -> "
                  f"{e['steps_per_s_no_overlap']:7.1f} steps/s without overlap, "
                  f"{e['steps_per_s_full_overlap']:7.1f} with full overlap")
    print(f"(written to {args.out})")


if __name__ == "__main__":
    main()
