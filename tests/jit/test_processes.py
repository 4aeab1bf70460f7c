"""Compiled functions across processes and threads: a forked child (a data-loading worker) calls a
function whose parallel loops already ran in the parent; spawned workers compile their own; four
threads call one cold function at once and it is traced once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np

import lucid

ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = textwrap.dedent("""
    import multiprocessing as mp, os, sys
    import numpy as np
    import lucid

    def f(x):
        return x.exp() * 0.5 + x.tanh()  # elementwise: parallel loops at this size

    compiled = lucid.compile(f)

    def work(seed):
        lucid.manual_seed(seed)
        x = lucid.randn(1 << 19)  # large enough for the parallel loops
        return np.allclose(compiled(x).numpy(), f(x).numpy(), rtol=1e-5, atol=1e-6)

    if __name__ == "__main__":
        method = sys.argv[1]
        x = lucid.randn(1 << 19)
        for _ in range(4):  # to the native tier: its parallel loops have run in this process
            compiled(x)
        program = compiled.last_entry.backend.program(compiled.last_entry.forward)
        assert program.tier == "native" and "prange" in program.text
        if method == "fork":
            pid = os.fork()
            if pid == 0:
                try:
                    os._exit(0 if work(1) else 3)
                except BaseException:
                    os._exit(4)
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0, status
        with mp.get_context(method).Pool(2) as pool:
            assert all(pool.map_async(work, range(4)).get(timeout=240))
        assert work(5)  # and the parent still runs it
        print("ok")
""")


def _run(method: str, tmp_path: Path) -> None:
    script = tmp_path / "workers.py"  # (spawned workers import their functions from a file)
    script.write_text(_SCRIPT)
    done = subprocess.run([sys.executable, str(script), method], capture_output=True,
                          text=True, cwd=ROOT, timeout=420,
                          env=dict(os.environ, LUCID_JIT_NATIVE_AFTER="3",
                                   PYTHONPATH=str(ROOT)))
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


def test_a_forked_child_and_a_fork_pool_run_a_function_whose_parallel_loops_ran(tmp_path):
    _run("fork", tmp_path)


def test_spawned_workers_run_compiled_functions(tmp_path):
    _run("spawn", tmp_path)


def test_four_threads_calling_a_cold_function_trace_it_once():
    def f(x, w):
        return ((x @ w).relu() * 1.5 - 0.25).sum(dim=1)

    compiled = lucid.compile(f)
    w = lucid.randn(8, 5)
    xs = [lucid.randn(6, 8) for _ in range(4)]
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def call(i: int) -> None:
        try:
            start.wait()
            for _ in range(3):
                results[i] = compiled(xs[i], w).numpy()
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert len(compiled.entries) == 1, compiled.recompiles
    for i, x in enumerate(xs):
        np.testing.assert_allclose(results[i], f(x, w).numpy(), rtol=1e-5, atol=1e-6)
