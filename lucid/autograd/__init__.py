"""Reverse-mode autodiff: the only chain-rule loop in lucid, and grad mode.

The loop walks the contexts `bind` recorded, calling each op's vjp (written in lucid ops). Eagerly
that computes gradients; under `lucid.compile`'s tracer the same calls record the backward graph.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from lucid.ops.registry import CURRENT_TRACER, GRAD_ENABLED, LucidError, user_location

_FREED = "freed"


@contextmanager
def _grad_mode(enabled: bool):
    token = GRAD_ENABLED.set(enabled)
    try:
        yield
    finally:
        GRAD_ENABLED.reset(token)


class _GradMode:
    """Usable as `with no_grad():` and as `@no_grad()`."""

    enabled = True

    def __enter__(self):
        self._token = GRAD_ENABLED.set(self.enabled)
        return self

    def __exit__(self, *exc):
        GRAD_ENABLED.reset(self._token)

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with _grad_mode(self.enabled):
                return fn(*args, **kwargs)
        wrapper.__wrapped__ = fn
        wrapper.__name__ = getattr(fn, "__name__", "wrapper")
        return wrapper


class no_grad(_GradMode):  # noqa: N801 (PyTorch's spelling)
    enabled = False


class enable_grad(_GradMode):  # noqa: N801
    enabled = True


class inference_mode(_GradMode):  # noqa: N801
    """no_grad under PyTorch's other name (`inference_mode(False)` leaves grad mode on)."""

    def __init__(self, mode: bool = True) -> None:
        self.enabled = not mode


def is_grad_enabled() -> bool:
    return GRAD_ENABLED.get()


class set_grad_enabled:  # noqa: N801 (PyTorch's spelling)
    """Turn grad mode on or off: at once when called (`lucid.set_grad_enabled(False)`), and
    back to what it was at the end of a `with set_grad_enabled(...):` block."""

    def __init__(self, mode: bool) -> None:
        self._previous = GRAD_ENABLED.get()
        GRAD_ENABLED.set(bool(mode))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        GRAD_ENABLED.set(self._previous)


def _toposort(roots) -> list:
    """Tensors reachable from roots through autograd contexts, inputs before outputs."""
    order, seen = [], set()
    for root in roots:
        if id(root) in seen:
            continue
        stack = [(root, False)]
        while stack:
            t, expanded = stack.pop()
            if expanded:
                order.append(t)
                continue
            if id(t) in seen:
                continue
            seen.add(id(t))
            stack.append((t, True))
            ctx = t._ctx
            if ctx is _FREED:
                raise LucidError(
                    "backward through a graph that was already freed: a first backward() freed "
                    "it; pass retain_graph=True to the first call to backward twice "
                    f"({user_location()})")
            if ctx is not None:
                stack.extend((x, False) for x in ctx.inputs
                             if x.requires_grad and id(x) not in seen)
    return order


def _check_versions(t) -> None:
    op, inputs, _attrs, versions, out_version = t._ctx
    saved, saves_output = op.saved(inputs)
    stale = [i for i in saved if inputs[i]._version[0] != versions[i]]
    if saves_output and t._version[0] != out_version:
        stale.append("output")
    if stale:
        which = ", ".join(f"input {i}" if i != "output" else i for i in stale)
        shapes = ", ".join(str(x.aval) for x in inputs)
        raise LucidError(
            f"{op.name}({shapes}): {which} needed for backward was modified in place after the "
            f"forward ran (version counter moved); use an out-of-place op or clone() first "
            f"({user_location()})")


def _seed(root, gradient):
    from lucid.ops.creation import ones_like
    from lucid.tensor import Tensor

    if gradient is None:
        return ones_like(root)  # a non-scalar output is seeded with ones (the seed docs do this)
    if not isinstance(gradient, Tensor):
        gradient = Tensor(gradient, dtype=root.dtype)
    if gradient.shape != root.shape:
        raise LucidError(f"backward: gradient of shape {gradient.shape} does not match the "
                         f"output's shape {root.shape} ({user_location()})")
    return gradient


# Tensor.register_hook: id(tensor) -> its hooks, called in order with the tensor's gradient
# when backward computes it (a hook may return a replacement); entries go with their tensors.
HOOKS: dict[int, list] = {}


def _run_hooks(t, g):
    for hook in list(HOOKS.get(id(t), ())):
        result = hook(g)
        if result is not None:
            g = result
    return g


# Tensor.register_post_accumulate_grad_hook: id(leaf) -> hooks called with the leaf once backward
# has accumulated its gradient into .grad (DistributedDataParallel starts its all-reduces so).
POST_ACCUMULATE: dict[int, list] = {}


class _Pass:
    """One running backward: callbacks queued for its end (`queue_callback`)."""

    __slots__ = ("callbacks",)

    def __init__(self) -> None:
        self.callbacks: list = []


_PASSES: list[_Pass] = []


def current_backward() -> _Pass | None:
    """The innermost backward that is running (an object that identifies it), or None."""
    return _PASSES[-1] if _PASSES else None


def queue_callback(fn) -> None:
    """Call fn() when the running backward has finished (after every gradient is accumulated)."""
    if not _PASSES:
        raise LucidError("queue_callback: no backward is running")
    _PASSES[-1].callbacks.append(fn)


def run_backward(roots, seeds, *, inputs=None, retain_graph=False, create_graph=False):
    """The chain rule. Accumulates into leaves' .grad, or returns grads of `inputs` if given."""
    _PASSES.append(_Pass())
    try:
        found = _chain_rule(roots, seeds, inputs, retain_graph, create_graph)
        callbacks = _PASSES[-1].callbacks
        while callbacks:
            callbacks.pop(0)()
        return found
    finally:
        _PASSES.pop()


def _chain_rule(roots, seeds, inputs, retain_graph, create_graph):
    for root in roots:
        if not root.requires_grad:
            raise LucidError("backward: the tensor does not require grad and has no graph "
                             f"(is every input detached or under no_grad?) ({user_location()})")
    grads: dict[int, object] = {}
    for root, seed in zip(roots, seeds, strict=True):
        grads[id(root)] = grads[id(root)] + seed if id(root) in grads else seed
    wanted = None if inputs is None else {id(t): i for i, t in enumerate(inputs)}
    found = [None] * (0 if inputs is None else len(inputs))
    claimed: set[int] = set()
    order = _toposort(roots)
    with _grad_mode(create_graph):
        for t in reversed(order):
            g = grads.pop(id(t), None)
            if g is None:
                continue
            if HOOKS and id(t) in HOOKS:
                g = _run_hooks(t, g)
            if wanted is not None and id(t) in wanted:
                found[wanted[id(t)]] = g
                if t._ctx is None:
                    continue
            if t._ctx is None:
                if wanted is None:
                    _accumulate(t, g, claimed)
                    if POST_ACCUMULATE and id(t) in POST_ACCUMULATE:
                        for hook in list(POST_ACCUMULATE[id(t)]):
                            hook(t)
                continue
            _check_versions(t)
            op, xs, attrs, _versions, _ = t._ctx
            gxs = op.vjp(g, t, *xs, **attrs)
            for x, gx in zip(xs, gxs, strict=True):
                if gx is None or not x.requires_grad:
                    continue
                if gx.dtype != x.dtype:
                    gx = gx.cast(x.dtype)
                grads[id(x)] = grads[id(x)] + gx if id(x) in grads else gx
    if not retain_graph:
        for t in order:
            if t._ctx is not None:
                t._ctx = _FREED
    return found


def _accumulate(leaf, g, claimed: set[int]) -> None:
    """Add g into leaf.grad. A gradient that is a view or another leaf's grad is copied first,
    so that in-place updates of one .grad (`p.grad.mul_(scale)`) never show through another;
    under a trace the tracer says what is a view, and the copy is a graph node."""
    tracer = CURRENT_TRACER.get()
    if tracer is not None:
        if leaf.grad is None and (id(g.data) in claimed or tracer.is_view(g)):
            g = g.detach().clone() if g._ctx is None else g.clone()
        claimed.add(id(g.data))
    elif isinstance(g.data, np.ndarray):
        arr = g.data
        if id(arr) in claimed or not arr.flags.owndata or not arr.flags.writeable:
            g = g.detach().clone() if g._ctx is None else g.clone()
        claimed.add(id(g.data))
    if g._ctx is None:
        g = g.detach()
    leaf.grad = g if leaf.grad is None else leaf.grad + g


def backward(tensor, gradient=None, retain_graph: bool = False, create_graph: bool = False):
    run_backward([tensor], [_seed(tensor, gradient)], retain_graph=retain_graph or create_graph,
                 create_graph=create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph: bool | None = None,
         create_graph: bool = False, allow_unused: bool = False):
    """Gradients of outputs with respect to inputs, returned (not accumulated into .grad)."""
    single = not isinstance(outputs, (list, tuple))
    outputs = [outputs] if single else list(outputs)
    inputs_seq = [inputs] if not isinstance(inputs, (list, tuple)) else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = [grad_outputs]
    seeds = [_seed(o, g) for o, g in zip(outputs, grad_outputs, strict=True)]
    retain = create_graph if retain_graph is None else retain_graph
    found = run_backward(outputs, seeds, inputs=inputs_seq, retain_graph=retain,
                         create_graph=create_graph)
    for i, g in enumerate(found):
        if g is None and not allow_unused:
            raise LucidError(f"grad: input {i} ({inputs_seq[i].aval}) was not used to compute "
                             "the outputs; pass allow_unused=True to get None for it")
    return tuple(found)


def __getattr__(name: str):
    # `Function` (lucid/autograd/function.py) and `functional` need Tensor: loaded on first use.
    import importlib

    if name in ("Function", "FunctionCtx", "once_differentiable", "function"):
        module = importlib.import_module("lucid.autograd.function")
        return module if name == "function" else getattr(module, name)
    if name == "functional":  # jacobian, hessian, vjp, jvp, hvp, vhp
        return importlib.import_module("lucid.autograd.functional")
    raise AttributeError(f"module 'lucid.autograd' has no attribute {name!r}")
