"""What a call does once its entry's guards hold, as one generated Python function per entry:

    run(flat, arrays) -> the function's result

It runs the forward graph, writes back what the function mutated (tensor data, `.grad`s, new
optimizer state), and rebuilds the outputs (constants, tensors returned as they are, and graph
values: a value that needs a gradient gets an autograd context whose vjp runs the entry's
backward graph). Everything the trace fixed is decided once, here, when the code is generated:
which write-backs the native code already did in place (only a version counter to bump), which
outputs are fresh buffers the backend made for this call (wrapped as they are). Only what depends
on the call's arrays is left to run time, in the helpers below (`_detached`, `_fresh`,
`_output`): an array the backend did not make fresh may be an input's, or handed out twice, and
is then copied.
"""

from __future__ import annotations

import functools

import numpy as np

from lucid.autograd import _FREED
from lucid.device import is_device_array
from lucid.ops.registry import ALL, GRAD_ENABLED, Context, LucidError, Op
from lucid.tensor import Tensor
from lucid_jit.cache.check import _Namespace, define
from lucid_jit.tracing import pytree
from lucid_jit.tracing.capture import AliasLeaf, ConstLeaf, ValueLeaf
from lucid_jit.tracing.sources import SavedInput, SeedInput, SlotInput

_share = Tensor._share


def compile_run(entry):
    """The generated `run(flat, arrays)` of a CompiledEntry (see the module docstring)."""
    ns = _Namespace()
    bind = ns.bind
    backend, graph = entry.backend, entry.forward
    owned = backend.owned(graph)
    inplace = backend.inplace(graph)
    body = [f"outs = {bind(backend.runner(graph))}(arrays)"]
    dynamic = []  # lines that need the call's input ids and the arrays handed out so far
    given: set[int] = set()  # outputs handed out as they are

    def fresh(i: int) -> str:
        """Output i as an array nobody else holds."""
        if owned is not None and owned[i] and i not in given:
            given.add(i)
            return f"outs[{i}]"
        dynamic.append(i)
        return f"{bind(_fresh)}(outs[{i}], given, ids)"

    data = [eff for eff in entry.effects if eff.kind == "data"]
    stores = []
    for k, eff in enumerate(data):
        target = eff.source.code(bind)
        if eff.index in inplace:  # computed into the tensor's own array: nothing to copy
            stores.append(f"{target}._version[0] += 1")
            continue
        body.append(f"d{k} = {target}")
        if owned is not None and owned[eff.index]:
            body.append(f"w{k} = outs[{eff.index}]")
        else:  # (copied before any store: another write-back may overwrite its source)
            dynamic.append(eff.index)
            body.append(f"w{k} = {bind(_detached)}(outs[{eff.index}], d{k}.data, ids)")
        stores.append(f"{bind(_store)}(d{k}, w{k})")
    body += stores
    for eff in entry.effects:
        if eff.kind == "grad":
            value = "None" if eff.index is None else f"{bind(_share)}({fresh(eff.index)})"
            body.append(f"{eff.source.code(bind)}.grad = {value}")
        elif eff.kind == "state":
            src = eff.source
            body.append(f"{bind(src.opt)}.state[{bind(src.param)}][{bind(src.key)}] = "
                        f"{bind(_share)}({fresh(eff.index)})")
    leaves = []
    if any(isinstance(leaf, ValueLeaf) and leaf.grad == "backward" for leaf in entry.out_leaves):
        body.append(f"runner = {bind(BackwardRunner)}({bind(entry)}, flat, outs)")
        sources = ", ".join(src.code(bind) for src in entry.leaf_sources)
        body.append(f"xs = ({sources}{',' if len(entry.leaf_sources) == 1 else ''})")
    for j, leaf in enumerate(entry.out_leaves):
        if isinstance(leaf, ConstLeaf):
            leaves.append(bind(leaf.value))
            continue
        if isinstance(leaf, AliasLeaf):
            leaves.append(leaf.source.code(bind))
            continue
        i = leaf.index
        if owned is not None and owned[i] and i not in given:
            given.add(i)
            tensor = f"{bind(_share)}(outs[{i}])"
        else:  # maybe a view of an input (kept a view, as eagerly), or not fresh: copied
            dynamic.append(i)
            tensor = f"{bind(_output)}(outs[{i}], arrays, {bind(entry.input_sources)}, flat, " \
                     "given, ids)"
        if leaf.grad == "none":
            leaves.append(tensor)
            continue
        body.append(f"y{j} = {tensor}")
        if leaf.grad == "freed":
            body.append(f"y{j}.requires_grad, y{j}._ctx = True, {bind(_FREED)}")
        elif leaf.grad == "leaf":
            body.append(f"y{j}.requires_grad = True")
        else:
            body.append(f"{bind(_attach)}(y{j}, runner, {leaf.diff}, xs)")
        leaves.append(f"y{j}")
    if dynamic:
        body.insert(1, "ids, given = {id(a) for a in arrays}, set()")
    if entry.out_spec is pytree.LEAF and len(leaves) == 1:
        body.append(f"return {leaves[0]}")
    else:
        body.append(f"return {bind(pytree.unflatten)}({bind(entry.out_spec)}, "
                    f"[{', '.join(leaves)}])")
    source = "def run(flat, arrays):\n" + "".join(f"    {line}\n" for line in body)
    run = define(source, f"<lucid_jit run of {entry.name}>", ns.globals, "run")
    run.source = source
    return run


# ----------------------------------------------------------------------------- run-time helpers


def _owns(arr) -> bool:
    return arr.flags.owndata and arr.flags.writeable


def _detached(arr, target, ids):
    """A write-back's value, copied when it is an input's array or a view (another write-back
    may overwrite it before this one is stored)."""
    if arr is not target and not is_device_array(arr) and (id(arr) in ids or
                                                            not arr.flags.owndata):
        return arr.copy()
    return arr


def _store(t: Tensor, arr) -> None:
    """Write a result into a tensor's own array (it keeps its identity) and bump its version."""
    if t.data is not arr:
        if isinstance(t.data, np.ndarray) and isinstance(arr, np.ndarray):
            np.copyto(t.data, arr)
        else:
            _write_device(t, arr)
    t._version[0] += 1


def _fresh(arr, given: set, ids: set):
    """`arr` as an array no one else holds: inputs, constants, views and arrays already handed
    out are copied."""
    if is_device_array(arr):
        arr = _device_copy(arr)
    elif id(arr) in ids or id(arr) in given or not _owns(arr):
        arr = arr.copy()
    given.add(id(arr))
    return arr


def _output(arr, arrays, input_sources, flat, given: set, ids: set) -> Tensor:
    """A returned value the backend did not make fresh. A view of an input tensor's array stays a
    view sharing that tensor's version counter, as eagerly (writes through either are seen by
    both); anything else is made an array of its own."""
    if not is_device_array(arr) and not arr.flags.owndata:
        # NumPy's `base` is the array owning the memory, so an input that is itself a view
        # (of a larger array) is found by its own root and the memory the two share.
        root = _root(arr)
        for k, a in enumerate(arrays):
            if (isinstance(a, np.ndarray) and _root(a) is root
                    and not isinstance(input_sources[k], SlotInput)
                    and (a is root or np.may_share_memory(a, arr))):
                t = _share(arr)
                t._version = input_sources[k].get(flat)._version
                return t
    return _share(_fresh(arr, given, ids))


def _root(arr):
    while isinstance(arr.base, np.ndarray):
        arr = arr.base
    return arr


def _attach(t: Tensor, runner: BackwardRunner, diff: int, xs: tuple) -> None:
    """Give output `t` (differentiable output `diff`) a context whose vjp runs the backward
    graph, with the call's leaves `xs` as its inputs."""
    t.requires_grad = True
    t._ctx = Context(runner.op, xs, {"index": diff}, tuple(x._version[0] for x in xs), 0)


class BackwardRunner:
    """Runs an entry's backward graph for the outputs of one call (holding that call's saved
    values). Each differentiable output's context calls it with its own gradient."""

    def __init__(self, entry, flat, outs) -> None:
        self.entry = entry
        self.flat = flat
        self.outs = outs
        # The op's vjp must not refer back to the runner: a cycle (runner -> op -> bound
        # method -> runner) would keep every call's saved arrays until a full gc pass.
        self.op = Op(f"compiled {entry.name}", "matmul", None, None,
                     functools.partial(BackwardRunner._vjp, entry, flat, outs), save=ALL)

    def vjp(self, g, out, *xs, index):
        return BackwardRunner._vjp(self.entry, self.flat, self.outs, g, out, *xs, index=index)

    @staticmethod
    def _vjp(entry, flat, outs, g, out, *xs, index):
        if GRAD_ENABLED.get():
            raise LucidError(f"compiled function {entry.name!r}: backward with create_graph=True "
                             "(a derivative of a derivative) is not supported through a compiled "
                             "function; call the function eagerly for that")
        # the other outputs' seeds are zeros (of their size: allocated only where there are any)
        if entry.device == "cuda":
            seeds = [_on_device(g.data, aval) if k == index else _device_zeros(aval)
                     for k, aval in enumerate(entry.diff_avals)]
        else:
            seeds = [np.asarray(g.data, dtype=aval.dtype) if k == index
                     else np.zeros(aval.shape, aval.dtype)
                     for k, aval in enumerate(entry.diff_avals)]
        arrays = backward_inputs(entry, flat, outs, seeds)
        grads = entry.backend.run(entry.backward, arrays)
        input_ids = {id(a) for a in arrays}
        result = []
        for i in entry.grad_index:
            if i is None:
                result.append(None)
                continue
            arr = grads[i]
            if is_device_array(arr):
                if id(arr) in input_ids:
                    arr = _device_copy(arr)
            elif id(arr) in input_ids or not arr.flags.writeable:
                arr = arr.copy()
            result.append(_share(arr))
        return tuple(result)


def backward_inputs(entry, flat, outs, seeds) -> list:
    """The backward graph's input arrays for one call: output gradients (`seeds`, one per
    differentiable output), the forward's saved values (from its outputs `outs`), and captured
    tensors fetched afresh."""
    arrays = []
    for src in entry.backward_sources:
        if isinstance(src, SeedInput):
            arrays.append(seeds[src.index])
        elif isinstance(src, SavedInput):
            arrays.append(outs[src.index])
        else:
            arrays.append(src.get(flat).data)
    return arrays


# ----------------------------------------------------------------------------- device arrays


def _device_copy(arr):
    from lucid_jit.codegen.cuda.program import _fresh_copy

    return _fresh_copy(arr)


def _write_device(t, arr) -> None:
    """Write a result into a tensor's array where one of them is on the device."""
    from lucid import device

    if isinstance(t.data, np.ndarray):
        np.copyto(t.data, device.to_host(arr))
    elif isinstance(arr, np.ndarray):
        device.runtime().copy_into(t.data, device.to_device(arr))
    else:
        device.runtime().copy_into(t.data, arr)


def _on_device(data, aval):
    """An output gradient as a device array of the output's dtype."""
    from lucid import device

    if device.is_device_array(data) and data.dtype == aval.dtype:
        return data
    return device.to_device(np.asarray(device.to_host(data), dtype=aval.dtype))


def _device_zeros(aval):
    from lucid import device

    return device.to_device(np.zeros(aval.shape, aval.dtype))
