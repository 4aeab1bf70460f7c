"""conv2d, max_pool2d, avg_pool2d, unfold and fold: forward against naive NumPy loops, gradients
against central finite differences (float64), and the Conv2d / pooling layers (init, printing)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lucid
import lucid.nn as nn
import lucid.nn.functional as F
from lucid import ops
from tests.helpers import assert_close, check_vjp

RNG = np.random.default_rng(1234)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# ----------------------------------------------------------------------------- naive references


def naive_conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """One dot product per output element, straight from the definition (float64)."""
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw))
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, o, oh, ow))
    og = o // groups
    for b_ in range(n):
        for f in range(o):
            g = f // og
            for y in range(oh):
                for x_ in range(ow):
                    patch = xp[b_, g * cg:(g + 1) * cg, y * sh:y * sh + dh * (kh - 1) + 1:dh,
                               x_ * sw:x_ * sw + dw * (kw - 1) + 1:dw]
                    out[b_, f, y, x_] = np.sum(patch * w[f])
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out


def _pool_len(size, k, s, p, d, ceil_mode):
    eff = d * (k - 1) + 1
    frac = (size + 2 * p - eff) / s
    n = (math.ceil(frac) if ceil_mode else math.floor(frac)) + 1
    # PyTorch drops a last window that would start in the right padding.
    if ceil_mode and (n - 1) * s >= size + p:
        n -= 1
    return n


def _pool_ranges(size, k, s, p, d, ceil_mode):
    """For each output position along one axis: the input indices its window covers
    (unclipped, may be negative or past the end)."""
    n = _pool_len(size, k, s, p, d, ceil_mode)
    return [[i * s - p + j * d for j in range(k)] for i in range(n)]


def naive_max_pool2d(x, kernel, stride=None, padding=0, dilation=1, ceil_mode=False):
    (kh, kw) = _pair(kernel)
    (sh, sw) = _pair(stride if stride is not None else kernel)
    (ph, pw), (dh, dw) = _pair(padding), _pair(dilation)
    rows = _pool_ranges(x.shape[2], kh, sh, ph, dh, ceil_mode)
    cols = _pool_ranges(x.shape[3], kw, sw, pw, dw, ceil_mode)
    out = np.empty(x.shape[:2] + (len(rows), len(cols)))
    for y, ys in enumerate(rows):
        for x_, xs in enumerate(cols):
            ys_ok = [i for i in ys if 0 <= i < x.shape[2]]
            xs_ok = [j for j in xs if 0 <= j < x.shape[3]]
            out[:, :, y, x_] = x[:, :, ys_ok][:, :, :, xs_ok].max(axis=(2, 3))
    return out


def naive_avg_pool2d(x, kernel, stride=None, padding=0, ceil_mode=False,
                     count_include_pad=True, divisor_override=None):
    (kh, kw) = _pair(kernel)
    (sh, sw) = _pair(stride if stride is not None else kernel)
    (ph, pw) = _pair(padding)
    h, w = x.shape[2:]
    rows = _pool_ranges(h, kh, sh, ph, 1, ceil_mode)
    cols = _pool_ranges(w, kw, sw, pw, 1, ceil_mode)
    out = np.empty(x.shape[:2] + (len(rows), len(cols)))
    for y, ys in enumerate(rows):
        for x_, xs in enumerate(cols):
            ys_ok = [i for i in ys if 0 <= i < h]
            xs_ok = [j for j in xs if 0 <= j < w]
            total = x[:, :, ys_ok][:, :, :, xs_ok].sum(axis=(2, 3))
            if divisor_override is not None:
                count = divisor_override
            elif count_include_pad:  # padding counts, the overhang past it does not
                count = (len([i for i in ys if i < h + ph]) * len([j for j in xs if j < w + pw]))
            else:
                count = len(ys_ok) * len(xs_ok)
            out[:, :, y, x_] = total / count
    return out


def naive_unfold(x, kernel, stride=1, padding=0, dilation=1):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = map(_pair, (kernel, stride, padding, dilation))
    n, c, h, w = x.shape
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, c * kh * kw, oh * ow))
    for ch in range(c):
        for i in range(kh):
            for j in range(kw):
                row = (ch * kh + i) * kw + j
                for y in range(oh):
                    for x_ in range(ow):
                        r, q = y * sh - ph + i * dh, x_ * sw - pw + j * dw
                        if 0 <= r < h and 0 <= q < w:
                            out[:, row, y * ow + x_] = x[:, ch, r, q]
    return out


# ----------------------------------------------------------------------------- gradient check

EPS = 1e-6


def check_grads(fn, *arrays, rtol=1e-6):
    """The inputs' gradients along one random direction against central differences."""
    check_vjp(fn, arrays, range(len(arrays)), RNG, eps=EPS, rtol=rtol, atol=1e-8)


def distinct(shape):
    """Values far apart (no ties), so max_pool's choice is stable under the FD step."""
    return RNG.permutation(int(np.prod(shape))).reshape(shape) * 0.1 - 3.0


# ----------------------------------------------------------------------------- conv2d

CONV_CASES = [
    # x shape, w shape, stride, padding, dilation, groups
    ((2, 3, 7, 6), (4, 3, 3, 3), 1, 0, 1, 1),
    ((1, 3, 8, 7), (5, 3, 3, 2), 2, 1, 1, 1),
    ((2, 2, 9, 8), (3, 2, 2, 3), (1, 2), (2, 1), (2, 1), 1),
    ((1, 4, 6, 6), (6, 2, 3, 3), 1, 1, 1, 2),
    ((2, 6, 7, 9), (3, 2, 1, 3), (2, 1), (0, 2), (1, 2), 3),
    ((1, 4, 5, 5), (4, 1, 3, 3), 1, 1, 1, 4),  # depthwise
]


@pytest.mark.parametrize("xs, ws, stride, padding, dilation, groups", CONV_CASES)
def test_conv2d_matches_naive_loops(xs, ws, stride, padding, dilation, groups):
    x, w, b = RNG.standard_normal(xs), RNG.standard_normal(ws), RNG.standard_normal(ws[0])
    expected = naive_conv2d(x, w, b, stride, padding, dilation, groups)
    t = lambda a: lucid.Tensor(a, dtype=lucid.float64)  # noqa: E731
    got = F.conv2d(t(x), t(w), t(b), stride, padding, dilation, groups)
    assert_close(got, expected, rtol=1e-10, atol=1e-10)
    no_bias = F.conv2d(t(x), t(w), None, stride, padding, dilation, groups)
    assert_close(no_bias, naive_conv2d(x, w, None, stride, padding, dilation, groups),
                 rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("xs, ws, stride, padding, dilation, groups", CONV_CASES[1:5])
def test_conv2d_gradients_match_finite_differences(xs, ws, stride, padding, dilation, groups):
    x, w, b = RNG.standard_normal(xs), RNG.standard_normal(ws), RNG.standard_normal(ws[0])
    check_grads(lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation, groups), x, w, b)


def test_conv2d_keeps_float32_and_gradient_of_input_only():
    x = lucid.randn(2, 3, 6, 6, requires_grad=True)
    w = lucid.randn(4, 3, 3, 3)  # a frozen weight: only the input's gradient is needed
    out = F.conv2d(x, w, padding=1)
    assert out.dtype == lucid.float32 and out.shape == (2, 4, 6, 6)
    out.sum().backward()
    assert x.grad.dtype == lucid.float32 and w.grad is None
    # d sum(conv(x, w)) / dx = fold of w over all positions: a corner sees 4 of the 9 taps.
    expected_corner = w.numpy()[:, :, :2, :2].sum(axis=(0, 2, 3))
    assert_close(x.grad[0, :, 0, 0], expected_corner, rtol=1e-5)


def test_conv2d_same_and_valid_padding_and_unbatched_input():
    x = RNG.standard_normal((3, 7, 8))
    w = RNG.standard_normal((2, 3, 4, 3))  # an even kernel: 'same' pads 1 before, 2 after
    t = lambda a: lucid.Tensor(a, dtype=lucid.float64)  # noqa: E731
    same = F.conv2d(t(x), t(w), padding="same", dilation=(1, 2))
    xp = np.pad(x[None], ((0, 0), (0, 0), (1, 2), (2, 2)))
    assert same.shape == (2, 7, 8)
    assert_close(same, naive_conv2d(xp, w, dilation=(1, 2))[0], rtol=1e-10, atol=1e-10)
    valid = F.conv2d(t(x), t(w), padding="valid")
    assert_close(valid, naive_conv2d(x[None], w)[0], rtol=1e-10, atol=1e-10)
    check_grads(lambda x, w: F.conv2d(x, w, padding="same"), x, w)


# ----------------------------------------------------------------------------- pooling

MAX_POOL_CASES = [
    # x shape, kernel, stride, padding, dilation, ceil_mode
    ((2, 3, 6, 6), 2, None, 0, 1, False),
    ((1, 2, 7, 5), 3, 2, 1, 1, False),
    ((1, 2, 7, 5), 3, 2, 1, 1, True),
    ((2, 1, 8, 9), (2, 3), (2, 2), (1, 0), (2, 1), True),
    ((1, 2, 5, 5), 2, 2, 0, 1, True),  # the last window hangs over the right edge
    ((1, 2, 5, 5), 2, 2, 1, 1, True),  # ceil_mode drops a window starting in the padding
]


@pytest.mark.parametrize("xs, kernel, stride, padding, dilation, ceil_mode", MAX_POOL_CASES)
def test_max_pool2d_matches_naive_loops(xs, kernel, stride, padding, dilation, ceil_mode):
    x = RNG.standard_normal(xs) - 2.0  # mostly negative: padding must never win
    got = F.max_pool2d(lucid.Tensor(x, dtype=lucid.float64), kernel, stride, padding, dilation,
                       ceil_mode)
    assert_close(got, naive_max_pool2d(x, kernel, stride, padding, dilation, ceil_mode),
                 rtol=0, atol=0)


@pytest.mark.parametrize("xs, kernel, stride, padding, dilation, ceil_mode", MAX_POOL_CASES)
def test_max_pool2d_gradients_match_finite_differences(xs, kernel, stride, padding, dilation,
                                                       ceil_mode):
    check_grads(lambda x: F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode),
                distinct(xs))


def test_max_pool2d_gradient_goes_to_the_first_maximum_of_each_window():
    x = lucid.Tensor(np.full((1, 1, 4, 4), -1.0), requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()  # every window ties: row-major first gets it all
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 1.0
    assert_close(x.grad[0, 0], expected, rtol=0, atol=0)
    # Overlapping windows that share their maximum accumulate on it.
    y = lucid.Tensor([[[[0.0, 5.0, 0.0], [0.0, 0.0, 0.0]]]], requires_grad=True)
    F.max_pool2d(y, 2, stride=1).sum().backward()
    assert_close(y.grad[0, 0], [[0.0, 2.0, 0.0], [0.0, 0.0, 0.0]], rtol=0, atol=0)


AVG_POOL_CASES = [
    # x shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
    ((2, 3, 6, 6), 2, None, 0, False, True, None),
    ((1, 2, 7, 5), 3, 2, 1, False, True, None),
    ((1, 2, 7, 5), 3, 2, 1, False, False, None),
    ((1, 2, 7, 6), 3, 2, 1, True, True, None),
    ((1, 2, 7, 6), (3, 2), (2, 3), (1, 1), True, False, None),
    ((1, 1, 5, 5), 2, 2, 0, True, True, None),
    ((1, 1, 5, 5), 2, 2, 1, True, True, None),
    ((1, 2, 5, 6), 3, 1, 1, False, True, 4),
]


@pytest.mark.parametrize("xs, kernel, stride, padding, ceil_mode, include, divisor",
                         AVG_POOL_CASES)
def test_avg_pool2d_matches_naive_loops(xs, kernel, stride, padding, ceil_mode, include, divisor):
    x = RNG.standard_normal(xs)
    got = F.avg_pool2d(lucid.Tensor(x, dtype=lucid.float64), kernel, stride, padding, ceil_mode,
                       include, divisor)
    assert_close(got, naive_avg_pool2d(x, kernel, stride, padding, ceil_mode, include, divisor),
                 rtol=1e-12, atol=1e-12)
    check_grads(lambda x: F.avg_pool2d(x, kernel, stride, padding, ceil_mode, include, divisor),
                x)


def test_pooling_keeps_float32_and_accepts_unbatched_input():
    x = lucid.randn(3, 6, 6)
    assert F.max_pool2d(x, 2).shape == (3, 3, 3) and F.max_pool2d(x, 2).dtype == lucid.float32
    avg = F.avg_pool2d(x, 3, padding=1)
    assert avg.shape == (3, 2, 2) and avg.dtype == lucid.float32
    assert_close(avg, naive_avg_pool2d(x.numpy()[None], 3, None, 1)[0], rtol=1e-5)


# ----------------------------------------------------------------------------- unfold / fold

UNFOLD_CASES = [
    ((2, 3, 5, 6), (2, 2), 1, 0, 1),
    ((1, 2, 7, 6), (3, 2), (2, 1), (1, 2), (1, 2)),
    ((1, 1, 6, 6), (3, 3), 3, 0, 1),
]


@pytest.mark.parametrize("xs, kernel, stride, padding, dilation", UNFOLD_CASES)
def test_unfold_and_fold_match_naive_loops_and_are_adjoint(xs, kernel, stride, padding,
                                                           dilation):
    x = RNG.standard_normal(xs)
    cols = F.unfold(lucid.Tensor(x, dtype=lucid.float64), kernel, dilation, padding, stride)
    assert_close(cols, naive_unfold(x, kernel, stride, padding, dilation), rtol=0, atol=0)
    y = RNG.standard_normal(cols.shape)
    folded = F.fold(lucid.Tensor(y, dtype=lucid.float64), xs[2:], kernel, dilation, padding,
                    stride)
    assert folded.shape == xs
    # fold is the adjoint of unfold: <unfold(x), y> == <x, fold(y)>.
    np.testing.assert_allclose(np.sum(cols.numpy() * y), np.sum(x * folded.numpy()), rtol=1e-12)
    check_grads(lambda x: F.unfold(x, kernel, dilation, padding, stride), x)
    check_grads(lambda y: F.fold(y, xs[2:], kernel, dilation, padding, stride), y)


def test_fold_sums_overlapping_patches():
    ones = lucid.ones(4, 4)  # unbatched: a 2x2 kernel at stride 1 over a 3x3 output
    out = F.fold(ones, (3, 3), 2)
    assert out.shape == (1, 3, 3)
    assert_close(out[0], [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]], rtol=0, atol=0)


# ----------------------------------------------------------------------------- errors


def test_conv2d_channel_mismatch_names_op_shapes_and_line():
    x, w = lucid.randn(1, 3, 8, 8), lucid.randn(4, 2, 3, 3)
    with pytest.raises(lucid.ShapeError) as info:
        F.conv2d(x, w)
    message = str(info.value)
    for fragment in ("conv2d", "f32[1,3,8,8]", "f32[4,2,3,3]", "3 channels",
                     f"test_conv.py:{info.tb.tb_lineno}"):
        assert fragment in message, (fragment, message)


@pytest.mark.parametrize("call, error, fragments", [
    (lambda: F.conv2d(lucid.randn(1, 3, 2, 2), lucid.randn(4, 3, 3, 3)), lucid.ShapeError,
     ("conv2d", "2x2 input", "(3, 3) kernel")),
    (lambda: F.conv2d(lucid.randn(1, 4, 5, 5), lucid.randn(3, 2, 3, 3), groups=2),
     lucid.ShapeError, ("conv2d", "not divisible by groups=2")),
    (lambda: F.conv2d(lucid.randn(1, 3, 5, 5), lucid.randn(3, 3, 3, 3).double()),
     lucid.DTypeError, ("conv2d", "f32[1,3,5,5]", "f64[3,3,3,3]", "must have the same dtype")),
    (lambda: F.conv2d(lucid.randn(3, 5), lucid.randn(3, 3, 3, 3)), lucid.ShapeError,
     ("conv2d", "f32[3,5]", "got 2-d")),
    (lambda: F.conv2d(lucid.randn(1, 3, 5, 5), lucid.randn(2, 3, 3, 3), lucid.randn(3)),
     lucid.ShapeError, ("conv2d", "bias must have shape (2,)")),
    (lambda: F.max_pool2d(lucid.ones(1, 1, 4, 4, dtype=lucid.int64), 2), lucid.DTypeError,
     ("max_pool2d", "i64[1,1,4,4]", "floating")),
    (lambda: F.max_pool2d(lucid.randn(1, 1, 4, 4), 2, padding=2), lucid.ShapeError,
     ("max_pool2d", "pad should be at most half")),
    (lambda: F.avg_pool2d(lucid.randn(1, 1, 2, 2), 3), lucid.ShapeError,
     ("avg_pool2d", "f32[1,1,2,2]")),
    (lambda: F.fold(lucid.randn(1, 5, 9), (4, 4), 2), lucid.ShapeError,
     ("fold", "f32[1,5,9]", "not a multiple")),
    (lambda: F.fold(lucid.randn(1, 4, 8), (4, 4), 2), lucid.ShapeError,
     ("fold", "8 columns", "3x3 = 9")),
])
def test_bad_inputs_raise_clear_errors(call, error, fragments):
    with pytest.raises(error) as info:
        call()
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


def test_shape_rules_match_eager_results():
    x, w = lucid.randn(2, 4, 9, 7), lucid.randn(6, 2, 3, 2)
    attrs = dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)
    assert ops.conv2d.infer(x.aval, w.aval, **attrs) == ops.conv2d(x, w, **attrs).aval
    pool = dict(kernel=(3, 2), stride=(2, 2), padding=(1, 1), dilation=(1, 1), ceil_mode=True)
    assert ops.max_pool2d.infer(x.aval, **pool) == ops.max_pool2d(x, **pool).aval
    window = dict(kernel=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2))
    cols = ops.unfold(x, **window)
    assert ops.unfold.infer(x.aval, **window) == cols.aval
    assert ops.fold.infer(cols.aval, output_size=(9, 7), **window) == \
        ops.fold(cols, output_size=(9, 7), **window).aval


# ----------------------------------------------------------------------------- layers


class SimpleCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2, 2)

    def forward(self, x):
        x = self.pool(self.relu1(self.conv1(x)))
        return self.pool(self.relu2(self.conv2(x)))


SIMPLE_CNN_REPR = """SimpleCNN(
  (conv1): Conv2d(3, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
  (relu1): ReLU()
  (conv2): Conv2d(32, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
  (relu2): ReLU()
  (pool): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
)"""


def test_simple_cnn_shape_repr_and_backward():
    model = SimpleCNN()
    assert repr(model) == SIMPLE_CNN_REPR
    out = model(lucid.randn(1, 3, 32, 32))
    assert out.shape == (1, 64, 8, 8) and out.dtype == lucid.float32
    out.sum().backward()
    for p in model.parameters():
        assert p.grad is not None and p.grad.shape == p.shape
    assert np.abs(model.conv1.weight.grad.numpy()).sum() > 0


def test_conv2d_layer_matches_functional_and_counts_parameters():
    layer = nn.Conv2d(3, 32, 3)
    assert sum(p.numel() for p in layer.parameters()) == 896  # PyTorch's count
    grouped = nn.Conv2d(4, 8, 3, groups=2, bias=False)
    assert grouped.weight.shape == (8, 2, 3, 3) and grouped.bias is None
    assert sum(p.numel() for p in grouped.parameters()) == 144
    x = lucid.randn(2, 4, 5, 5)
    expected = naive_conv2d(x.numpy().astype(np.float64), grouped.weight.numpy(), groups=2)
    assert_close(grouped(x), expected, rtol=1e-5, atol=1e-5)


def test_conv2d_default_init_is_pytorch_uniform_bound():
    layer = nn.Conv2d(8, 16, 3)
    bound = 1 / math.sqrt(8 * 9)
    for p in (layer.weight, layer.bias):
        assert np.abs(p.numpy()).max() <= bound
    # 1152 weights: the largest is within 1% of the bound unless the draw is broken
    assert np.abs(layer.weight.numpy()).max() > 0.99 * bound
    assert layer.weight.dtype == lucid.float32 and layer.weight.requires_grad


def test_layer_reprs_match_pytorch():
    assert repr(nn.Conv2d(3, 32, 3, padding=1)) == \
        "Conv2d(3, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))"
    assert repr(nn.Conv2d(4, 8, (3, 1), stride=2, dilation=2, groups=2, bias=False)) == \
        ("Conv2d(4, 8, kernel_size=(3, 1), stride=(2, 2), dilation=(2, 2), groups=2, "
         "bias=False)")
    assert repr(nn.Conv2d(2, 2, 3, padding="same")) == \
        "Conv2d(2, 2, kernel_size=(3, 3), stride=(1, 1), padding=same)"
    assert repr(nn.MaxPool2d(3, 1, 1, ceil_mode=True)) == \
        "MaxPool2d(kernel_size=3, stride=1, padding=1, dilation=1, ceil_mode=True)"
    assert repr(nn.AvgPool2d(2)) == "AvgPool2d(kernel_size=2, stride=2, padding=0)"


def test_pooling_layers_match_functional():
    x = lucid.randn(1, 2, 7, 7)
    assert_close(nn.MaxPool2d(3, 2, 1, ceil_mode=True)(x),
                 F.max_pool2d(x, 3, 2, 1, ceil_mode=True), rtol=0, atol=0)
    assert_close(nn.AvgPool2d(3, 2, 1, count_include_pad=False)(x),
                 naive_avg_pool2d(x.numpy(), 3, 2, 1, count_include_pad=False), rtol=1e-5)


def test_conv2d_layer_rejects_bad_configuration():
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 6, 3, groups=2)
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(3, 6, 3, stride=2, padding="same")


def test_pad_is_pytorchs_constant_pad():
    x = lucid.tensor(np.arange(24, dtype=np.float32).reshape(2, 3, 4), requires_grad=True)
    y = F.pad(x, (1, 2, 0, 3), value=-1.5)  # last axis (1, 2), the one before (0, 3)
    np.testing.assert_array_equal(
        y.numpy(), np.pad(x.numpy(), ((0, 0), (0, 3), (1, 2)), constant_values=-1.5))
    (y * y).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 2 * x.numpy())
    assert F.pad(x, ()).shape == x.shape
    with pytest.raises(lucid.LucidError, match="mode 'reflect' is not supported"):
        F.pad(x, (1, 1), mode="reflect")
    with pytest.raises(TypeError, match="even number of ints"):
        F.pad(x, (1, 1, 1))
    with pytest.raises(lucid.ShapeError, match=r"pad: f32\[2,3,4\]: negative padding .*"
                                               r"test_conv.py"):
        F.pad(x, (-1, 0))


def test_unfold_and_fold_layouts():
    """'knl' columns are (C*kh*kw, N, L): 'nkl's with the first two axes swapped; fold reads
    either, and an unknown layout is an error naming the op."""
    x = lucid.randn(2, 3, 5, 4)
    window = {"kernel": (2, 2), "stride": (1, 1), "padding": (1, 0), "dilation": (1, 1)}
    nkl = lucid.ops.unfold(x, **window).numpy()
    knl = lucid.ops.unfold(x, layout="knl", **window).numpy()
    np.testing.assert_array_equal(knl, nkl.transpose(1, 0, 2))
    back = lucid.ops.fold(lucid.tensor(knl), output_size=(5, 4), layout="knl", **window)
    want = lucid.ops.fold(lucid.tensor(nkl), output_size=(5, 4), **window)
    np.testing.assert_allclose(back.numpy(), want.numpy(), rtol=1e-6)
    with pytest.raises(lucid.ShapeError, match="unfold.*layout"):
        lucid.ops.unfold(x, layout="nlk", **window)
