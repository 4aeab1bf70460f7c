"""lucid: an eager, NumPy-backed deep-learning library. `lucid.compile` is its compiler."""

from lucid import dtypes
from lucid import functions as _functions
from lucid.arguments import ArgumentError
from lucid.autograd import (
    enable_grad,
    grad,
    inference_mode,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from lucid.dtypes import bool_, float32, float64, int32, int64
from lucid.factories import (
    arange,
    empty,
    eye,
    full,
    full_like,
    get_rng_state,
    initial_seed,
    linspace,
    logspace,
    manual_seed,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    seed,
    set_rng_state,
    tensor,
    zeros,
    zeros_like,
)
from lucid.functions import cat, clamp, concat, is_tracing, matmul, maximum, minimum, stack, where
from lucid.ops.registry import DTypeError, LucidError, ShapeError
from lucid.tensor import Tensor

float = float32  # noqa: A001 (torch.float spelling)
double = float64
long = int64
int = int32  # noqa: A001
bool = bool_  # noqa: A001

for _name in _functions.METHODS:
    globals()[_name] = _functions.method_function(_name)


import math as _math  # noqa: E402

from lucid import (  # noqa: E402  (they build on Tensor)
    amp,
    backends,
    cuda,
    device,  # noqa: E402,F401  (callable: lucid.device("cuda"))
    distributed,
    distributions,
    linalg,  # noqa: E402
    nn,
    optim,
    special,
    utils,
)
from lucid import methods as _methods  # noqa: E402  (Tensor methods written in lucid ops)
from lucid.einsum import einsum  # noqa: E402
from lucid.methods import (  # noqa: E402
    Size,
    allclose,
    are_deterministic_algorithms_enabled,
    as_tensor,
    bernoulli,
    block_diag,
    broadcast_shapes,
    broadcast_tensors,
    bucketize,
    cdist,
    dist,
    empty_like,
    equal,
    finfo,
    from_numpy,
    get_default_dtype,
    get_float32_matmul_precision,
    get_num_threads,
    hstack,
    iinfo,
    is_deterministic_algorithms_warn_only_enabled,
    is_floating_point,
    is_tensor,
    isclose,
    meshgrid,
    normal,
    numel,
    randint_like,
    searchsorted,
    set_default_dtype,
    set_float32_matmul_precision,
    set_num_threads,
    trace,
    use_deterministic_algorithms,
    vstack,
)
from lucid.random import Generator, randperm  # noqa: E402
from lucid.serialization import load, save  # noqa: E402

pi, e, inf, nan = _math.pi, _math.e, _math.inf, _math.nan
autocast = amp.autocast
float16 = half = amp.float16  # (named for autocast's arguments; lucid does not compute in them)
bfloat16 = amp.bfloat16
concatenate = cat

for _name in _methods.FUNCTIONS:
    globals()[_name] = _functions.method_function(_name)


def compile(fn=None, *, backend: str = "cpu", fullgraph: bool = False,  # noqa: A001
            fastmath: bool = False, **options):
    """Compile a function or an nn.Module with lucid_jit (imported on first use, so that
    `import lucid` stays free of the compiler and numba). See `lucid_jit.compile`."""
    from lucid import _jit

    return _jit.compiler()(fn, backend=backend, fullgraph=fullgraph, fastmath=fastmath,
                           **options)


__version__ = "0.1.0"
