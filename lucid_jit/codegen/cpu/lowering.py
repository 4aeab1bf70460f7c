"""The cpu backend's lowering table (see `codegen/lowering.py`), and its scalar math library."""

from __future__ import annotations

from lucid_jit.codegen.lowering import (
    BODY,
    FREE,
    LOWERED,
    OWN,
    VIEW,
    Lowering,
    collective_rows,
    elementwise_rows,
    float_result,
    linalg_rows,
    numeric,
)


def _not_bool(node) -> bool:
    return node.inputs[0].dtype.kind in "iuf"


LOWERING: dict[str, Lowering] = {
    **elementwise_rows(),
    "sum": Lowering(BODY, when=numeric),
    "max": Lowering(BODY, when=numeric),
    "matmul": Lowering(BODY, when=float_result),  # BLAS (np.dot), its epilogue fused after
    "full": Lowering(FREE, when=numeric),
    "reshape": Lowering(VIEW, when=numeric),
    "permute": Lowering(VIEW, when=numeric),
    "broadcast_to": Lowering(VIEW, when=numeric),  # (in a body: a stride-0 read, free)
    # Kernels of their own (cpu/ops.py, from codegen/elementops.py); an index form those do
    # not know runs on the host.
    "argmax": Lowering(OWN, when=_not_bool),
    "getitem": Lowering(OWN, when=numeric),
    "scatter_add": Lowering(OWN, when=numeric),
    "concat": Lowering(OWN, when=numeric),
    "pad": Lowering(OWN, when=numeric),
    "unfold": Lowering(OWN, when=numeric),
    "fold": Lowering(OWN, when=numeric),
    "max_pool2d": Lowering(OWN, when=numeric),
    "max_pool2d_grad": Lowering(OWN, when=numeric),
    "conv2d": Lowering(LOWERED, when=numeric),  # unfold, a reshape of the weight, one matmul
    # Random draws: Philox kernels (elementops.random_kernels), eager's numbers for a seed.
    "uniform": Lowering(OWN, when=float_result),
    "normal": Lowering(OWN, when=float_result),
    "randint": Lowering(OWN),
    **collective_rows(),
    **linalg_rows(),
}

# The math functions of scalar templates (`{exp}(...)`), for njit code. `{s}` is "f32" or "f64".
# Names without a dot are vmath's (vectorizable where numba's are not: see vmath.py); generated
# modules import them from there.
MATH: dict[str, str] = {
    "exp": "exp_{s}",
    "log": "log_{s}",
    "tanh": "tanh_{s}",
    "sigmoid": "sigmoid_{s}",
    "erf": "erf_{s}",
    "log1p": "np.log1p",
    "sqrt": "np.sqrt",
    "sin": "np.sin",
    "cos": "np.cos",
    "atan2": "np.arctan2",
}

# The math functions kernels call that generated modules import (vmath's: MATH's names without
# a dot), in both dtypes.
MATH_NAMES = tuple(sorted({impl.format(s=s) for impl in MATH.values() if "." not in impl
                           for s in ("f32", "f64")}))
