"""lucid.nn.functional against independent NumPy float64 references, and gradients against
central finite differences (float64, random directions)."""

import numpy as np
import pytest
from scipy.special import erf

import lucid
import lucid.nn as nn
import lucid.nn.functional as F
from lucid import LucidError, ShapeError, Tensor
from tests.helpers import assert_close, check_vjp

RNG = np.random.default_rng(1234)


def t64(a, requires_grad=False):
    return Tensor(np.asarray(a, dtype=np.float64), dtype=lucid.float64, requires_grad=requires_grad)


def check_grad(fn, *arrays, eps=1e-6, rtol=1e-5, atol=1e-7):
    """The gradient of each input, alone, against central differences (float64)."""
    check_vjp(fn, arrays, range(len(arrays)), RNG, eps=eps, rtol=rtol, atol=atol,
              per_input=True)


# ----------------------------------------------------------------------------- references

def ref_log_softmax(x, axis):
    s = x - x.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def ref_softplus(z):
    return np.logaddexp(0.0, z)


def ref_cross_entropy(x, t, w=None, ignore_index=-100, reduction="mean", ls=0.0):
    """PyTorch's class-index cross entropy, one row at a time."""
    c = x.shape[1]
    rows = np.moveaxis(x, 1, -1).reshape(-1, c)
    flat = t.reshape(-1)
    w = np.ones(c) if w is None else w
    losses, denom = np.zeros(len(flat)), 0.0
    for i, (row, k) in enumerate(zip(rows, flat, strict=True)):
        if k == ignore_index:
            continue
        logp = ref_log_softmax(row, 0)
        losses[i] = (1 - ls) * -w[k] * logp[k] + ls / c * -(w * logp).sum()
        denom += w[k]
    if reduction == "none":
        return losses.reshape(t.shape)
    return losses.sum() if reduction == "sum" else losses.sum() / denom


def ref_cross_entropy_probs(x, y, w=None, reduction="mean", ls=0.0):
    c = x.shape[1]
    y = y * (1 - ls) + ls / c
    wv = np.ones(c) if w is None else w
    terms = -ref_log_softmax(x, 1) * y * wv.reshape((1, c) + (1,) * (x.ndim - 2))
    if reduction == "none":
        return terms.sum(1)
    return terms.sum() if reduction == "sum" else terms.sum() / (x.size / c)


# ----------------------------------------------------------------------------- activations

X = RNG.standard_normal((4, 5)) * 2

ACTIVATIONS = [
    ("relu", F.relu, lambda x: np.maximum(x, 0)),
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    ("elu", lambda x: F.elu(x, 1.5), lambda x: np.where(x > 0, x, 1.5 * np.expm1(x))),
    ("gelu", F.gelu, lambda x: 0.5 * x * (1 + erf(x / np.sqrt(2)))),
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"),
     lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))),
    ("sigmoid", F.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    ("tanh", F.tanh, np.tanh),
    ("silu", F.silu, lambda x: x / (1 + np.exp(-x))),
    ("softplus", F.softplus, ref_softplus),
    ("softplus_beta", lambda x: F.softplus(x, beta=2.0, threshold=3.0),
     lambda x: np.where(2 * x > 3, x, ref_softplus(2 * x) / 2)),
    ("softmax", lambda x: F.softmax(x, dim=1), lambda x: np.exp(ref_log_softmax(x, 1))),
    ("softmax0", lambda x: F.softmax(x, dim=0), lambda x: np.exp(ref_log_softmax(x, 0))),
    ("log_softmax", lambda x: F.log_softmax(x, dim=-1), lambda x: ref_log_softmax(x, -1)),
]


@pytest.mark.parametrize("name,fn,ref", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_values_and_gradients(name, fn, ref):
    assert_close(fn(t64(X)), ref(X), rtol=1e-10, atol=1e-12)
    out32 = fn(Tensor(X.astype(np.float32)))
    assert out32.dtype == lucid.float32
    assert_close(out32, ref(X), rtol=1e-5, atol=1e-6)
    check_grad(fn, X)


def test_leaky_relu_and_elu_gradients_at_zero():
    x = t64([0.0, -1.0, 2.0], requires_grad=True)
    F.leaky_relu(x, 0.3).sum().backward()
    assert_close(x.grad, [0.3, 0.3, 1.0])
    x = t64([0.0, -1.0, 2.0], requires_grad=True)
    F.elu(x, 2.0).sum().backward()
    assert_close(x.grad, [2.0, 2.0 * np.exp(-1.0), 1.0])


def test_elu_and_softplus_have_finite_gradients_for_huge_inputs():
    x = t64([1000.0, -1000.0, 50.0], requires_grad=True)
    (F.elu(x) + F.softplus(x) + F.silu(x)).sum().backward()
    assert np.isfinite(x.grad.numpy()).all()


def test_inplace_activations_return_their_input():
    for fn, ref in [(F.relu_, lambda a: np.maximum(a, 0)),
                    (lambda t: F.leaky_relu(t, 0.1, inplace=True),
                     lambda a: np.where(a > 0, a, 0.1 * a)),
                    (lambda t: F.elu(t, inplace=True), lambda a: np.where(a > 0, a, np.expm1(a)))]:
        x = t64(X.copy())
        assert fn(x) is x
        assert_close(x, ref(X))


def test_softmax_and_log_softmax_are_stable_for_large_inputs():
    x = Tensor([[1000.0, 0.0, -1000.0], [1000.0, 1000.0, 999.0]], requires_grad=True)
    sm = F.softmax(x, dim=1)
    e = np.exp(-1.0)
    assert_close(sm, [[1.0, 0.0, 0.0], [1 / (2 + e), 1 / (2 + e), e / (2 + e)]])
    lsm = F.log_softmax(x, dim=1)
    assert_close(lsm, ref_log_softmax(np.array(x.numpy(), np.float64), 1), rtol=1e-6)
    (sm.sum() + lsm.sum()).backward()
    assert np.isfinite(x.grad.numpy()).all()


def test_softmax_implicit_dim_warns_and_follows_pytorch():
    with pytest.warns(UserWarning, match="Implicit dimension"):
        out = F.softmax(t64(X))
    assert_close(out, np.exp(ref_log_softmax(X, 1)))


# ----------------------------------------------------------------------------- layers

def test_linear():
    x, w, b = RNG.standard_normal((3, 4)), RNG.standard_normal((5, 4)), RNG.standard_normal(5)
    assert_close(F.linear(t64(x), t64(w), t64(b)), x @ w.T + b, rtol=1e-12)
    assert_close(F.linear(t64(x), t64(w)), x @ w.T, rtol=1e-12)
    x3 = RNG.standard_normal((2, 3, 4))
    assert_close(F.linear(t64(x3), t64(w), t64(b)), x3 @ w.T + b, rtol=1e-12)
    check_grad(F.linear, x, w, b)
    with pytest.raises(ShapeError, match="linear.*in_features=4"):
        F.linear(t64(RNG.standard_normal((3, 6))), t64(w))


def test_dropout_masks_scales_and_differs_per_call():
    x = lucid.ones(200, 100)
    out = F.dropout(x, p=0.3, training=True).numpy()
    assert_close(np.unique(out), np.array([0.0, 1 / 0.7], np.float32))
    assert abs((out == 0).mean() - 0.3) < 0.02
    again = F.dropout(x, p=0.3, training=True).numpy()
    assert not np.array_equal(out == 0, again == 0)
    assert F.dropout(x, p=0.3, training=False) is x
    assert F.dropout(x, p=0.0) is x
    assert (F.dropout(x, p=1.0).numpy() == 0).all()
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(x, p=1.5)


def test_dropout_gradient_is_the_scaled_mask_and_seeded():
    x = lucid.randn(50, 20, requires_grad=True)
    out = F.dropout(x, p=0.5)
    out.sum().backward()
    kept = out.numpy() != 0
    assert_close(x.grad, kept * 2.0)
    lucid.manual_seed(7)
    a = F.dropout(lucid.ones(10, 10), 0.5).numpy()
    lucid.manual_seed(7)
    b = F.dropout(lucid.ones(10, 10), 0.5).numpy()
    assert np.array_equal(a, b)


def test_dropout_inplace():
    x = lucid.ones(10, 10)
    assert F.dropout(x, 0.5, inplace=True) is x
    assert set(np.unique(x.numpy())) <= {0.0, 2.0}


def ref_batch_norm(x, w, b, eps):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w.reshape(shape) + b.reshape(shape)


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (2, 3, 4, 4)])
def test_batch_norm_training_updates_running_stats(shape):
    x = RNG.standard_normal(shape) * 3 + 1
    w, b = RNG.standard_normal(3), RNG.standard_normal(3)
    rm, rv = t64(np.full(3, 0.5)), t64(np.full(3, 2.0))
    out = F.batch_norm(t64(x), rm, rv, t64(w), t64(b), training=True, momentum=0.2, eps=1e-3)
    assert_close(out, ref_batch_norm(x, w, b, 1e-3), rtol=1e-10, atol=1e-12)
    axes = (0,) + tuple(range(2, x.ndim))
    assert_close(rm, 0.8 * 0.5 + 0.2 * x.mean(axis=axes), rtol=1e-12)
    assert_close(rv, 0.8 * 2.0 + 0.2 * x.var(axis=axes, ddof=1), rtol=1e-12)
    check_grad(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), x, w, b)


def test_batch_norm_eval_uses_running_stats():
    x = RNG.standard_normal((5, 3, 2))
    rm, rv = RNG.standard_normal(3), RNG.random(3) + 0.5
    w, b = RNG.standard_normal(3), RNG.standard_normal(3)
    out = F.batch_norm(t64(x), t64(rm), t64(rv), t64(w), t64(b), training=False, eps=1e-5)
    expected = (x - rm[:, None]) / np.sqrt(rv[:, None] + 1e-5) * w[:, None] + b[:, None]
    assert_close(out, expected, rtol=1e-10)
    check_grad(lambda x, w: F.batch_norm(x, t64(rm), t64(rv), w, None), x, w)
    with pytest.raises(ShapeError, match="more than 1 value per channel"):
        F.batch_norm(t64(np.ones((1, 3))), None, None, training=True)


def test_layer_norm():
    x = RNG.standard_normal((2, 3, 4)) * 2 + 3
    w, b = RNG.standard_normal((3, 4)), RNG.standard_normal((3, 4))
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)
    expected = (x - mean) / np.sqrt(var + 1e-5) * w + b
    assert_close(F.layer_norm(t64(x), (3, 4), t64(w), t64(b)), expected, rtol=1e-10)
    x1 = x[..., 0]
    assert_close(F.layer_norm(t64(x1), 3),
                 (x1 - x1.mean(-1, keepdims=True)) / np.sqrt(x1.var(-1, keepdims=True) + 1e-5),
                 rtol=1e-10)
    check_grad(lambda x, w, b: F.layer_norm(x, (3, 4), w, b), x, w, b)
    with pytest.raises(ShapeError, match="layer_norm"):
        F.layer_norm(t64(x), (4, 3))


def test_embedding_gathers_rows_and_scatters_gradients():
    w = RNG.standard_normal((6, 3))
    idx = np.array([[0, 2, 2], [5, 1, 0]])
    assert_close(F.embedding(Tensor(idx), t64(w)), w[idx], rtol=0, atol=0)
    check_grad(lambda w: F.embedding(Tensor(idx), w), w)
    wt = t64(w, requires_grad=True)
    F.embedding(Tensor(idx), wt, padding_idx=2).sum().backward()
    expected = np.zeros((6, 3))
    np.add.at(expected, idx[idx != 2], 1.0)
    assert_close(wt.grad, expected)
    with pytest.raises(ShapeError, match="out of range"):
        F.embedding(Tensor([6]), t64(w))
    with pytest.raises(LucidError, match="integer"):
        F.embedding(Tensor([1.0]), t64(w))


# ----------------------------------------------------------------------------- losses

REDUCTIONS = ["mean", "sum", "none"]


def _reduce(loss, reduction):
    return {"mean": loss.mean(), "sum": loss.sum(), "none": loss}[reduction]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_and_l1(reduction):
    x, y = RNG.standard_normal((3, 4)), RNG.standard_normal((3, 4))
    assert_close(F.mse_loss(t64(x), t64(y), reduction), _reduce((x - y) ** 2, reduction))
    assert_close(F.l1_loss(t64(x), t64(y), reduction), _reduce(np.abs(x - y), reduction))
    check_grad(lambda a, b: F.mse_loss(a, b, reduction), x, y)
    check_grad(lambda a, b: F.l1_loss(a, b, reduction), x, y)
    with pytest.warns(UserWarning, match="different to the input size"):
        F.mse_loss(t64(x), t64(y[:1]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy(reduction):
    p, y, w = RNG.uniform(0.05, 0.95, (4, 3)), RNG.uniform(0, 1, (4, 3)), RNG.random(3)
    ref = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert_close(F.binary_cross_entropy(t64(p), t64(y), reduction=reduction),
                 _reduce(ref, reduction), rtol=1e-10)
    assert_close(F.binary_cross_entropy(t64(p), t64(y), t64(w), reduction),
                 _reduce(ref * w, reduction), rtol=1e-10)
    check_grad(lambda p, y: F.binary_cross_entropy(p, y, reduction=reduction), p, y)


def test_binary_cross_entropy_clamps_logs_at_minus_100():
    p = Tensor([0.0, 1.0, 0.0, 1.0, 0.5], requires_grad=True)
    y = Tensor([0.0, 1.0, 1.0, 0.0, 1.0])
    loss = F.binary_cross_entropy(p, y, reduction="none")
    assert_close(loss, [0.0, 0.0, 100.0, 100.0, np.log(2)])
    F.binary_cross_entropy(p, y).backward()
    assert np.isfinite(p.grad.numpy()).all()
    assert_close(p.grad[4], -2.0 / 5)
    with pytest.raises(LucidError, match="between 0 and 1"):
        F.binary_cross_entropy(Tensor([1.5]), Tensor([1.0]))
    with pytest.raises(ShapeError, match="same shape"):
        F.binary_cross_entropy(Tensor([0.5, 0.5]), Tensor([1.0]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_with_logits(reduction):
    x, y = RNG.standard_normal((4, 3)) * 3, RNG.uniform(0, 1, (4, 3))
    w, pw = RNG.random((4, 3)), RNG.random(3) * 3
    s = 1 / (1 + np.exp(-x))
    ref = -(pw * y * np.log(s) + (1 - y) * np.log(1 - s)) * w
    got = F.binary_cross_entropy_with_logits(t64(x), t64(y), t64(w), reduction, t64(pw))
    assert_close(got, _reduce(ref, reduction), rtol=1e-10)
    check_grad(lambda x, y: F.binary_cross_entropy_with_logits(x, y, reduction=reduction), x, y)
    check_grad(lambda x: F.binary_cross_entropy_with_logits(x, t64(y), t64(w), reduction,
                                                            t64(pw)), x)


def test_binary_cross_entropy_with_logits_is_stable_and_exact_at_zero():
    x = t64([1000.0, -1000.0, 0.0, 0.0], requires_grad=True)
    y = t64([0.0, 1.0, 1.0, 0.0])
    loss = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    assert_close(loss, [1000.0, 1000.0, np.log(2), np.log(2)])
    loss.sum().backward()
    # d/dx = sigmoid(x) - y, also at x = 0 (a zero-initialized last layer starts there).
    assert_close(x.grad, [1.0, -1.0, -0.5, 0.5])


def _class_data(shape, classes, ignore=None):
    x = RNG.standard_normal((shape[0], classes) + shape[1:]) * 2
    t = RNG.integers(0, classes, size=shape)
    if ignore is not None:
        t.flat[::3] = ignore
    return x, t


CE_CASES = [
    dict(),
    dict(weight=True),
    dict(ignore_index=1),
    dict(ignore_index=-100, ignored=True),
    dict(label_smoothing=0.2),
    dict(weight=True, ignore_index=2, label_smoothing=0.3),
]


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 2)], ids=["N", "Nd", "Ndd"])
@pytest.mark.parametrize("case", CE_CASES, ids=lambda c: "-".join(c) or "plain")
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_class_indices(shape, case, reduction):
    classes = 4
    ii = case.get("ignore_index", -100)
    x, t = _class_data(shape, classes, ii if "ignore_index" in case else None)
    w = RNG.random(classes) + 0.5 if case.get("weight") else None
    ls = case.get("label_smoothing", 0.0)
    expected = ref_cross_entropy(x, t, w, ii, reduction, ls)

    def fn(x):
        return F.cross_entropy(x, Tensor(t), None if w is None else t64(w), ii, reduction, ls)

    assert_close(fn(t64(x)), expected, rtol=1e-10, atol=1e-12)
    check_grad(fn, x)
    if ls == 0.0:
        nll = F.nll_loss(t64(ref_log_softmax(x, 1)), Tensor(t),
                         None if w is None else t64(w), ii, reduction)
        assert_close(nll, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted,ls", [(False, 0.0), (True, 0.0), (True, 0.1), (False, 0.25)])
def test_cross_entropy_probability_targets(reduction, weighted, ls):
    x = RNG.standard_normal((3, 4, 2))
    y = np.exp(ref_log_softmax(RNG.standard_normal((3, 4, 2)), 1))
    w = RNG.random(4) + 0.5 if weighted else None
    got = F.cross_entropy(t64(x), t64(y), None if w is None else t64(w), reduction=reduction,
                          label_smoothing=ls)
    assert_close(got, ref_cross_entropy_probs(x, y, w, reduction, ls), rtol=1e-10)
    check_grad(lambda x, y: F.cross_entropy(x, y, reduction=reduction, label_smoothing=ls), x, y)


def test_cross_entropy_known_values_and_unbatched():
    assert_close(F.cross_entropy(Tensor([[0.0, 0.0]]), Tensor([0])), np.log(2))
    logits = Tensor([1.0, 2.0, 3.0])
    expected = -ref_log_softmax(np.array([1.0, 2.0, 3.0]), 0)[2]
    assert_close(F.cross_entropy(logits, Tensor(2)), expected)
    assert_close(F.cross_entropy(Tensor([[1000.0, -1000.0]]), Tensor([1])), 2000.0)


def test_nll_loss_mean_divides_by_summed_weights():
    logp = t64(ref_log_softmax(RNG.standard_normal((4, 3)), 1))
    t, w = np.array([0, 2, 2, 1]), np.array([1.0, 2.0, 3.0])
    picked = logp.numpy()[np.arange(4), t]
    assert_close(F.nll_loss(logp, Tensor(t), t64(w)), -(picked * w[t]).sum() / w[t].sum())
    assert_close(F.nll_loss(logp, Tensor(t), reduction="none"), -picked)


def test_class_loss_errors_name_the_function():
    x = t64(RNG.standard_normal((4, 3)))
    with pytest.raises(ShapeError, match="cross_entropy.*out of bounds"):
        F.cross_entropy(x, Tensor([0, 1, 3, 0]))
    with pytest.raises(LucidError, match="nll_loss.*integer"):
        F.nll_loss(x, Tensor([0.0, 1.0, 2.0, 0.0]))
    with pytest.raises(ShapeError, match="cross_entropy.*probabilities"):
        F.cross_entropy(x, t64(np.ones((4, 2))))
    with pytest.raises(ShapeError, match="nll_loss.*target"):
        F.nll_loss(x, Tensor([0, 1]))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(x, Tensor([0, 1, 2, 0]), reduction="avg")


# ----------------------------------------------------------------------------- argument checks


@pytest.mark.parametrize("bad", [[1.0, 2.0, 3.0], None, np.ones(3, np.float32)],
                         ids=["list", "None", "ndarray"])
def test_a_non_tensor_input_names_the_function_the_argument_and_the_line(bad):
    layer = nn.Linear(3, 2)
    with pytest.raises(lucid.ArgumentError, match=r"linear\(\): argument 'input' \(position 1\) "
                                                  r"must be a Tensor, not \w+ \(test_functional"):
        layer(bad)
    with pytest.raises(lucid.ArgumentError, match=r"linear\(\): argument 'input'.*"
                                                  r"test_functional\.py:\d+"):
        lucid.compile(layer)(bad)
    with pytest.raises(TypeError, match=r"conv2d\(\): argument 'bias' must be a Tensor or None, "
                                        r"not list"):
        F.conv2d(lucid.ones(1, 1, 3, 3), lucid.ones(1, 1, 2, 2), bias=[0.0])
    with pytest.raises(lucid.ArgumentError, match=r"cross_entropy\(\): argument 'target' "
                                                  r"\(position 2\)"):
        F.cross_entropy(lucid.ones(2, 3), [0, 1])


@pytest.mark.parametrize("dtype", [lucid.float64, lucid.int64])
def test_layers_refuse_inputs_of_another_dtype_as_pytorch_does(dtype):
    x = lucid.ones(2, 3, dtype=dtype)
    cases = [
        (nn.Linear(3, 2), x, "linear"),
        (nn.Conv2d(1, 1, 2), lucid.ones(1, 1, 3, 3, dtype=dtype), "conv2d"),
        (nn.LayerNorm(3), x, "layer_norm"),
        (nn.BatchNorm1d(3), x, "batch_norm"),
    ]
    for layer, inp, name in cases:
        want = rf"{name}: input \w+\[[\d,]+\] and \w+ f32\[[\d,]+\] must have the same dtype"
        with pytest.raises(lucid.DTypeError, match=want):
            layer(inp)
        with pytest.raises(lucid.DTypeError, match=want):
            lucid.compile(layer)(inp)
    with pytest.raises(lucid.DTypeError, match="matmul: .*same dtype"):
        x @ lucid.ones(3, 2)
    # A layer converted to the input's dtype, or the input converted, is fine.
    if dtype == lucid.float64:
        assert nn.Linear(3, 2).double()(x).dtype == lucid.float64
    assert nn.Linear(3, 2)(x.float()).dtype == lucid.float32
