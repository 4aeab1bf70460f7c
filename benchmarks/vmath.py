"""vmath against libm and NumPy: one elementwise loop per function, three ways, 16M elements.

Run as `python -m benchmarks.vmath [--dtype float32|float64] [--n N] [--rounds R]`. Per function:
the numba loop `out[i] = exp_f32(x[i])` (vmath), the same loop with `math.exp` (libm: a scalar
call per element, so it does not vectorize), and NumPy's or SciPy's ufunc writing into the same
preallocated output; the last row is the fused `exp(x) * tanh(x)` a generated kernel would hold
(NumPy: two ufuncs and a multiply). The three run side by side in one process, interleaved round
by round so machine noise hits all alike; each figure is the median over rounds, one thread.
Prints milliseconds and speed ratios (>1: vmath is faster).
"""

from __future__ import annotations

import argparse
import functools
import math
import platform
import statistics
import time

import numba
import numpy as np
import scipy
import scipy.special
from llvmlite import binding as llvm

from lucid_jit.codegen.cpu import vmath


def _loop(scalar):
    """A compiled `out[i] = scalar(x[i])` over 1-d arrays."""
    @numba.njit(error_model="numpy")
    def apply(x, out):
        for i in range(x.size):
            out[i] = scalar(x[i])
    return apply


def _ufunc_into(ufunc, x, out, tmp):
    return ufunc(x, out=out)


def _exp_tanh_into(x, out, tmp):
    return np.multiply(np.exp(x, out=out), np.tanh(x, out=tmp), out=out)


def _cases(dtype: np.dtype) -> dict:
    """name -> (vmath scalar, libm scalar, NumPy call writing into out, input range). The libm
    scalars keep their constants in the array's dtype, so nothing is promoted to float64."""
    suffix = "f32" if dtype == np.float32 else "f64"
    one = dtype.type(1.0)
    exp_vm, tanh_vm = getattr(vmath, f"exp_{suffix}"), getattr(vmath, f"tanh_{suffix}")
    libm = {
        "exp": (lambda v: math.exp(v), np.exp, (-80.0, 80.0)),
        "log": (lambda v: math.log(v), np.log, (1e-3, 1e3)),
        "tanh": (lambda v: math.tanh(v), np.tanh, (-10.0, 10.0)),
        "sigmoid": (lambda v: one / (one + math.exp(-v)), scipy.special.expit, (-20.0, 20.0)),
        "erf": (lambda v: math.erf(v), scipy.special.erf, (-5.0, 5.0)),
    }
    cases = {
        f"{name}_{suffix}": (getattr(vmath, f"{name}_{suffix}"), numba.njit(scalar),
                             functools.partial(_ufunc_into, ufunc), domain)
        for name, (scalar, ufunc, domain) in libm.items()
    }
    cases[f"exp*tanh_{suffix}"] = (
        numba.njit(inline="always")(lambda v: exp_vm(v) * tanh_vm(v)),
        numba.njit(lambda v: math.exp(v) * math.tanh(v)),
        _exp_tanh_into, (-10.0, 10.0))
    return cases


def _seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _median_ms(runs: dict, rounds: int) -> dict[str, float]:
    """Median milliseconds per named thunk, the thunks interleaved round by round."""
    for fn in runs.values():  # compile and warm the caches
        fn()
    times = {k: [] for k in runs}
    for _ in range(rounds):
        for k, fn in runs.items():
            times[k].append(_seconds(fn))
    return {k: 1e3 * statistics.median(v) for k, v in times.items()}


def bench(dtype: np.dtype, n: int, rounds: int) -> list[dict]:
    """Per function: median milliseconds of the vmath loop, the libm loop and the ufunc."""
    rng = np.random.default_rng(0)
    rows = []
    for name, (vm_scalar, libm_scalar, ufunc_call, domain) in _cases(dtype).items():
        x = rng.uniform(*domain, n).astype(dtype)
        out, tmp = np.empty_like(x), np.empty_like(x)
        vm_loop, libm_loop = _loop(vm_scalar), _loop(libm_scalar)
        ms = _median_ms({"vmath": functools.partial(vm_loop, x, out),
                         "libm": functools.partial(libm_loop, x, out),
                         "ufunc": functools.partial(ufunc_call, x, out, tmp)}, rounds)
        rows.append({"function": name, **ms,
                     "vs_libm": ms["libm"] / ms["vmath"], "vs_ufunc": ms["ufunc"] / ms["vmath"]})
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--n", type=int, default=1 << 24)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args(argv)
    dtype = np.dtype(args.dtype)
    print(f"{args.n:,} {dtype} elements, median of {args.rounds} rounds, one thread; "
          f"numba {numba.__version__}, numpy {np.__version__}, scipy {scipy.__version__}, "
          f"{platform.machine()} ({llvm.get_host_cpu_name()})")
    print(f"{'function':<14} {'vmath ms':>9} {'libm ms':>9} {'ufunc ms':>9} "
          f"{'x libm':>7} {'x ufunc':>8}")
    for r in bench(dtype, args.n, args.rounds):
        print(f"{r['function']:<14} {r['vmath']:>9.1f} {r['libm']:>9.1f} {r['ufunc']:>9.1f} "
              f"{r['vs_libm']:>7.2f} {r['vs_ufunc']:>8.2f}")


if __name__ == "__main__":
    main()
