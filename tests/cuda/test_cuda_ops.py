"""Every OpInfo entry and sample on the cuda device, eagerly and compiled, against eager CPU.

For each sample: the eager device op (a one-node graph on the CUDA backend) and the compiled
function on device tensors give the eager CPU result (dtype, shape, values within the entry's
tolerance), on two calls with different values (the second reuses the compiled entry); for
differentiable entries the gradients of the device inputs match the CPU ones and stay on the
device. float32 (the simulator runs every thread as Python, so the samples are the table's small
ones)."""

from __future__ import annotations

import numpy as np
import pytest

import lucid
from lucid import Tensor
from tests.helpers import assert_same_tensor, sample_tensors
from tests.opinfo import OPINFOS, OpInfo, baked, opinfo_cases, opinfo_sample


def _assert_same(actual, expected, info: OpInfo, what: str) -> None:
    """On the device, and as the CPU gives it (the device's tolerance is at least 1e-5)."""
    assert_same_tensor(actual, expected, max(info.rtol, 1e-5), max(info.atol, 1e-6), what,
                       device="cuda")


def _takes_tensors(info: OpInfo) -> bool:
    """Creation ops (full, uniform, normal) take no tensor, so they have no device of their own:
    the factories' device= argument puts their results on the device (test_device.py)."""
    sample = info.samples(np.random.default_rng(0), np.float32)[0]
    return any(isinstance(a, np.ndarray) for a in sample.args)


@pytest.mark.parametrize("info, index", opinfo_cases([i for i in OPINFOS if _takes_tensors(i)]))
def test_device_forward_matches_cpu(info: OpInfo, index: int):
    first = opinfo_sample(info, index, np.float32, seed=0)
    fn = baked(info, first.attrs)
    compiled = lucid.compile(fn)
    for call, seed in enumerate((0, 1)):
        sample = opinfo_sample(info, index, np.float32, seed)
        lucid.manual_seed(7 + call)  # random ops draw the same numbers on every path
        expected = fn(*sample_tensors(sample.args, device="cpu"))
        lucid.manual_seed(7 + call)
        eager = fn(*sample_tensors(sample.args, device="cuda"))
        _assert_same(eager, expected, info, f"{info.name} eager call {call}")
        lucid.manual_seed(7 + call)
        actual = compiled(*sample_tensors(sample.args, device="cuda"))
        _assert_same(actual, expected, info, f"{info.name} compiled call {call}")
        if info.check is not None:
            info.check(actual.numpy(), sample.attrs)
    assert len(compiled.entries) == 1, compiled.recompiles
    entry = compiled.entries[0]
    assert entry.kind == "compiled", entry.reason
    assert entry.backend.name == "cuda"


@pytest.mark.parametrize("info, index", opinfo_cases([i for i in OPINFOS if i.differentiable]))
def test_device_backward_matches_cpu(info: OpInfo, index: int):
    first = opinfo_sample(info, index, np.float32, seed=0)
    fn = baked(info, first.attrs)
    compiled = lucid.compile(fn)
    rng = np.random.default_rng(5)
    for call, seed in enumerate((0, 1)):
        sample = opinfo_sample(info, index, np.float32, seed)
        wrt = info.grad_indices(sample)
        cpu_args = sample_tensors(sample.args, requires=wrt, device="cpu")
        eager_args = sample_tensors(sample.args, requires=wrt, device="cuda")
        args = sample_tensors(sample.args, requires=wrt, device="cuda")
        expected = fn(*cpu_args)
        gradient = rng.standard_normal(expected.shape).astype(expected.dtype)
        expected.backward(Tensor(gradient))
        for what, call_args, f in (("eager", eager_args, fn), ("compiled", args, compiled)):
            actual = f(*call_args)
            _assert_same(actual, expected, info, f"{info.name} {what} call {call}")
            actual.backward(Tensor(gradient, device="cuda"))
            for i in wrt:
                want, got = cpu_args[i].grad, call_args[i].grad
                if want is None:
                    assert got is None, f"{info.name}: {what} argument {i} has a gradient"
                    continue
                assert got is not None, f"{info.name}: {what}: no gradient for argument {i}"
                _assert_same(got, want, info, f"{info.name} {what} call {call} grad {i}")
    assert len(compiled.entries) == 1, compiled.recompiles
    assert compiled.entries[0].backward is not None


def test_bool_arithmetic_on_the_device_matches_cpu():
    """add is "or" and mul is "and" on bools (a fused add of two trues is true, not 2)."""
    def fn(a, b):
        return (a * b + a).float() * 2.0 + (a + b).sum()

    a, b = np.array([True, True, False, False]), np.array([True, False, True, False])
    expected = fn(Tensor(a), Tensor(b))
    for out in (fn(Tensor(a, device="cuda"), Tensor(b, device="cuda")),
                lucid.compile(fn)(Tensor(a, device="cuda"), Tensor(b, device="cuda"))):
        assert out.device == "cuda" and out.tolist() == expected.tolist() == [5.0, 5.0, 3.0, 3.0]
