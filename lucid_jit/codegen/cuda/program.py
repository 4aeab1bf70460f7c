"""One graph on the CUDA device: a list of steps, bound once with their launch configurations.

Each node becomes a step:
- a fused group, or a plain elementwise op, reduction, matmul or fill: the launches of its body
  (`codegen.cuda.CudaBody`), with temporaries and outputs allocated on the device;
- a reshape, permute or broadcast_to: a copy kernel (a program's results are fresh arrays;
  eager device ops make views where NumPy would, see `runtime.view`);
- a constant: copied to the device once, when the program is built;
- getitem or scatter_add with a basic index, pad, unfold, fold, max_pool2d, argmax or
  concat: its own kernel (ops.py, from codegen/elementops.py); a conv2d: lowered to unfold, a
  matmul and reshapes, and planned as those;
- getitem and scatter_add with index tensors: a gather kernel, or a zero fill and an atomic
  scatter; an out-of-range index is recorded on the device and raised after the call;
- a random draw: a Philox kernel (elementops.random_kernels) whose key and counter are
  arguments, taken from lucid's generator once per call for all of the graph's draws, so a seed
  gives eager's numbers;
- anything else: the op's eager implementation on the host, its inputs copied from the device
  and its outputs back (a declared fallback, counted in `host_nodes`).

Graph inputs that arrive as 0-d host arrays (lifted floats, CPU scalar tensors next to device
tensors) are passed to kernels as scalars. The program is built for one entry, whose shapes are
fixed, so every launch's grid, block and size arguments are computed once, here.
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys

import numpy as np

from lucid import ops
from lucid_jit.codegen import loader
from lucid_jit.codegen.cuda import ops as cuda_ops
from lucid_jit.codegen.cuda import runtime
from lucid_jit.codegen.cuda.kernels import CudaBody, Launch, supported_cuda_body
from lucid_jit.codegen.cuda.lowering import LOWERING
from lucid_jit.codegen.cuda.ops import movement_launch
from lucid_jit.codegen.elementops import Draws
from lucid_jit.codegen.lowering import BODY, FREE, HOST, LOWERED, OWN, lowered, place
from lucid_jit.codegen.pool import OutputPool
from lucid_jit.ir.graph import CONST, FUSED, Graph, Node, Value


def _kernel(text: str):
    return loader.load(text, prefix="c").kernel


def _configure(launch: Launch):
    """The launch's kernel with its grid and block bound (None: no work to do)."""
    kern = _kernel(launch.text)
    if launch.kind == "elem":
        (n,) = launch.work
        config = runtime.elem_config(n) if n else None
    elif launch.kind == "reduce":
        (rows,) = launch.work
        config = runtime.reduce_config(rows) if rows else None
    else:
        m, n, batch = launch.work
        config = runtime.matmul_config(m, n, batch) if m and n and batch else None
    if config is None:
        return None
    if runtime.SIMULATOR:  # the simulator's kernel[config] sets the config on the kernel itself
        return functools.partial(_launch_simulated, kern, config)
    return kern[config]


def _launch_simulated(kern, config, *args):
    if _RECORD:
        _record(kern, args)
    kern[config](*args)


# Under the simulator, LUCID_JIT_CUDA_SIGNATURES=path appends each kernel's module and argument
# types to `path` (one JSON line per new pair), so that
# `python -m lucid_jit.codegen.cuda.ptxcheck path` can compile every kernel a test run launched
# for a real GPU, without one.
_RECORD = os.environ.get("LUCID_JIT_CUDA_SIGNATURES", "")
_RECORDED: set = set()


def _record(kern, args) -> None:
    types = []
    for a in args:
        if isinstance(a, (bool, np.bool_)):
            types.append("bool")
        elif isinstance(a, int):
            types.append("int64")
        elif isinstance(a, np.generic):
            types.append(a.dtype.name)
        else:
            types.append(["array", np.dtype(a.dtype).name, len(a.shape)])
    module = sys.modules[kern.fn.__module__]
    line = json.dumps({"module": module.__file__, "args": types})
    if line not in _RECORDED:
        _RECORDED.add(line)
        with open(_RECORD, "a") as f:
            f.write(line + "\n")


class _Step:
    """Launches of one body: argument specs resolved against the step's arrays each call."""

    __slots__ = ("calls", "outs", "temps", "ins", "copies", "label", "pool", "draw")

    def __init__(self, label, calls, ins, outs, temps, copies, draw=None) -> None:
        self.label = label
        self.draw = draw  # a random draw's slot in the program's Draws (None: not a draw)
        self.calls = calls  # [(configured kernel, arg specs)]
        self.ins = ins  # body input k -> graph value id
        self.outs = outs  # [(graph value id, shape, dtype)]
        # name -> device array: temporaries live only within a call, and the calls of a program
        # run in order on one stream, so each is allocated once, with the program.
        self.temps = {name: runtime.empty(shape, dtype) for name, (shape, dtype) in temps.items()}
        self.copies = copies  # [(output index, body input index)]
        self.pool = OutputPool([(shape, dtype) for _, shape, dtype in outs], runtime.empty)


class CudaProgram:
    def __init__(self, graph: Graph, scalar_inputs=frozenset(), fastmath: bool = False) -> None:
        self.graph = graph
        self.fastmath = fastmath  # (numba's fastmath for the body kernels: reassociated math)
        self.scalar_inputs = frozenset(scalar_inputs)
        self.steps: list = []
        self.host_nodes: list[str] = []
        self.texts: list[str] = []
        scalars = {graph.inputs[k].id for k in self.scalar_inputs}
        self.consts: dict[int, object] = {}
        # Kernels that index with index tensors record the first out-of-range index here:
        # (1 + which node in err_nodes, the index, the axis); checked after each call.
        self.err = None
        self.err_nodes: list[Node] = []
        self.draw_nodes: list[Node] = []  # random draws run by kernels, in graph order
        for node in graph.nodes:
            self._plan(node, scalars)
        self.draws = Draws(self.draw_nodes) if self.draw_nodes else None
        self.owned = [True] * len(graph.outputs)
        self.tier = "cuda"

    # ------------------------------------------------------------------ building

    def _plan(self, node: Node, scalars: set[int]) -> None:
        op = node.op
        if op is CONST:
            v = node.output
            self.consts[v.id] = runtime.to_device(np.asarray(node.attrs["value"], v.dtype))
            return
        if op is FUSED:
            if supported_cuda_body(node.body):
                self._body(node.body, node, scalars, node.attrs["name"])
                return
        else:
            # Host scalars are kernel arguments of body math only: a single op's kernel reads
            # device arrays.
            how = place(LOWERING, node, "cuda").how
            if how in (OWN, LOWERED) and any(v.id in scalars for v in node.inputs):
                how = HOST
            if how == OWN and self._own(node):
                return
            if how == LOWERED:  # conv2d: unfold, a reshape of the weight and one matmul
                for part in lowered(node):
                    self._plan(part, scalars)
                return
            if how in (BODY, FREE):
                ins = [Value(v.shape, v.dtype) for v in node.inputs]
                body = Graph(ins, [Node(op, ins, node.outputs, node.attrs)], node.outputs)
                if supported_cuda_body(body):
                    self._body(body, node, scalars, op.name)
                    return
        self.host_nodes.append(op.name)
        self.steps.append(("host", node))

    def _own(self, node: Node) -> bool:
        """A node with a kernel of its own (ops.py); False where its form has none (an index
        form the kernels do not know: the host runs it)."""
        made = cuda_ops.launches(node, len(self.err_nodes) + 1)
        if made is None:
            return False
        launches, fallible = made
        self._launches(launches, node, {}, {}, [], node.op.name)
        if node.op.kind == "random":
            self.steps[-1].draw = len(self.draw_nodes)
            self.draw_nodes.append(node)
        if fallible:  # an index tensor: out-of-range indices are recorded, checked after
            if self.err is None:
                self.err = runtime.to_device(np.zeros(3, np.int64))
            self.err_nodes.append(node)
            self.steps[-1].temps["err"] = self.err
        return True

    def _body(self, body: Graph, node: Node, scalars: set[int], label: str) -> None:
        local_scalars = {k for k, v in enumerate(node.inputs) if v.id in scalars}
        cb = CudaBody(body, local_scalars, self.fastmath)
        self._launches(cb.launches, node, {f"a{k}": k for k in range(len(node.inputs))},
                       cb.temps, cb.copies, label)

    def _launches(self, launches, node, inputs, temps, copies, label) -> None:
        calls = []
        for launch in launches:
            self.texts.append(launch.text)
            kern = _configure(launch)
            if kern is not None:
                calls.append((kern, launch.args))
        outs = [(v.id, v.shape, v.dtype) for v in node.outputs]
        copies = [(int(o[1:]), int(a[1:])) for o, a in copies]
        self.steps.append(_Step(label, calls, [v.id for v in node.inputs], outs, dict(temps),
                                copies))

    # ------------------------------------------------------------------ running

    def __call__(self, arrays):
        graph = self.graph
        env = dict(self.consts)
        for v, a in zip(graph.inputs, arrays, strict=True):
            env[v.id] = a
        seeds = self.draws() if self.draws is not None else None  # [key, counters...]
        for step in self.steps:
            if type(step) is tuple:
                self._host(step[1], env)
                continue
            local = {}
            for k, vid in enumerate(step.ins):
                local[f"a{k}"] = env[vid]
            for k in range(len(step.pool)):
                local[f"o{k}"] = step.pool.take(k)
            local.update(step.temps)
            for kern, specs in step.calls:
                args = []
                for spec in specs:
                    kind = spec[0]
                    if kind == "array":
                        args.append(local[spec[1]])
                    elif kind == "size":
                        args.append(spec[1])
                    elif kind == "array0":
                        args.append(local[spec[1]].reshape(1))
                    elif kind == "flat":
                        args.append(_flat(local[spec[1]]))
                    elif kind == "seed":
                        args.append(seeds[0] if spec[1] == "rk" else seeds[1 + step.draw])
                    elif kind == "scalar":
                        args.append(env[step.ins[spec[1]]][()])
                    else:
                        args.append(spec[2].type(spec[1]))
                kern(*args)
            for o, a in step.copies:
                src = local[f"a{a}"]
                local[f"o{o}"] = _fresh_copy(src)
            for k, (vid, _, _) in enumerate(step.outs):
                env[vid] = local[f"o{k}"]
        if self.err is not None:
            self._check_indices()
        outs = []
        seen = set()
        input_ids = {id(a) for a in arrays}
        const_ids = {id(c) for c in self.consts.values()}
        for v in graph.outputs:
            arr = env[v.id]
            if id(arr) in seen or id(arr) in input_ids or id(arr) in const_ids:
                arr = _fresh_copy(arr)
            seen.add(id(arr))
            outs.append(arr)
        return outs

    def _check_indices(self) -> None:
        code, index, axis = (int(v) for v in self.err.copy_to_host())
        if code:
            self.err.copy_to_device(np.zeros(3, np.int64))
            node = self.err_nodes[code - 1]
            shape = node.attrs["shape"] if node.op is ops.scatter_add else node.inputs[0].shape
            raise IndexError(f"{node.op.name}: index {index} is out of bounds for axis {axis} "
                             f"with size {shape[axis]}")

    def _host(self, node: Node, env) -> None:
        args = [_host_array(env[v.id]) for v in node.inputs]
        result = node.op.impl(*args, **dict(node.attrs))
        results = result if len(node.outputs) > 1 else (result,)
        for v, r in zip(node.outputs, results, strict=True):
            env[v.id] = runtime.to_device(np.asarray(r, dtype=v.dtype).reshape(v.shape))

    # ------------------------------------------------------------------ inspection

    def source(self) -> str:
        lines = [f"# CUDA program for a graph of {len(self.graph.nodes)} nodes: "
                 f"{len(self.steps)} steps"]
        for step in self.steps:
            if type(step) is tuple:
                lines.append(f"#   host: {step[1].op.name} (eager implementation on the host)")
            else:
                lines.append(f"#   {step.label}: {len(step.calls)} launch(es)")
        texts = list(dict.fromkeys(self.texts))
        return "\n".join(lines) + "\n\n" + "\n\n".join(texts)


def _host_array(a):
    if isinstance(a, np.ndarray):
        return a
    return runtime.to_host(a)


def _flat(a):
    """`a` as 1-d (its C-order elements): a view, or a contiguous copy of a strided array."""
    n = math.prod(a.shape)
    if not isinstance(a, np.ndarray) and not a.is_c_contiguous():
        a = _fresh_copy(a)
    return a.reshape(n)


def _fresh_copy(a):
    if isinstance(a, np.ndarray):
        return runtime.to_device(np.array(a))
    out = runtime.empty(a.shape, a.dtype)
    runtime.copy_into(out, a)
    return out


def copy_array(dst, src) -> None:
    """Copy device array `src` into `dst` (same shape; either may be strided, and the dtypes
    may differ): a grid-stride copy kernel that indexes both n-d."""
    shape = tuple(dst.shape)
    if not math.prod(shape):
        return
    x, out = Value(shape, src.dtype), Value(shape, dst.dtype)
    launch = movement_launch(Node(ops.broadcast_to, (x,), (out,), {"shape": shape}))
    arrays = {"a0": src, "o0": dst}
    args = []
    for kind, what in launch.args:
        if kind == "size":
            args.append(what)
        else:
            args.append(arrays[what].reshape(1) if kind == "array0" else arrays[what])
    _configure(launch)(*args)
