"""The module cache: generated modules as real `.py` files, named by the hash of their text.

    $LUCID_JIT_CACHE_DIR (default: $XDG_CACHE_HOME/lucid_jit or ~/.cache/lucid_jit)   0700
      key                      the secret key that signs numba's files (0600)
      <key>/                   key: lucid_jit's codegen version, numba, llvmlite, numpy, python,
                               CPU; marked as this cache's by a `.lucid_jit` file
        m_<sha256 of text>.py  one compiled graph (k_: a kernel shared by graphs, c_: CUDA)
        __pycache__/           numba's cache (numba_cache.py): signed index and data files

A module is imported under a name registered in `sys.modules` (numba's cache finds functions again
by module and qualified name), and it runs the text lucid_jit generated, never what the file or a
bytecode cache holds: the file is read back only to compare it with that text (a file that differs
is rewritten, and numba's files for it dropped). In one process a text is loaded once: a second
graph with the same text (the same computation at another batch size) gets the same module,
compiled already.

The cache is code, so only its user may write it. The root must be a directory owned by the user
and writable by no one else; it and what lucid_jit creates in it are made 0700 (files 0600),
whatever the umask. A root that fails the check is not used: one warning, and the process caches
in a private temporary directory (removed at exit). A root that cannot be written is read (a
populated read-only cache); new modules go to the private directory. Files are written under a
fresh exclusive name and renamed into place; `clear()` deletes only directories the cache made.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import platform
import re
import secrets
import shutil
import stat
import sys
import tempfile
import threading
import types
import warnings
from dataclasses import dataclass
from pathlib import Path

CODEGEN_VERSION = "3"
_LOCK = threading.RLock()
_LOADED: dict[str, object] = {}  # text hash -> module
# (LUCID_JIT_CACHE_DIR, text hash) of graph modules whose native tier was found complete in
# numba's cache (it stays so: only purge and clear remove numba's files, and they forget it).
_NATIVE_CACHED: set[tuple] = set()
_MARKER = ".lucid_jit"  # in each directory the cache made
_KEY_DIR = re.compile(r"^v\d+-[0-9a-f]{16}$")


def cache_root() -> Path:
    """The configured root (LUCID_JIT_CACHE_DIR, else the user's cache directory)."""
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


# ----------------------------------------------------------------------------- where it lives


@dataclass
class _Place:
    """Where this process reads and writes modules for one configured root."""

    read: Path | None  # the key directory under the root, when it can be trusted
    write: Path | None  # where new modules go: `read` when writable, else the private directory
    key: bytes  # signs numba's files
    note: str = ""  # why the root is not used as it is (the one warning)


_PLACES: dict[str, _Place] = {}
_PRIVATE: list[Path] = []  # this process's private directory, made on first need


def _private(st: os.stat_result) -> bool:
    """Owned by this user and writable by no one else."""
    return st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _writable(directory: Path) -> bool:
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".probe-")
    except OSError:
        return False
    os.close(fd)
    os.unlink(tmp)
    return True


def _make_dir(path: Path) -> None:
    """A directory the cache owns: 0700 whatever the umask, with its marker."""
    path.mkdir(mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    (path / _MARKER).touch(mode=0o600)


def _private_dir() -> Path:
    if not _PRIVATE:
        path = Path(tempfile.mkdtemp(prefix="lucid_jit-"))  # 0700, this process's
        atexit.register(shutil.rmtree, path, True)
        _PRIVATE.append(path)
    key_dir = _PRIVATE[0] / cache_key()
    if not key_dir.is_dir():
        _make_dir(key_dir)
        _make_dir(key_dir / "__pycache__")
    return key_dir


def _read_key(root: Path, writable: bool) -> bytes | None:
    """The root's signing key: read (when it is the user's own, unreadable by others), or made."""
    path = root / "key"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        if not writable:
            return None
        # Written whole under a temporary name, then linked into place: a process that
        # opens `key` never sees it half written, and link never replaces another's key.
        key = secrets.token_bytes(32)
        try:
            fd, tmp = tempfile.mkstemp(dir=root, prefix=".key-")  # 0600, exclusive
        except OSError:
            return None
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(key)
            os.link(tmp, path)
        except FileExistsError:  # another process made it first
            return _read_key(root, False)
        except OSError:  # a file system without hard links: create it in place
            return _create_key(path, key)
        finally:
            os.unlink(tmp)
        return key
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        key = f.read()
    if st.st_uid != os.geteuid() or st.st_mode & 0o077 or len(key) != 32:
        return None
    return key


def _create_key(path: Path, key: bytes) -> bytes | None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return _read_key(path.parent, False)
    except OSError:
        return None
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


def _resolve(root: Path) -> _Place:
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.stat(root)
    except OSError as exc:
        return _Place(None, None, b"", f"cannot be created ({exc.strerror})")
    if not stat.S_ISDIR(st.st_mode):
        return _Place(None, None, b"", "is not a directory")
    configured = "LUCID_JIT_CACHE_DIR" in os.environ
    if not _private(st) and st.st_uid == os.geteuid() and not configured:
        os.chmod(root, 0o700)  # the default root, made by an earlier version under a loose umask
        st = os.stat(root)
    if not _private(st):
        return _Place(None, None, b"", "is not private to you (owned by another user, or "
                                        "writable by others): code cached there could be "
                                        "planted")
    writable = _writable(root)
    key = _read_key(root, writable)
    if key is None:
        return _Place(None, None, b"", "holds a signing key that is not private to you")
    key_dir = root / cache_key()
    try:
        if writable and not key_dir.exists():
            _make_dir(key_dir)
            _make_dir(key_dir / "__pycache__")
        kst = os.lstat(key_dir)
    except OSError:
        return _Place(None, None, key, "cannot be written" if not writable else
                      "cannot be used")
    if not stat.S_ISDIR(kst.st_mode) or kst.st_uid != os.geteuid():
        return _Place(None, None, key, f"holds a {key_dir.name} that is not yours")
    if not _private(kst) and writable:
        os.chmod(key_dir, 0o700)  # (its modules are checked, numba's files signed)
    if writable and _writable(key_dir):
        return _Place(key_dir, key_dir, key)
    return _Place(key_dir, None, key, "cannot be written (what is cached there is used)")


_PINNED: list[_Place] = []


def pin(directory: Path, key: bytes) -> None:
    """Use `directory` (a key directory another process chose) and its key for everything in
    this process: a compile worker writes where its parent reads."""
    _PINNED[:] = [_Place(directory, directory, key)]


def _place() -> _Place:
    if _PINNED:
        return _PINNED[0]
    root = cache_root()
    where = str(root)
    place = _PLACES.get(where)
    if place is None:
        with _LOCK:
            place = _PLACES.get(where) or _resolve(root)
            if place.note:
                warnings.warn(f"lucid_jit: the cache directory {root} {place.note}; compiled "
                              "code is cached in a private directory for this process only",
                              RuntimeWarning, stacklevel=4)
            if not place.key:
                place.key = secrets.token_bytes(32)
            _PLACES[where] = place
    return place


def cache_dir() -> Path:
    """Where new modules are written: the root's key directory, or this process's private one."""
    place = _place()
    return place.write if place.write is not None else _private_dir()


def secret_key() -> bytes:
    return _place().key


def _find(name: str) -> Path | None:
    """The file of a module (by file name) in the directories this process reads."""
    place = _place()
    for directory in (place.read, place.write, _PRIVATE[0] / cache_key() if _PRIVATE else None):
        if directory is not None and (directory / name).is_file():
            return directory / name
    return None


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def module_name(digest: str, prefix: str = "m") -> str:
    return f"lucid_jit_generated.{prefix}_{digest}"


_KERNEL_TEXTS: dict[str, str] = {}  # digest -> text, for kernels emitted in this process


def load(text: str, prefix: str = "m"):
    """The module for this text: loaded already, or imported from its file in the cache
    (written first when missing or different). `prefix` is "m" for a graph's module, "k" for a
    kernel's, "c" for a CUDA one."""
    digest = text_hash(text)
    with _LOCK:
        mod = _LOADED.get(digest)
        if mod is not None:
            return mod
        name = f"{prefix}_{digest}.py"
        path = _find(name)
        current = None
        if path is not None:
            try:
                current = path.read_text()
            except (OSError, UnicodeDecodeError):
                current = None
        if current != text:
            if path is not None:  # corrupt or tampered: its numba files cannot be trusted
                _drop_numba_files(path)
            if path is None or not os.access(path.parent, os.W_OK):
                path = cache_dir() / name
            write_atomic(path, text.encode())
        mod = _import(f"{prefix}_{digest}", path, text)
        _LOADED[digest] = mod
        return mod


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` as `path`: under a fresh exclusive name in its directory (0600; nothing
    planted is followed), then renamed over it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def register_kernels(texts: dict[str, str]) -> None:
    """Kernel module texts by digest, for `kernel(digest)` to load."""
    _KERNEL_TEXTS.update(texts)


def kernel(digest: str):
    """The njit kernel of the kernel module with this digest (what graph modules import)."""
    mod = _LOADED.get(digest)
    if mod is None:
        text = _KERNEL_TEXTS.get(digest)
        if text is None:  # a module run by itself, in a new process: the file is the source
            path = _find(f"k_{digest}.py") or cache_dir() / f"k_{digest}.py"
            text = path.read_text()
            if text_hash(text) != digest:
                raise RuntimeError(f"lucid_jit: kernel file {path} does not match its name; "
                                   "clear the cache (lucid_jit.cache_clear())")
        mod = load(text, "k")
    return mod.kernel


def _import(stem: str, path: Path, text: str):
    """Run `text` (checked against its hash by the caller) as module lucid_jit_generated.<stem>,
    with `path` as its file (numba's cache is found beside it). The file itself, and any
    bytecode cached for it, are never executed."""
    name = f"lucid_jit_generated.{stem}"
    if "lucid_jit_generated" not in sys.modules:
        pkg = types.ModuleType("lucid_jit_generated")
        pkg.__path__ = []
        sys.modules["lucid_jit_generated"] = pkg
    code = compile(text, str(path), "exec", dont_inherit=True)
    mod = types.ModuleType(name)
    mod.__file__ = str(path)
    sys.modules[name] = mod
    try:
        exec(code, mod.__dict__)  # noqa: S102 (lucid_jit's own generated text)
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
            _NATIVE_CACHED.difference_update({p for p in _NATIVE_CACHED if p[1] == digest})
            sys.modules.pop(module_name(digest, prefix), None)
            path = _find(f"{prefix}_{digest}.py")
            if path is not None:
                _drop_numba_files(path)
    return load(text)


def native_cached(text: str) -> bool:
    """Whether numba's cache holds the native tier of this graph module (a second process, or
    a worker's compile): every native segment, and the kernels of the segments that run from
    Python in that tier (module.py's heavy kernels)."""
    key = text_hash(text)
    place = (os.environ.get("LUCID_JIT_CACHE_DIR"), key)
    if place in _NATIVE_CACHED:
        return True
    segments, kernels = _native_needs(text)
    if segments:
        path = _find(f"m_{key}.py")
        if path is None or not all(_has_index(path, name) for name in segments):
            return False
    for digest in kernels:
        path = _find(f"k_{digest}.py")
        if path is None or not _has_index(path, "kernel"):
            return False
    _NATIVE_CACHED.add(place)
    return True


def _has_index(path: Path, function: str) -> bool:
    return any((path.parent / "__pycache__").glob(f"{path.stem}.{function}-*.nbi"))


def _native_needs(text: str) -> tuple[list[str], list[str]]:
    """(native segment names, kernel digests called from the Python segments) of the native
    tier of a graph module's text."""
    table = re.search(r"^NATIVE = \((.*)\)$", text, re.M)
    entries = [e.strip() for e in table.group(1).split(",") if e.strip()] if table else []
    digests = dict(re.findall(r"^(k\d+) = kernel\('([0-9a-f]+)'\)", text, re.M))
    kernels: list[str] = []
    for name in entries:
        if name.startswith("native_"):
            continue
        body = re.search(rf"^def {name}\(.*?(?=^\S)", text, re.M | re.S)
        for k in re.findall(r"\b(k\d+)\(", body.group(0) if body else ""):
            if digests.get(k) and digests[k] not in kernels:
                kernels.append(digests[k])
    return [e for e in entries if e.startswith("native_")], kernels


def _drop_numba_files(path: Path) -> None:
    pycache = path.parent / "__pycache__"
    if pycache.is_dir():
        for f in pycache.glob(f"{path.stem}.*"):
            try:
                f.unlink(missing_ok=True)
            except OSError:  # a read-only cache: numba's files stay; they fail to verify
                pass


def loaded_modules() -> list:
    return list(_LOADED.values())


def info() -> dict:
    """What `lucid_jit.cache_info()` reports."""
    place = _place()
    directory = place.read or cache_dir()
    directories = {directory, cache_dir()}
    files = [f for d in directories if d.is_dir() for f in d.glob("[mkc]_*.py")]
    numba_files = [f for d in directories if (d / "__pycache__").is_dir()
                   for f in (d / "__pycache__").glob("*") if not f.name.startswith(".")]
    size = sum(f.stat().st_size for f in files + numba_files if f.exists())
    compiled = hits = 0
    for mod in loaded_modules():
        for obj in vars(mod).values():
            stats = getattr(obj, "stats", None)
            if stats is not None and hasattr(stats, "cache_misses"):
                compiled += sum(stats.cache_misses.values())
                hits += sum(stats.cache_hits.values())
    return {"dir": str(directory), "private_fallback": place.write is None,
            "graphs_on_disk": sum(f.name.startswith("m_") for f in files),
            "kernels_on_disk": sum(f.name.startswith("k_") for f in files),
            "numba_files": len(numba_files),
            "bytes": size, "modules_loaded": len(_LOADED), "numba_compiles": compiled,
            "numba_cache_hits": hits}


def clear() -> None:
    """Remove what the cache made under its root (the modules and numba's files of every
    version, nothing else) and forget the loaded modules."""
    with _LOCK:
        for digest in list(_LOADED):
            for prefix in "mkc":
                sys.modules.pop(module_name(digest, prefix), None)
        _LOADED.clear()
        _NATIVE_CACHED.clear()
        roots = [cache_root()] + [p.parent for p in _PRIVATE]
        for root in roots:
            try:
                children = list(root.iterdir())
            except OSError:
                continue
            for child in children:
                if _made_by_cache(child):
                    shutil.rmtree(child, ignore_errors=True)


def _made_by_cache(path: Path) -> bool:
    """A key directory: its name is one the cache gives, it is a real directory (not a link)
    owned by the user, and it holds the cache's marker or, as older versions left them, only
    modules, numba's files and temporary files."""
    if not _KEY_DIR.match(path.name):
        return False
    try:
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            return False
        names = os.listdir(path)
    except OSError:
        return False
    if _MARKER in names:
        return True
    return all(re.match(r"^(?:[mkc]_[0-9a-f]{24}\.(?:py|\d+\.lock)|__pycache__|.*\.tmp)$", n)
               for n in names)
