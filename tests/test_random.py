"""lucid's random numbers (lucid/ops/philox.py): Philox4x32-10 against its published known-answer
vectors, the generator's state (seed, get/set, draws that never overlap), and the distributions
of rand, randn and randint in both float dtypes. Compiled draws are checked against these eager
ones in tests/jit/test_random_compiled.py and on the CUDA simulator in tests/cuda."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lucid
from lucid.ops import philox

U = np.uint64


@pytest.mark.parametrize("counter, key, want", [
    # Random123's kat_vectors for philox4x32_10
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
])
def test_philox_known_answers(counter, key, want):
    got = philox.philox(*(U(c) for c in counter), *key)
    assert tuple(int(w) for w in got) == want
    # the array form gives the same words per element
    arrays = [np.full(3, c, np.uint64) for c in counter]
    for w, k in zip(philox.philox(*arrays, *key), want, strict=True):
        assert (w == k).all()


def test_a_seed_gives_the_same_numbers_and_draws_continue_the_stream():
    lucid.manual_seed(7)
    a = lucid.rand(3, 8).numpy()
    b = lucid.rand(8).numpy()
    lucid.manual_seed(7)
    both = lucid.rand(32).numpy()  # 4 float32 per block: the two draws are its two parts
    np.testing.assert_array_equal(np.concatenate([a.reshape(-1), b]), both)
    lucid.manual_seed(8)
    assert not np.array_equal(lucid.rand(32).numpy(), both)
    assert lucid.initial_seed() == 8


def test_draws_never_share_a_block():
    """A draw whose size is not a multiple of a block's elements leaves the rest of its last
    block unused: the next draw starts at a new counter."""
    lucid.manual_seed(3)
    a = lucid.rand(5).numpy()
    b = lucid.rand(3).numpy()
    lucid.manual_seed(3)
    c = lucid.rand(12).numpy()
    np.testing.assert_array_equal(a, c[:5])
    np.testing.assert_array_equal(b, c[8:11])


def test_rng_state_round_trips():
    lucid.manual_seed(11)
    lucid.randn(5)
    state = lucid.get_rng_state()
    assert state.dtype == lucid.int64 and tuple(state.shape) == (2,)
    first = lucid.randn(6).numpy()
    lucid.set_rng_state(state)
    np.testing.assert_array_equal(lucid.randn(6).numpy(), first)
    with pytest.raises(ValueError, match="set_rng_state"):
        lucid.set_rng_state(np.zeros(3, np.int64))


@pytest.mark.parametrize("dtype", [lucid.float32, lucid.float64])
def test_uniform_is_uniform(dtype):
    lucid.manual_seed(1)
    u = lucid.rand(1 << 16, dtype=dtype).numpy()
    assert u.dtype == dtype and u.min() >= 0.0 and u.max() < 1.0
    counts = np.bincount((u * 64).astype(np.int64), minlength=64)
    expected = u.size / 64
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 120, chi2  # 63 degrees of freedom: p ~ 1e-5
    # neighbours are independent (the elements of one block, too)
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.02
    if dtype == lucid.float64:  # 53-bit resolution: values are not all multiples of 2**-24
        assert np.any((u * 2.0 ** 24) % 1.0 != 0.0)


@pytest.mark.parametrize("dtype", [lucid.float32, lucid.float64])
def test_normal_moments(dtype):
    lucid.manual_seed(2)
    z = lucid.randn(1 << 16, dtype=dtype).numpy()
    assert z.dtype == dtype and np.isfinite(z).all()
    n = z.size
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.var() - 1.0) < 5 * math.sqrt(2 / n)
    assert abs((z ** 3).mean()) < 5 * math.sqrt(15 / n)  # skew 0
    assert abs((z ** 4).mean() - 3.0) < 5 * math.sqrt(96 / n)  # kurtosis 3
    assert abs(np.corrcoef(z[0::2], z[1::2])[0, 1]) < 0.03  # Box-Muller's cos and sin pair


def test_randint_covers_its_range_evenly():
    lucid.manual_seed(4)
    r = lucid.randint(-3, 4, (7000,)).numpy()
    assert r.dtype == np.int64 and r.min() == -3 and r.max() == 3
    counts = np.bincount(r + 3, minlength=7)
    assert ((counts - 1000) ** 2 / 1000).sum() < 30  # 6 degrees of freedom
    f = lucid.randint(0, 2, (3, 4), dtype=lucid.float32)
    assert f.dtype == lucid.float32 and set(np.unique(f.numpy())) <= {0.0, 1.0}
    assert lucid.randint(5, size=(4,)).numpy().max() < 5
    big = lucid.randint(0, 2 ** 40, (1000,)).numpy()
    assert big.max() > 2 ** 39


def test_randint_errors_name_the_op():
    with pytest.raises(ValueError, match="randint.*low < high"):
        lucid.randint(3, 3, (2,))
    with pytest.raises(TypeError, match="randint.*integer dtype"):
        lucid.ops.randint(shape=(2,), low=0, high=3, dtype=lucid.float32)
