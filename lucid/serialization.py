"""`lucid.save` and `lucid.load`: tensors, state dicts, optimizer and scheduler states, whole
checkpoints (dicts of them), as PyTorch's `torch.save`/`torch.load` keep them.

A file is a short header (`MAGIC`) and a pickle. A tensor pickles as its bytes, dtype, shape,
`requires_grad`, device and class (`Parameter` stays a `Parameter`), never its gradient or
history. `load` reads with `weights_only=True` by default, as PyTorch does since 2.6: the
unpickler rebuilds only tensors, NumPy arrays and dtypes, and Python's containers and scalars, so
a file from elsewhere cannot run code; `weights_only=False` loads any pickle (a whole Module) and
must only be used on files you trust.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

MAGIC = b"LUCIDSAVE\x00v1\n"
DEFAULT_PROTOCOL = 4


def _rebuild_tensor(cls_name: str, raw: bytes, dtype: str, shape: tuple, requires_grad: bool,
                    device: str):
    """A tensor from what `Tensor.__reduce_ex__` saved (map_location applied by the loader)."""
    from lucid.tensor import Tensor

    arr = np.frombuffer(raw, dtype=np.dtype(dtype)).reshape(shape).copy()
    cls = _TENSOR_CLASSES.get(cls_name)
    if cls is None:
        raise pickle.UnpicklingError(f"lucid.load: unknown tensor class {cls_name!r}")
    if cls is Tensor:
        t = Tensor._share(arr)
        if requires_grad:
            t.requires_grad_(True)
    else:
        t = cls(arr, requires_grad=requires_grad)
    from lucid import device as _device

    target = _LOAD_DEVICE[-1] if _LOAD_DEVICE else None
    device = _device.normalize(_map_device(device, target))
    if device != "cpu":
        if not _device.available("cuda"):
            raise RuntimeError("lucid.load: the file holds a tensor on the CUDA device, and "
                               "there is none here; pass map_location='cpu'")
        t.data = _device.to_device(t.data)
    return t


def _map_device(saved: str, target) -> str:
    if target is None:
        return saved
    if callable(target):
        return str(target(saved))
    if isinstance(target, dict):
        return str(target.get(saved, saved))
    return str(target)


def _tensor_classes() -> dict[str, type]:
    from lucid.nn.modules.module import Parameter
    from lucid.tensor import Tensor

    return {"Tensor": Tensor, "Parameter": Parameter}


class _Classes(dict):
    def get(self, key, default=None):
        if not self:
            self.update(_tensor_classes())
        return super().get(key, default)


_TENSOR_CLASSES = _Classes()
_LOAD_DEVICE: list = []  # the map_location of the load in progress (a stack: loads may nest)


def reduce_tensor(t) -> tuple:
    """What pickles a tensor (`Tensor.__reduce_ex__`)."""
    arr = t.numpy()
    name = "Parameter" if type(t).__name__ == "Parameter" else "Tensor"
    return (_rebuild_tensor, (name, arr.tobytes(order="C"), arr.dtype.str, tuple(arr.shape),
                              bool(t.requires_grad), t.device))


# ----------------------------------------------------------------------------- save


def save(obj: Any, f, pickle_protocol: int = DEFAULT_PROTOCOL, *,
         all_ranks: bool = False) -> None:
    """Write `obj` (a tensor, a state dict, a checkpoint dict, any picklable object) to `f`, a
    path or a binary file object.

    In a distributed job (lucid.distributed) only rank 0 writes a path (every rank holds the
    same model; `all_ranks=True` writes from each); a file object is always written. A
    DistributedDataParallel model is saved as its plain module's state dict."""
    from lucid.nn.parallel import DistributedDataParallel

    if isinstance(obj, DistributedDataParallel):
        obj = obj.module.state_dict()
    if hasattr(f, "write"):
        f.write(MAGIC + pickle.dumps(obj, protocol=pickle_protocol))
        return
    from lucid import distributed

    if not all_ranks and not distributed.is_main_process():
        return
    data = MAGIC + pickle.dumps(obj, protocol=pickle_protocol)
    path = Path(os.fspath(f))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as out:  # a checkpoint is whole or absent, never half written
        out.write(data)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- load

_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
}
_BUILTINS = {"set", "frozenset", "slice", "complex", "range", "bytearray"}


class _WeightsUnpickler(pickle.Unpickler):
    """Rebuilds tensors, NumPy arrays and dtypes and Python's containers; nothing else."""

    def find_class(self, module: str, name: str):
        if module == __name__ and name == "_rebuild_tensor":
            return _rebuild_tensor
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        if module == "numpy.dtypes" and name.endswith("DType"):
            return super().find_class(module, name)
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "builtins" and name in _BUILTINS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"lucid.load(weights_only=True) refuses {module}.{name}: only tensors, arrays and "
            "plain containers load this way. If you trust the file, load it with "
            "weights_only=False (a pickle can run code)")


def load(f, map_location=None, weights_only: bool = True) -> Any:
    """Read what `save` wrote. `map_location` ("cpu", "cuda", a dict from saved device to
    device, or a function of the saved device) moves the tensors as they load."""
    if hasattr(f, "read"):
        data = f.read()
    else:
        with open(os.fspath(f), "rb") as src:
            data = src.read()
    if not data.startswith(MAGIC):
        raise pickle.UnpicklingError("lucid.load: not a file written by lucid.save (the header "
                                     "is missing)")
    stream = io.BytesIO(data[len(MAGIC):])
    unpickler = _WeightsUnpickler(stream) if weights_only else pickle.Unpickler(stream)
    _LOAD_DEVICE.append(map_location)
    try:
        return unpickler.load()
    finally:
        _LOAD_DEVICE.pop()
