"""What the tests share: comparing tensors, checking gradients against finite differences, and
turning OpInfo samples into tensors. Test modules import from here (and from opinfo.py,
models.py and jit/programs.py), never from each other."""

from __future__ import annotations

import numpy as np

import lucid
from lucid import Tensor


def to_numpy(x) -> np.ndarray:
    return x.numpy() if isinstance(x, Tensor) else np.asarray(x)


def assert_close(actual, expected, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    a, e = to_numpy(actual), to_numpy(expected)
    assert a.shape == e.shape, f"shape {a.shape} != expected {e.shape}"
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol)


def assert_close_scaled(actual, expected, what: str, rtol: float = 1e-5) -> None:
    """Equal dtype and shape, values within rtol of the value or of the tensor's largest entry
    (Adam's second moments are ~1e-8: a fixed atol would make them vacuous)."""
    a, e = actual.numpy(), expected.numpy()
    assert (a.dtype, a.shape) == (e.dtype, e.shape), f"{what}: {a.dtype}{a.shape} != " \
                                                     f"{e.dtype}{e.shape}"
    scale = float(np.abs(e).max()) if e.size else 0.0
    np.testing.assert_allclose(a, e, rtol=rtol, atol=rtol * scale, err_msg=what)


def assert_same_tensor(actual, expected, rtol: float, atol: float, what: str,
                       device: str | None = None) -> None:
    """A Tensor (on `device`, if given) of the expected dtype and shape, values within the
    tolerances."""
    assert isinstance(actual, Tensor), f"{what}: {type(actual).__name__}"
    if device is not None:
        assert actual.device == device, f"{what}: the result is on {actual.device}"
    assert (actual.dtype, actual.shape) == (expected.dtype, expected.shape), \
        f"{what}: {actual.aval} != expected {expected.aval}"
    np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=rtol, atol=atol,
                               err_msg=what)


def sample_tensors(args, requires=(), device: str = "cpu") -> list:
    """A sample's arguments as tensors (arrays and NumPy scalars; other values as they are),
    requiring grad at the positions in `requires`."""
    return [Tensor(a, requires_grad=i in requires, device=device)
            if isinstance(a, (np.ndarray, np.generic)) else a for i, a in enumerate(args)]


def check_vjp(fn, args, wrt, rng, *, eps: float = 1e-6, rtol: float = 1e-6,
              atol: float = 1e-8, per_input: bool = False, scale_atol: bool = False,
              allow_unused: bool = False, what: str = "") -> None:
    """Backward's gradients against central finite differences, in float64.

    `fn(*tensors)` is differentiated with respect to the arguments at positions `wrt` (float
    arrays); the others are passed as tensors (arrays) or as they are. A random output weight u
    gives the scalar <u, fn>; its gradient, dotted with a random direction v, must match
    (f(x + eps v) - f(x - eps v)) / 2 eps: along one direction moving every input at once, or,
    with `per_input`, along one per input moved alone. `scale_atol` multiplies atol by
    sum|u| + 1 (for outputs of many elements)."""
    wrt = list(wrt)
    args = [np.asarray(a, np.float64) if i in wrt else a for i, a in enumerate(args)]
    xs = sample_tensors(args, requires=wrt)
    out = fn(*xs)
    u = rng.standard_normal(out.shape)
    grads = lucid.grad(out, [xs[i] for i in wrt], grad_outputs=Tensor(u, dtype=out.dtype),
                       allow_unused=allow_unused)
    for i, g in zip(wrt, grads, strict=True):
        assert g is not None or allow_unused, f"{what}: input {i} got no gradient"
        if g is not None:
            assert g.shape == xs[i].shape and g.dtype == xs[i].dtype, (what, i, g.aval)

    def value(step: dict) -> float:
        moved = [a + step[i] if i in step else a for i, a in enumerate(args)]
        with lucid.no_grad():
            return float(np.sum(u * fn(*sample_tensors(moved)).numpy()))

    tol = atol * (np.sum(np.abs(u)) + 1.0) if scale_atol else atol
    directions = [[i] for i in wrt] if per_input else [wrt]
    for group in directions:
        vs = {i: rng.standard_normal(np.shape(args[i])) for i in group}
        fd = (value({i: eps * v for i, v in vs.items()})
              - value({i: -eps * v for i, v in vs.items()})) / (2 * eps)
        analytic = sum(float(np.sum(g.numpy() * vs[i])) for i, g in zip(wrt, grads, strict=True)
                       if i in vs and g is not None)
        np.testing.assert_allclose(analytic, fd, rtol=rtol, atol=tol,
                                   err_msg=f"{what} gradient along inputs {group}")
