"""numba's on-disk cache for generated modules, made safe to read.

numba keeps a compiled function as an index file (`.nbi`) and data files (`.nbc`), both pickles it
loads before any check: whoever can write them can run code in every process that reads them.
Generated modules decorate their functions with this module's `njit` instead of numba's, which
gives each dispatcher a `SignedCache`:

- the files live in the `__pycache__` beside the module's `.py` (the cache directory, which
  loader.py keeps private to the user);
- each file starts with a tag, HMAC-SHA256 under the cache's secret key (loader.py keeps it in
  the cache root, readable by the user only) over the file's name and payload; a file whose tag
  does not verify is never unpickled: the function compiles afresh and the file is rewritten;
- files are written to a fresh exclusive temporary name (no symlink is followed) and renamed;
- a cache directory that cannot be written is still read (a read-only, populated cache);
  what cannot be saved is simply compiled again by the next process;
- the source stamp is the module's text hash (its file name), which loader.py verified before
  running the text.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
from pathlib import Path

import numba
from numba.core import caching
from numba.core.serialize import dumps

_MAGIC = b"LJITNB1\n"
_TAG = 32  # bytes of HMAC-SHA256


class _Locator(caching._CacheLocator):
    """The `__pycache__` beside a generated module; never falls back elsewhere."""

    def __init__(self, py_func, py_file: str) -> None:
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._path = os.path.join(os.path.dirname(py_file), "__pycache__")

    def ensure_cache_path(self) -> None:
        os.makedirs(self._path, mode=0o700, exist_ok=True)

    def get_cache_path(self) -> str:
        return self._path

    def get_source_stamp(self):
        # m_<text hash>.py: loader.py ran this module only after checking its text has this hash
        return os.path.splitext(os.path.basename(self._py_file))[0]

    def get_disambiguator(self) -> str:
        return str(self._lineno)

    @classmethod
    def from_function(cls, py_func, py_file):
        return cls(py_func, py_file)


class _Impl(caching.CompileResultCacheImpl):
    _locator_classes = [_Locator]


class _SignedFiles(caching.IndexDataCacheFile):
    """numba's index and data files, each behind a verified tag."""

    def __init__(self, cache_path, filename_base, source_stamp, key: bytes) -> None:
        super().__init__(cache_path, filename_base, source_stamp)
        self._key = key

    def _tag(self, name: str, payload: bytes) -> bytes:
        return hmac.new(self._key, name.encode() + b"\0" + payload, hashlib.sha256).digest()

    def _read(self, path: str) -> bytes | None:
        """The payload of a file whose tag verifies, else None (missing, foreign or corrupt)."""
        try:
            with open(path, "rb") as f:
                blob = f.read()
        except OSError:
            return None
        head = len(_MAGIC) + _TAG
        if len(blob) < head or not blob.startswith(_MAGIC):
            return None
        tag, payload = blob[len(_MAGIC):head], blob[head:]
        if not hmac.compare_digest(tag, self._tag(os.path.basename(path), payload)):
            return None
        return payload

    def _write(self, path: str, payload: bytes) -> None:
        from lucid_jit.codegen import loader

        loader.write_atomic(Path(path), _MAGIC + self._tag(os.path.basename(path), payload)
                            + payload)

    def _load_index(self):
        payload = self._read(self._index_path)
        if payload is None:
            return {}
        try:
            version, stamp, overloads = pickle.loads(payload)
        except Exception:  # noqa: BLE001 (verified but unreadable: another numba wrote it)
            return {}
        if version != self._version or stamp != self._source_stamp:
            return {}
        return overloads

    def _save_index(self, overloads) -> None:
        self._write(self._index_path, dumps((self._version, self._source_stamp, overloads)))

    def _load_data(self, name):
        payload = self._read(self._data_path(name))
        if payload is None:
            raise OSError(f"no verified cache data in {name}")  # (numba: a miss)
        return pickle.loads(payload)

    def _save_data(self, name, data) -> None:
        self._write(self._data_path(name), dumps(data))


class SignedCache(caching.FunctionCache):
    _impl_class = _Impl

    def __init__(self, py_func) -> None:
        super().__init__(py_func)
        from lucid_jit.codegen import loader

        self._cache_file = _SignedFiles(self._cache_path, self._impl.filename_base,
                                        self._impl.locator.get_source_stamp(),
                                        loader.secret_key())

    def load_overload(self, sig, target_context):
        try:
            return super().load_overload(sig, target_context)
        except Exception:  # noqa: BLE001 (an entry that does not rebuild is a miss)
            return None

    def save_overload(self, sig, data) -> None:
        try:
            super().save_overload(sig, data)
        except OSError:  # a read-only cache directory: the next process compiles again
            pass


def njit(*args, cache: bool = False, **options):
    """numba's `njit`, with `cache=True` meaning the SignedCache (generated modules only: their
    `.py` lives in the cache directory)."""
    if args and callable(args[0]):
        return njit(cache=cache, **options)(args[0])

    def decorate(fn):
        dispatcher = numba.njit(**options)(fn)
        if cache:
            dispatcher._cache = SignedCache(fn)
        return dispatcher

    return decorate
