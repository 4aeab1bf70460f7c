"""What a trace leaves behind: outputs, write-back effects and the backward graph, computed while
the traced state is in place; and `CaptureState`, the modules' and optimizers' Python state that a
trace changes and must restore.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lucid import autograd
from lucid.autograd import _FREED
from lucid.device import is_array
from lucid.ops.registry import LucidError
from lucid.tensor import Tensor
from lucid_jit.ir.graph import Graph
from lucid_jit.tracing import pytree
from lucid_jit.tracing.floats import TracedFloat, is_float
from lucid_jit.tracing.sources import (
    GradSource,
    GroupSource,
    OptStateSource,
    ResidualInput,
    SavedInput,
    SeedInput,
    SlotInput,
    Source,
)
from lucid_jit.tracing.tracer import Tracer

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


# ----------------------------------------------------------------------------- what a trace gives


@dataclass
class Effect:
    """After each call: `kind` is "data" (copy into the tensor), "grad" (set `.grad`) or
    "state" (set an optimizer state entry); `index` is the forward output holding the value."""

    kind: str
    source: Source
    index: int | None

    def describe(self) -> str:
        what = {"data": "write into", "grad": "set", "state": "set"}[self.kind]
        target = self.source.describe()
        if self.kind == "grad" and not target.endswith(".grad"):
            target += ".grad"
        value = "None" if self.index is None else f"output {self.index}"
        return f"{what} {target} <- {value}"


@dataclass(frozen=True)
class ConstLeaf:
    """A returned leaf that is no graph value: a Python value, or a lifted float's (pinned)
    value."""

    value: Any


@dataclass(frozen=True)
class AliasLeaf:
    """A returned tensor that existed before the call (an argument, a parameter, a `.grad`):
    the call returns the tensor itself."""

    source: Source


@dataclass(frozen=True)
class ValueLeaf:
    """A returned graph value: forward output `index`. `grad` says how it carries a gradient:
    "none"; "leaf" (it requires grad and has no history); "freed" (it was built on a graph that
    a backward() inside the function freed, so a backward through it raises, as eagerly); or
    "backward" (the backward graph gives its inputs' gradients, seeded by `grad_output<diff>`)."""

    index: int
    grad: str = "none"
    diff: int | None = None


@dataclass
class BackwardTrace:
    """The backward graph of a trace's differentiable outputs. `sources` says where each of its
    inputs comes from at run time (a SeedInput, a SavedInput or a Source); `leaf_sources` are
    the tensors the gradients flow to, `grad_index` each one's output (None: no gradient)."""

    graph: Graph
    sources: list
    leaf_sources: list[Source]
    grad_index: list[int | None]
    diff_avals: list


@dataclass
class TraceResult:
    """Everything a trace determined: the forward graph (the user's outputs first, `n_user`
    of them, then the write-backs' values and the residuals the backward graph reads), how
    the outputs are rebuilt (`out_spec`, `out_leaves`), the write-backs, the checks that two
    sources still give one array, and the backward graph if an output needs one."""

    forward: Graph
    out_spec: Any
    out_leaves: list
    n_user: int
    effects: list[Effect]
    alias_checks: list[tuple[int, Source]]
    backward: BackwardTrace | None


def finish_trace(tracer: Tracer, state: CaptureState, reach, result) -> TraceResult:
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
            out_leaves.append(ConstLeaf(x.value))
        elif not isinstance(x, Tensor):
            out_leaves.append(ConstLeaf(x))
        elif id(x) in grad_owner:
            out_leaves.append(AliasLeaf(GradSource(grad_owner[id(x)].source)))
        elif is_array(x.data) and id(x.data) not in tracer.born:
            snap = tracer.snapshots.get(id(x))
            src = snap.source if snap is not None and snap.source is not None else \
                tracer._source_of(x)
            out_leaves.append(AliasLeaf(src))
        else:
            if x._ctx is _FREED or (x._ctx is not None and _reaches_freed(x)):
                # Built on a graph a backward() in the function freed (`loss * 2` after
                # `loss.backward()`): returned as eagerly, a backward through it raises.
                leaf = ValueLeaf(len(values), "freed")
            elif x.requires_grad and x._ctx is None:
                leaf = ValueLeaf(len(values), "leaf")
            elif x.requires_grad:
                leaf = ValueLeaf(len(values), "backward", len(diff))
                diff.append(x)
            else:
                leaf = ValueLeaf(len(values))
            out_leaves.append(leaf)
            values.append(tracer.read(x))
    n_user = len(values)
    effects = _effects(tracer, state, values)
    for snap in tracer.snapshots.values():
        if snap.source is not None and snap.tensor._ctx is not None \
                and snap.tensor._ctx is not snap.ctx and snap.tensor._ctx is not _FREED:
            tracer.graph_break(f"an in-place op on {snap.source.describe()} was recorded by "
                               "autograd (update captured tensors under lucid.no_grad())")
    backward = _trace_backward(tracer, diff, values) if diff else None
    alias_checks = [(k, alt) for k, alts in sorted(tracer.alias_sources.items()) for alt in alts]
    forward = Graph(tracer.inputs, tracer.nodes, values, tracer.input_names)
    return TraceResult(forward, out_spec, out_leaves, n_user, effects, alias_checks, backward)


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


def _trace_backward(tracer: Tracer, diff: list[Tensor], values: list) -> BackwardTrace:
    """Run lucid's autograd loop over the forward trace, under a second tracer."""
    leaves = _leaves(diff, tracer)
    bt = Tracer(sources=tracer.sources, parent=tracer)
    with bt.active():
        seeds = [_share(bt.new_input(t.shape, t.dtype, SeedInput(j), f"grad_output{j}"))
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
        if isinstance(src, ResidualInput):  # a forward value: the forward graph outputs it
            sources.append(SavedInput(len(values)))
            values.append(src.value)
        elif isinstance(src, SlotInput):
            raise LucidError("internal: a lifted float reached the backward trace directly")
        else:
            sources.append(src)
    graph = Graph(bt.inputs, bt.nodes, outs, bt.input_names)
    return BackwardTrace(graph, sources, [s for _, s in leaves], grad_index,
                         [t.aval for t in diff])


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
