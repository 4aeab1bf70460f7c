"""lucid.compile side by side with its peers on the models users bring.

Run as `python -m benchmarks.peers [--quick] [--only ROW ...] [--out PATH]` (part of `make bench`).
Rows, each one training step (forward, loss, backward, optimizer update) unless it says eval:

- cnn_step: seed 004's CNN (conv 3->32->64 with ReLU and 2x2 max pools) with a Linear 4096->10
  head, batch 32 of 3x32x32, cross-entropy, SGD with momentum; cnn_eval: its forward;
- mlp_large: MLP 784-1024-1024-10, batch 512, cross-entropy, SGD with momentum;
- seed_mlp: seed 001's MLP 64-128-2 (ReLU, sigmoid), batch 32, BCE, Adam;
- chain: y = leaky_relu(x*w+b)*sigmoid(x)+tanh(x) on 16M float32, then y.backward(g) (jax: the
  forward and its vjp), against a memory floor (the bytes it must move, at np.copyto's rate);
- tutorials: the 60-minute blitz CIFAR Net (batch 64), a tiny GPT (2 blocks, dim 64, 4 heads,
  sequence 32, batch 16), an MLP 784-512-512-10 at batch 64.

Columns: lucid eager, lucid.compile, and where they import torch eager, torch.compile and
jax.jit (optional, never dependencies). Each model is written once as a function of a
functional API (`F`): lucid's and torch's are alike, and jax gets a small one of its own, so all
systems run the same math from the same initial weights (the first losses are compared). Timings
are interleaved round by round in one process and the median is reported; ratios are of
lucid.compile's time to each other column.

torch and jax are imported before lucid (whose first compile settles its process settings), so
no system runs in another's configuration. This workplace sets OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE, which select slower sgemm kernels; `make bench` unsets both (tests keep them).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
import timeit
from pathlib import Path

# The peers load first. BENCH_PEERS (default "torch,jax") names the ones to load: a process that
# times one system's start-up (benchmarks.latency) loads no other.
_PEERS = os.environ.get("BENCH_PEERS", "torch,jax").split(",")
torch = jax = jnp = None
if "torch" in _PEERS:
    try:
        import torch
    except Exception:  # noqa: BLE001 (absent or broken: no torch columns)
        torch = None
if "jax" in _PEERS:
    try:
        import jax
        import jax.numpy as jnp
    except Exception:  # noqa: BLE001
        jax = jnp = None

import numpy as np  # noqa: E402

import lucid  # noqa: E402
import lucid.nn.functional as LF  # noqa: E402, N812

RESULTS = Path(__file__).resolve().parent / "results"

# ----------------------------------------------------------------------------- functional APIs


class _Torchish:
    """lucid's or torch's functional API, plus the few tensor helpers the models use."""

    def __init__(self, functional, lib) -> None:
        self.F, self.lib = functional, lib

    def __getattr__(self, name):
        return getattr(self.F, name)

    @staticmethod
    def permute(x, dims):
        return x.permute(*dims)

    @staticmethod
    def swap_last(x):
        return x.transpose(-2, -1)

    def bce(self, p, y):
        return self.F.binary_cross_entropy(p, y)


class _Jax:
    """The functions the models call, in jax.numpy (NCHW convolutions through lax)."""

    @staticmethod
    def linear(x, w, b=None):
        y = x @ w.T
        return y if b is None else y + b

    @staticmethod
    def relu(x):
        return jnp.maximum(x, 0)

    @staticmethod
    def sigmoid(x):
        return jax.nn.sigmoid(x)

    @staticmethod
    def gelu(x):
        return jax.nn.gelu(x, approximate=False)

    @staticmethod
    def conv2d(x, w, b=None, padding=0):
        y = jax.lax.conv_general_dilated(x, w, (1, 1), [(padding, padding)] * 2,
                                         dimension_numbers=("NCHW", "OIHW", "NCHW"))
        return y if b is None else y + b.reshape(1, -1, 1, 1)

    @staticmethod
    def max_pool2d(x, k):
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, k, k), (1, 1, k, k),
                                     "VALID")

    @staticmethod
    def cross_entropy(logits, t):
        logp = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, t[:, None], axis=1))

    @staticmethod
    def bce(p, y):
        p = jnp.clip(p, 1e-12, 1.0)
        return -jnp.mean(y * jnp.maximum(jnp.log(p), -100)
                         + (1 - y) * jnp.maximum(jnp.log1p(-p), -100))

    @staticmethod
    def softmax(x, dim):
        return jax.nn.softmax(x, axis=dim)

    @staticmethod
    def layer_norm(x, shape, w, b, eps=1e-5):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / jnp.sqrt(var + eps) * w + b

    @staticmethod
    def embedding(i, w):
        return w[i]

    @staticmethod
    def leaky_relu(x, slope=0.01):
        return jnp.where(x > 0, x, x * slope)

    @staticmethod
    def permute(x, dims):
        return jnp.transpose(x, dims)

    @staticmethod
    def swap_last(x):
        return jnp.swapaxes(x, -2, -1)


# ----------------------------------------------------------------------------- models


def _uniform(rng, shape, fan_in):
    bound = 1.0 / math.sqrt(fan_in)
    return rng.uniform(-bound, bound, shape).astype(np.float32)


def _linear_params(rng, sizes, prefix="fc"):
    params = {}
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        params[f"{prefix}{k}.w"] = _uniform(rng, (n_out, n_in), n_in)
        params[f"{prefix}{k}.b"] = _uniform(rng, (n_out,), n_in)
    return params


def _mlp(sizes, out=None):
    def forward(F, p, x):
        n = len(sizes) - 1
        for k in range(n):
            x = F.linear(x, p[f"fc{k}.w"], p[f"fc{k}.b"])
            if k < n - 1:
                x = F.relu(x)
        return F.sigmoid(x) if out == "sigmoid" else x
    return forward


def _cnn_params(rng):
    p = {"c1.w": _uniform(rng, (32, 3, 3, 3), 27), "c1.b": _uniform(rng, (32,), 27),
         "c2.w": _uniform(rng, (64, 32, 3, 3), 288), "c2.b": _uniform(rng, (64,), 288)}
    p.update(_linear_params(rng, (4096, 10)))
    return p


def _cnn(F, p, x):
    x = F.max_pool2d(F.relu(F.conv2d(x, p["c1.w"], p["c1.b"], padding=1)), 2)
    x = F.max_pool2d(F.relu(F.conv2d(x, p["c2.w"], p["c2.b"], padding=1)), 2)
    return F.linear(x.reshape(x.shape[0], -1), p["fc0.w"], p["fc0.b"])


def _cifar_params(rng):
    p = {"c1.w": _uniform(rng, (6, 3, 5, 5), 75), "c1.b": _uniform(rng, (6,), 75),
         "c2.w": _uniform(rng, (16, 6, 5, 5), 150), "c2.b": _uniform(rng, (16,), 150)}
    p.update(_linear_params(rng, (400, 120, 84, 10)))
    return p


def _cifar(F, p, x):
    x = F.max_pool2d(F.relu(F.conv2d(x, p["c1.w"], p["c1.b"])), 2)
    x = F.max_pool2d(F.relu(F.conv2d(x, p["c2.w"], p["c2.b"])), 2)
    x = x.reshape(x.shape[0], -1)
    x = F.relu(F.linear(x, p["fc0.w"], p["fc0.b"]))
    x = F.relu(F.linear(x, p["fc1.w"], p["fc1.b"]))
    return F.linear(x, p["fc2.w"], p["fc2.b"])


GPT = {"vocab": 65, "seq": 32, "dim": 64, "heads": 4, "layers": 2, "batch": 16}


def _gpt_params(rng):
    d, v, s = GPT["dim"], GPT["vocab"], GPT["seq"]
    p = {"tok": (rng.standard_normal((v, d)) * 0.02).astype(np.float32),
         "pos": (rng.standard_normal((s, d)) * 0.02).astype(np.float32),
         "mask": np.triu(np.full((s, s), -1e9, np.float32), 1)}
    for layer in range(GPT["layers"]):
        for name in ("ln1", "ln2"):
            p[f"{layer}.{name}.w"] = np.ones(d, np.float32)
            p[f"{layer}.{name}.b"] = np.zeros(d, np.float32)
        p.update(_linear_params(rng, (d, 3 * d), f"{layer}.qkv"))
        p.update(_linear_params(rng, (d, d), f"{layer}.proj"))
        p.update(_linear_params(rng, (d, 4 * d, d), f"{layer}.mlp"))
    p.update({"lnf.w": np.ones(d, np.float32), "lnf.b": np.zeros(d, np.float32)})
    p.update(_linear_params(rng, (d, v), "head"))
    return p


def _gpt(F, p, tokens):
    b, t = tokens.shape
    d, h = GPT["dim"], GPT["heads"]
    hd = d // h
    x = F.embedding(tokens, p["tok"]) + p["pos"]
    for layer in range(GPT["layers"]):
        q = F.layer_norm(x, (d,), p[f"{layer}.ln1.w"], p[f"{layer}.ln1.b"])
        qkv = F.linear(q, p[f"{layer}.qkv0.w"], p[f"{layer}.qkv0.b"])
        qkv = F.permute(qkv.reshape(b, t, 3, h, hd), (2, 0, 3, 1, 4))
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = (q @ F.swap_last(k)) * (1.0 / math.sqrt(hd)) + p["mask"]
        y = F.permute(F.softmax(att, dim=-1) @ v, (0, 2, 1, 3)).reshape(b, t, d)
        x = x + F.linear(y, p[f"{layer}.proj0.w"], p[f"{layer}.proj0.b"])
        m = F.layer_norm(x, (d,), p[f"{layer}.ln2.w"], p[f"{layer}.ln2.b"])
        m = F.gelu(F.linear(m, p[f"{layer}.mlp0.w"], p[f"{layer}.mlp0.b"]))
        x = x + F.linear(m, p[f"{layer}.mlp1.w"], p[f"{layer}.mlp1.b"])
    x = F.layer_norm(x, (d,), p["lnf.w"], p["lnf.b"])
    return F.linear(x, p["head0.w"], p["head0.b"]).reshape(b * t, GPT["vocab"])


def _ce(F, out, y):
    return F.cross_entropy(out, y)


def _bce(F, out, y):
    return F.bce(out, y)


# row: (params(rng), forward, loss, x(rng), y(rng), optimizer, lr); frozen params (the GPT's
# causal mask) are not trained.
ROWS = {
    "cnn_step": (_cnn_params, _cnn, _ce,
                 lambda r: r.standard_normal((32, 3, 32, 32)).astype(np.float32),
                 lambda r: r.integers(0, 10, 32), "sgd", 0.01),
    "mlp_large": (lambda r: _linear_params(r, (784, 1024, 1024, 10)), _mlp((784, 1024, 1024, 10)),
                  _ce, lambda r: r.standard_normal((512, 784)).astype(np.float32),
                  lambda r: r.integers(0, 10, 512), "sgd", 0.01),
    "seed_mlp": (lambda r: _linear_params(r, (64, 128, 2)), _mlp((64, 128, 2), "sigmoid"), _bce,
                 lambda r: r.random((32, 64)).astype(np.float32),
                 lambda r: r.integers(0, 2, (32, 2)).astype(np.float32), "adam", 0.01),
    "cifar_net": (_cifar_params, _cifar, _ce,
                  lambda r: r.standard_normal((64, 3, 32, 32)).astype(np.float32),
                  lambda r: r.integers(0, 10, 64), "sgd", 0.001),
    "tiny_gpt": (_gpt_params, _gpt, _ce,
                 lambda r: r.integers(0, GPT["vocab"], (GPT["batch"], GPT["seq"])),
                 lambda r: r.integers(0, GPT["vocab"], GPT["batch"] * GPT["seq"]), "adam", 3e-4),
    "mlp_512": (lambda r: _linear_params(r, (784, 512, 512, 10)), _mlp((784, 512, 512, 10)), _ce,
                lambda r: r.standard_normal((64, 784)).astype(np.float32),
                lambda r: r.integers(0, 10, 64), "sgd", 0.01),
}
FROZEN = {"mask"}


def _data(row):
    make_p, _, _, make_x, make_y, _, _ = ROWS[row]
    rng = np.random.default_rng(0)
    return make_p(rng), make_x(rng), make_y(rng)


# ----------------------------------------------------------------------------- steps per system


class _Lib:
    """lucid or torch, as the rows use them: the functional API, tensors, optimizers, compile
    and no_grad (the two are alike, so every row is written once for both)."""

    def __init__(self, name: str) -> None:
        lib = lucid if name == "lucid" else torch
        self.lib = lib
        self.F = _Torchish(LF if name == "lucid" else torch.nn.functional, lib)
        if name == "torch":
            self.F.bce = torch.nn.functional.binary_cross_entropy
        self.F.tanh = lib.tanh

    def tensor(self, value, requires_grad=False):
        return self.lib.tensor(value, requires_grad=requires_grad)


def _step(lib: _Lib, row, compiled: bool):
    params, x, y = _data(row)
    _, forward, loss_fn, _, _, opt_name, lr = ROWS[row]
    F = lib.F
    p = {k: lib.tensor(v, requires_grad=k not in FROZEN) for k, v in params.items()}
    trained = [t for k, t in p.items() if k not in FROZEN]
    opt = (lib.lib.optim.SGD(trained, lr=lr, momentum=0.9) if opt_name == "sgd"
           else lib.lib.optim.Adam(trained, lr=lr))

    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(F, forward(F, p, x), y)
        loss.backward()
        opt.step()
        return loss

    fn = lib.lib.compile(step) if compiled else step
    tx, ty = lib.tensor(x), lib.tensor(y)
    return lambda: float(fn(tx, ty).item())


def _jax_step(row):
    params, x, y = _data(row)
    _, forward, loss_fn, _, _, opt_name, lr = ROWS[row]
    F = _Jax()
    frozen = {k: jnp.asarray(v) for k, v in params.items() if k in FROZEN}
    trained = {k: jnp.asarray(v) for k, v in params.items() if k not in FROZEN}
    zeros = {k: jnp.zeros_like(v) for k, v in trained.items()}
    state = (trained, zeros, zeros, jnp.zeros((), jnp.float32))

    def loss_of(tp, x, y):
        return loss_fn(F, forward(F, {**tp, **frozen}, x), y)

    @jax.jit
    def step(state, x, y):
        tp, m, v, t = state
        loss, g = jax.value_and_grad(loss_of)(tp, x, y)
        if opt_name == "sgd":  # torch's SGD momentum: buf = mu * buf + g; p -= lr * buf
            m = {k: 0.9 * m[k] + g[k] for k in tp}
            tp = {k: tp[k] - lr * m[k] for k in tp}
        else:  # Adam, torch's defaults
            t = t + 1
            m = {k: 0.9 * m[k] + 0.1 * g[k] for k in tp}
            v = {k: 0.999 * v[k] + 0.001 * g[k] * g[k] for k in tp}
            c1, c2 = 1 - 0.9 ** t, 1 - 0.999 ** t
            tp = {k: tp[k] - lr * (m[k] / c1) / (jnp.sqrt(v[k] / c2) + 1e-8) for k in tp}
        return (tp, m, v, t), loss

    jx, jy = jnp.asarray(x), jnp.asarray(y)
    box = [state]

    def run():
        box[0], loss = step(box[0], jx, jy)
        return float(loss)
    return run


def _eval(lib: _Lib, row, compiled: bool):
    params, x, _ = _data(row)
    forward = ROWS[row][1]
    p = {k: lib.tensor(v) for k, v in params.items()}
    fn = (lambda x: forward(lib.F, p, x))
    fn = lib.lib.compile(fn) if compiled else fn
    tx = lib.tensor(x)

    def run():
        with lib.lib.no_grad():
            return fn(tx).numpy()
    return run


def _jax_eval(row):
    params, x, _ = _data(row)
    forward = ROWS[row][1]
    p = {k: jnp.asarray(v) for k, v in params.items()}
    fn = jax.jit(lambda p, x: forward(_Jax(), p, x))
    jx = jnp.asarray(x)
    return lambda: np.asarray(fn(p, jx))


# ----------------------------------------------------------------------------- the chain


CHAIN_N = 1 << 24


def _chain(F, x, w, b):
    return F.leaky_relu(x * w + b) * F.sigmoid(x) + F.tanh(x)


def _chain_data(n):
    rng = np.random.default_rng(0)
    return (rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32))


def _chain_step(lib: _Lib, n, compiled: bool):
    x0, g0 = _chain_data(n)
    fn = (lambda x: _chain(lib.F, x, 0.7, -0.2))
    fn = lib.lib.compile(fn) if compiled else fn
    x, g = lib.tensor(x0, requires_grad=True), lib.tensor(g0)

    def run():
        x.grad = None
        y = fn(x)
        y.backward(g)
        return x.grad.numpy()
    return run


def _jax_chain(n):
    x0, g0 = _chain_data(n)
    F = _Jax()
    F.tanh = jnp.tanh

    @jax.jit
    def fwd_bwd(x, g):
        y, vjp = jax.vjp(lambda x: _chain(F, x, 0.7, -0.2), x)
        return y, vjp(g)[0]

    x, g = jnp.asarray(x0), jnp.asarray(g0)
    return lambda: np.asarray(fwd_bwd(x, g)[1])


def _memory_floor(n) -> float:
    """Seconds to move the chain's bytes at np.copyto's rate: the forward reads x and writes y,
    the backward reads x and g and writes the gradient: five arrays, 2.5 copies."""
    a, b = np.ones(n, np.float32), np.empty(n, np.float32)
    return 2.5 * min(timeit.repeat(lambda: np.copyto(b, a), number=3, repeat=5)) / 3


# ----------------------------------------------------------------------------- timing


def _time(fn, budget: float) -> float:
    """Median seconds per call over calls filling about `budget` seconds (at least 3)."""
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    number = max(1, int(0.05 / once))
    reps = max(3, min(15, int(budget / (once * number))))
    return statistics.median(timeit.repeat(fn, number=number, repeat=reps)) / number


def _systems(row: str, quick: bool) -> dict:
    """{column: thunk} for a row, warmed up (traced, compiled, on lucid's native tier)."""
    if row == "chain":
        n = (1 << 20) if quick else CHAIN_N
        build, arg, jax_make = _chain_step, n, lambda: _jax_chain(n)
    elif row == "cnn_eval":
        build, arg, jax_make = _eval, "cnn_step", lambda: _jax_eval("cnn_step")
    else:
        build, arg, jax_make = _step, row, lambda: _jax_step(row)
    libs = {"lucid": _Lib("lucid")}
    if torch is not None:
        libs["torch"] = _Lib("torch")
    made = {}
    for name, lib in libs.items():
        made[f"{name} eager"] = lambda lib=lib: build(lib, arg, False)
        made[f"{'lucid.compile' if name == 'lucid' else 'torch.compile'}"] = \
            lambda lib=lib: build(lib, arg, True)
    if jax is not None:
        made["jax.jit"] = jax_make
    out, firsts = {}, {}
    for name, make in made.items():
        try:
            fn = make()
            firsts[name] = fn()
            for _ in range(5):
                fn()
        except Exception as exc:  # noqa: BLE001 (a peer's failure drops its column)
            print(f"  {row}: {name} failed ({type(exc).__name__}: {exc}); column left out")
            continue
        out[name] = fn
    return out, firsts


def bench_row(row: str, quick: bool, rounds: int) -> dict:
    thunks, firsts = _systems(row, quick)
    times = {name: [] for name in thunks}
    budget = 0.3 if quick else 1.0
    for _ in range(rounds):
        for name, fn in thunks.items():
            times[name].append(_time(fn, budget))
    med = {name: statistics.median(ts) for name, ts in times.items()}
    result = {"seconds": med, "first_result": {k: _summary(v) for k, v in firsts.items()}}
    base = med.get("lucid.compile")
    if base is not None:
        result["ratio"] = {name: base / t for name, t in med.items() if name != "lucid.compile"}
    if row == "chain":
        floor = _memory_floor((1 << 20) if quick else CHAIN_N)
        result["memory_floor_s"] = floor
        if base is not None:
            result["ratio"]["memory floor"] = base / floor
    return result


def _summary(value):
    if isinstance(value, float):
        return value
    return float(np.asarray(value, np.float64).sum())


def _print(row: str, r: dict) -> None:
    s = r["seconds"]
    unit, scale = ("ms", 1e3) if max(s.values()) > 1e-3 else ("us", 1e6)
    cols = "  ".join(f"{name} {t * scale:.3g}" for name, t in s.items())
    print(f"{row:<10} ({unit}): {cols}")
    if "ratio" in r:
        print("           lucid.compile / " + "  ".join(f"{name} {q:.2f}x"
                                                        for name, q in r["ratio"].items()))
    firsts = r["first_result"]
    ref = firsts.get("lucid eager")
    off = [n for n, v in firsts.items() if ref is not None and not
           math.isclose(v, ref, rel_tol=2e-3, abs_tol=1e-4)]
    if off:
        print("           first results differ from lucid eager's: "
              + ", ".join(f"{n} {firsts[n]:.6g}" for n in off) + f" (eager {ref:.6g})")


ORDER = ("cnn_step", "cnn_eval", "mlp_large", "seed_mlp", "chain", "cifar_net", "tiny_gpt",
         "mlp_512")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, a 1M-element chain")
    parser.add_argument("--only", nargs="*", choices=ORDER, help="rows to run (default: all)")
    parser.add_argument("--out", type=Path, default=RESULTS / "peers.json")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else 5
    print(f"peers: torch {'absent' if torch is None else torch.__version__}, jax "
          f"{'absent' if jax is None else jax.__version__}; OPENBLAS_CORETYPE "
          f"{os.environ.get('OPENBLAS_CORETYPE', 'unset')}; {os.cpu_count()} cpus", flush=True)
    results = {}
    for row in args.only or ORDER:
        t0 = time.perf_counter()
        results[row] = bench_row(row, args.quick, rounds)
        _print(row, results[row])
        print(f"           ({time.perf_counter() - t0:.0f} s)", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "peers", "quick": args.quick,
                                    "python": sys.version.split()[0], **results}, indent=2)
                        + "\n")
    return results


if __name__ == "__main__":
    main()
