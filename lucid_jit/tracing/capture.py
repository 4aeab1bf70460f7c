"""What a trace leaves behind: outputs, write-back effects and the backward graph, computed while
the traced state is in place; and `CaptureState`, the modules' and optimizers' Python state that a
trace changes and must restore.
"""

from __future__ import annotations

from typing import Any

from lucid import autograd
from lucid.autograd import _FREED
from lucid.device import is_array
from lucid.ops.registry import LucidError
from lucid.tensor import Tensor
from lucid_jit.cache.entry import Effect
from lucid_jit.cache.guards import is_float
from lucid_jit.ir.graph import Graph
from lucid_jit.tracing import pytree
from lucid_jit.tracing.sources import (
    GradSource,
    GroupSource,
    OptStateSource,
    Source,
)
from lucid_jit.tracing.tracer import TracedFloat, Tracer

_share = Tensor._share


# ----------------------------------------------------------------------------- tracing


class CaptureState:
    """Modules' and optimizers' Python state before a trace, restored after it."""

    def __init__(self, reach, tracer: Tracer, names: list[str]) -> None:
        self.modules = [(m, dict(m.__dict__), dict(m._parameters), dict(m._buffers),
                         dict(m._modules)) for m, _ in reach.modules.values()]
        self.optimizers = []
        for opt, name in reach.optimizers.values():
            groups = [dict(g) for g in opt.param_groups]
            # Each parameter's state dict object, with a copy of its entries.
            inner = {p: (s, dict(s)) for p, s in opt.state.items()}
            self.optimizers.append((opt, name, opt.state, inner, opt.param_groups, groups))
        self.lifted_groups: list[tuple[dict, str, Any]] = []
        # Lift the optimizers' float hyperparameters (lr, betas, eps, ...) to graph inputs.
        for opt, name, _state, _snap, _groups, _copies in self.optimizers:
            for gi, group in enumerate(opt.param_groups):
                for key, value in list(group.items()):
                    if key == "params":
                        continue
                    if is_float(value):
                        group[key] = tracer.lift_float(value, GroupSource(opt, gi, key, None,
                                                                          name))
                    elif isinstance(value, tuple) and value and all(map(is_float, value)):
                        group[key] = tuple(tracer.lift_float(v, GroupSource(opt, gi, key, i,
                                                                            name))
                                           for i, v in enumerate(value))
                    else:
                        continue
                    self.lifted_groups.append((group, key, group[key]))

    def side_effects(self) -> str | None:
        """A Python-level change the graph cannot replay, or None."""
        for m, d, params, buffers, modules in self.modules:
            if (dict(m._parameters) != params or dict(m._buffers) != buffers
                    or dict(m._modules) != modules):
                return f"the function registers or replaces parameters of {type(m).__name__}"
            for k, v in m.__dict__.items():
                if k not in d or d[k] is not v:
                    return f"the function sets the attribute {k!r} of a {type(m).__name__}"
        for opt, _name, state, _snap, groups, _copies in self.optimizers:
            if opt.state is not state or opt.param_groups is not groups:
                return "the function replaces an optimizer's state or param_groups"
        lifted = {(id(g), k): v for g, k, v in self.lifted_groups}
        for opt, _name, _state, _snap, _groups, copies in self.optimizers:
            for group, before in zip(opt.param_groups, copies, strict=False):
                for k, v in group.items():
                    expected = lifted.get((id(group), k), before.get(k))
                    if v is not expected:
                        return f"the function changes the optimizer hyperparameter {k!r}"
        return None

    def restore(self) -> None:
        for m, d, params, buffers, modules in self.modules:
            m.__dict__.clear()
            m.__dict__.update(d)
            for store, saved in ((m._parameters, params), (m._buffers, buffers),
                                 (m._modules, modules)):
                store.clear()
                store.update(saved)
        for opt, _name, state, snap, groups, copies in self.optimizers:
            opt.state = state
            state.clear()
            for p, (obj, items) in snap.items():
                obj.clear()
                obj.update(items)
                state[p] = obj
            opt.param_groups = groups
            for group, before in zip(groups, copies, strict=True):
                group.clear()
                group.update(before)


def arg_name(path: str, fn) -> str:
    """`[0][1]` (args[1]) as the parameter's name where the signature gives one."""
    import inspect

    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        params = []
    if path.startswith("[0]["):
        rest = path[4:]
        idx, _, tail = rest.partition("]")
        i = int(idx)
        name = params[i] if i < len(params) else f"args[{i}]"
        return name + tail
    if path.startswith("[1]["):
        rest = path[4:]
        key, _, tail = rest.partition("]")
        return key.strip("'\"") + tail
    return path


def finish_trace(tracer: Tracer, state: CaptureState, reach, result) -> dict:
    """Everything the trace determined, computed while the traced state is still in place:
    outputs, write-backs, and the backward graph."""
    reason = state.side_effects()
    if reason is not None:
        tracer.graph_break(reason)
    out_flat: list = []
    out_spec = pytree.flatten(result, out_flat)
    values = []
    out_leaves = []
    diff = []
    grad_owner = {id(s.tensor.grad): s for s in tracer.snapshots.values()
                  if s.source is not None and s.tensor.grad is not None}
    for x in out_flat:
        if isinstance(x, TracedFloat):
            tracer.pin(x)
            out_leaves.append(("const", x.value))
        elif not isinstance(x, Tensor):
            out_leaves.append(("const", x))
        elif id(x) in grad_owner:
            out_leaves.append(("alias", GradSource(grad_owner[id(x)].source)))
        elif is_array(x.data) and id(x.data) not in tracer.born:
            snap = tracer.snapshots.get(id(x))
            src = snap.source if snap is not None and snap.source is not None else \
                tracer._source_of(x)
            out_leaves.append(("alias", src))
        else:
            grad = None
            if x._ctx is _FREED or (x._ctx is not None and _reaches_freed(x)):
                # Built on a graph a backward() in the function freed (`loss * 2` after
                # `loss.backward()`): returned as eagerly, a backward through it raises.
                grad = "freed"
            elif x.requires_grad and x._ctx is None:
                grad = "leaf"
            elif x.requires_grad:
                grad = len(diff)
                diff.append(x)
            out_leaves.append(("value", len(values), grad))
            values.append(tracer.read(x))
    n_user = len(values)
    effects = _effects(tracer, state, values)
    for snap in tracer.snapshots.values():
        if snap.source is not None and snap.tensor._ctx is not None \
                and snap.tensor._ctx is not snap.ctx and snap.tensor._ctx is not _FREED:
            tracer.graph_break(f"an in-place op on {snap.source.describe()} was recorded by "
                               "autograd (update captured tensors under lucid.no_grad())")
    backward = None
    bwd = {"backward_sources": [], "leaf_sources": [], "grad_index": [], "diff_avals": [],
           "bwd_nodes": []}
    if diff:
        backward, bwd = _trace_backward(tracer, diff, values)
    alias_checks = []
    for k, src in enumerate(tracer.input_sources):
        if isinstance(src, tuple):
            continue
        for alt in tracer.alias_sources.get(k, ()):
            alias_checks.append((k, alt))
    forward = Graph(tracer.inputs, tracer.nodes, values, tracer.input_names)
    return {"forward": forward, "out_spec": out_spec, "out_leaves": out_leaves,
            "n_user": n_user, "effects": effects, "backward": backward,
            "alias_checks": alias_checks, **bwd}


def _effects(tracer: Tracer, state: CaptureState, values: list) -> list[Effect]:
    effects = []
    done: set[int] = set()
    for snap in list(tracer.snapshots.values()):
        if snap.source is None:
            continue
        t = snap.tensor
        key = id(snap.data)
        if key in tracer.assigned and key not in done:
            done.add(key)
            effects.append(Effect("data", snap.source, len(values)))
            values.append(tracer.current[key])
        if t.grad is not snap.grad:
            if t.grad is None:
                effects.append(Effect("grad", snap.source, None))
            else:
                effects.append(Effect("grad", snap.source, len(values)))
                values.append(tracer.read(t.grad))
    for opt, name, _state, snap, _groups, _copies in state.optimizers:
        for p, entries in opt.state.items():
            before = snap[p][1] if p in snap else {}
            for k, v in entries.items():
                if before.get(k) is v:
                    continue
                if not isinstance(v, Tensor):
                    tracer.graph_break(f"the optimizer's state {k!r} is a Python value the step "
                                       "changes")
                found = tracer.sources.get(id(p))
                pname = found[1].describe() if found is not None else "param"
                effects.append(Effect("state", OptStateSource(opt, p, k, f"{name}.state[{pname}]"),
                                      len(values)))
                values.append(tracer.read(v))
            for k in before:
                if k not in entries:
                    tracer.graph_break(f"the step deletes the optimizer's state {k!r}")
    return effects


def _trace_backward(tracer: Tracer, diff: list[Tensor], values: list):
    """Run lucid's autograd loop over the forward trace, under a second tracer."""
    leaves = _leaves(diff, tracer)
    bt = Tracer(sources=tracer.sources, parent=tracer)
    with bt.active():
        seeds = [_share(bt.new_input(t.shape, t.dtype, ("seed", j), f"grad_output{j}"))
                 for j, t in enumerate(diff)]
        grads = autograd.run_backward(diff, seeds, inputs=[t for t, _ in leaves],
                                      retain_graph=True)
        outs, grad_index = [], []
        for g in grads:
            if g is None:
                grad_index.append(None)
            else:
                grad_index.append(len(outs))
                outs.append(bt.read(g))
    sources = []
    for src in bt.input_sources:
        if isinstance(src, tuple) and src[0] == "residual":
            sources.append(("saved", len(values)))
            values.append(src[1])
        elif isinstance(src, tuple) and src[0] == "slot":
            raise LucidError("internal: a lifted float reached the backward trace directly")
        else:
            sources.append(src)
    graph = Graph(bt.inputs, bt.nodes, outs, bt.input_names)
    return graph, {"backward_sources": sources, "leaf_sources": [s for _, s in leaves],
                   "grad_index": grad_index, "diff_avals": [t.aval for t in diff],
                   "bwd_nodes": bt.nodes}


def _reaches_freed(root: Tensor) -> bool:
    """Whether autograd from root would meet a graph that a backward() already freed."""
    seen, stack = set(), [root]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        if t._ctx is _FREED:
            return True
        if t._ctx is not None:
            stack.extend(x for x in t._ctx.inputs if x.requires_grad)
    return False


def _leaves(roots: list[Tensor], tracer: Tracer) -> list[tuple[Tensor, Source]]:
    """The real tensors (arguments, captured) that the outputs' gradients flow to."""
    found, seen, stack = [], set(), list(roots)
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        ctx = t._ctx
        if ctx is None or ctx is _FREED:
            if t.requires_grad and is_array(t.data) \
                    and id(t.data) not in tracer.born:
                snap = tracer.snapshots.get(id(t))
                src = snap.source if snap is not None and snap.source is not None \
                    else tracer._source_of(t)
                found.append((t, src))
            continue
        stack.extend(x for x in ctx.inputs if x.requires_grad)
    return found
