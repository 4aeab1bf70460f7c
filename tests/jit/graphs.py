"""Hand-built graphs for the compiler's tests, and the check every pass must pass.

`build(fn, "f32[4,3]", ...)` calls `fn(b, *inputs)` where `b` emits nodes: `b.mul(x, y)` applies
lucid's `mul` (output aval from its shape rule), `b.const(1.0)` a constant. `fn` returns the
graph's output value(s); its parameter names label the graph's inputs.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable

import numpy as np

import lucid
from lucid import dtypes
from lucid.ops import REGISTRY
from lucid_jit.ir import Graph, Node, Value, interpret, make_const, verify
from lucid_jit.passes import run_pipeline

_DTYPES = {dtypes.short_name(d): d for d in dtypes.SUPPORTED}


class Builder:
    """Emits nodes in program order; every lucid op is a method of the same name."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []

    def const(self, value, dtype="float32") -> Value:
        node = make_const(np.asarray(value, dtype))
        self.nodes.append(node)
        return node.output

    def __getattr__(self, name: str) -> Callable[..., Value]:
        if name not in REGISTRY:
            raise AttributeError(f"no op named {name!r}")
        op = REGISTRY[name]

        def emit(*inputs: Value, **attrs) -> Value:
            aval = op.infer(*[v.aval for v in inputs], **attrs)
            out = Value(aval.shape, aval.dtype)
            self.nodes.append(Node(op, inputs, [out], attrs))
            return out

        return emit


def parse_aval(text: str) -> tuple[tuple[int, ...], np.dtype]:
    """`"f32[4,3]"` -> ((4, 3), float32)."""
    match = re.fullmatch(r"(\w+)\[([\d,\s]*)\]", text)
    if match is None or match[1] not in _DTYPES:
        raise ValueError(f"not an aval: {text!r}")
    shape = tuple(int(s) for s in match[2].split(",") if s.strip())
    return shape, _DTYPES[match[1]]


def build(fn: Callable[..., Value | tuple[Value, ...]], *avals: str) -> Graph:
    """The graph `fn(b, *inputs)` builds, for inputs of the given avals."""
    inputs = [Value(*parse_aval(a)) for a in avals]
    names = list(inspect.signature(fn).parameters)[1:]
    b = Builder()
    outs = fn(b, *inputs)
    outs = outs if isinstance(outs, tuple) else (outs,)
    return verify(Graph(inputs, b.nodes, outs, names))


def random_inputs(graph: Graph, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = []
    for v in graph.inputs:
        if v.dtype == dtypes.bool_:
            arrays.append(rng.random(v.shape) < 0.5)
        elif dtypes.is_floating(v.dtype):
            arrays.append(rng.standard_normal(v.shape).astype(v.dtype))
        else:
            arrays.append(rng.integers(-5, 6, v.shape).astype(v.dtype))
    return arrays


def assert_pipeline_preserves(graph: Graph, pipeline="default", *, seed: int = 0) -> Graph:
    """Run the pipeline (verifying after each pass) and check the reference interpreter gives the
    same outputs, dtypes and shapes before and after on random inputs. Random ops draw from a
    generator reseeded for each run, so they must draw in the same order. Returns the new graph."""
    arrays = random_inputs(graph, seed)
    lucid.manual_seed(seed)
    expected = interpret(graph, arrays)
    optimized, _ = run_pipeline(graph, pipeline, verify=True)
    lucid.manual_seed(seed)
    actual = interpret(optimized, arrays)
    assert len(actual) == len(expected)
    for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
        a, e = np.asarray(a), np.asarray(e)
        assert (a.shape, a.dtype) == (e.shape, e.dtype), f"output {i}: {a.dtype}{a.shape} != " \
                                                         f"{e.dtype}{e.shape}"
        # (a rewritten matrix product sums in another order: error relative to the largest
        # entry, not to each element, where sums cancel)
        scale = float(np.abs(e).max()) if e.size and e.dtype.kind == "f" else 0.0
        if not np.isfinite(scale):
            scale = 0.0
        np.testing.assert_allclose(a, e, rtol=1e-6, atol=1e-6 * scale, err_msg=f"output {i}")
    return optimized
