"""The steady-state call: the fast path (the entry that ran last is tried first, its guard
deciding), and the memory plan (intermediates in a per-program arena, reused every call)."""

from __future__ import annotations

import threading

import numpy as np

import lucid
import lucid.nn.functional as F  # noqa: N812


def _f(x, w):
    h = (x @ w).tanh()
    return (h * 2.0 + 1.0).sum(dim=1).relu()


def _eager(x, w):
    return _f(x, w).numpy()


def test_fast_path_follows_shapes_grad_mode_and_aliasing():
    compiled = lucid.compile(lambda a, b: a * 2.0 + b)
    x, y = lucid.randn(3), lucid.randn(3)
    for _ in range(3):
        np.testing.assert_allclose(compiled(x, y).numpy(), x.numpy() * 2 + y.numpy(), rtol=1e-6)
    # another shape: the last entry's guard fails, the cache finds or makes the right one
    u, v = lucid.randn(5), lucid.randn(5)
    np.testing.assert_allclose(compiled(u, v).numpy(), u.numpy() * 2 + v.numpy(), rtol=1e-6)
    np.testing.assert_allclose(compiled(x, y).numpy(), x.numpy() * 2 + y.numpy(), rtol=1e-6)
    # the same tensor twice, then two again
    np.testing.assert_allclose(compiled(x, x).numpy(), x.numpy() * 3, rtol=1e-6)
    np.testing.assert_allclose(compiled(x, y).numpy(), x.numpy() * 2 + y.numpy(), rtol=1e-6)
    # grad mode is part of the key
    w = lucid.randn(3, requires_grad=True)
    assert compiled(w, y).requires_grad
    with lucid.no_grad():
        assert not compiled(w, y).requires_grad
    assert compiled(w, y).requires_grad
    # a tensor's data replaced between calls: the guard sees the new array
    x.data = np.full(3, 4.0, np.float32)
    np.testing.assert_allclose(compiled(x, y).numpy(), 8.0 + y.numpy(), rtol=1e-6)


def test_intermediates_live_in_the_arena_and_calls_reuse_it():
    x, w = lucid.randn(16, 8), lucid.randn(8, 32)
    compiled = lucid.compile(_f)
    for _ in range(4):
        np.testing.assert_allclose(compiled(x, w).numpy(), _eager(x, w), rtol=1e-5, atol=1e-6)
    entry = compiled.last_entry
    prog = entry.backend.program(entry.forward)
    assert prog.tier == "native"
    assert prog.emitted.arena_bytes > 0 and "in the arena" in prog.text
    (arena,) = prog._arenas
    before = arena.ctypes.data
    compiled(x, w)
    assert prog._arenas[0].ctypes.data == before  # the same bytes, not a new allocation


def test_concurrent_calls_get_arenas_of_their_own():
    compiled = lucid.compile(_f)
    w = lucid.randn(8, 32)
    xs = [lucid.randn(64, 8) for _ in range(4)]
    for x in xs:
        compiled(x, w)
        compiled(x, w)
    want = [_eager(x, w) for x in xs]
    errors = []

    def worker(k):
        try:
            for _ in range(50):
                np.testing.assert_allclose(compiled(xs[k], w).numpy(), want[k], rtol=1e-5,
                                           atol=1e-6)
        except AssertionError as exc:  # (reported by the main thread)
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_training_step_with_the_arena_matches_eager():
    lucid.manual_seed(3)
    x, t = lucid.randn(32, 20), lucid.randint(0, 5, (32,))

    def make():
        lucid.manual_seed(4)
        w1, w2 = lucid.randn(20, 64, requires_grad=True), lucid.randn(64, 5, requires_grad=True)
        opt = lucid.optim.SGD([w1, w2], lr=0.1, momentum=0.9)

        def step(x, t):
            loss = F.cross_entropy((x @ w1).relu() @ w2, t)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss
        return step, (w1, w2)

    (eager, we), (step, wc) = make(), make()
    compiled = lucid.compile(step)
    for _ in range(6):
        np.testing.assert_allclose(compiled(x, t).item(), eager(x, t).item(), rtol=1e-5)
    for a, b in zip(wc, we, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)
