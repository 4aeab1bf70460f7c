"""The on-disk cache holds code, so what is planted in it must never run, and what it writes no one
else may change (lucid_jit/codegen/loader.py, numba_cache.py). Each probe runs fresh processes on
a cache directory of its own, as a user's programs would."""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import lucid
import lucid_jit
from lucid_jit.codegen import loader

ROOT = Path(__file__).resolve().parents[2]

# Compiles a small graph (its kernels and, on the third call, its native tier) and checks it.
# READ_ONLY=1: every file the cache would create fails as in a directory it cannot write.
_SCRIPT = textwrap.dedent("""
    import json, os, sys, tempfile, warnings
    if os.environ.get("UMASK"):
        os.umask(int(os.environ["UMASK"], 8))
    if os.environ.get("READ_ONLY"):
        cache = os.path.realpath(os.environ["LUCID_JIT_CACHE_DIR"])
        real_mkstemp = tempfile.mkstemp
        def mkstemp(*args, dir=None, **kwargs):
            if dir is not None and os.path.realpath(dir).startswith(cache):
                raise PermissionError(13, "Permission denied", dir)
            return real_mkstemp(*args, dir=dir, **kwargs)
        tempfile.mkstemp = mkstemp
    warnings.simplefilter("always")
    import numpy as np
    import lucid, lucid_jit
    lucid.manual_seed(0)
    w = lucid.randn(6, 4)
    def f(x):
        return (x @ w).tanh().sum(dim=0)
    compiled = lucid.compile(f)
    x = lucid.randn(5, 6)
    with warnings.catch_warnings(record=True) as caught:
        for _ in range(4):
            out = compiled(x)
        g = lucid.compile(lambda x: (x * 3.0).sigmoid())
        for _ in range(4):
            g(x)
    np.testing.assert_allclose(out.numpy(), f(x).numpy(), rtol=1e-5, atol=1e-6)
    info = lucid_jit.cache_info()
    info["warnings"] = [str(w.message) for w in caught if "lucid_jit" in str(w.message)]
    print(json.dumps(info))
""")


def _run(cache: Path, **env) -> dict:
    env = dict(os.environ, LUCID_JIT_CACHE_DIR=str(cache), LUCID_JIT_NATIVE_AFTER="3", **env)
    done = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _key_dir(cache: Path) -> Path:
    (directory,) = [d for d in cache.iterdir() if d.name.startswith("v")]
    return directory


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_planted_bytecode_and_numba_files_never_run(tmp_path):
    cache = tmp_path / "cache"
    first = _run(cache)
    assert first["numba_compiles"] > 0 and first["warnings"] == []
    directory = _key_dir(cache)
    marker = tmp_path / "ran"
    modules = sorted(directory.glob("[mk]_*.py"))
    assert modules
    for module in modules:
        # bytecode whose header matches the module's file, as the import system would use it
        code = compile(f"open({str(marker)!r}, 'w').close()\n", str(module), "exec")
        st = module.stat()
        pyc = importlib.util.cache_from_source(str(module))
        Path(pyc).parent.mkdir(exist_ok=True)
        Path(pyc).write_bytes(importlib._bootstrap_external._code_to_timestamp_pyc(
            code, int(st.st_mtime), st.st_size))
    import numba

    planted = pickle.dumps(numba.__version__) + pickle.dumps(_Payload(marker))
    numba_files = [f for f in (directory / "__pycache__").glob("*.nb[ic]")]
    assert numba_files
    for f in numba_files:  # numba's own format, and ours with a forged tag
        f.write_bytes(planted if f.suffix == ".nbi" else b"LJITNB1\n" + bytes(32) + planted)
    second = _run(cache)
    assert not marker.exists(), "planted code ran"
    assert second["numba_compiles"] > 0  # nothing planted was loaded: compiled again
    third = _run(cache)  # and the rewritten files are used again
    assert third["numba_compiles"] == 0 and third["numba_cache_hits"] > 0
    assert not marker.exists()


def test_a_planted_symlink_is_replaced_not_followed(tmp_path):
    cache = tmp_path / "cache"
    _run(cache)
    directory = _key_dir(cache)
    victim = tmp_path / "victim.txt"
    victim.write_text("the victim's data")
    module = sorted(directory.glob("m_*.py"))[0]
    module.unlink()
    module.symlink_to(victim)
    _run(cache)
    assert victim.read_text() == "the victim's data"
    assert not module.is_symlink()
    assert loader.text_hash(module.read_text()) == module.stem[2:]


def test_nothing_the_cache_creates_is_writable_by_others_whatever_the_umask(tmp_path):
    cache = tmp_path / "cache"
    info = _run(cache, UMASK="000")
    assert info["numba_compiles"] > 0
    made = [cache, *cache.rglob("*")]
    assert len(made) > 5
    for path in made:
        mode = path.lstat().st_mode
        assert not mode & (stat.S_IWGRP | stat.S_IWOTH), f"{path} is {stat.filemode(mode)}"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert stat.S_IMODE((cache / "key").stat().st_mode) == 0o600


@pytest.mark.parametrize("how", ["world-writable", "owned by another user"])
def test_a_cache_directory_others_control_is_refused(tmp_path, how):
    cache = tmp_path / "shared"
    cache.mkdir()
    if how == "world-writable":
        cache.chmod(0o777)
    elif os.geteuid() == 0:
        os.chown(cache, 65534, 65534)
        cache.chmod(0o755)
    else:
        pytest.skip("needs root to make a directory another user owns")
    info = _run(cache)
    assert len(info["warnings"]) == 1 and "not private to you" in info["warnings"][0]
    assert not info["dir"].startswith(str(cache)) and info["private_fallback"]
    assert list(cache.iterdir()) == []  # nothing written there


def test_an_unusable_cache_directory_falls_back_with_one_warning(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    info = _run(blocker / "cache")
    assert len(info["warnings"]) == 1 and "cannot be created" in info["warnings"][0]
    assert info["numba_compiles"] > 0 and info["private_fallback"]


def test_a_read_only_cache_is_read_without_compiling(tmp_path):
    cache = tmp_path / "cache"
    first = _run(cache)
    files = sorted(str(p) for p in cache.rglob("*"))
    second = _run(cache, READ_ONLY="1")
    assert second["numba_compiles"] == 0 and second["numba_cache_hits"] > 0
    assert len(second["warnings"]) == 1 and "cannot be written" in second["warnings"][0]
    assert second["dir"] == first["dir"] and second["private_fallback"]
    assert second["graphs_on_disk"] >= first["graphs_on_disk"]
    assert sorted(str(p) for p in cache.rglob("*")) == files  # (nothing was written)


def test_cache_clear_deletes_only_what_the_cache_made(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("LUCID_JIT_CACHE_DIR", str(cache))
    lucid.compile(lambda x: (x.cos() * 2.5 - x).abs())(lucid.randn(3))
    ours = [d for d in cache.iterdir() if d.is_dir()]
    assert ours
    others = {}
    for name in ("vlc", "venv_project", "v9-0123456789abcdef"):
        (cache / name).mkdir()
        (cache / name / "data.txt").write_text(name)
        others[name] = cache / name / "data.txt"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("keep")
    (cache / "v3-fedcba9876543210").symlink_to(elsewhere)
    lucid_jit.cache_clear()
    assert not any(d.exists() for d in ours)
    for name, f in others.items():
        assert f.read_text() == name
    assert (elsewhere / "keep.txt").read_text() == "keep"
    assert lucid_jit.cache_info()["graphs_on_disk"] == 0


def _race_for_key(root: str, barrier, out) -> None:
    barrier.wait()
    key = loader._read_key(Path(root), True)
    out.put(key.hex() if key else None)


def test_processes_racing_to_make_the_signing_key_all_read_the_same_whole_key(tmp_path):
    # A key file is never seen half written: each racer gets the one key, none falls back.
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    for round_ in range(15):
        root = tmp_path / f"r{round_}"
        root.mkdir(mode=0o700)
        barrier, out = ctx.Barrier(4), ctx.Queue()
        racers = [ctx.Process(target=_race_for_key, args=(str(root), barrier, out))
                  for _ in range(4)]
        for p in racers:
            p.start()
        keys = [out.get(timeout=60) for _ in racers]
        for p in racers:
            p.join(60)
        assert None not in keys and len(set(keys)) == 1, keys
        assert (root / "key").read_bytes().hex() == keys[0]
        assert [p.name for p in root.iterdir()] == ["key"]  # no temporary file left
