"""lucid's random numbers: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as
1, 2, 3", SC'11), a counter-based generator. Eager code runs the NumPy version here; compiled
code runs the same arithmetic as kernel text (`lucid_jit/codegen/elementops.py`) on the CPU and
on CUDA devices, so a seed gives the same numbers everywhere.

The generator's state is a 64-bit key (the seed) and a 64-bit counter. A draw of n elements
takes `blocks(...)` consecutive counter values c; block b's four 32-bit words are Philox4x32-10
of the counter words (low half of c + b, high half, 0, 0) under the key words (low, high). A
block gives its elements in order:

- uniform float32: 4 elements, word w -> (w >> 8) * 2**-24, in [0, 1);
- uniform float64: 2 elements, words (w0, w1) and (w2, w3) -> ((hi >> 5) * 2**26 + (lo >> 6))
  * 2**-53, in [0, 1);
- normal float32: 4 elements, Box-Muller on the 24-bit uniforms of (w0, w1) and (w2, w3):
  u1 = (w0 >> 8) + 1 (so in (0, 1]), u2 = w1 >> 8, r = sqrt(-2 log u1), then r cos(2 pi u2),
  r sin(2 pi u2); float64: 2 elements, the same on the 53-bit uniforms of (w0, w1), (w2, w3);
- randint: 2 elements, the 64-bit words (w0 << 32 | w1) and (w2 << 32 | w3) modulo the span
  high - low, plus low.

Uniforms become low + (high - low) * u and normals mean + std * z in float64, rounded once to
the dtype. Each element depends only on (key, counter, its index), so a kernel computes any
element on its own, in any order, on any number of threads.
"""

from __future__ import annotations

import math
import os
import threading

import numpy as np

ROUNDS = 10
MULTIPLIERS = (0xD2511F53, 0xCD9E8D57)
WEYL = (0x9E3779B9, 0xBB67AE85)  # the key's increments between rounds
MASK = 0xFFFFFFFF
TWO_PI = 2.0 * math.pi

_CHUNK = 1 << 16  # blocks per NumPy pass (keeps the temporaries in cache)


def per_block(op: str, dtype) -> int:
    """Elements per counter value for a draw of `op` ("uniform", "normal", "randint")."""
    if op == "randint":
        return 2
    return 4 if np.dtype(dtype).itemsize == 4 else 2


def blocks(op: str, dtype, n: int) -> int:
    """Counter values a draw of n elements takes."""
    per = per_block(op, dtype)
    return -(-int(n) // per)


def philox(c0, c1, c2, c3, k0, k1):
    """The four 32-bit output words of Philox4x32-10 for counter words c0..c3 and key words k0,
    k1 (uint64 arrays or scalars, each holding a 32-bit value)."""
    m, s = np.uint64(MASK), np.uint64(32)
    m0, m1 = np.uint64(MULTIPLIERS[0]), np.uint64(MULTIPLIERS[1])
    w0, w1 = np.uint64(WEYL[0]), np.uint64(WEYL[1])
    k0, k1 = np.uint64(k0), np.uint64(k1)
    for r in range(ROUNDS):
        if r:
            k0, k1 = (k0 + w0) & m, (k1 + w1) & m
        p0, p1 = c0 * m0, c2 * m1
        c0, c1, c2, c3 = (p1 >> s) ^ c1 ^ k0, p1 & m, (p0 >> s) ^ c3 ^ k1, p0 & m
    return c0, c1, c2, c3


def _words(key: int, counter: int, nblocks: int):
    """The (nblocks, 4) uint64 words of blocks counter, counter + 1, ..."""
    c = np.arange(nblocks, dtype=np.uint64) + np.uint64(counter)
    zero = np.zeros(nblocks, np.uint64)
    ws = philox(c & np.uint64(MASK), c >> np.uint64(32), zero, zero.copy(),
                key & MASK, key >> 32)
    return np.stack(ws, axis=1)


def _u24(w, plus: int = 0):
    return ((w >> np.uint64(8)) + np.uint64(plus)).astype(np.float64) * 2.0 ** -24


def _u53(hi, lo, plus: int = 0):
    return (((hi >> np.uint64(5)) << np.uint64(26)) + (lo >> np.uint64(6))
            + np.uint64(plus)).astype(np.float64) * 2.0 ** -53


def _box_muller(u1, u2):
    r = np.sqrt(-2.0 * np.log(u1))
    t = TWO_PI * u2
    return r * np.cos(t), r * np.sin(t)


def _elements(op: str, dtype, w: np.ndarray, attrs) -> np.ndarray:
    """A chunk's elements, in order, from its blocks' words w (nblocks, 4)."""
    single = np.dtype(dtype).itemsize == 4
    if op == "randint":
        span = np.uint64(attrs["high"] - attrs["low"])
        x = (w[:, 0::2] << np.uint64(32)) | w[:, 1::2]
        return ((x % span).astype(np.int64) + attrs["low"]).reshape(-1)
    if op == "uniform":
        u = _u24(w) if single else _u53(w[:, 0::2], w[:, 1::2])
        return (attrs["low"] + (attrs["high"] - attrs["low"]) * u).reshape(-1)
    if single:  # normal
        z = np.empty((len(w), 4))
        z[:, 0::2], z[:, 1::2] = _box_muller(_u24(w[:, 0::2], 1), _u24(w[:, 1::2]))
    else:
        z = np.empty((len(w), 2))
        z[:, 0], z[:, 1] = _box_muller(_u53(w[:, 0], w[:, 1], 1), _u53(w[:, 2], w[:, 3]))
    return (attrs["mean"] + attrs["std"] * z).reshape(-1)


def draw(op: str, shape, dtype, key: int, counter: int, **attrs) -> np.ndarray:
    """The n = prod(shape) elements of a draw starting at `counter`, as an array of dtype."""
    n = math.prod(shape)
    result = np.empty(shape, dtype)
    out = result.reshape(n)
    per = per_block(op, dtype)
    total = blocks(op, dtype, n)
    for start in range(0, total, _CHUNK):
        count = min(_CHUNK, total - start)
        values = _elements(op, dtype, _words(key, counter + start, count), attrs)
        lo = start * per
        hi = min(n, lo + count * per)
        out[lo:hi] = values[:hi - lo]
    return result


class Generator:
    """lucid's process-wide generator (like torch's default one): a key and a counter. Every
    draw takes its blocks from the counter (`take`), so draws never overlap and the numbers
    depend only on the seed and the order of the draws."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.key = int.from_bytes(os.urandom(8), "little")
        self.counter = 0
        self.initial_seed = self.key

    def seed(self, seed: int) -> None:
        with self._lock:
            self.key = int(seed) & (2 ** 64 - 1)
            self.counter = 0
            self.initial_seed = int(seed)

    def take(self, nblocks: int) -> tuple[int, int]:
        """(key, first counter) for a draw of nblocks; the counter moves past them."""
        with self._lock:
            start = self.counter
            self.counter = (start + int(nblocks)) & (2 ** 64 - 1)
            return self.key, start

    def get_state(self) -> np.ndarray:
        """The state: int64 [key, counter] (their 64-bit patterns)."""
        with self._lock:
            return np.array([self.key, self.counter], np.uint64).view(np.int64)

    def set_state(self, state) -> None:
        state = np.asarray(state)
        if state.dtype != np.int64 or state.shape != (2,):
            raise ValueError(f"set_rng_state: expected an int64 state of shape (2,) (from "
                             f"get_rng_state), got {state.dtype} {state.shape}")
        key, counter = (int(v) for v in state.view(np.uint64))
        with self._lock:
            self.key, self.counter = key, counter
