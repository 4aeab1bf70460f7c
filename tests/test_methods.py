"""Tensor methods and lucid functions written as composites (lucid/methods.py, lucid/einsum.py,
nn/functional/attention.py): PyTorch's semantics and errors, against NumPy. Values and gradients
of the differentiable ones are in the OpInfo table (tests/opinfo.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import lucid
import lucid.nn.functional as F


def test_shape_and_type_helpers():
    x = lucid.randn(3, 4)
    assert x.dim() == 2 and x.nelement() == 12 and x.element_size() == 4
    assert x.type() == "lucid.FloatTensor" and x.type(lucid.float64).dtype == np.float64
    assert x.is_floating_point() and not lucid.arange(3).is_floating_point()
    assert x.t().shape == (4, 3) and lucid.ones(3).t().shape == (3,)
    with pytest.raises(RuntimeError, match="t\\(\\) expects a tensor with <= 2 dimensions"):
        lucid.ones(2, 2, 2).t()
    assert x.mT.shape == (4, 3)
    y = x.t()
    assert not y.is_contiguous() and y.contiguous().is_contiguous()
    np.testing.assert_array_equal(y.contiguous().numpy(), y.numpy())
    assert x.contiguous() is x
    assert x.view_as(lucid.zeros(12)).shape == (12,)
    assert x.unflatten(1, (2, 2)).shape == (3, 2, 2)
    np.testing.assert_array_equal(x.narrow(1, 1, 2).numpy(), x.numpy()[:, 1:3])
    assert [t.shape for t in x.split(3, 1)] == [(3, 3), (3, 1)]
    assert [t.shape for t in x.chunk(3, 1)] == [(3, 2), (3, 2)]
    with pytest.raises(ValueError, match="split_with_sizes expects split_sizes to sum exactly"):
        x.split([1, 1], 1)
    z = x.new_zeros(2, 5)
    assert z.shape == (2, 5) and z.dtype == np.float32 and not z.numpy().any()
    assert x.new_full((2,), 7).tolist() == [7.0, 7.0] and x.new_ones((1,)).tolist() == [1.0]
    assert x.new_tensor([1, 2]).dtype == np.float32


def test_comparisons_logic_and_reductions():
    a = lucid.tensor([1.0, 2.0, 3.0])
    assert a.eq(2).tolist() == [False, True, False] and a.ge(2).tolist() == [False, True, True]
    m, n = a > 1, a < 3
    assert (m & n).tolist() == [False, True, False] and (m | n).tolist() == [True] * 3
    assert (~m).tolist() == [True, False, False] and (m ^ n).tolist() == [True, False, True]
    with pytest.raises(lucid.DTypeError, match="bitwise_and: .*needs an integer or bool dtype"):
        a & a
    assert a.any().item() and not (a > 5).any().item() and (a > 0).all().item()
    assert lucid.tensor([[0, 1], [0, 0]]).any(1).tolist() == [True, False]
    v = lucid.tensor([1.0, float("nan"), float("inf"), -float("inf")])
    assert v.isnan().tolist() == [False, True, False, False]
    assert v.isinf().tolist() == [False, False, True, True]
    assert lucid.arange(3).isfinite().tolist() == [True] * 3
    assert lucid.allclose(a, a + 1e-7) and not lucid.allclose(a, a + 1e-3)
    assert lucid.isclose(v, v, equal_nan=True).tolist() == [True] * 4
    assert lucid.equal(a, a.clone()) and not lucid.equal(a, a[:2])


def test_from_numpy_shares_memory_and_size_is_a_tuple():
    arr = np.zeros(3, np.float32)
    t = lucid.from_numpy(arr)
    arr[1] = 5
    assert t.tolist() == [0.0, 5.0, 0.0]
    assert lucid.Size([2, 3]) == (2, 3) and lucid.Size((2, 3)).numel() == 6
    assert lucid.is_tensor(t) and not lucid.is_tensor(arr) and lucid.numel(t) == 3
    with pytest.raises(TypeError, match="expected np.ndarray \\(got list\\)"):
        lucid.from_numpy([1, 2])


def test_products_check_their_operands():
    with pytest.raises(lucid.ShapeError, match="mm: .*both operands must be 2-d"):
        lucid.mm(lucid.ones(3), lucid.ones(3, 2))
    with pytest.raises(lucid.ShapeError, match="bmm: .*batch sizes differ"):
        lucid.bmm(lucid.ones(2, 3, 4), lucid.ones(3, 4, 5))
    with pytest.raises(RuntimeError, match="1D tensors expected"):
        lucid.ones(2, 2).dot(lucid.ones(2))
    a, b = lucid.randn(3, 4), lucid.randn(4, 2)
    np.testing.assert_allclose(lucid.ones(3, 2).addmm(a, b, beta=0.5, alpha=2).numpy(),
                               0.5 + 2 * a.numpy() @ b.numpy(), rtol=1e-5)


def test_einsum_errors():
    with pytest.raises(ValueError, match="operand terms"):
        lucid.einsum("ij,jk->ik", lucid.ones(2, 2))
    with pytest.raises(ValueError, match="subscripts for an operand of"):
        lucid.einsum("ijk->i", lucid.ones(2, 2))
    with pytest.raises(NotImplementedError, match="repeated subscript"):
        lucid.einsum("ii->i", lucid.ones(2, 2))
    with pytest.raises(lucid.ShapeError, match="subscript 'j' has sizes 3 and 4"):
        lucid.einsum("ij,jk->ik", lucid.ones(2, 3), lucid.ones(4, 2))


def _ref_attention(q, k, v, keep=None, add=None):
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if keep is not None:
        s = np.where(keep, s, -np.inf)
    if add is not None:
        s = s + add
    e = np.exp(s - s.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)) @ v


def test_attention_masks_scale_and_dropout():
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal(s).astype(np.float32) for s in ((2, 4, 3, 8), (2, 4, 5, 8),
                                                                     (2, 4, 5, 6)))
    keep = rng.uniform(size=(3, 5)) > 0.3
    keep[:, 0] = True
    T = lucid.tensor  # noqa: N806
    out = F.scaled_dot_product_attention(T(q), T(k), T(v), attn_mask=T(keep))
    np.testing.assert_allclose(out.numpy(), _ref_attention(q, k, v, keep=keep), rtol=1e-5,
                               atol=1e-6)
    add = rng.standard_normal((3, 5)).astype(np.float32)
    out = F.scaled_dot_product_attention(T(q), T(k), T(v), attn_mask=T(add))
    np.testing.assert_allclose(out.numpy(), _ref_attention(q, k, v, add=add), rtol=1e-5,
                               atol=1e-6)
    out = F.scaled_dot_product_attention(T(q), T(k), T(v), scale=0.5)
    np.testing.assert_allclose(out.numpy(), _ref_attention(q * 0.5 * np.sqrt(8), k, v),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(RuntimeError, match="Explicit attn_mask should not be set"):
        F.scaled_dot_product_attention(T(q), T(k), T(v), attn_mask=T(keep), is_causal=True)
    lucid.manual_seed(0)
    dropped = F.scaled_dot_product_attention(T(q), T(k), T(v), dropout_p=0.5)
    assert dropped.shape == (2, 4, 3, 6)
    # grouped-query attention: 4 query heads share 2 key/value heads
    kg, vg = k[:, :2], v[:, :2]
    out = F.scaled_dot_product_attention(T(q), T(kg), T(vg), enable_gqa=True)
    np.testing.assert_allclose(out.numpy(), _ref_attention(q, np.repeat(kg, 2, 1),
                                                           np.repeat(vg, 2, 1)),
                               rtol=1e-5, atol=1e-6)


def test_one_hot_and_normalize():
    assert F.one_hot(lucid.tensor([0, 2]), 3).tolist() == [[1, 0, 0], [0, 0, 1]]
    assert F.one_hot(lucid.tensor([[1], [3]])).shape == (2, 1, 4)
    with pytest.raises(lucid.DTypeError, match="one_hot is only applicable to index tensor"):
        F.one_hot(lucid.tensor([0.0]), 2)
    x = lucid.zeros(2, 3)
    assert not F.normalize(x).isnan().any().item()


def test_a_compiled_transformer_block_matches_eager():
    """Causal attention, masked_fill, logsumexp, einsum and split inside one compiled step."""
    lucid.manual_seed(3)
    w = lucid.randn(8, 24, requires_grad=True)

    def block(x):
        q, k, v = (x @ w).split(8, -1)
        q = q.reshape(2, 5, 2, 4).transpose(1, 2)
        k = k.reshape(2, 5, 2, 4).transpose(1, 2)
        v = v.reshape(2, 5, 2, 4).transpose(1, 2)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        scores = lucid.einsum("bhqd,bhkd->bhqk", q, k).masked_fill(
            lucid.ones(5, 5).triu(1) > 0, -1e9)
        return a.sum() + scores.logsumexp(-1).sum()

    compiled = lucid.compile(block, mode="sync", fullgraph=True)
    for _ in range(2):
        x = lucid.randn(2, 5, 8)
        out_e = block(x)
        out_e.backward()
        ge = w.grad.numpy().copy()
        w.grad = None
        out_c = compiled(x)
        out_c.backward()
        np.testing.assert_allclose(out_c.item(), out_e.item(), rtol=1e-5)
        np.testing.assert_allclose(w.grad.numpy(), ge, rtol=1e-4, atol=1e-5)
        w.grad = None


def test_sort_topk_argsort_and_their_gradients():
    x = np.random.default_rng(1).standard_normal((3, 6)).astype(np.float32)
    t = lucid.tensor(x, requires_grad=True)
    values, indices = t.sort(1, descending=True)
    np.testing.assert_array_equal(indices.numpy(), np.argsort(-x, 1, kind="stable"))
    np.testing.assert_array_equal(values.numpy(), -np.sort(-x, 1))
    top = t.topk(2, dim=1)
    np.testing.assert_array_equal(top.values.numpy(), -np.sort(-x, 1)[:, :2])
    top.values.sum().backward()
    expected = np.zeros_like(x)
    np.put_along_axis(expected, np.argsort(-x, 1)[:, :2], 1.0, 1)
    np.testing.assert_array_equal(t.grad.numpy(), expected)
    assert lucid.argsort(lucid.tensor([3, 1, 2])).tolist() == [1, 2, 0]
    low = lucid.tensor([5.0, 1.0, 4.0]).topk(2, largest=False)
    assert low.values.tolist() == [1.0, 4.0] and low.indices.tolist() == [1, 2]
    with pytest.raises(RuntimeError, match="selected index k out of range"):
        t.topk(7)


def test_sorting_in_a_compiled_function_runs_it_eagerly():
    import warnings

    f = lucid.compile(lambda x: x.sort().values * 2, mode="sync")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = f(lucid.tensor([3.0, 1.0, 2.0]))
    assert out.tolist() == [2.0, 4.0, 6.0]
    assert f.last_entry.kind == "eager"


def test_cumprod_and_integer_cumsum():
    x = np.array([[1.0, -2.0, 3.0, 0.0, 5.0], [0.5, -1.0, -1.0, 2.0, 3.0]], np.float32)
    np.testing.assert_allclose(lucid.tensor(x).cumprod(1).numpy(), np.cumprod(x, 1), rtol=1e-6)
    big = np.arange(300, dtype=np.int64)
    t = lucid.tensor(big).cumsum(0)
    assert t.dtype == np.int64 and t.tolist() == np.cumsum(big).tolist()


def test_products_are_exact_and_wrap_for_integers():
    big = np.arange(1, 22, dtype=np.int64)
    assert lucid.tensor(big).prod().item() == int(np.prod(big))  # wraps past 2**63, as NumPy's
    assert lucid.tensor(big).cumprod(0).tolist() == np.cumprod(big).tolist()
    assert lucid.tensor([True, True]).prod().dtype == np.int64
    assert lucid.tensor([1, 2, 3], dtype=lucid.int32).prod(dtype=lucid.float64).dtype == np.float64
    assert lucid.zeros(2, 0).prod(1).tolist() == [1.0, 1.0]
    assert lucid.tensor(3.0).prod(0, keepdim=True).shape == ()
    x = lucid.tensor([[2.0, 0.0, -3.0]], requires_grad=True)
    x.prod().backward()
    assert x.grad.tolist() == [[0.0, -6.0, 0.0]]  # the product of the others at the zero


def test_inverse_trigonometric_functions_follow_numpy_at_the_edges():
    x = np.array([-1.0, -0.5, -0.0, 0.0, 1e-30, 0.5, 1.0, 1.5, np.inf, -np.inf, np.nan])
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, ref in (("asin", np.arcsin), ("acos", np.arccos), ("atan", np.arctan),
                          ("asinh", np.arcsinh), ("atanh", np.arctanh)):
            for dtype in (np.float32, np.float64):
                got = getattr(lucid.tensor(x.astype(dtype)), name)().numpy()
                np.testing.assert_allclose(got, ref(x.astype(dtype)), rtol=2e-7, atol=0,
                                           err_msg=name)
        xs = np.array([1.0, 1.0 + 1e-12, 2.0, 1e10, 0.5, np.inf, np.nan])
        np.testing.assert_allclose(lucid.tensor(xs).acosh().numpy(), np.arccosh(xs), rtol=1e-12)
    y, x2 = np.meshgrid([-1.0, -0.0, 0.0, 2.0, np.inf], [-3.0, -0.0, 0.0, 1.0, -np.inf])
    np.testing.assert_array_equal(lucid.atan2(lucid.tensor(y), lucid.tensor(x2)).numpy(),
                                  np.arctan2(y, x2))  # signed zeros and quadrants included
    assert lucid.atan2(lucid.tensor([1, 2]), lucid.tensor([3, -4])).dtype == np.float32
    assert lucid.arcsin is not None and lucid.tensor([0.5]).arctan2(lucid.tensor([1.0])).item() \
        == pytest.approx(np.arctan2(0.5, 1.0))
    t = lucid.tensor([0.25, 0.5])
    t.asin_()
    np.testing.assert_allclose(t.numpy(), np.arcsin([0.25, 0.5]), rtol=1e-6)


def test_atan2_gradient_is_zero_at_the_origin():
    y = lucid.tensor([0.0, 1.0], requires_grad=True)
    x = lucid.tensor([0.0, 0.0], requires_grad=True)
    lucid.atan2(y, x).sum().backward()
    assert y.grad.tolist() == [0.0, 0.0] and x.grad.tolist() == [0.0, -1.0]  # as PyTorch's


def test_integer_division_follows_python():
    a = lucid.tensor([7, -7, 7, -7])
    b = lucid.tensor([2, 2, -2, -2])
    assert (a // b).tolist() == [3, -4, -4, 3] and (a % b).tolist() == [1, 1, -1, -1]
    assert lucid.fmod(a, b).tolist() == [1, -1, 1, -1] and (9 // lucid.tensor([2])).tolist() == [4]


def test_hooks_see_and_replace_gradients():
    w = lucid.randn(3, requires_grad=True)
    seen = []
    handle = w.register_hook(lambda g: seen.append(g.tolist()) or g * 2)
    (w * 3).sum().backward()
    assert seen == [[3.0] * 3] and w.grad.tolist() == [6.0] * 3
    handle.remove()
    w.grad = None
    (w * 3).sum().backward()
    assert w.grad.tolist() == [3.0] * 3 and len(seen) == 1
    y = w * 2
    y.register_hook(lambda g: g * 0)
    w.grad = None
    y.sum().backward()
    assert w.grad.tolist() == [0.0] * 3
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        lucid.ones(2).register_hook(lambda g: g)


def test_multinomial_draws_follow_the_weights_and_the_generator():
    import collections

    p = lucid.tensor([[0.1, 0.0, 0.9], [1.0, 1.0, 1.0]])
    a = p.multinomial(6, replacement=True, generator=lucid.Generator().manual_seed(0))
    b = p.multinomial(6, replacement=True, generator=lucid.Generator().manual_seed(0))
    assert a.tolist() == b.tolist() and a.shape == (2, 6) and 1 not in a[0].tolist()
    once = lucid.multinomial(lucid.tensor([1.0, 2.0, 3.0, 0.0]), 3)
    assert sorted(once.tolist()) == [0, 1, 2]
    counts = collections.Counter(lucid.multinomial(lucid.tensor([1.0, 3.0]), 4000, True).tolist())
    assert 2.6 < counts[1] / counts[0] < 3.4
    with pytest.raises(RuntimeError, match="not enough non-negative category"):
        lucid.multinomial(p, 3)
    with pytest.raises(RuntimeError, match="invalid multinomial distribution"):
        lucid.multinomial(lucid.zeros(3), 1)


def test_inference_mode_and_threads():
    with lucid.inference_mode():
        assert not lucid.is_grad_enabled()
    with lucid.inference_mode(False):
        assert lucid.is_grad_enabled()
    before = lucid.get_num_threads()
    lucid.set_num_threads(1)
    assert lucid.get_num_threads() == 1
    lucid.set_num_threads(before)
    with pytest.raises(ValueError):
        lucid.set_num_threads(0)


def test_device_objects():
    d = lucid.device("cpu")
    assert d == "cpu" and str(d) == "cpu" and d.type == "cpu" and repr(d) == "device(type='cpu')"
    assert lucid.device("cuda:0").index == 0 and lucid.zeros(2, device=d).device == "cpu"
    x = lucid.randn(2)
    assert x.to(d) is x and x.to(lucid.zeros(1, dtype=lucid.float64)).dtype == np.float64
    assert lucid.nn.Linear(2, 2).to(d).weight.device == "cpu"
    with pytest.raises(RuntimeError, match="Expected one of cpu, cuda device type"):
        lucid.device("tpu")


def test_scatter_one_hot_and_the_value_form():
    t = lucid.zeros(3, 4).scatter_(1, lucid.tensor([[0], [2], [3]]), 1.0)
    assert t.tolist() == [[1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    u = lucid.ones(2, 3).scatter(0, lucid.tensor([[1, 0, 1]]), value=5.0, reduce="add")
    assert u.tolist() == [[1, 6, 1], [6, 1, 6]]


def test_grad_mode_switch_and_to_keywords():
    with lucid.set_grad_enabled(False):
        assert not lucid.is_grad_enabled()
    assert lucid.is_grad_enabled()
    lucid.set_grad_enabled(False)
    try:
        assert not lucid.is_grad_enabled()
    finally:
        lucid.set_grad_enabled(True)
    x = lucid.randn(2)
    assert x.to("cpu", non_blocking=True) is x and x.to(copy=True) is not x
    assert lucid.zeros(2, dtype=lucid.int).dtype == np.int32


def test_linear_algebra_against_numpy():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 4, 4)) + 3 * np.eye(4)
    b = rng.standard_normal((2, 4, 3))
    A = lucid.tensor(a)
    np.testing.assert_allclose(lucid.linalg.inv(A).numpy(), np.linalg.inv(a), rtol=1e-10)
    np.testing.assert_allclose(A.inverse().numpy(), np.linalg.inv(a), rtol=1e-10)
    np.testing.assert_allclose(lucid.linalg.solve(A, lucid.tensor(b)).numpy(),
                               np.linalg.solve(a, b), rtol=1e-10)
    v = rng.standard_normal(4)
    np.testing.assert_allclose(lucid.linalg.solve(A[0], lucid.tensor(v)).numpy(),
                               np.linalg.solve(a[0], v), rtol=1e-10)
    bt = np.swapaxes(b, 1, 2)  # X A = B^T
    np.testing.assert_allclose(lucid.linalg.solve(A, lucid.tensor(bt), left=False).numpy(),
                               bt @ np.linalg.inv(a), rtol=1e-9)
    np.testing.assert_allclose(lucid.linalg.det(A).numpy(), np.linalg.det(a), rtol=1e-10)
    sign, logabs = lucid.linalg.slogdet(A)
    np.testing.assert_allclose(sign.numpy(), np.linalg.slogdet(a)[0])
    np.testing.assert_allclose(logabs.numpy(), np.linalg.slogdet(a)[1], rtol=1e-10)
    s = a @ np.swapaxes(a, 1, 2)
    np.testing.assert_allclose(lucid.linalg.cholesky(lucid.tensor(s)).numpy(),
                               np.linalg.cholesky(s), rtol=1e-10)
    np.testing.assert_allclose(lucid.linalg.cholesky(lucid.tensor(s), upper=True).numpy(),
                               np.swapaxes(np.linalg.cholesky(s), 1, 2), rtol=1e-10)
    np.testing.assert_allclose(lucid.linalg.matrix_power(A, 3).numpy(),
                               np.linalg.matrix_power(a, 3), rtol=1e-10)
    np.testing.assert_allclose(lucid.linalg.matrix_power(A, -2).numpy(),
                               np.linalg.matrix_power(a, -2), rtol=1e-9)
    np.testing.assert_allclose(lucid.linalg.multi_dot([A[0], A[1], A[0]]).numpy(),
                               a[0] @ a[1] @ a[0], rtol=1e-10)
    with pytest.raises(lucid.LucidError, match="inv: f64\\[3,3\\]: LinAlgError"):
        lucid.linalg.inv(lucid.zeros(3, 3, dtype=lucid.float64))
    with pytest.raises(lucid.ShapeError, match="square matrices"):
        lucid.linalg.inv(lucid.zeros(2, 3))
