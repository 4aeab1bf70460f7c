"""CUDA benchmarks: lucid's cuda backend against the device and against torch on the same GPU.

Run as `python -m benchmarks.cuda [--quick] [--out PATH]` on a machine with a GPU (or, as a smoke
run with tiny sizes, under NUMBA_ENABLE_CUDASIM=1). Four cases, each timed side by side in one
process (interleaved rounds, medians; every call ends with a device synchronize):

1. bandwidth: the fused elementwise chain of benchmarks/compiled.py (`leaky_relu(x*w+b) *
   sigmoid(x) + tanh(x)`, one kernel) on 2^26 float32, as a fraction of the device's measured
   copy bandwidth (a device-to-device copy of the same array; target: at least 70%);
2. matmul: the tiled float32 matmul (4096^3) in TFLOP/s, against torch's cuBLAS where torch with
   CUDA imports (the ratio);
3. seed 001's training step (batch 32) and 4. the large MLP step (784->1024->1024->10, batch
   512, cross-entropy, SGD momentum), compiled, in steps per second against torch eager.

Results go to benchmarks/results/cuda.json; figures for benchmarks/RESULTS.md come from here.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import lucid
import lucid.nn.functional as F  # noqa: N812
from benchmarks.compiled import _chain, _large_step, _seed_step, _torch

RESULTS = Path(__file__).resolve().parent / "results"


def _sync():
    lucid.cuda.synchronize()


def _medians(thunks: dict, rounds: int, number: int) -> dict[str, float]:
    """{name: fn} -> {name: median seconds per call}; each call is followed by its sync."""
    times: dict[str, list[float]] = {name: [] for name in thunks}
    for _ in range(rounds):
        for name, fn in thunks.items():
            t = time.perf_counter()
            for _ in range(number):
                fn()
            times[name].append((time.perf_counter() - t) / number)
    return {name: statistics.median(t) for name, t in times.items()}


def _torch_cuda():
    torch = _torch()
    if torch is None or not torch.cuda.is_available():
        return None
    return torch


def bench_bandwidth(quick: bool, torch) -> dict:
    n = 1 << (12 if quick else 26)
    rng = np.random.default_rng(0)
    x = lucid.tensor(rng.standard_normal(n).astype(np.float32), device="cuda")
    w, b = 1.5, 0.25
    chain = lucid.compile(_chain(w, b, F.leaky_relu, F.sigmoid, F.tanh))
    out = chain(x)
    xs = x.numpy()
    want = np.where(xs * w + b > 0, xs * w + b, 0.01 * (xs * w + b)) / (1 + np.exp(-xs)) + \
        np.tanh(xs)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-4, atol=1e-5)
    dst = lucid.zeros(n, device="cuda")

    def copy():
        dst.data.copy_to_device(x.data)
        _sync()

    def run_chain():
        chain(x)
        _sync()

    t = _medians({"copy": copy, "chain": run_chain}, rounds=3 if quick else 7,
                 number=2 if quick else 20)
    nbytes = 4 * n
    copy_bw = 2 * nbytes / t["copy"]  # read + write
    chain_bw = 2 * nbytes / t["chain"]  # x in, result out
    return {"elements": n, "copy_s": t["copy"], "chain_s": t["chain"],
            "copy_GBps": copy_bw / 1e9, "chain_GBps": chain_bw / 1e9,
            "fraction_of_copy": chain_bw / copy_bw, "target": 0.70}


def bench_matmul(quick: bool, torch) -> dict:
    n = 32 if quick else 4096
    rng = np.random.default_rng(1)
    a_np = rng.standard_normal((n, n)).astype(np.float32)
    b_np = rng.standard_normal((n, n)).astype(np.float32)
    a, b = lucid.tensor(a_np, device="cuda"), lucid.tensor(b_np, device="cuda")
    mm = lucid.compile(lambda a, b: a @ b)
    np.testing.assert_allclose(mm(a, b).numpy(), a_np @ b_np, rtol=1e-3, atol=1e-2)

    def lucid_mm():
        mm(a, b)
        _sync()

    thunks = {"lucid": lucid_mm}
    if torch is not None:
        ta, tb = torch.from_numpy(a_np).cuda(), torch.from_numpy(b_np).cuda()
        torch.backends.cuda.matmul.allow_tf32 = False

        def torch_mm():
            ta @ tb
            torch.cuda.synchronize()

        thunks["torch"] = torch_mm
    t = _medians(thunks, rounds=3 if quick else 7, number=2 if quick else 10)
    flops = 2 * n ** 3
    out = {"n": n, **{f"{k}_TFLOPs": flops / v / 1e12 for k, v in t.items()}}
    if "torch" in t:
        out["ratio_to_cublas"] = t["torch"] / t["lucid"]
    return out


def _steps(make, quick: bool, torch, torch_model) -> dict:
    step, x, y, model = make()
    model.to("cuda")
    # the optimizer was built on the model's tensors, which moved in place; its state is new
    xd, yd = x.cuda(), y.cuda()
    compiled = lucid.compile(step)
    for _ in range(3):
        compiled(xd, yd)

    def lucid_step():
        compiled(xd, yd)
        _sync()

    thunks = {"lucid": lucid_step}
    if torch is not None:
        thunks["torch"] = torch_model(torch, model, x, y)
    t = _medians(thunks, rounds=3 if quick else 7, number=2 if quick else 20)
    out = {f"{k}_steps_per_s": 1 / v for k, v in t.items()}
    if "torch" in t:
        out["ratio_to_torch_eager"] = t["torch"] / t["lucid"]
    return out


def _torch_step(loss, adam: bool):
    def make(torch, model, x, y):
        layers = []
        for m in model.modules():
            if isinstance(m, lucid.nn.Linear):
                lin = torch.nn.Linear(m.in_features, m.out_features)
                with torch.no_grad():
                    lin.weight.copy_(torch.from_numpy(m.weight.numpy()))
                    lin.bias.copy_(torch.from_numpy(m.bias.numpy()))
                layers += [lin, torch.nn.ReLU()]
        tmodel = torch.nn.Sequential(*layers[:-1]).cuda()
        opt = (torch.optim.Adam(tmodel.parameters(), lr=0.01) if adam
               else torch.optim.SGD(tmodel.parameters(), lr=0.01, momentum=0.9))
        tx = torch.from_numpy(x.numpy()).cuda()
        ty = torch.from_numpy(y.numpy()).cuda()

        def step():
            opt.zero_grad()
            out = loss(torch, tmodel(tx), ty)
            out.backward()
            opt.step()
            torch.cuda.synchronize()

        return step
    return make


def bench_seed(quick: bool, torch) -> dict:
    return _steps(lambda: _seed_step(4 if quick else 32), quick, torch, _torch_step(
        lambda torch, out, y: torch.nn.functional.binary_cross_entropy(torch.sigmoid(out), y),
        adam=True))


def bench_large(quick: bool, torch) -> dict:
    if quick:
        return {"skipped": "--quick"}
    return _steps(_large_step, quick, torch, _torch_step(
        lambda torch, out, y: torch.nn.functional.cross_entropy(out, y), adam=False))


CASES = {"bandwidth": bench_bandwidth, "matmul": bench_matmul, "seed_step": bench_seed,
         "large_step": bench_large}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--out", type=Path, default=RESULTS / "cuda.json")
    args = parser.parse_args(argv)
    if not lucid.cuda.is_available():
        raise SystemExit("no cuda device (NUMBA_ENABLE_CUDASIM=1 runs the simulator)")
    torch = _torch_cuda()
    results = {}
    for name, bench in CASES.items():
        t = time.perf_counter()
        results[name] = bench(args.quick, torch)
        results[name]["seconds"] = time.perf_counter() - t
        print(name, json.dumps(results[name], indent=1), flush=True)
    result = {"benchmark": "cuda", "quick": args.quick, "simulator": lucid.cuda.is_simulator(),
              "torch": None if torch is None else torch.__version__,
              "python": sys.version.split()[0], "platform": platform.platform(), **results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
