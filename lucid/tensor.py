"""Tensor: an n-d array with autograd. Every operation goes through `lucid.ops.bind`.

`data` is a NumPy array eagerly, or the tracer's value while `lucid.compile` traces. Operators
insert explicit `cast` and `broadcast_to` so primitives only ever see operands of one shape and
dtype (every vjp is then exact); when nothing needs the graph (eager, no grad) NumPy broadcasts
instead, which gives the same numbers without the extra op.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from lucid import device as _device
from lucid import dtypes, ops
from lucid.ops import registry
from lucid.ops.registry import CURRENT_TRACER, GRAD_ENABLED, Aval, LucidError, ShapeError
from lucid.ops.rules import broadcast_shapes

_bind = registry.bind
_new_tensor = object.__new__
MinMax = namedtuple("MinMax", ["values", "indices"])
_SCALARS = (int, float, bool, np.number, np.bool_)


class Tensor:
    __slots__ = ("data", "requires_grad", "grad", "_ctx", "_version", "__weakref__")
    __array_priority__ = 1000  # numpy_array + tensor defers to Tensor.__radd__

    def __init__(self, data, requires_grad: bool = False, dtype=None, device: str = "cpu"):
        device = _device.normalize(device)
        tracer = CURRENT_TRACER.get()
        if tracer is not None and tracer.lifted(data):  # a float the compiler made an input
            dtype = dtypes.DEFAULT_FLOAT if dtype is None else dtypes.as_dtype(dtype)
            self.data = tracer.scalar(data, dtype).data
        else:
            if isinstance(data, Tensor):
                data = data.numpy()
            dtype = dtypes.infer_from_data(data) if dtype is None else dtypes.as_dtype(dtype)
            self.data = np.array(data, dtype=dtype)
            if tracer is not None:  # a constant made inside a compiled function
                tracer.created(self, data)
            elif device == "cuda":
                self.data = _device.to_device(self.data)
        self.grad = None
        self._ctx = None
        self._version = [0]
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @staticmethod
    def _wrap(data) -> Tensor:
        """A tensor around a new array (or traced value), without copying it. Under a trace, an
        array wrapped here is a constant made inside the compiled function."""
        t = Tensor._share(data)
        if isinstance(t.data, np.ndarray):
            tracer = CURRENT_TRACER.get()
            if tracer is not None:
                tracer.created(t, data)
        return t

    @staticmethod
    def _share(data) -> Tensor:
        """A tensor around an existing array that other tensors may own (detach, views)."""
        t = _new_tensor(Tensor)
        t.data = np.asarray(data) if isinstance(data, np.generic) else data
        t.requires_grad = False
        t.grad = None
        t._ctx = None
        t._version = [0]
        return t

    def __reduce_ex__(self, protocol):
        """Pickled (lucid.save, a DataLoader worker's queue) as its values, dtype, shape,
        requires_grad, device and class; never its gradient or history."""
        from lucid.serialization import reduce_tensor

        return reduce_tensor(self)

    # ------------------------------------------------------------------ properties

    @property
    def shape(self) -> tuple[int, ...]:
        shape = self.data.shape
        return shape if type(shape) is tuple else tuple(shape)  # (the simulator's shape type)

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return len(self.data.shape)

    @property
    def device(self) -> str:
        """"cpu" or "cuda". Under a trace, the device the compiled graph runs on."""
        data = self.data
        if type(data) is np.ndarray:
            return "cpu"
        if _device.is_device_array(data):
            return "cuda"
        tracer = CURRENT_TRACER.get()
        return getattr(tracer, "device", "cpu") if tracer is not None else "cpu"

    @property
    def is_cuda(self) -> bool:
        return self.device == "cuda"

    @property
    def aval(self) -> Aval:
        return Aval(self.shape, self.data.dtype)

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def T(self) -> Tensor:
        return self.permute(*reversed(range(self.ndim)))

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        return math.prod(self.shape)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    # ------------------------------------------------------------------ leaving the graph

    def _concrete(self, what: str) -> np.ndarray:
        """The array behind this tensor. Under a trace the tracer decides: a constant made inside
        the compiled function has one; anything that varies between calls is a graph break."""
        tracer = CURRENT_TRACER.get()
        if tracer is not None:
            return tracer.concretize(self, what)
        if isinstance(self.data, np.ndarray):
            return self.data
        if _device.is_device_array(self.data):  # a copy on the host
            return _device.to_host(self.data)
        raise LucidError(f"{what}: this tensor was made while tracing a compiled function and "
                         f"has no value outside it ({registry.user_location()})")

    def numpy(self) -> np.ndarray:
        return self._concrete("numpy()")

    def __array__(self, dtype=None, copy=None):
        arr = self._concrete("numpy()")
        return arr if dtype is None else arr.astype(dtype, copy=False)

    def item(self):
        arr = self._concrete("item()")
        if arr.size != 1:
            raise ValueError(f"item(): a tensor of shape {self.shape} has {arr.size} elements, "
                             "not one")
        return arr.reshape(()).item()

    def tolist(self):
        return self._concrete("tolist()").tolist()

    def __bool__(self) -> bool:
        arr = self._concrete("bool()")
        if arr.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(arr.reshape(()))

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if dtypes.is_floating(self.dtype) or self.dtype == dtypes.bool_:
            raise TypeError("only integer tensors of one element can be used as an index")
        return int(self.item())

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        from lucid._printing import tensor_repr

        return tensor_repr(self)

    def __format__(self, spec: str) -> str:
        if spec and self.numel() == 1 and CURRENT_TRACER.get() is None:
            return format(self.item(), spec)
        return repr(self) if not spec else format(repr(self), spec)

    # ------------------------------------------------------------------ autograd

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and not dtypes.is_floating(self.dtype):
            raise LucidError(f"only floating tensors can require grad, not {self.dtype}")
        if not requires_grad and self._ctx is not None:
            raise LucidError("requires_grad_(False) on a tensor that is not a leaf; use detach()")
        self.requires_grad = requires_grad
        return self

    def backward(self, gradient: Tensor | None = None, retain_graph: bool = False,
                 create_graph: bool = False) -> None:
        from lucid.autograd import backward

        backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph)

    def to_device(self, device) -> Tensor:
        """This tensor on `device` (itself if it is there already). Differentiable: the gradient
        goes back to this tensor's device."""
        device = _device.normalize(device)
        if self.device == device:
            return self
        tracer = CURRENT_TRACER.get()
        if tracer is not None:
            tracer.graph_break(f"moving a tensor to {device!r} inside a compiled function that "
                               f"runs on {self.device!r}")
        out = Tensor._share(_device.move(self.data, device))
        if self.requires_grad and GRAD_ENABLED.get():
            out.requires_grad = True
            out._ctx = registry.Context(_TRANSFER, (self,), {}, (self._version[0],), 0)
        return out

    def cuda(self, device=None) -> Tensor:
        return self.to_device("cuda")

    def cpu(self) -> Tensor:
        return self.to_device("cpu")

    def detach(self) -> Tensor:
        t = Tensor._share(self.data)
        t._version = self._version
        return t

    def clone(self) -> Tensor:
        return ops.copy(self)

    # ------------------------------------------------------------------ operand handling

    def _lift(self, value, dtype=None) -> Tensor:
        """A Python scalar or array as a constant tensor next to self (weakly typed scalars)."""
        if isinstance(value, Tensor):
            return value
        if isinstance(value, _SCALARS):
            dtype = dtype or dtypes.scalar_dtype(self.dtype, value)
            tracer = CURRENT_TRACER.get()
            if tracer is not None:  # a Python number entering the graph
                return tracer.scalar(value, dtype)
            return Tensor._wrap(np.array(value, dtype=dtype))
        tracer = CURRENT_TRACER.get()
        if tracer is not None and tracer.lifted(value):  # a float the compiler made an input
            return tracer.scalar(value, dtype or dtypes.scalar_dtype(self.dtype, value))
        return Tensor(value, dtype=dtype)

    def _binary(self, op, other, reverse: bool = False) -> Tensor:
        x = self
        y = other if isinstance(other, Tensor) else self._lift(other)
        if x.data.dtype != y.data.dtype:
            target = dtypes.promote(x.dtype, y.dtype)
            x = x if x.dtype == target else ops.cast(x, dtype=target)
            y = y if y.dtype == target else ops.cast(y, dtype=target)
        if x.data.shape != y.data.shape:
            # Under a trace every broadcast is explicit. Eagerly only an operand that gets a
            # gradient needs one (its vjp must sum back to its shape); NumPy broadcasts the rest.
            tracing = CURRENT_TRACER.get() is not None
            if tracing or (GRAD_ENABLED.get() and (x.requires_grad or y.requires_grad)):
                if not y.data.shape:  # a scalar operand: np.broadcast_shapes costs ~3 us
                    shape = x.data.shape
                elif not x.data.shape:
                    shape = y.data.shape
                else:
                    shape = broadcast_shapes(op.name, x.aval, y.aval)  # ShapeError naming the op
                if x.shape != shape and (tracing or x.requires_grad):
                    x = ops.broadcast_to(x, shape=shape)
                if y.shape != shape and (tracing or y.requires_grad):
                    y = ops.broadcast_to(y, shape=shape)
        return _bind(op, y, x) if reverse else _bind(op, x, y)

    def _float_operand(self) -> Tensor:
        if dtypes.is_floating(self.data.dtype):
            return self
        return ops.cast(self, dtype=dtypes.DEFAULT_FLOAT)

    # ------------------------------------------------------------------ operators

    def __add__(self, other): return self._binary(ops.add, other)
    def __radd__(self, other): return self._binary(ops.add, other, reverse=True)
    def __sub__(self, other): return self._binary(ops.sub, other)
    def __rsub__(self, other): return self._binary(ops.sub, other, reverse=True)
    def __mul__(self, other): return self._binary(ops.mul, other)
    def __rmul__(self, other): return self._binary(ops.mul, other, reverse=True)
    def __truediv__(self, other): return self._float_operand()._binary(ops.div, other)
    def __rtruediv__(self, other): return self._float_operand()._binary(ops.div, other, True)
    def __pow__(self, other): return self._float_operand()._binary(ops.pow, other)
    def __rpow__(self, other): return self._float_operand()._binary(ops.pow, other, True)
    def __eq__(self, other): return self._binary(ops.eq, other)  # type: ignore[override]
    def __ne__(self, other): return self._binary(ops.ne, other)  # type: ignore[override]
    def __lt__(self, other): return self._binary(ops.lt, other)
    def __le__(self, other): return self._binary(ops.le, other)
    def __gt__(self, other): return self._binary(ops.gt, other)
    def __ge__(self, other): return self._binary(ops.ge, other)
    def __neg__(self): return ops.neg(self)
    def __abs__(self): return ops.abs(self)
    def __matmul__(self, other): return self.matmul(other)

    # Augmented assignment writes into self, as in PyTorch: `w -= lr * w.grad` updates w's
    # storage (views of it see the write, its version counter moves) instead of rebinding w.
    def __iadd__(self, other): return self.add_(other)
    def __isub__(self, other): return self.sub_(other)
    def __imul__(self, other): return self.mul_(other)
    def __itruediv__(self, other): return self.div_(other)
    def __ipow__(self, other): return self.pow_(other)
    def __rmatmul__(self, other): return self._lift(other).matmul(self)

    def add(self, other): return self + other
    def sub(self, other): return self - other
    def mul(self, other): return self * other
    def div(self, other): return self / other
    def pow(self, other): return self ** other
    def maximum(self, other): return self._binary(ops.maximum, other)
    def minimum(self, other): return self._binary(ops.minimum, other)

    def where(self, condition, other) -> Tensor:
        """`self` where condition holds, else `other` (PyTorch's Tensor.where)."""
        from lucid.functions import where

        return where(condition, self, other)

    # ------------------------------------------------------------------ unary math

    def neg(self): return ops.neg(self)
    def abs(self): return ops.abs(self)
    def sign(self): return ops.sign(self)
    def exp(self): return ops.exp(self._float_operand())
    def log(self): return ops.log(self._float_operand())
    def log1p(self): return ops.log1p(self._float_operand())
    def sqrt(self): return ops.sqrt(self._float_operand())
    def sin(self): return ops.sin(self._float_operand())
    def cos(self): return ops.cos(self._float_operand())
    def tanh(self): return ops.tanh(self._float_operand())
    def erf(self): return ops.erf(self._float_operand())
    def reciprocal(self): return ops.reciprocal(self._float_operand())
    def sigmoid(self): return ops.sigmoid(self._float_operand())
    def relu(self): return ops.relu(self)

    def clamp(self, min=None, max=None) -> Tensor:
        out = self
        if min is not None:
            out = out.maximum(min)
        if max is not None:
            out = out.minimum(max)
        return out

    clip = clamp

    # ------------------------------------------------------------------ dtype

    def cast(self, dtype) -> Tensor:
        dtype = dtypes.as_dtype(dtype)
        return self if dtype == self.dtype else ops.cast(self, dtype=dtype)

    def to(self, *args, dtype=None, device=None, non_blocking: bool = False, copy: bool = False,
           memory_format=None) -> Tensor:
        """A cast and/or a move (`to(dtype)`, `to(device)`, `to(other)`); self when nothing
        changes, unless `copy`. (`non_blocking` and `memory_format` are accepted: host arrays
        and lucid's layouts need neither.)"""
        for a in args:
            if isinstance(a, str) and a.split(":")[0] in ("cpu", "cuda") or a is None:
                device = a
            elif isinstance(a, _device.Device):
                device = a.type
            elif isinstance(a, Tensor):  # .to(other): other's dtype and device
                dtype, device = a.dtype, a.device
            else:
                dtype = a
        out = self if dtype is None else self.cast(dtype)
        out = out if device is None else out.to_device(device)
        return out.clone() if copy and out is self else out

    def float(self): return self.cast(dtypes.float32)
    def double(self): return self.cast(dtypes.float64)
    def long(self): return self.cast(dtypes.int64)
    def int(self): return self.cast(dtypes.int32)
    def bool(self): return self.cast(dtypes.bool_)

    # ------------------------------------------------------------------ reductions

    def _axes(self, dim) -> tuple[int, ...] | None:
        if dim is None:
            return None
        dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
        n = max(self.ndim, 1)
        for d in dims:
            if not -n <= d < n:
                raise ShapeError(f"dim {d} is out of range for a tensor {self.aval} "
                                 f"({registry.user_location()})")
        return tuple(sorted({int(d) % n for d in dims})) if self.ndim else ()

    def sum(self, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
        x = self if dtype is None else self.cast(dtype)
        return ops.sum(x, axes=x._axes(dim), keepdims=keepdim)

    def mean(self, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
        if dtype is not None:
            return self.cast(dtype).mean(dim, keepdim)
        axes = self._axes(dim)
        count = math.prod(self.shape[a] for a in (range(self.ndim) if axes is None else axes))
        return self._float_operand().sum(axes, keepdim) / float(count)

    def var(self, dim=None, keepdim: bool = False, unbiased: bool = True,
            correction: int | None = None) -> Tensor:
        axes = self._axes(dim)
        count = math.prod(self.shape[a] for a in (range(self.ndim) if axes is None else axes))
        ddof = (1 if unbiased else 0) if correction is None else correction
        centered = self - self.mean(axes, keepdim=True)
        return (centered * centered).sum(axes, keepdim) / float(max(count - ddof, 0))

    def std(self, dim=None, keepdim: bool = False, unbiased: bool = True) -> Tensor:
        return self.var(dim, keepdim, unbiased).sqrt()

    def _max(self, dim, keepdim: bool, sign: int):
        x = self if sign > 0 else -self
        if dim is None:
            out = ops.max(x, axes=None, keepdims=False)
            return out if sign > 0 else -out
        axes = self._axes(dim)
        values = ops.max(x, axes=axes, keepdims=keepdim)
        indices = ops.argmax(x, axis=axes[0], keepdims=keepdim) if axes else None
        return MinMax(values if sign > 0 else -values, indices)

    def max(self, dim=None, keepdim: bool = False):
        """The maximum of all elements, or (values, indices) along `dim` (as PyTorch returns);
        with a tensor in place of `dim`, the elementwise maximum."""
        if isinstance(dim, Tensor):
            return self.maximum(dim)
        return self._max(dim, keepdim, 1)

    def min(self, dim=None, keepdim: bool = False):
        if isinstance(dim, Tensor):
            return self.minimum(dim)
        return self._max(dim, keepdim, -1)

    def amax(self, dim=None, keepdim: bool = False) -> Tensor:
        return ops.max(self, axes=self._axes(dim), keepdims=keepdim)

    def amin(self, dim=None, keepdim: bool = False) -> Tensor:
        return -ops.max(-self, axes=self._axes(dim), keepdims=keepdim)

    def argmax(self, dim=None, keepdim: bool = False) -> Tensor:
        if dim is None:
            return ops.argmax(self.reshape(-1), axis=0, keepdims=False)
        return ops.argmax(self, axis=self._axes(dim)[0], keepdims=keepdim)

    def argmin(self, dim=None, keepdim: bool = False) -> Tensor:
        return (-self).argmax(dim, keepdim)

    # ------------------------------------------------------------------ movement

    def _view(self, out: Tensor) -> Tensor:
        """Views share the version counter, so in-place writes through either are seen by both."""
        if isinstance(out.data, np.ndarray):
            if np.may_share_memory(out.data, self.data):
                out._version = self._version
        elif _device.is_device_array(out.data) and \
                _device.runtime().shares_memory(out.data, self.data):
            out._version = self._version
        return out

    def reshape(self, *shape) -> Tensor:
        shape = _shape_arg(shape)
        if -1 in shape:
            known = math.prod(s for s in shape if s != -1)
            if shape.count(-1) > 1 or known == 0 or self.numel() % known:
                raise ShapeError(f"reshape: cannot reshape {self.shape} to {shape} "
                                 f"({registry.user_location()})")
            shape = tuple(self.numel() // known if s == -1 else s for s in shape)
        if shape == self.shape:
            return self
        return self._view(ops.reshape(self, shape=shape))

    view = reshape

    def permute(self, *dims) -> Tensor:
        dims = tuple(int(d) % max(self.ndim, 1) for d in _shape_arg(dims))
        if dims == tuple(range(self.ndim)):
            return self
        return self._view(ops.permute(self, axes=dims))

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        dims = list(range(self.ndim))
        dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
        return self.permute(*dims)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        if self.ndim == 0:
            return self.reshape(1)
        start, end = start_dim % self.ndim, end_dim % self.ndim
        shape = self.shape[:start] + (math.prod(self.shape[start:end + 1]),) + self.shape[end + 1:]
        return self.reshape(shape)

    def squeeze(self, dim=None) -> Tensor:
        if dim is None:
            return self.reshape(tuple(s for s in self.shape if s != 1))
        axes = self._axes(dim)
        return self.reshape(tuple(s for i, s in enumerate(self.shape) if i not in axes or s != 1))

    def unsqueeze(self, dim: int) -> Tensor:
        dim = dim % (self.ndim + 1)
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def broadcast_to(self, *shape) -> Tensor:
        shape = _shape_arg(shape)
        if shape == self.shape:
            return self
        return self._view(ops.broadcast_to(self, shape=shape))

    def expand(self, *sizes) -> Tensor:
        sizes = _shape_arg(sizes)
        lead = len(sizes) - self.ndim
        shape = tuple(self.shape[i - lead] if s == -1 else s for i, s in enumerate(sizes))
        return self.broadcast_to(shape)

    def expand_as(self, other: Tensor) -> Tensor:
        return self.broadcast_to(other.shape)

    def __getitem__(self, key) -> Tensor:
        from lucid.indexing import index_spec

        index, arrays = index_spec(self, key)
        return self._view(ops.getitem(self, *arrays, index=index))

    def __setitem__(self, key, value) -> None:
        """`t[key] = value`, in place. Built from getitem/scatter_add/where, so it records under
        a trace and differentiates: written positions get value's gradient, the rest keep
        self's. (With repeated integer indices the written values add up.)"""
        from lucid.indexing import index_spec

        index, arrays = index_spec(self, key)

        def compute(old: Tensor) -> Tensor:
            target = ops.getitem(old, *arrays, index=index)
            v = value if isinstance(value, Tensor) else self._lift(value)
            v = _device.like(old, v.cast(self.dtype)).broadcast_to(target.shape)
            hit = _device.like(old, ops.full(shape=target.shape, value=1, dtype=dtypes.int64))
            written = ops.scatter_add(hit, *arrays, index=index, shape=self.shape) > 0
            return ops.where(written, ops.scatter_add(v, *arrays, index=index, shape=self.shape),
                             old)

        self._inplace(compute)

    def matmul(self, other) -> Tensor:
        from lucid.functions import matmul

        return matmul(self, other)

    # ------------------------------------------------------------------ in place

    def _inplace(self, compute) -> Tensor:
        """Run `compute(old)` out of place and write the result into self.

        Autograd sees the write as a new op whose input is the old value (`old` shares self's
        array and version counter, so a vjp that still needs the overwritten numbers fails its
        version check at backward instead of silently using the new ones).
        """
        if self.requires_grad and self._ctx is None and GRAD_ENABLED.get():
            raise LucidError("in-place: a leaf tensor that requires grad is being used in an "
                             "in-place operation "
                             "(wrap the update in lucid.no_grad()) "
                             f"({registry.user_location()})")
        old = Tensor._share(self.data)
        old.requires_grad, old._ctx, old._version = self.requires_grad, self._ctx, self._version
        result = compute(old)
        if result.dtype != self.dtype:
            if dtypes.is_floating(result.dtype) and not dtypes.is_floating(self.dtype):
                raise LucidError(f"in-place: result of dtype {result.dtype} cannot be written "
                                 f"into a tensor of dtype {self.dtype} "
                                 f"({registry.user_location()})")
            result = ops.cast(result, dtype=self.dtype)
        if result.shape != self.shape:
            if tuple(np.broadcast_shapes(result.shape, self.shape)) != self.shape:
                raise ShapeError(f"in-place: a result of shape {result.shape} cannot be "
                                 f"written into a tensor of shape {self.shape} "
                                 f"({registry.user_location()})")
            result = ops.broadcast_to(result, shape=self.shape)
        tracer = CURRENT_TRACER.get()
        if tracer is not None:
            tracer.assign(self, result)
        else:
            if isinstance(self.data, np.ndarray):
                if not self.data.flags.writeable:
                    raise LucidError(f"in-place: this tensor of shape {self.shape} is a "
                                     f"read-only broadcast view ({registry.user_location()})")
                np.copyto(self.data, _device.to_host(result.data))
            else:
                rt = _device.runtime()
                why = rt.write_error(self.data)
                if why is not None:
                    raise LucidError(f"in-place: this cuda tensor of shape {self.shape} is {why} "
                                     f"({registry.user_location()})")
                rt.copy_into(self.data, _device.move(result.data, "cuda"))
        self._version[0] += 1
        if result._ctx is not None:
            self._ctx = result._ctx._replace(out_version=self._version[0])
            self.requires_grad = True
        return self

    def add_(self, other, alpha=1) -> Tensor:
        return self._inplace(lambda x: x + (other if alpha == 1 else other * alpha))

    def sub_(self, other, alpha=1) -> Tensor:
        return self._inplace(lambda x: x - (other if alpha == 1 else other * alpha))

    def mul_(self, other) -> Tensor:
        return self._inplace(lambda x: x * other)

    def div_(self, other) -> Tensor:
        return self._inplace(lambda x: x / other)

    def pow_(self, other) -> Tensor:
        return self._inplace(lambda x: x ** other)

    def relu_(self) -> Tensor:
        return self._inplace(ops.relu)

    def clamp_(self, min=None, max=None) -> Tensor:
        return self._inplace(lambda x: x.clamp(min, max))

    def zero_(self) -> Tensor:
        return self.fill_(0)

    def fill_(self, value) -> Tensor:
        return self._inplace(lambda x: ops.full(shape=self.shape, value=value, dtype=self.dtype)
                             if not isinstance(value, Tensor) else value)

    def copy_(self, src) -> Tensor:
        return self._inplace(lambda x: src if isinstance(src, Tensor) else self._lift(src))


def _shape_arg(shape) -> tuple[int, ...]:
    """Accept f(2, 3), f((2, 3)) and f([2, 3])."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(s) for s in shape)


def _check_device(device) -> str:
    """The normalized device name ("cpu" for None); a clear error for an unknown device, or for
    "cuda" where there is none."""
    device = "cpu" if device is None else _device.normalize(device)
    if device == "cuda":
        _device.runtime()
    return device


# A transfer between devices, for autograd: the gradient goes back to the source's device. (Not a
# registered primitive: a compiled graph runs on one device, so the tracer never records it.)
_TRANSFER = registry.Op("to_device", "movement", impl=None, infer=None,
                        vjp=lambda g, out, x: (g.to_device(x.device),), save=())


registry._wrap = Tensor._wrap
registry._wrap_eager = Tensor._share
