"""Differential fuzzing of `lucid.compile`: random small programs (`tests/jit/programs.py`) run
eagerly and compiled on the same arguments must give the same outputs (values, dtypes, shapes,
requires_grad) and the same gradients for every tensor argument, on the tracing call, on a cached
call with new data and under no_grad; the pass pipeline must preserve the traced forward and
backward graphs. The bugs it found are regression tests at the end, in their minimal form.

Runs are deterministic (hypothesis derandomized, no example database). For a longer hunt:

    LUCID_FUZZ_EXAMPLES=5000 LUCID_FUZZ_RANDOM=1 .venv/bin/python -m pytest tests/jit/test_fuzz.py
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import given, settings

import lucid
from lucid.ops.movement import Slice
from lucid_jit.ir.printer import format_attrs
from tests.jit.graphs import assert_pipeline_preserves
from tests.jit.programs import EXAMPLES, FUZZ, Program, assert_same, programs, run_program

# Programs run on the numba backend too; each compiles a few kernels of its own (~0.3 s), so the
# default run takes a slice of the programs the reference backend takes.
NUMBA_EXAMPLES = int(os.environ.get("LUCID_FUZZ_NUMBA_EXAMPLES", str(max(EXAMPLES // 8, 1))))


def _compare(program: Program, compiled, call: int) -> None:
    expected, expected_grads = run_program(compiled.fn, program, call)
    actual, actual_grads = run_program(compiled, program, call)
    assert len(actual) == len(expected)
    for i, (a, e, var) in enumerate(zip(actual, expected, program.outputs, strict=True)):
        what = f"call {call}: output {i} ({var.name})"
        assert (e.shape, str(e.dtype)) == (var.shape, var.dtype), \
            f"{what}: eager gives {e.dtype}{list(e.shape)}, lucid's rules say {var.aval}"
        assert_same(a, e, what, program.rtol)
        assert a.requires_grad == e.requires_grad, f"{what}: requires_grad differs"
    for x, a, e in zip(program.inputs, actual_grads, expected_grads, strict=True):
        what = f"call {call}: {x.name}.grad"
        assert (a is None) == (e is None), f"{what}: compiled {a!r}, eager {e!r}"
        if e is not None:
            assert_same(a, e, what, program.rtol)


@FUZZ
@given(programs())
def test_compiled_matches_eager(program: Program):
    _differential(program, "reference")


@settings(FUZZ, max_examples=NUMBA_EXAMPLES)
@given(programs())
def test_numba_compiled_matches_eager(program: Program):
    _differential(program, "cpu")


def _differential(program: Program, backend: str) -> None:
    compiled = lucid.compile(program.function(), fullgraph=True, backend=backend)
    _compare(program, compiled, call=0)  # traces
    entry = compiled.last_entry
    _compare(program, compiled, call=1)  # new data: the same entry
    # Call 1 retraces where the program pins a float argument's value (call 1 passes another),
    # and may where one of calls 0 and 1 passes one tensor for two parameters (if both are read).
    if program.pins:
        assert len(compiled.entries) == 2, "a pinned float argument changed without a retrace"
    else:
        aliasing_changed = (0 in program.alias_calls) != (1 in program.alias_calls)
        assert len(compiled.entries) in ((1, 2) if aliasing_changed else (1,)), \
            compiled.recompiles
    with lucid.no_grad():
        expected = compiled.fn(*program.arguments(2))
        actual = compiled(*program.arguments(2))
    for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
        assert_same(a, e, f"no_grad: output {i} ({program.outputs[i].name})", program.rtol)

    assert entry.kind == "compiled"
    assert_pipeline_preserves(entry.traced)
    if entry.backward_traced is not None:
        assert_pipeline_preserves(entry.backward_traced)


@settings(FUZZ, max_examples=max(EXAMPLES // 4, 1))
@given(programs())
def test_every_step_has_the_aval_lucids_rules_give(program: Program):
    """The generator's restatement of lucid's shape and dtype rules holds for every step, eagerly
    (so the compiled outputs above are checked against the rules too)."""
    values = program.function(return_all=True)(*program.arguments(0))
    for value, step in zip(values, program.steps, strict=True):
        assert (value.shape, str(value.dtype)) == (step.out.shape, step.out.dtype), \
            f"{step.out.name} = {step.expr}: lucid gives {value.dtype}{list(value.shape)}, " \
            f"the rules say {step.out.aval}"


# ----------------------------------------------------------------------------- regressions
# Bugs this fuzzer found (now fixed), each in its minimal form.

# Lifted floats: once a float subclass, whose value abs(), float(), //, math and NumPy read
# directly, baking the traced value into the graph. Now abs() is tracked and the rest pin it.
READS = {
    "abs(s)": lambda x, s: x * abs(s),
    "float(s)": lambda x, s: x * float(s),
    "s // 1.0": lambda x, s: x * (s // 1.0),
    "math.exp(s)": lambda x, s: x * math.exp(s),
    "math.floor(s)": lambda x, s: x * math.floor(s),
    "np.float64(s)": lambda x, s: x * np.float64(s),
}


@pytest.mark.parametrize("spelling", list(READS))
def test_lifted_float_read_by(spelling):
    fn = READS[spelling]
    compiled = lucid.compile(fn)
    x = lucid.ones(2)
    compiled(x, -1.5)  # traces with s = -1.5
    assert_same(compiled(x, 2.5), fn(x, 2.5), f"x * {spelling} at s = 2.5")


def test_returned_argument_after_aliased_trace():
    """Traced with one tensor for both parameters, the returned `b` came back from `a` on a call
    with two tensors: nothing guarded the sharing."""
    compiled = lucid.compile(lambda a, b: b)
    x = lucid.ones(2)
    compiled(x, x)
    y, z = lucid.zeros(2), lucid.full((2,), 2.0)
    assert_same(compiled(y, z), z, "compiled(y, z) returns b")


def test_printed_slice_differs_from_integer_index():
    """The IR printer showed Slice(1, None, None) as `1`: x[1:] and x[1] read alike."""
    def index_attrs(fn):
        compiled = lucid.compile(fn)
        compiled(lucid.ones(3, 2))
        (node,) = [n for n in compiled.last_entry.traced.nodes if n.op.name == "getitem"]
        return node.attrs["index"], format_attrs(node)

    (sliced, sliced_text), (indexed, indexed_text) = \
        index_attrs(lambda x: x[1:]), index_attrs(lambda x: x[1])
    assert sliced == (Slice(1, None, None),) and indexed == (1,)
    assert sliced_text != indexed_text
