"""Process-wide settings and autograd introspection PyTorch scripts use: the default dtype, the
`backends` switches, seeding spellings, `grad_fn`, `retain_grad`, `detach_`."""

from __future__ import annotations

import numpy as np
import pytest

import lucid
import lucid.nn as nn


@pytest.fixture
def float64_default():
    lucid.set_default_dtype(lucid.float64)
    try:
        yield
    finally:
        lucid.set_default_dtype(lucid.float32)


def test_default_dtype_reaches_data_factories_layers_and_printing(float64_default):
    assert lucid.get_default_dtype() == np.float64
    assert lucid.tensor([1.5]).dtype == np.float64 and lucid.zeros(2).dtype == np.float64
    assert lucid.randn(2).dtype == np.float64 and lucid.full((2,), 0.5).dtype == np.float64
    assert (lucid.arange(3) * 0.5).dtype == np.float64
    assert nn.Linear(2, 3).weight.dtype == np.float64
    assert repr(lucid.tensor([1.5])) == "Tensor([1.5])"
    assert repr(lucid.tensor([1.5], dtype=lucid.float32)) == "Tensor([1.5], dtype=float32)"
    with pytest.raises(TypeError, match="only floating-point types"):
        lucid.set_default_dtype(lucid.int64)


def test_a_compiled_function_traces_again_under_a_new_default():
    f = lucid.compile(lambda x: x * 0.5 + lucid.ones(3))
    x = lucid.arange(3)
    assert f(x).dtype == np.float32
    lucid.set_default_dtype(lucid.float64)
    try:
        assert f(x).dtype == np.float64 and f(x).dtype == np.float64
    finally:
        lucid.set_default_dtype(lucid.float32)
    assert f(x).dtype == np.float32
    assert len(f.entries) == 2


def test_backends_switches_and_determinism_settings():
    lucid.backends.cudnn.benchmark = True
    lucid.backends.cudnn.deterministic = True
    lucid.backends.cuda.matmul.allow_tf32 = True
    assert not lucid.backends.cudnn.is_available() and not lucid.backends.mps.is_available()
    lucid.use_deterministic_algorithms(True)
    assert lucid.are_deterministic_algorithms_enabled()
    lucid.use_deterministic_algorithms(False)
    lucid.set_float32_matmul_precision("high")
    assert lucid.get_float32_matmul_precision() == "high"
    with pytest.raises(RuntimeError, match="Invalid precision"):
        lucid.set_float32_matmul_precision("low")
    lucid.set_float32_matmul_precision("highest")


def test_seeding_spellings_share_one_generator():
    lucid.cuda.manual_seed_all(7)
    a = lucid.randn(4).tolist()
    lucid.random.manual_seed(7)
    assert lucid.randn(4).tolist() == a and lucid.random.initial_seed() == 7
    s = lucid.seed()
    assert lucid.initial_seed() == s
    b = lucid.rand(3).tolist()
    lucid.manual_seed(s)
    assert lucid.rand(3).tolist() == b


def test_max_and_min_of_two_tensors_are_elementwise():
    a, b = lucid.tensor([1.0, 5.0]), lucid.tensor([3.0, 2.0])
    assert lucid.max(a, b).tolist() == [3.0, 5.0] and a.min(b).tolist() == [1.0, 2.0]
    assert lucid.max(a).item() == 5.0 and a.max(0).indices.item() == 1


def test_grad_fn_names_the_op_and_links_to_its_inputs():
    x = lucid.randn(3, requires_grad=True)
    z = x * 2.0
    y = z.exp().sum()
    assert x.grad_fn is None and x.is_leaf
    assert y.grad_fn.name() == "SumBackward0" and repr(z.grad_fn).startswith("<MulBackward0")
    ((nxt, _),) = y.grad_fn.next_functions
    assert nxt.name() == "ExpBackward0"
    assert z.grad_fn.next_functions[0][0] == "AccumulateGrad"


def test_retain_grad_keeps_and_accumulates_a_non_leaf_gradient():
    x = lucid.tensor([1.0, -2.0], requires_grad=True)
    z = x * 3.0
    z.retain_grad()
    z.retain_grad()  # (once is enough)
    assert z.retains_grad and not x.retains_grad
    (z * z).sum().backward(retain_graph=True)
    assert z.grad.tolist() == [6.0, -12.0] and x.grad.tolist() == [18.0, -36.0]
    (z * z).sum().backward()
    assert z.grad.tolist() == [12.0, -24.0]
    with pytest.raises(RuntimeError, match="requires_grad=False"):
        lucid.zeros(2).retain_grad()


def test_detach_in_place_cuts_the_graph():
    x = lucid.randn(3, requires_grad=True)
    z = x * 2.0
    assert z.detach_() is z and z.is_leaf and not z.requires_grad
