"""Does lucid slow down the libraries it shares a process with? PyTorch's training steps timed in
fresh processes, alone and after lucid has been imported and has run compiled code.

Run as `python -m benchmarks.neighbours [--rounds N] [--out PATH]` (part of `make bench`; skipped
where torch is not installed: it is never a dependency). Variants, each in its own process:

- `torch`: import torch, time its steps;
- `lucid first`: import lucid and lucid_jit, compile and run a training step (BLAS matmuls) and a
  16M-element elementwise chain (numba's parallel loops), then import torch and time its steps;
- `omp passive`: OMP_WAIT_POLICY=PASSIVE in the environment before torch loads, as lucid_jit
  once set it at import: the effect the first variant must not have.

Processes of the variants alternate round by round (these machines are noisy) and each figure is
the median over rounds of each process's median step time. Torch's steps: the seed MLP
(64->128->2, BCE, Adam, batch 32) and an MNIST-sized MLP (784->512->512->10, cross-entropy, SGD
momentum, batch 64). Writes benchmarks/results/neighbours.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("torch", "lucid first", "omp passive")


def _run_lucid() -> None:
    """Compiled lucid code that starts every pool and setting lucid_jit uses."""
    import lucid
    import lucid.nn as nn
    import lucid.nn.functional as F  # noqa: N812

    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 2), nn.Sigmoid())
    opt = lucid.optim.Adam(model.parameters(), lr=0.01)
    x, y = lucid.rand(32, 64), lucid.randint(0, 2, (32, 2)).float()

    @lucid.compile
    def step(x, y):
        loss = F.binary_cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    chain = lucid.compile(lambda a: F.leaky_relu(a * 2.0 + 1.0) * a.sigmoid() + a.tanh())
    big = lucid.randn(1 << 24)
    for _ in range(4):
        step(x, y)
        chain(big)


def _torch_steps(rounds: int) -> dict[str, float]:
    import torch
    import torch.nn as tnn

    torch.manual_seed(0)
    seed = tnn.Sequential(tnn.Linear(64, 128), tnn.ReLU(), tnn.Linear(128, 2), tnn.Sigmoid())
    seed_opt = torch.optim.Adam(seed.parameters(), lr=0.01)
    sx, sy = torch.rand(32, 64), torch.randint(0, 2, (32, 2)).float()
    mnist = tnn.Sequential(tnn.Linear(784, 512), tnn.ReLU(), tnn.Linear(512, 512), tnn.ReLU(),
                           tnn.Linear(512, 10))
    mnist_opt = torch.optim.SGD(mnist.parameters(), lr=0.01, momentum=0.9)
    mx, my = torch.randn(64, 784), torch.randint(0, 10, (64,))

    def seed_step():
        loss = tnn.functional.binary_cross_entropy(seed(sx), sy)
        seed_opt.zero_grad()
        loss.backward()
        seed_opt.step()

    def mnist_step():
        loss = tnn.functional.cross_entropy(mnist(mx), my)
        mnist_opt.zero_grad()
        loss.backward()
        mnist_opt.step()

    out = {}
    for name, fn in (("seed MLP step", seed_step), ("784-512-512-10 step", mnist_step)):
        for _ in range(20):
            fn()
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        out[name] = statistics.median(times)
    return out


def _child(variant: str, rounds: int) -> None:
    if variant == "lucid first":
        _run_lucid()
    print(json.dumps(_torch_steps(rounds)))


def _spawn(variant: str, rounds: int) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_WAIT_POLICY",
                        "OPENBLAS_THREAD_TIMEOUT")}
    if variant == "omp passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    out = subprocess.run([sys.executable, "-m", "benchmarks.neighbours", "--child", variant,
                          "--rounds", str(rounds)], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", choices=VARIANTS)
    parser.add_argument("--rounds", type=int, default=300, help="timed steps per process")
    parser.add_argument("--processes", type=int, default=5, help="processes per variant")
    parser.add_argument("--out", type=Path, default=RESULTS / "neighbours.json")
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.rounds)
        return 0
    try:
        import torch  # noqa: F401
    except ImportError:
        print("neighbours: torch is not installed; skipped")
        return 0
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    for _ in range(args.processes):
        for variant in VARIANTS:
            runs[variant].append(_spawn(variant, args.rounds))
    cases = list(runs["torch"][0])
    table = {v: {c: statistics.median(r[c] for r in runs[v]) for c in cases} for v in VARIANTS}
    print(f"torch training steps, median per step over {args.processes} processes each "
          "(variants alternate)")
    print(f"{'case':<22}" + "".join(f"{v:>14}" for v in VARIANTS)
          + f"{'lucid first / torch':>22}{'passive / torch':>18}")
    for c in cases:
        base = table["torch"][c]
        print(f"{c:<22}" + "".join(f"{table[v][c] * 1e6:>11.1f} us" for v in VARIANTS)
              + f"{table['lucid first'][c] / base:>21.2f}x"
              + f"{table['omp passive'][c] / base:>17.2f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"seconds": table, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
