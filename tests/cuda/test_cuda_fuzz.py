"""Differential fuzzing on the device: random programs (tests/jit/programs.py) compiled for cuda,
on device copies of the arguments, against the same programs run eagerly on the CPU. Values of
every output, and the gradients that flow back through the transfers to the CPU arguments.

    LUCID_FUZZ_CUDA_EXAMPLES=500 NUMBA_ENABLE_CUDASIM=1 .venv/bin/python -m pytest \\
        tests/cuda/test_cuda_fuzz.py -m cuda
"""

from __future__ import annotations

import os

from hypothesis import given, settings

import lucid
from tests.jit.programs import FUZZ, Program, assert_same, programs, run_program

CUDA_EXAMPLES = int(os.environ.get("LUCID_FUZZ_CUDA_EXAMPLES", "40"))


@settings(FUZZ, max_examples=CUDA_EXAMPLES)
@given(programs())
def test_cuda_compiled_matches_eager_cpu(program: Program):
    compiled = lucid.compile(program.function(), fullgraph=True)
    for call in (0, 1):
        expected, expected_grads = run_program(compiled.fn, program, call, "cpu")
        actual, actual_grads = run_program(compiled, program, call, "cuda")
        assert len(actual) == len(expected)
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            what = f"call {call}: output {i} ({program.outputs[i].name})"
            assert_same(a, e, what, program.rtol)
            assert a.requires_grad == e.requires_grad, f"{what}: requires_grad differs"
        for x, a, e in zip(program.inputs, actual_grads, expected_grads, strict=True):
            what = f"call {call}: {x.name}.grad"
            assert (a is None) == (e is None), f"{what}: cuda {a!r}, cpu {e!r}"
            if e is not None:
                assert a.device == "cpu", f"{what}: the gradient did not come back"
                assert_same(a, e, what, program.rtol)
    assert all(e.kind == "compiled" and e.backend.name == "cuda" for e in compiled.entries)
