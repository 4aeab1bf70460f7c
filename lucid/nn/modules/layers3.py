"""Conv1d, MaxPool1d, AvgPool1d (their 2-d forms over a height of one), ZeroPad2d and
ConstantPad2d, InstanceNorm2d, Bilinear; PyTorch's parameters, shapes and initialization."""

from __future__ import annotations

import math

from lucid.factories import ones, zeros
from lucid.nn import functional as F
from lucid.nn import init
from lucid.nn.modules.conv import Conv2d
from lucid.nn.modules.module import Module, Parameter
from lucid.tensor import Tensor


def _one(v, name: str):
    if isinstance(v, (tuple, list)):
        if len(v) != 1:
            raise ValueError(f"{name} must be an int or a 1-tuple, got {v!r}")
        return v[0]
    return v


def _as_2d(x: Tensor, what: str) -> tuple[Tensor, bool]:
    if x.ndim not in (2, 3):
        raise ValueError(f"{what}: expected a 2-d (C, L) or 3-d (N, C, L) input, got "
                         f"{x.ndim}-d")
    unbatched = x.ndim == 2
    return (x.unsqueeze(0) if unbatched else x).unsqueeze(2), unbatched


def _from_2d(y: Tensor, unbatched: bool) -> Tensor:
    y = y.squeeze(2)
    return y.squeeze(0) if unbatched else y


class Conv1d(Conv2d):
    """y = conv1d(x, weight) + bias over (N, C, L); weight (out, in/groups, k). Computed as a
    conv2d over a height of one."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None) -> None:
        k, s, d = (_one(v, n) for v, n in ((kernel_size, "kernel_size"), (stride, "stride"),
                                            (dilation, "dilation")))
        p = padding if isinstance(padding, str) else _one(padding, "padding")
        super().__init__(in_channels, out_channels, (1, k), (1, s),
                         p if isinstance(p, str) else (0, p), (1, d), groups, bias,
                         padding_mode, device, dtype)
        w = self.weight
        self.weight = Parameter(w.reshape(out_channels, in_channels // groups, k))
        self.kernel_size, self.stride, self.dilation = (k,), (s,), (d,)
        self.padding = p if isinstance(p, str) else (p,)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,):
            s += f", padding={self.padding}"
        if self.dilation != (1,):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + (", bias=False" if self.bias is None else "")

    def forward(self, input: Tensor) -> Tensor:
        x, unbatched = _as_2d(input, "Conv1d")
        pad = self.padding if isinstance(self.padding, str) else (0, self.padding[0])
        y = F.conv2d(x, self.weight.unsqueeze(2), self.bias, (1, self.stride[0]), pad,
                     (1, self.dilation[0]), self.groups)
        return _from_2d(y, unbatched)


class MaxPool1d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation, self.ceil_mode = padding, dilation, ceil_mode

    def forward(self, input: Tensor) -> Tensor:
        x, unbatched = _as_2d(input, "MaxPool1d")
        y = F.max_pool2d(x, (1, _one(self.kernel_size, "kernel_size")),
                         (1, _one(self.stride, "stride")), (0, _one(self.padding, "padding")),
                         (1, _one(self.dilation, "dilation")), self.ceil_mode)
        return _from_2d(y, unbatched)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool1d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode, self.count_include_pad = (padding, ceil_mode,
                                                                count_include_pad)

    def forward(self, input: Tensor) -> Tensor:
        x, unbatched = _as_2d(input, "AvgPool1d")
        y = F.avg_pool2d(x, (1, _one(self.kernel_size, "kernel_size")),
                         (1, _one(self.stride, "stride")), (0, _one(self.padding, "padding")),
                         self.ceil_mode, self.count_include_pad)
        return _from_2d(y, unbatched)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class ConstantPad2d(Module):
    """Pad the last two dims with `value`: padding an int, or (left, right, top, bottom)."""

    def __init__(self, padding, value: float) -> None:
        super().__init__()
        self.padding = (padding,) * 4 if isinstance(padding, int) else tuple(padding)
        self.value = value

    def forward(self, input: Tensor) -> Tensor:
        return F.pad(input, self.padding, value=self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ZeroPad2d(ConstantPad2d):
    def __init__(self, padding) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class InstanceNorm2d(Module):
    """Each (sample, channel) plane normalized over H, W (biased variance); affine and running
    statistics off by default, as in PyTorch."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device=None,
                 dtype=None) -> None:
        super().__init__()
        if track_running_stats:
            raise NotImplementedError("InstanceNorm2d(track_running_stats=True) is not "
                                      "supported (docs/DIFFERENCES.md)")
        self.num_features, self.eps, self.momentum, self.affine = (num_features, eps, momentum,
                                                                   affine)
        if affine:
            self.weight = Parameter(ones(num_features, dtype=dtype, device=device))
            self.bias = Parameter(zeros(num_features, dtype=dtype, device=device))
        else:
            self.weight = self.bias = None

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim not in (3, 4):
            raise ValueError(f"InstanceNorm2d: expected 3D or 4D input (got {input.ndim}D "
                             "input)")
        x = input if input.ndim == 4 else input.unsqueeze(0)
        out = F.group_norm(x, x.shape[1], self.weight, self.bias, self.eps)
        return out if input.ndim == 4 else out.squeeze(0)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, " \
               f"affine={self.affine}, track_running_stats=False"


class Bilinear(Module):
    """y = x1^T A x2 + b, A of shape (out_features, in1_features, in2_features)."""

    def __init__(self, in1_features: int, in2_features: int, out_features: int,
                 bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        self.in1_features, self.in2_features, self.out_features = (in1_features, in2_features,
                                                                   out_features)
        kw = dict(dtype=dtype, device=device)
        self.weight = Parameter(zeros(out_features, in1_features, in2_features, **kw))
        self.bias = Parameter(zeros(out_features, **kw)) if bias else None
        bound = 1 / math.sqrt(in1_features)
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1: Tensor, input2: Tensor) -> Tensor:
        import lucid

        out = lucid.einsum("...i,oij,...j->...o", input1, self.weight, input2)
        return out + self.bias if self.bias is not None else out

    def extra_repr(self) -> str:
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")
