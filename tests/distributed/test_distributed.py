"""lucid.distributed under mpiexec: each test runs checks of mpi_checks.py in a job of 2 or 3
processes on this machine, bounded in time (a hang fails the test instead of the run)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MPIEXEC = Path(sys.executable).parent / "mpiexec"
TIMEOUT_S = 420


def _job(n: int, *checks: str, timeout_s: float = 300, **env) -> subprocess.CompletedProcess:
    assert MPIEXEC.exists(), "mpiexec is missing: make test installs lucid-jit[distributed]"
    environ = dict(os.environ, LUCID_DISTRIBUTED_TIMEOUT=str(timeout_s), **env)
    try:
        return subprocess.run([str(MPIEXEC), "-n", str(n), sys.executable, "-m",
                               "tests.distributed.mpi_checks", *checks],
                              cwd=ROOT, env=environ, capture_output=True, text=True,
                              timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"mpiexec -n {n} {' '.join(checks)} ran past {TIMEOUT_S} s:\n"
                             f"{exc.stdout}\n{exc.stderr}") from None


def _passes(n: int, *checks: str) -> None:
    done = _job(n, *checks)
    assert done.returncode == 0, f"rc {done.returncode}\n{done.stdout}\n{done.stderr[-6000:]}"
    assert done.stdout.split() == [w for c in checks for w in ("ok", c)], done.stdout


@pytest.mark.parametrize("n", [2, 3])
def test_collectives_against_numpy_their_gradients_and_compiled(n):
    _passes(n, "values", "gradients", "compiled", "inplace_api", "mismatch")


@pytest.mark.parametrize("n", [2, 3])
def test_ddp_matches_one_process_on_the_whole_batch(n):
    _passes(n, "ddp", "no_sync")


def test_ddp_buffers_checkpoints_and_sampler():
    _passes(2, "buffers_and_save")


def test_collectives_and_ddp_on_device_tensors():
    """(on numba's CUDA simulator; the same code runs on a GPU)"""
    done = _job(2, "cuda", NUMBA_ENABLE_CUDASIM="1")
    assert done.returncode == 0, f"rc {done.returncode}\n{done.stdout}\n{done.stderr[-6000:]}"
    assert done.stdout.split() == ["ok", "cuda"], done.stdout


def test_a_failing_rank_aborts_the_job_naming_itself():
    done = _job(2, "fail")
    assert done.returncode != 0
    assert "rank 1 of 2: failed with ValueError: planted failure at step 3" in done.stderr, \
        done.stderr


def test_a_rank_that_leaves_ends_the_job_after_the_timeout():
    done = _job(2, "leave", timeout_s=3)
    assert done.returncode != 0
    assert "rank 0 of 2: all_reduce" in done.stderr and "waited more than 3 s" in done.stderr, \
        done.stderr


def test_the_ddp_example_trains_with_two_ranks(tmp_path):
    ckpt = tmp_path / "model.pt"
    done = subprocess.run([str(MPIEXEC), "-n", "2", sys.executable, "examples/train_ddp.py",
                           "--epochs", "3", "--checkpoint", str(ckpt)], cwd=ROOT,
                          env=dict(os.environ, LUCID_DISTRIBUTED_TIMEOUT="60"),
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-4000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("2 rank(s)") and len(lines) == 6, done.stdout  # rank 0 only
    losses = [float(ln.split()[-1]) for ln in lines if ln.startswith("epoch")]
    assert losses[-1] < losses[0]
    accuracy = float(lines[4].split()[2])
    assert accuracy > 0.8, done.stdout
    import lucid

    state = lucid.load(ckpt)
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
