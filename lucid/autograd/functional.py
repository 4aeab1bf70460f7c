"""Derivatives of whole functions (PyTorch's `torch.autograd.functional`): vjp, jvp, jacobian,
hessian, hvp and vhp, built on lucid's one chain-rule loop (`lucid.grad`). A jacobian takes one
backward pass per output element; jvp is the transpose of a vjp (the "double-vjp" trick)."""

from __future__ import annotations

import numpy as np

from lucid.autograd import enable_grad, grad
from lucid.ops.registry import LucidError
from lucid.tensor import Tensor


def _tuple(x, what: str) -> tuple[tuple[Tensor, ...], bool]:
    single = isinstance(x, Tensor)
    xs = (x,) if single else tuple(x)
    for t in xs:
        if not isinstance(t, Tensor):
            raise TypeError(f"The {what} given to autograd.functional must be a Tensor or a "
                            f"tuple of Tensors, not {type(t).__name__}")
    return xs, single


def _prepare(inputs, create_graph: bool) -> tuple[tuple[Tensor, ...], bool]:
    xs, single = _tuple(inputs, "inputs")
    fresh = tuple((x if create_graph and x.requires_grad else x.detach()).requires_grad_(True)
                  if not (create_graph and x.requires_grad) else x for x in xs)
    return fresh, single


def _grads(outputs, inputs, grad_outputs, create_graph: bool, strict: bool, what: str):
    found = grad(outputs, inputs, grad_outputs=grad_outputs, retain_graph=True,
                 create_graph=create_graph, allow_unused=True)
    out = []
    for i, (g, x) in enumerate(zip(found, inputs, strict=True)):
        if g is None:
            if strict:
                raise RuntimeError(f"The output of the user-provided function is independent "
                                   f"of input {i}. This is not allowed in strict mode ({what}).")
            g = x.new_zeros(x.shape)
        out.append(g if create_graph else g.detach())
    return tuple(out)


def _vectors(v, like, what: str) -> tuple[Tensor, ...]:
    """v as a tuple of tensors, or ones where v is None and `like` is one single element."""
    if v is not None:
        return _tuple(v, "v")[0]
    if any(t.numel() != 1 for t in like):
        raise RuntimeError(f"The vector v can only be None if the {what} is a single Tensor "
                           "with a single element.")
    return tuple(t.new_ones(t.shape) for t in like)


def vjp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), v^T J): the vector-Jacobian product at inputs."""
    xs, single_in = _prepare(inputs, create_graph)
    with enable_grad():
        outs = func(*xs)
    ys, single_out = _tuple(outs, "outputs")
    vs = _vectors(v, ys, "user-provided function's output")
    diff = [(y, w) for y, w in zip(ys, vs, strict=True) if y.requires_grad]
    if diff:
        g = _grads([y for y, _ in diff], xs, [w for _, w in diff], create_graph, strict, "vjp")
    else:
        g = tuple(x.new_zeros(x.shape) for x in xs)
    ys = ys if create_graph else tuple(y.detach() for y in ys)
    return (ys[0] if single_out else ys), (g[0] if single_in else g)


def jvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), J v): the Jacobian-vector product, as the gradient of u -> <J^T u, v>."""
    xs, single_in = _prepare(inputs, True)
    with enable_grad():
        outs = func(*xs)
    ys, single_out = _tuple(outs, "outputs")
    vs = _vectors(v, xs, "input to the user-provided function")
    us = tuple(y.new_zeros(y.shape).requires_grad_(True) for y in ys)
    with enable_grad():
        g = grad(list(ys), list(xs), grad_outputs=list(us), create_graph=True,
                 allow_unused=True)
        pairs = [(gi * vi).sum() for gi, vi in zip(g, vs, strict=True) if gi is not None]
        if not pairs:
            jv = tuple(y.new_zeros(y.shape) for y in ys)
        else:
            total = pairs[0]
            for p in pairs[1:]:
                total = total + p
            jv = _grads([total], list(us), None, create_graph, strict, "jvp")
    ys = ys if create_graph else tuple(y.detach() for y in ys)
    return (ys[0] if single_out else ys), (jv[0] if single_out else jv)


def jacobian(func, inputs, create_graph: bool = False, strict: bool = False,
             vectorize: bool = False, strategy: str = "reverse-mode"):
    """d func(inputs) / d inputs: for an output y and an input x, a tensor of shape
    y.shape + x.shape (nested tuples for several outputs or inputs, as PyTorch's)."""
    if strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError(f'Expected strategy to be either "forward-mode" or "reverse-mode", '
                         f"not {strategy!r}")
    xs, single_in = _prepare(inputs, create_graph)
    with enable_grad():
        outs = func(*xs)
    ys, single_out = _tuple(outs, "outputs")
    from lucid.functions import stack

    result = []
    for y in ys:
        rows = []
        flat = y.reshape(-1)
        for k in range(flat.numel()):
            if not y.requires_grad:
                rows.append(tuple(x.new_zeros(x.shape) for x in xs))
                continue
            seed = np.zeros(flat.shape, y.dtype)
            seed[k] = 1.0
            rows.append(_grads([flat], xs, [Tensor(seed, device=y.device)], create_graph,
                               strict, "jacobian"))
        per_input = []
        for i, x in enumerate(xs):
            if rows:
                j = stack([r[i] for r in rows], 0).reshape(*y.shape, *x.shape)
            else:
                j = x.new_zeros((*y.shape, *x.shape))
            per_input.append(j)
        result.append(per_input[0] if single_in else tuple(per_input))
    return result[0] if single_out else tuple(result)


def hessian(func, inputs, create_graph: bool = False, strict: bool = False,
            vectorize: bool = False, outer_jacobian_strategy: str = "reverse-mode"):
    """The Hessian of a scalar function: the jacobian of its gradient."""
    xs, single_in = _tuple(inputs, "inputs")

    def gradient(*ys):
        with enable_grad():
            out = func(*ys)
        if not isinstance(out, Tensor) or out.numel() != 1:
            raise RuntimeError("The function given to hessian should return a single Tensor "
                               "with a single element.")
        g = grad(out, list(ys), create_graph=True, allow_unused=True)
        g = tuple(gi if gi is not None else y.new_zeros(y.shape) for gi, y in zip(g, ys,
                                                                                    strict=True))
        return g[0] if single_in else g

    return jacobian(gradient, xs[0] if single_in else xs, create_graph=create_graph,
                    strict=strict)


def vhp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), v^T H) for a scalar function."""
    xs, single_in = _prepare(inputs, True)
    with enable_grad():
        out = func(*xs)
        if not isinstance(out, Tensor) or out.numel() != 1:
            raise RuntimeError("The function given to vhp/hvp should return a single Tensor "
                               "with a single element.")
        g = grad(out, list(xs), create_graph=True, allow_unused=True)
        vs, _ = _tuple(v if v is not None else tuple(x.new_ones(x.shape) for x in xs), "v")
        terms = [(gi * vi).sum() for gi, vi in zip(g, vs, strict=True) if gi is not None]
        if not terms:
            raise LucidError("vhp: the function does not depend on its inputs")
        total = terms[0]
        for t in terms[1:]:
            total = total + t
        h = _grads([total], xs, None, create_graph, strict, "vhp")
    out = out if create_graph else out.detach()
    return out, (h[0] if single_in else h)


def hvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), H v): equal to vhp, the Hessian being symmetric."""
    return vhp(func, inputs, v, create_graph, strict)
