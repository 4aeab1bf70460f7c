"""What lucid changes in its process: no environment variable another library would read, and
SciPy's BLAS loaded with short-spinning threads without leaving the setting behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys

_PROBE = r"""
import json, os, sys
before = dict(os.environ)
import lucid, lucid_jit
after_import = dict(os.environ)
step = lucid.compile(lambda x: (x @ x.T).relu().sum())
step(lucid.randn(8, 8)); step(lucid.randn(8, 8))
changed = {k: os.environ.get(k) for k in set(before) | set(os.environ)
           if before.get(k) != os.environ.get(k)}
print(json.dumps({"import": after_import == before, "changed": changed,
                  "blas": "scipy.linalg.cython_blas" in sys.modules}))
"""


def _probe(**env) -> dict:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT")}
    environ.update(env)
    out = subprocess.run([sys.executable, "-c", _PROBE], env=environ, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_and_compiling_leave_the_environment_as_it_was():
    result = _probe()
    assert result["import"]
    assert result["changed"] == {}  # no OMP_WAIT_POLICY, no OPENBLAS_THREAD_TIMEOUT left behind
    assert result["blas"]


def test_load_blas_sets_the_timeout_for_that_load_only(monkeypatch):
    from lucid_jit.codegen.cpu import process

    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    seen = {}

    class Finder:  # records the environment while SciPy's BLAS module is imported
        def find_spec(self, name, path=None, target=None):
            if name == process.BLAS_MODULE:
                seen["timeout"] = os.environ.get("OPENBLAS_THREAD_TIMEOUT")
            return None

    monkeypatch.delitem(sys.modules, process.BLAS_MODULE, raising=False)
    monkeypatch.setattr(sys, "meta_path", [Finder(), *sys.meta_path])
    assert process.load_blas()
    assert seen == {"timeout": "4"}
    assert "OPENBLAS_THREAD_TIMEOUT" not in os.environ
    assert not process.load_blas()  # loaded already: nothing to do


def test_a_users_setting_wins(monkeypatch):
    from lucid_jit.codegen.cpu import process

    monkeypatch.delitem(sys.modules, process.BLAS_MODULE, raising=False)
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "10")
    assert not process.load_blas()
    assert os.environ["OPENBLAS_THREAD_TIMEOUT"] == "10"
