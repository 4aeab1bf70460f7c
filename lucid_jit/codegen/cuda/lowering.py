"""The cuda backend's lowering table (see `codegen/lowering.py`), and its scalar math library."""

from __future__ import annotations

from lucid_jit.codegen.lowering import (
    BODY,
    FREE,
    LOWERED,
    OWN,
    Lowering,
    collective_rows,
    elementwise_rows,
    float_result,
    linalg_rows,
    numeric,
)

LOWERING: dict[str, Lowering] = {
    **elementwise_rows(),
    "sum": Lowering(BODY, when=numeric),
    "max": Lowering(BODY, when=numeric),
    "matmul": Lowering(BODY, when=float_result),  # tiled shared-memory kernel, epilogue fused
    "full": Lowering(FREE, when=numeric),
    # A program's results are fresh arrays: movement ops are copy kernels (ops.py).
    "reshape": Lowering(OWN, when=numeric),
    "permute": Lowering(OWN, when=numeric),
    "broadcast_to": Lowering(OWN, when=numeric),
    # Basic indexing: a slice kernel; index tensors: a gather (or a zero fill and an atomic
    # scatter-add); a form the launch builders do not know runs on the host.
    "getitem": Lowering(OWN, when=numeric),
    "scatter_add": Lowering(OWN, when=numeric),
    "pad": Lowering(OWN, when=numeric),
    "concat": Lowering(OWN, when=numeric),
    "unfold": Lowering(OWN, when=numeric),
    "fold": Lowering(OWN, when=numeric),
    "max_pool2d": Lowering(OWN, when=numeric),
    "max_pool2d_grad": Lowering(OWN, when=numeric),
    "argmax": Lowering(OWN, when=numeric),
    "conv2d": Lowering(LOWERED, when=numeric),  # unfold, a reshape of the weight, one matmul
    # Random draws: Philox kernels (elementops.random_kernels), eager's numbers for a seed.
    "uniform": Lowering(OWN, when=float_result),
    "normal": Lowering(OWN, when=float_result),
    "randint": Lowering(OWN),
    **collective_rows(),
    **linalg_rows(),
}

# The math functions of scalar templates (`{exp}(...)`): devmath's device functions, which
# return NumPy's results at the edges. `{s}` is "f32" or "f64".
MATH: dict[str, str] = {
    "exp": "exp_{s}",
    "log": "log_{s}",
    "tanh": "tanh_{s}",
    "sigmoid": "sigmoid_{s}",
    "erf": "erf_{s}",
    "log1p": "log1p_{s}",
    "sqrt": "sqrt_{s}",
    "sin": "sin_{s}",
    "cos": "cos_{s}",
    "atan2": "atan2_{s}",
}
