"""vmath: error in ulps against NumPy/SciPy over the whole float32 range (every 1021st bit
pattern, plus every pattern in windows around each threshold and region boundary) and over
random float64 bit patterns plus the functions' active ranges; exact special values; loops that
call the functions compiling to vector IR with no libm call and no float64 in the float32 ones."""

from __future__ import annotations

import functools
import math
import re
from fractions import Fraction

import numba
import numpy as np
import pytest
from scipy.special import erf

from lucid_jit.codegen.cpu import vmath

FUNCS = ("exp", "log", "tanh", "sigmoid", "erf")
DTYPES = {"f32": np.float32, "f64": np.float64}

# Worst error in ulps of the result's dtype, as the module docstring states. Measured maxima,
# float32 over all 2**32 inputs: exp 0.990, log 0.835, tanh 1.330, sigmoid 2.402, erf 1.309;
# float64 over 2e8 samples drawn like f64_samples (8e7 for erf): exp 0.914, log 0.863,
# tanh 1.314, sigmoid 2.393, erf 0.972.
ULP_BOUND = {
    ("exp", "f32"): 1.0, ("log", "f32"): 1.0, ("tanh", "f32"): 1.5,
    ("sigmoid", "f32"): 2.5, ("erf", "f32"): 1.5,
    ("exp", "f64"): 1.0, ("log", "f64"): 1.0, ("tanh", "f64"): 1.5,
    ("sigmoid", "f64"): 2.5, ("erf", "f64"): 1.0,
}
# float64 results are measured against long double; where long double is only double (e.g.
# arm64 macOS), the reference itself is off by up to an ulp or two.
EXTENDED = np.finfo(np.longdouble).nmant > np.finfo(np.float64).nmant
F64_SLACK = 0.0 if EXTENDED else 2.0


@functools.cache
def compiled(name: str, suffix: str):
    """`out[i] = <name>_<suffix>(x[i])`, compiled once per module run."""
    scalar = getattr(vmath, f"{name}_{suffix}")

    @numba.njit(error_model="numpy")
    def apply(x, out):
        for i in range(x.size):
            out[i] = scalar(x[i])

    return apply


def run(name: str, suffix: str, x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=DTYPES[suffix])
    out = np.empty_like(x)
    compiled(name, suffix)(x, out)
    return out


# --- references --------------------------------------------------------------------------------

def erf_longdouble(x: np.ndarray) -> np.ndarray:
    """erf(x) = 2/sqrt(pi) e**-x**2 sum_n 2**n x**(2n+1) / (2n+1)!!: all terms positive, so long
    double keeps ~3 bits beyond float64 (SciPy's float64 erf is itself off by up to ~2.6 ulp)."""
    x = np.asarray(x, dtype=np.longdouble)
    ax = np.abs(x)
    r = np.ones_like(ax)  # erf(x) rounds to 1 in float64 from 5.93 on
    for lo, hi in ((0, 0.5), (0.5, 2), (2, 4), (4, 6.5)):  # fewer terms for the smaller ones
        at = (ax >= lo) & (ax < hi)
        a = ax[at]
        x2 = a * a
        term, total = a.copy(), a.copy()
        for n in range(1, 200):
            term *= 2 * x2 / (2 * n + 1)
            total += term
            if np.all(term < total * 2.0**-70):
                break
        r[at] = np.longdouble("1.1283791670955125738961589031215452") * np.exp(-x2) * total
    return np.where(np.isnan(x), x, np.copysign(r, x))


def sigmoid_reference(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


REFERENCE = {  # computed in float64 for float32 results, in long double for float64 results
    "exp": np.exp, "log": np.log, "tanh": np.tanh, "sigmoid": sigmoid_reference,
    "erf": lambda x: erf_longdouble(x) if x.dtype == np.longdouble else erf(x),
}


def reference(name: str, x: np.ndarray) -> np.ndarray:
    wide = np.float64 if x.dtype == np.float32 else np.longdouble
    with np.errstate(all="ignore"):
        return REFERENCE[name](x.astype(wide))


def ulp_error(got: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """|got - ref| in units of the last place of got's dtype at ref (subnormal spacing floor).
    Matching infinities and matching nans count 0; one-sided inf or nan counts inf."""
    info = np.finfo(got.dtype)
    _, e = np.frexp(ref)
    ulp = np.maximum(np.ldexp(np.ones_like(ref), e - (info.nmant + 1)), info.smallest_subnormal)
    with np.errstate(invalid="ignore"):
        err = (np.abs(got.astype(ref.dtype) - ref) / ulp).astype(np.float64)
    with np.errstate(over="ignore"):
        rounded = ref.astype(got.dtype)
    err = np.where(np.isinf(rounded) & (got == rounded), 0.0, err)
    nan_got, nan_ref = np.isnan(got), np.isnan(rounded)
    return np.where(nan_got & nan_ref, 0.0, np.where(nan_got | nan_ref, np.inf, err))


def assert_ulps(name: str, suffix: str, x: np.ndarray, slack: float = 0.0) -> float:
    x = x.astype(DTYPES[suffix])
    err = ulp_error(run(name, suffix, x), reference(name, x))
    worst = int(np.argmax(err))
    bound = ULP_BOUND[name, suffix] + slack
    assert err[worst] <= bound, (
        f"{name}_{suffix}({x[worst]!r}) is {err[worst]:.3f} ulp off (bound {bound}): "
        f"got {run(name, suffix, x[worst:worst + 1])[0]!r}, "
        f"reference {reference(name, x[worst:worst + 1])[0]!r}")
    return float(err[worst])


# --- inputs ------------------------------------------------------------------------------------

# Thresholds and region boundaries of each function, both signs: every float32 within 2**15
# patterns of each is tested.
EDGES = {
    "exp": (0.0, 0.34657359, 87.33655, 88.72284, -87.33655, -103.97208, -88.0),
    "log": (0.0, 2.0**-126, 0.70710678, 1.0, 1.41421356, 2.0, np.finfo(np.float32).max),
    "tanh": (0.0, 0.625, 1.0, 9.01, 44.4),
    "sigmoid": (0.0, 16.6, 87.33655, 88.72284, 103.97208, 104.0),
    "erf": (0.0, 0.921875, 1.0, 2.0, 3.9192, 4.0),
}


def f32_sweep(name: str) -> np.ndarray:
    """Every 1021st float32 bit pattern (4.2M, both signs, all exponents) and the windows."""
    stride = np.arange(0, 2**32, 1021, dtype=np.uint64).astype(np.uint32).view(np.float32)
    centers = np.array(EDGES[name], dtype=np.float32).view(np.int32)
    offsets = np.arange(-(2**15), 2**15, dtype=np.int32)
    window = np.maximum((centers[:, None] + offsets).ravel(), 0).view(np.float32)
    return np.concatenate([stride, window, -window])


def f64_samples(name: str, n: int = 150_000) -> np.ndarray:
    """Random bit patterns, uniform draws over the active range, and values near boundaries."""
    rng = np.random.default_rng(42)
    bits = rng.integers(0, 2**64, n, dtype=np.uint64).view(np.float64)
    active = {"exp": (-746.0, 710.0), "log": (0.0, 4.0), "tanh": (-20.0, 20.0),
              "sigmoid": (-746.0, 40.0), "erf": (-6.5, 6.5)}[name]
    uniform = rng.uniform(*active, n)
    small = rng.uniform(-1.5, 1.5, n)
    tiny = np.exp(rng.uniform(-745, 0, n // 4)) * rng.choice([-1.0, 1.0], n // 4)
    edges = {"exp": (709.782712893384, -745.1332191019411, -708.3964185322641),
             "log": (1.0, 2.0**-1022, 0.7071067811865476),
             "tanh": (0.625, 22.0), "sigmoid": (36.7, 709.78),
             "erf": (0.84375, 1.25, 1 / 0.35, 6.0)}
    near = np.concatenate([e * (1 + rng.uniform(-1e-6, 1e-6, 2000)) for e in edges[name]])
    return np.concatenate([bits, uniform, small, tiny, near, -near])


# --- accuracy ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", FUNCS)
def test_f32_ulp_error_over_the_whole_range(name):
    worst = assert_ulps(name, "f32", f32_sweep(name))
    assert worst > 0.4  # the sweep reaches rounding-limited inputs; an all-zero error is a bug


@pytest.mark.parametrize("name", FUNCS)
def test_f64_ulp_error_on_random_bits_and_active_ranges(name):
    worst = assert_ulps(name, "f64", f64_samples(name), slack=F64_SLACK)
    assert worst > 0.4


def test_erf_reference_is_correctly_rounded_at_known_points():
    """The float64 erf reference, checked on values with known correctly rounded erf."""
    x = np.array([0.5, 1.0, 2.0, 3.0], dtype=np.longdouble)
    expected = [0.5204998778130465, 0.8427007929497149, 0.9953222650189527, 0.9999779095030014]
    np.testing.assert_array_equal(erf_longdouble(x).astype(np.float64), expected)


def test_ln2_splits_multiply_exactly():
    """k * LN2_HI is exact for every exponent k a reduction meets, and HI + LO is ln 2 to well
    past the dtype's precision."""
    ln2 = Fraction("0.6931471805599453094172321214581765680755")
    for hi, lo, kmax, bits in ((vmath.F32_LN2_HI, vmath.F32_LN2_LO, 152, 44),
                               (vmath.F32_EXP_LN2_HI, vmath.F32_EXP_LN2_LO, 160, 39),
                               (vmath.F64_LN2_HI, vmath.F64_LN2_LO, 1077, 86)):
        k = np.arange(-kmax, kmax + 1).astype(type(hi))
        assert [Fraction(float(v)) for v in k * hi] == [int(v) * Fraction(float(hi)) for v in k]
        assert abs(Fraction(float(hi)) + Fraction(float(lo)) - ln2) < Fraction(1, 2**bits)


# --- special values ----------------------------------------------------------------------------

INF, NAN = math.inf, math.nan
SPECIAL = {  # input -> exact output, for both dtypes
    "exp": [(INF, INF), (-INF, 0.0), (NAN, NAN), (0.0, 1.0), (-0.0, 1.0), (1e30, INF),
            (-1e30, 0.0), (800.0, INF), (-800.0, 0.0)],
    "log": [(INF, INF), (-INF, NAN), (NAN, NAN), (0.0, -INF), (-0.0, -INF), (1.0, 0.0),
            (-1.0, NAN), (-1e-30, NAN)],
    "tanh": [(INF, 1.0), (-INF, -1.0), (NAN, NAN), (0.0, 0.0), (-0.0, -0.0), (50.0, 1.0),
             (-50.0, -1.0), (1e30, 1.0)],
    "sigmoid": [(INF, 1.0), (-INF, 0.0), (NAN, NAN), (0.0, 0.5), (-0.0, 0.5), (50.0, 1.0),
                (-1e30, 0.0), (1e30, 1.0)],
    "erf": [(INF, 1.0), (-INF, -1.0), (NAN, NAN), (0.0, 0.0), (-0.0, -0.0), (10.0, 1.0),
            (-10.0, -1.0), (1e30, 1.0)],
}


@pytest.mark.parametrize("suffix", DTYPES)
@pytest.mark.parametrize("name", FUNCS)
def test_special_values_are_exact(name, suffix):
    x, expected = (np.array(v, dtype=DTYPES[suffix]) for v in zip(*SPECIAL[name], strict=True))
    got = run(name, suffix, x)
    np.testing.assert_array_equal(got, expected)  # nan == nan here
    zeros = expected == 0
    np.testing.assert_array_equal(np.signbit(got[zeros]), np.signbit(expected[zeros]),
                                  err_msg="sign of zero")


@pytest.mark.parametrize("suffix", DTYPES)
def test_subnormal_inputs_and_outputs(suffix):
    dt = DTYPES[suffix]
    info = np.finfo(dt)
    sub = np.array([info.smallest_subnormal, info.smallest_normal / 3, info.smallest_normal
                    - info.smallest_subnormal], dtype=dt)
    np.testing.assert_array_equal(run("tanh", suffix, sub), sub)       # tanh(x) = x to ~x**3
    np.testing.assert_array_equal(run("tanh", suffix, -sub), -sub)
    log = run("log", suffix, sub)
    assert np.all(np.isfinite(log)) and np.all(log <= np.log(info.smallest_normal))
    assert np.all(ulp_error(log, reference("log", sub)) <= 1)
    assert np.all(ulp_error(run("erf", suffix, sub), reference("erf", sub)) <= 1)
    # exp and sigmoid walk down through every subnormal to 0 at the threshold, as libm does.
    x = -np.geomspace(1, -np.log(info.smallest_subnormal) + 1, 20000).astype(dt)
    for name in ("exp", "sigmoid"):
        got, want = run(name, suffix, x), reference(name, x).astype(dt)
        np.testing.assert_array_equal(got == 0, want == 0, err_msg=f"{name} underflow to 0")
        assert np.any((got > 0) & (got < info.smallest_normal)), f"{name}: no subnormal result"


@pytest.mark.parametrize("suffix", DTYPES)
def test_exp_overflow_threshold(suffix):
    dt = DTYPES[suffix]
    edge = dt(88.72283935546875 if suffix == "f32" else 709.782712893384)
    x = edge + np.arange(-512, 512) * np.spacing(edge)
    with np.errstate(over="ignore"):
        got, want = run("exp", suffix, x), reference("exp", x.astype(dt)).astype(dt)
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    assert np.isinf(got).any() and np.isfinite(got).any()


# --- vectorization -----------------------------------------------------------------------------

@numba.njit(error_model="numpy")
def fused_exp_tanh_f32(x, out):
    for i in range(x.size):
        out[i] = vmath.exp_f32(x[i]) * vmath.tanh_f32(x[i])


LIBM = re.compile(r"call [^(]*@(expf?|logf?|tanhf?|erff?|llvm\.(exp|log|tanh)\.\w+)\(")
VECTOR = {"f32": re.compile(r"<(4|8|16) x float>"), "f64": re.compile(r"<(2|4|8) x double>")}


def test_fused_loop_vectorizes_without_libm_calls():
    x = np.linspace(-20, 20, 1001, dtype=np.float32)
    out = np.empty_like(x)
    fused_exp_tanh_f32(x, out)
    np.testing.assert_array_equal(out, run("exp", "f32", x) * run("tanh", "f32", x))
    sig = fused_exp_tanh_f32.signatures[0]
    ir = fused_exp_tanh_f32.inspect_llvm(sig)
    assert VECTOR["f32"].search(ir), "no float32 vector type in the loop's IR"
    # LLVM also "vectorizes" math.exp loops: to llvm.exp.v8f32, lowered to 8 expf calls.
    assert not LIBM.search(ir), LIBM.search(ir)
    assert not re.search(r"\$(expf|tanhf)\b", fused_exp_tanh_f32.inspect_asm(sig))


@pytest.mark.parametrize("suffix", DTYPES)
@pytest.mark.parametrize("name", FUNCS)
def test_every_function_vectorizes(name, suffix):
    fn = compiled(name, suffix)
    run(name, suffix, np.zeros(8))
    ir = fn.inspect_llvm(fn.signatures[0])
    assert VECTOR[suffix].search(ir), f"{name}_{suffix}: loop did not vectorize"
    assert not LIBM.search(ir), LIBM.search(ir)
    if suffix == "f32":  # typed constants: no float32 -> float64 promotion anywhere
        assert "fpext" not in ir and "fptrunc" not in ir
