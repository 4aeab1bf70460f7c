"""Eager ops on device tensors: each runs as a one-node graph on the CUDA backend.

`bind` calls `run(op, args, attrs)` (installed as `lucid.ops.registry.device_run`) for every
eager op once the device is in use. When an operand is a device array, the op becomes a graph of
one node (plus explicit broadcasts where an elementwise op's operands differ in shape), compiled
by the CUDA backend into the same kernels a compiled graph uses, and cached by op, attributes
and operand types. CPU operands are allowed only as 0-d scalars (passed to kernels as values);
anything else on another device is a clear error naming the op, the operands and the line.
Reshapes, permutes, broadcasts and basic slices are views of their operand's device memory
wherever NumPy's are (`_VIEWS`, `runtime.view`), so in-place writes through them behave as on
the CPU.
"""

from __future__ import annotations

import numpy as np

from lucid import ops
from lucid.ops import registry
from lucid.ops.movement import _getitem
from lucid.ops.registry import Aval, LucidError, op_error
from lucid.ops.rules import broadcast_shapes
from lucid_jit.codegen.cuda import runtime
from lucid_jit.ir.graph import Graph, Node, Value

_DEVICE = runtime.DEVICE_TYPES
_PROGRAMS: dict = {}


def run(op, args, attrs):
    dev = None
    for a in args:
        if isinstance(a.data, _DEVICE):
            dev = True
            break
    if dev is None:
        return None
    datas = [a.data for a in args]
    for k, d in enumerate(datas):
        if isinstance(d, np.ndarray) and d.ndim and d.size and not any(d.strides) and \
                op.kind == "elementwise":
            datas[k] = d = d.reshape(-1)[0:1].reshape(())  # a broadcast scalar: the scalar
        if not isinstance(d, _DEVICE) and (not isinstance(d, np.ndarray) or d.ndim != 0):
            devices = ", ".join(f"{a.aval} on {'cuda' if isinstance(a.data, _DEVICE) else 'cpu'}"
                                for a in args)
            raise op_error(op.name, [devices], "operands are on different devices (move them "
                           "with .to(device); only 0-d CPU tensors mix with cuda ones)",
                           LucidError)
    viewed = None
    if len(datas) == 1 and op in _VIEWS:
        viewed = runtime.view(datas[0], _VIEWS[op](**attrs))
        if viewed is not None and viewed is not runtime.REVERSED:
            return viewed
    key = (op, _attrs_key(attrs), tuple((a.shape, d.ndim, d.dtype.str, isinstance(d, _DEVICE))
                                        for a, d in zip(args, datas, strict=True)))
    program = _PROGRAMS.get(key)
    if program is None:
        program = _PROGRAMS[key] = _build(op, args, datas, attrs)
    out = program(datas)[0]
    if viewed is runtime.REVERSED:
        runtime.DETACHED[id(out)] = out
    return out


# The movement ops whose eager results on the device are views of their operand's memory where
# NumPy's are (so in-place writes through them reach the base tensor, as on the CPU): each maps
# the op's attributes to the same operation on a NumPy array.
_VIEWS = {
    ops.reshape: lambda *, shape: lambda h: np.reshape(h, shape, copy=False),
    ops.permute: lambda *, axes: lambda h: np.transpose(h, axes),
    ops.broadcast_to: lambda *, shape: lambda h: np.broadcast_to(h, shape),
    ops.getitem: lambda *, index: lambda h: _getitem(h, index=index),
}


def _attrs_key(attrs):
    try:
        key = tuple(sorted(attrs.items()))
        hash(key)
        return key
    except TypeError:
        return repr(sorted(attrs.items(), key=lambda kv: kv[0]))


def _build(op, args, datas, attrs):
    from lucid_jit.codegen.cuda.program import CudaProgram

    ins = [Value(d.shape, d.dtype) for d in datas]
    nodes = []
    operands = list(ins)
    if op.kind == "elementwise" and len({a.shape for a in args} | {v.shape for v in ins}) > 1:
        shape = ()
        for a in args:  # a ShapeError naming the op where they do not broadcast
            shape = broadcast_shapes(op.name, Aval(shape, a.dtype), a.aval)
        for k, v in enumerate(ins):
            if v.shape != shape:  # (a host scalar is read as a value: its broadcast is free)
                b = Value(shape, v.dtype)
                nodes.append(Node(registry.REGISTRY["broadcast_to"], (v,), (b,),
                                  {"shape": shape}))
                operands[k] = b
    aval = op.infer(*[v.aval for v in operands], **attrs)
    out = Value(aval.shape, aval.dtype)
    nodes.append(Node(op, tuple(operands), (out,), dict(attrs)))
    graph = Graph(ins, nodes, [out])
    graph = _fuse(graph)
    scalars = {k for k, d in enumerate(datas) if not isinstance(d, _DEVICE)}
    return CudaProgram(graph, scalars)


def _fuse(graph):
    """Broadcasts of an elementwise op's operands belong in its kernel: fuse the little graph."""
    if len(graph.nodes) == 1:
        return graph
    from lucid_jit.passes import run_pipeline

    return run_pipeline(graph, "fusion")[0]
