"""Eager benchmarks: per-op overhead over bare NumPy, and seed 001 training steps per second.

Run as `python -m benchmarks.run` (or `make bench`). Every lucid timing is taken side by side with
its NumPy counterpart in the same process, interleaved round by round, so machine noise hits both
alike; each figure is the median over rounds. Prints a table and writes JSON to
benchmarks/results/eager.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import timeit
from pathlib import Path

import numpy as np

import lucid
import lucid.nn as nn

RESULTS = Path(__file__).resolve().parent / "results"
OVERHEAD_TARGET_US = 3.0  # median eager overhead per op over NumPy, on 16x16 float32 operands


def _op_cases(shape: tuple[int, int]):
    """(name, lucid thunk, numpy thunk, lucid thunk with requires_grad inputs) per op."""
    rng = np.random.default_rng(0)
    x, y = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
    a, b = lucid.tensor(x), lucid.tensor(y)
    ga, gb = lucid.tensor(x, requires_grad=True), lucid.tensor(y, requires_grad=True)
    n = x.size
    cases = {
        "add": (lambda: a + b, lambda: x + y, lambda: ga + gb),
        "mul": (lambda: a * b, lambda: x * y, lambda: ga * gb),
        "mul_scalar": (lambda: a * 2.0, lambda: x * np.float32(2.0), lambda: ga * 2.0),
        "exp": (lambda: a.exp(), lambda: np.exp(x), lambda: ga.exp()),
        "relu": (lambda: a.relu(), lambda: np.maximum(x, 0), lambda: ga.relu()),
        "sum": (lambda: a.sum(), lambda: x.sum(), lambda: ga.sum()),
        "matmul": (lambda: a @ b, lambda: x @ y, lambda: ga @ gb),
        "reshape": (lambda: a.reshape(n), lambda: x.reshape(n), lambda: ga.reshape(n)),
        "getitem": (lambda: a[1:5, ::2], lambda: x[1:5, ::2], lambda: ga[1:5, ::2]),
    }
    return [(name, *fns) for name, fns in cases.items()]


def _time_per_call(fn, number: int) -> float:
    """Seconds per call of fn, over `number` back-to-back calls."""
    return timeit.Timer(fn).timeit(number=number) / number


def bench_op_overhead(shape=(16, 16), rounds: int = 101, number: int = 200) -> list[dict]:
    """Per op: median microseconds of lucid, of lucid with grad recording, and of NumPy."""
    rows = []
    for name, lucid_fn, numpy_fn, grad_fn in _op_cases(shape):
        for fn in (lucid_fn, numpy_fn, grad_fn):  # warm caches and lazy imports
            _time_per_call(fn, 100)
        lucid_t, numpy_t, grad_t = [], [], []
        for _ in range(rounds):  # interleaved, so drifting clocks or load hit all three alike
            lucid_t.append(_time_per_call(lucid_fn, number))
            numpy_t.append(_time_per_call(numpy_fn, number))
            grad_t.append(_time_per_call(grad_fn, number))
        lu, np_, gr = (statistics.median(t) * 1e6 for t in (lucid_t, numpy_t, grad_t))
        rows.append({"op": name, "shape": list(shape), "lucid_us": lu, "numpy_us": np_,
                     "overhead_us": lu - np_, "lucid_grad_us": gr,
                     "grad_overhead_us": gr - np_})
    return rows


class SeedMLP(nn.Module):
    """Seed 001's network: Linear(64, 128) -> ReLU -> Linear(128, 2) -> Sigmoid."""

    def __init__(self, input_size: int = 64, hidden_size: int = 128, output_size: int = 2):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden_size, output_size)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        return self.sigmoid(self.fc2(self.relu(self.fc1(x))))


def _numpy_seed_step():
    """The same training step by hand in NumPy (forward, BCE, backward, Adam): the floor that
    an eager library's per-op overhead is measured against."""
    rng = np.random.default_rng(0)
    x = rng.random((32, 64), dtype=np.float32)
    y = rng.integers(0, 2, (32, 2)).astype(np.float32)
    params = [rng.standard_normal(s).astype(np.float32) * 0.1
              for s in ((128, 64), (128,), (2, 128), (2,))]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    t = [0]

    def step():
        w1, b1, w2, b2 = params
        h = x @ w1.T + b1
        r = np.maximum(h, 0)
        out = 1 / (1 + np.exp(-(r @ w2.T + b2)))
        o = np.clip(out, 1e-12, 1 - 1e-12)
        loss = -(y * np.log(o) + (1 - y) * np.log(1 - o)).mean()
        d_out = (o - y) / (o * (1 - o)) / y.size
        dz = d_out * out * (1 - out)
        dr = (dz @ w2) * (h > 0)
        grads = [dr.T @ x, dr.sum(0), dz.T @ r, dz.sum(0)]
        t[0] += 1
        for p, g, mi, vi in zip(params, grads, m, v, strict=True):
            mi *= 0.9
            mi += 0.1 * g
            vi *= 0.999
            vi += 0.001 * g * g
            p -= 0.01 / (1 - 0.9 ** t[0]) * mi / (np.sqrt(vi / (1 - 0.999 ** t[0])) + 1e-8)
        return loss

    return step


def _lucid_seed_step(compiled: bool = False):
    lucid.manual_seed(0)
    model = SeedMLP()
    x = lucid.rand(32, 64)
    y = lucid.randint(0, 2, (32, 2)).float()
    criterion = nn.BCELoss()
    opt = lucid.optim.Adam(model.parameters(), lr=0.01)

    def step():
        loss = criterion(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return lucid.compile(step) if compiled else step


def bench_training(rounds: int = 15, number: int = 20) -> dict:
    """Seed 001 training steps per second: lucid eager, the same step under `lucid.compile`
    (today's reference backend runs each op's eager implementation from the optimized graph), and
    the hand-written NumPy step, interleaved in one process."""
    steps = {"lucid": _lucid_seed_step(), "compiled": _lucid_seed_step(compiled=True),
             "numpy": _numpy_seed_step()}
    for _ in range(5):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            times[name].append(_time_per_call(step, number))
    lu, co, np_ = (statistics.median(times[k]) for k in ("lucid", "compiled", "numpy"))
    return {"lucid_step_ms": lu * 1e3, "compiled_step_ms": co * 1e3, "numpy_step_ms": np_ * 1e3,
            "lucid_steps_per_s": 1 / lu, "compiled_steps_per_s": 1 / co,
            "numpy_steps_per_s": 1 / np_, "ratio": lu / np_, "compiled_speedup": lu / co}


def _print_report(ops: list[dict], training: dict, median_overhead: float) -> None:
    print("Eager per-op overhead, 16x16 float32 (median of interleaved rounds, microseconds)")
    print(f"{'op':<12}{'lucid':>9}{'numpy':>9}{'overhead':>10}{'w/ grad':>10}{'grad ovh':>10}")
    for r in ops:
        print(f"{r['op']:<12}{r['lucid_us']:>9.2f}{r['numpy_us']:>9.2f}{r['overhead_us']:>10.2f}"
              f"{r['lucid_grad_us']:>10.2f}{r['grad_overhead_us']:>10.2f}")
    verdict = "meets" if median_overhead <= OVERHEAD_TARGET_US else "MISSES"
    print(f"median overhead: {median_overhead:.2f} us/op "
          f"(target <= {OVERHEAD_TARGET_US:.1f} us: {verdict})")
    print()
    print("Seed 001 training step (Linear 64->128, ReLU, Linear 128->2, Sigmoid, BCE, Adam; "
          "batch 32)")
    print(f"{'':<14}{'ms/step':>10}{'steps/s':>10}")
    print(f"{'lucid eager':<14}{training['lucid_step_ms']:>10.3f}"
          f"{training['lucid_steps_per_s']:>10.0f}")
    print(f"{'lucid.compile':<14}{training['compiled_step_ms']:>10.3f}"
          f"{training['compiled_steps_per_s']:>10.0f}")
    print(f"{'numpy by hand':<14}{training['numpy_step_ms']:>10.3f}"
          f"{training['numpy_steps_per_s']:>10.0f}")
    print(f"lucid / numpy: {training['ratio']:.1f}x; compiled (reference backend) is "
          f"{training['compiled_speedup']:.2f}x eager")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--out", type=Path, default=RESULTS / "eager.json")
    args = parser.parse_args(argv)
    rounds, number = (11, 100) if args.quick else (101, 200)
    started = time.perf_counter()
    ops = bench_op_overhead(rounds=rounds, number=number)
    training = bench_training(rounds=5 if args.quick else 15, number=5 if args.quick else 20)
    median_overhead = statistics.median(r["overhead_us"] for r in ops)
    _print_report(ops, training, median_overhead)
    result = {
        "benchmark": "eager",
        "machine": {"python": sys.version.split()[0], "numpy": np.__version__,
                    "platform": platform.platform(), "processor": platform.machine()},
        "op_overhead": {"shape": [16, 16], "dtype": "float32", "ops": ops,
                        "median_overhead_us": median_overhead,
                        "target_median_overhead_us": OVERHEAD_TARGET_US,
                        "meets_target": median_overhead <= OVERHEAD_TARGET_US},
        "seed_training_step": training,
        "seconds": time.perf_counter() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return result


if __name__ == "__main__":
    main()
