"""The module cache: generated modules as real `.py` files, named by the hash of their text.

    $LUCID_JIT_CACHE_DIR (default: $XDG_CACHE_HOME/lucid_jit or ~/.cache/lucid_jit)
      <key>/                   key: lucid_jit's codegen version, numba, llvmlite, numpy, python, CPU
        m_<sha256 of text>.py  one compiled graph
        __pycache__/           numba's cache (cache=True): the machine code, reloaded by the next
                               process instead of compiled

A module is imported under a name registered in `sys.modules` (numba's cache finds functions again
by module and qualified name). In one process a text is loaded once: a second graph with the same
text (the same computation at another batch size) gets the same module, compiled already. A file
whose text does not match its name is rewritten; numba's files for it are dropped when they fail
to load (see `purge`), so a corrupt entry is rebuilt, never trusted.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
import shutil
import sys
import threading
from pathlib import Path

CODEGEN_VERSION = "2"
_LOCK = threading.RLock()
_LOADED: dict[str, object] = {}  # text hash -> module


def cache_root() -> Path:
    env = os.environ.get("LUCID_JIT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lucid_jit"


def _cpu() -> str:
    try:
        import llvmlite.binding as llvm

        return f"{llvm.get_host_cpu_name()}:{llvm.get_host_cpu_features().flatten()}"
    except Exception:  # noqa: BLE001 (an llvmlite without these still caches, keyed by machine)
        return platform.machine()


def cache_key() -> str:
    import llvmlite
    import numba
    import numpy

    parts = (CODEGEN_VERSION, numba.__version__, llvmlite.__version__, numpy.__version__,
             platform.python_version(), _cpu())
    return "v" + CODEGEN_VERSION + "-" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def cache_dir() -> Path:
    return cache_root() / cache_key()


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def module_name(digest: str, prefix: str = "m") -> str:
    return f"lucid_jit_generated.{prefix}_{digest}"


_KERNEL_TEXTS: dict[str, str] = {}  # digest -> text, for kernels emitted in this process


def load(text: str, prefix: str = "m"):
    """The module for this text: loaded already, or from the cache directory (written first when
    missing or different). `prefix` is "m" for a graph's module, "k" for a kernel's."""
    digest = text_hash(text)
    with _LOCK:
        mod = _LOADED.get(digest)
        if mod is not None:
            return mod
        directory = cache_dir()
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{prefix}_{digest}.py"
        try:
            current = path.read_text()
        except (OSError, UnicodeDecodeError):
            current = None
        if current != text:
            if current is not None:  # corrupt or tampered: its numba files cannot be trusted
                _drop_numba_files(path)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(text)
            os.replace(tmp, path)
        mod = _import(f"{prefix}_{digest}", path)
        _LOADED[digest] = mod
        return mod


def register_kernels(texts: dict[str, str]) -> None:
    """Kernel module texts by digest, for `kernel(digest)` to load."""
    _KERNEL_TEXTS.update(texts)


def kernel(digest: str):
    """The njit kernel of the kernel module with this digest (what graph modules import)."""
    mod = _LOADED.get(digest)
    if mod is None:
        text = _KERNEL_TEXTS.get(digest)
        if text is None:  # a module run by itself, in a new process: the file is the source
            path = cache_dir() / f"k_{digest}.py"
            text = path.read_text()
            if text_hash(text) != digest:
                raise RuntimeError(f"lucid_jit: kernel file {path} does not match its name; "
                                   "clear the cache (lucid_jit.cache_clear())")
        mod = load(text, "k")
    return mod.kernel


def _import(stem: str, path: Path):
    name = f"lucid_jit_generated.{stem}"
    if "lucid_jit_generated" not in sys.modules:
        import types

        pkg = types.ModuleType("lucid_jit_generated")
        pkg.__path__ = []
        sys.modules["lucid_jit_generated"] = pkg
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[name]
        raise
    return mod


def purge(text: str, kernel_texts=()):
    """Forget a graph module (and its kernels) whose compiled code failed to load: drop numba's
    files and the modules, then load them again from their text (numba compiles afresh)."""
    with _LOCK:
        for t, prefix in [(text, "m")] + [(k, "k") for k in kernel_texts]:
            digest = text_hash(t)
            _LOADED.pop(digest, None)
            sys.modules.pop(module_name(digest, prefix), None)
            _drop_numba_files(cache_dir() / f"{prefix}_{digest}.py")
    return load(text)


def native_cached(text: str) -> bool:
    """Whether numba's cache holds compiled segments of this graph module (a second process)."""
    pycache = cache_dir() / "__pycache__"
    return any(pycache.glob(f"m_{text_hash(text)}.native_segment*.nbi"))


def _drop_numba_files(path: Path) -> None:
    pycache = path.parent / "__pycache__"
    if pycache.is_dir():
        for f in pycache.glob(f"{path.stem}.*"):
            f.unlink(missing_ok=True)


def loaded_modules() -> list:
    return list(_LOADED.values())


def info() -> dict:
    """What `lucid_jit.cache_info()` reports."""
    directory = cache_dir()
    files = list(directory.glob("[mk]_*.py")) if directory.is_dir() else []
    numba_files = list((directory / "__pycache__").glob("*")) if directory.is_dir() else []
    size = sum(f.stat().st_size for f in files + numba_files if f.exists())
    compiled = hits = 0
    for mod in loaded_modules():
        for obj in vars(mod).values():
            stats = getattr(obj, "stats", None)
            if stats is not None and hasattr(stats, "cache_misses"):
                compiled += sum(stats.cache_misses.values())
                hits += sum(stats.cache_hits.values())
    return {"dir": str(directory),
            "graphs_on_disk": sum(f.name.startswith("m_") for f in files),
            "kernels_on_disk": sum(f.name.startswith("k_") for f in files),
            "numba_files": len(numba_files),
            "bytes": size, "modules_loaded": len(_LOADED), "numba_compiles": compiled,
            "numba_cache_hits": hits}


def clear() -> None:
    """Remove every cached module (all versions) and forget the loaded ones."""
    with _LOCK:
        for digest in list(_LOADED):
            sys.modules.pop(module_name(digest), None)
            sys.modules.pop(module_name(digest, "k"), None)
        _LOADED.clear()
        root = cache_root()
        if root.is_dir():
            for child in root.iterdir():
                if child.is_dir() and child.name.startswith("v"):
                    shutil.rmtree(child, ignore_errors=True)
