"""Device functions the generated CUDA kernels call: the same names the CPU kernels use
(`exp_f32`, `sigmoid_f64`, ...), so one emitter writes the math for both targets.

Each returns its dtype's scalar and handles the edge cases NumPy defines (log of a negative
number or zero, sqrt of a negative number, exp overflow) explicitly, so the results match eager
NumPy on the GPU and under the simulator, where these run as Python's `math` functions (which
raise instead of returning nan or inf)."""

from __future__ import annotations

import math

import numpy as np
from numba import cuda

f32 = np.float32
f64 = np.float64


@cuda.jit(device=True, inline=True)
def exp_f32(x):
    if x > 88.8:
        return f32(math.inf)
    return f32(math.exp(x))


@cuda.jit(device=True, inline=True)
def exp_f64(x):
    if x > 709.8:
        return f64(math.inf)
    return f64(math.exp(x))


@cuda.jit(device=True, inline=True)
def log_f32(x):
    if x < 0 or x != x:
        return f32(math.nan)
    if x == 0:
        return f32(-math.inf)
    if x == math.inf:
        return x
    return f32(math.log(x))


@cuda.jit(device=True, inline=True)
def log_f64(x):
    if x < 0 or x != x:
        return f64(math.nan)
    if x == 0:
        return f64(-math.inf)
    if x == math.inf:
        return x
    return f64(math.log(x))


@cuda.jit(device=True, inline=True)
def log1p_f32(x):
    if x < -1 or x != x:
        return f32(math.nan)
    if x == -1:
        return f32(-math.inf)
    if x == math.inf:
        return x
    return f32(math.log1p(x))


@cuda.jit(device=True, inline=True)
def log1p_f64(x):
    if x < -1 or x != x:
        return f64(math.nan)
    if x == -1:
        return f64(-math.inf)
    if x == math.inf:
        return x
    return f64(math.log1p(x))


@cuda.jit(device=True, inline=True)
def tanh_f32(x):
    return f32(math.tanh(x))


@cuda.jit(device=True, inline=True)
def tanh_f64(x):
    return f64(math.tanh(x))


@cuda.jit(device=True, inline=True)
def erf_f32(x):
    return f32(math.erf(x))


@cuda.jit(device=True, inline=True)
def erf_f64(x):
    return f64(math.erf(x))


@cuda.jit(device=True, inline=True)
def sigmoid_f32(x):
    if x >= 0:
        return f32(1.0) / (f32(1.0) + exp_f32(-x))
    e = exp_f32(x)
    return e / (f32(1.0) + e)


@cuda.jit(device=True, inline=True)
def sigmoid_f64(x):
    if x >= 0:
        return f64(1.0) / (f64(1.0) + exp_f64(-x))
    e = exp_f64(x)
    return e / (f64(1.0) + e)


@cuda.jit(device=True, inline=True)
def sqrt_f32(x):
    if x < 0 or x != x:
        return f32(math.nan)
    return f32(math.sqrt(x))


@cuda.jit(device=True, inline=True)
def sqrt_f64(x):
    if x < 0 or x != x:
        return f64(math.nan)
    return f64(math.sqrt(x))


@cuda.jit(device=True, inline=True)
def sin_f32(x):
    return f32(math.sin(x)) if x == x and abs(x) != math.inf else f32(math.nan)


@cuda.jit(device=True, inline=True)
def sin_f64(x):
    return f64(math.sin(x)) if x == x and abs(x) != math.inf else f64(math.nan)


@cuda.jit(device=True, inline=True)
def cos_f32(x):
    return f32(math.cos(x)) if x == x and abs(x) != math.inf else f32(math.nan)


@cuda.jit(device=True, inline=True)
def cos_f64(x):
    return f64(math.cos(x)) if x == x and abs(x) != math.inf else f64(math.nan)


@cuda.jit(device=True, inline=True)
def atan2_f32(y, x):
    return f32(math.atan2(f32(y), f32(x)))


@cuda.jit(device=True, inline=True)
def atan2_f64(y, x):
    return f64(math.atan2(f64(y), f64(x)))
