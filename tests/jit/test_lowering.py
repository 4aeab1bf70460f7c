"""The lowering tables: every registered op on every backend, native or a declared fallback, and
every elementwise op's scalar math renderable by both emitters."""

from __future__ import annotations

import re

import pytest

from lucid.ops.registry import REGISTRY
from lucid_jit.codegen.cpu.lowering import LOWERING as CPU
from lucid_jit.codegen.cpu.lowering import MATH as CPU_MATH
from lucid_jit.codegen.cuda.lowering import LOWERING as CUDA
from lucid_jit.codegen.cuda.lowering import MATH as CUDA_MATH
from lucid_jit.codegen.lowering import HOST, missing

TABLES = {"cpu": CPU, "cuda": CUDA}


@pytest.mark.parametrize("backend", TABLES)
def test_every_registered_op_has_a_row(backend):
    assert missing(TABLES[backend]) == [], f"ops with no {backend} lowering"
    assert not set(TABLES[backend]) - set(REGISTRY), "rows for ops that are not registered"


@pytest.mark.parametrize("backend", TABLES)
def test_a_host_fallback_says_why(backend):
    for name, row in TABLES[backend].items():
        if row.how == HOST:
            assert row.why, f"{backend}: {name} runs on the host without a reason"


def test_every_op_runs_natively_on_some_backend_or_draws_random_numbers():
    # (collectives are MPI's and linear algebra LAPACK's: both run between native segments)
    for name, op in REGISTRY.items():
        native = [b for b, table in TABLES.items() if table[name].how != HOST]
        assert native or op.kind in ("random", "collective", "linalg"), \
            f"{name} is native on no backend"


@pytest.mark.parametrize("name", sorted(n for n, op in REGISTRY.items() if op.scalar))
def test_scalar_templates_use_only_what_both_emitters_know(name):
    template = REGISTRY[name].scalar
    for field in re.findall(r"{(\w*)}", template):
        assert field.isdigit() or field in ("zero", "one") or (
            field in CPU_MATH and field in CUDA_MATH), f"{name}: unknown {{{field}}}"
    assert CPU[name].how == CUDA[name].how == "body"
