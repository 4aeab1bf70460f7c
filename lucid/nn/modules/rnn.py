"""RNN, LSTM and GRU (multi-layer, bidirectional, batch_first) and their cells: PyTorch's
parameter names, shapes, gate orders, initialization and (output, h_n[, c_n]) results.

A sequence is a Python loop over time steps; the input projection of every step is one matmul
taken before the loop. Under `lucid.compile` the loop unrolls into the graph (one entry per
sequence length), so the compiler fuses each step's gate arithmetic.
"""

from __future__ import annotations

import math

import numpy as np

from lucid.factories import zeros
from lucid.functions import cat, stack, where
from lucid.nn import functional as F
from lucid.nn import init
from lucid.nn.modules.module import Module, Parameter
from lucid.ops.registry import ShapeError, op_error
from lucid.tensor import Tensor

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _step(mode: str, gi: Tensor, h: Tensor, c: Tensor | None, w_hh: Tensor,
          b_hh: Tensor | None):
    """One time step from the input's projection gi (x W_ih^T + b_ih): (h', c')."""
    gh = h.matmul(w_hh.t())
    if b_hh is not None:
        gh = gh + b_hh
    if mode == "LSTM":
        i, f, g, o = (gi + gh).chunk(4, -1)
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        return o.sigmoid() * c.tanh(), c
    if mode == "GRU":
        ir, iz, in_ = gi.chunk(3, -1)
        hr, hz, hn = gh.chunk(3, -1)
        r, z = (ir + hr).sigmoid(), (iz + hz).sigmoid()
        n = (in_ + r * hn).tanh()
        return (1 - z) * n + z * h, None
    pre = gi + gh
    return (pre.tanh() if mode == "RNN_TANH" else pre.relu()), None


class _RNNBase(Module):
    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None,
                 dtype=None) -> None:
        super().__init__()
        if not 0 <= dropout <= 1:
            raise ValueError("dropout should be a number in range [0, 1] representing the "
                             "probability of an element being zeroed")
        if hidden_size <= 0 or num_layers <= 0:
            raise ValueError("hidden_size and num_layers must be greater than 0")
        if proj_size:
            raise NotImplementedError("LSTM(proj_size=...) is not supported "
                                      "(docs/DIFFERENCES.md)")
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional, self.proj_size = float(dropout), bidirectional, 0
        gates = _GATES[mode] * hidden_size
        self._names = []
        for layer in range(num_layers):
            for direction in range(2 if bidirectional else 1):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                size_in = input_size if layer == 0 else hidden_size * (2 if bidirectional else 1)
                kw = dict(dtype=dtype, device=device)
                names = [f"weight_ih{suffix}", f"weight_hh{suffix}"]
                setattr(self, names[0], Parameter(zeros(gates, size_in, **kw)))
                setattr(self, names[1], Parameter(zeros(gates, hidden_size, **kw)))
                if bias:
                    names += [f"bias_ih{suffix}", f"bias_hh{suffix}"]
                    setattr(self, names[2], Parameter(zeros(gates, **kw)))
                    setattr(self, names[3], Parameter(zeros(gates, **kw)))
                self._names.append(names)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _weights(self, k: int):
        names = self._names[k]
        w = [getattr(self, n) for n in names]
        return (w[0], w[1], w[2], w[3]) if self.bias else (w[0], w[1], None, None)

    def forward(self, input: Tensor, hx=None):
        from lucid.nn.utils.rnn import PackedSequence, pad_packed_sequence, repack

        if isinstance(input, PackedSequence):
            padded, lengths = pad_packed_sequence(input)
            output, state = self._run(padded, hx, np.asarray(lengths.tolist(), np.int64),
                                      time_major=True)
            return repack(output, input), state
        return self._run(input, hx, None, time_major=not self.batch_first)

    def _run(self, input: Tensor, hx, lengths, time_major: bool):
        """The layers over a (T, N, *) batch (or (N, T, *) unless time_major, or (T, *)); with
        `lengths`, sequence b's state stops changing after its step lengths[b] - 1 (and, going
        backwards, starts there), and its outputs past that are zeros."""
        lstm = self.mode == "LSTM"
        if input.ndim not in (2, 3):
            raise op_error(type(self).__name__, [input.aval], "expects a 2-d (unbatched) or "
                           "3-d input", ShapeError)
        batched = input.ndim == 3
        x = input if batched else input.unsqueeze(1)
        if batched and not time_major:
            x = x.transpose(0, 1)
        steps, n, _ = x.shape
        if x.shape[-1] != self.input_size:
            raise op_error(type(self).__name__, [input.aval], f"input.size(-1) must be equal "
                           f"to input_size. Expected {self.input_size}, got {x.shape[-1]}",
                           ShapeError)
        d = 2 if self.bidirectional else 1
        h0, c0 = (hx if lstm else (hx, None)) if hx is not None else (None, None)
        if h0 is not None and not batched:
            h0 = h0.unsqueeze(1)
            c0 = c0.unsqueeze(1) if c0 is not None else None
        shape = (self.num_layers * d, n, self.hidden_size)
        if h0 is None:
            h0 = zeros(*shape, dtype=x.dtype, device=x.device)
        if lstm and c0 is None:
            c0 = zeros(*shape, dtype=x.dtype, device=x.device)
        if tuple(h0.shape) != shape:
            raise op_error(type(self).__name__, [h0.aval], f"Expected hidden size {shape}, got "
                           f"{tuple(h0.shape)}", ShapeError)
        h_n, c_n = [], []
        layer_in = x
        masks = None
        if lengths is not None:  # per step: which sequences are still running, (N, 1)
            masks = [Tensor((lengths > t).reshape(-1, 1), device=x.device)
                     for t in range(steps)]
        for layer in range(self.num_layers):
            outs = []
            for direction in range(d):
                k = layer * d + direction
                w_ih, w_hh, b_ih, b_hh = self._weights(k)
                gi = F.linear(layer_in, w_ih, b_ih)  # every step's input projection at once
                h, c = h0[k], (c0[k] if lstm else None)
                ys = [None] * steps
                order = range(steps - 1, -1, -1) if direction else range(steps)
                for t in order:
                    h_new, c_new = _step(self.mode, gi[t], h, c, w_hh, b_hh)
                    if masks is None:
                        h, c = h_new, c_new
                        ys[t] = h
                        continue
                    h = where(masks[t], h_new, h)
                    c = where(masks[t], c_new, c) if lstm else None
                    ys[t] = where(masks[t], h_new, 0.0)
                outs.append(stack(ys, 0) if steps else gi[:, :, :self.hidden_size] * 0)
                h_n.append(h)
                if lstm:
                    c_n.append(c)
            layer_in = outs[0] if d == 1 else cat(outs, -1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_in = F.dropout(layer_in, self.dropout, training=True)
        output = layer_in
        h_n = stack(h_n, 0)
        c_n = stack(c_n, 0) if lstm else None
        if not batched:
            output, h_n = output.squeeze(1), h_n.squeeze(1)
            c_n = c_n.squeeze(1) if lstm else None
        elif not time_major:
            output = output.transpose(0, 1)
        return (output, (h_n, c_n)) if lstm else (output, h_n)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(_RNNBase):
    """Elman RNN: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or relu)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or "
                             "'relu'.")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)


class LSTM(_RNNBase):
    """Gates i, f, g, o (PyTorch's order): c' = f c + i g, h' = o tanh(c')."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None,
                 dtype=None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, device=device, dtype=dtype)


class GRU(_RNNBase):
    """Gates r, z, n: n = tanh(x W_in + b_in + r (h W_hn + b_hn)), h' = (1 - z) n + z h."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device=None, dtype=None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, device=device, dtype=dtype)


class _CellBase(Module):
    def __init__(self, mode: str, input_size: int, hidden_size: int, bias: bool, device,
                 dtype) -> None:
        super().__init__()
        self.mode, self.input_size, self.hidden_size, self.bias = (mode, input_size,
                                                                   hidden_size, bias)
        gates = _GATES[mode] * hidden_size
        kw = dict(dtype=dtype, device=device)
        self.weight_ih = Parameter(zeros(gates, input_size, **kw))
        self.weight_hh = Parameter(zeros(gates, hidden_size, **kw))
        self.bias_ih = Parameter(zeros(gates, **kw)) if bias else None
        self.bias_hh = Parameter(zeros(gates, **kw)) if bias else None
        bound = 1.0 / math.sqrt(hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _run(self, input: Tensor, h: Tensor | None, c: Tensor | None):
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)
        n = x.shape[0]
        if h is None:
            h = zeros(n, self.hidden_size, dtype=x.dtype, device=x.device)
        elif not batched:
            h = h.unsqueeze(0)
        if self.mode == "LSTM":
            if c is None:
                c = zeros(n, self.hidden_size, dtype=x.dtype, device=x.device)
            elif not batched:
                c = c.unsqueeze(0)
        gi = F.linear(x, self.weight_ih, self.bias_ih)
        h, c = _step(self.mode, gi, h, c, self.weight_hh, self.bias_hh)
        if not batched:
            h = h.squeeze(0)
            c = c.squeeze(0) if c is not None else None
        return h, c

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class RNNCell(_CellBase):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, bias, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._run(input, hx, None)[0]


class LSTMCell(_CellBase):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__("LSTM", input_size, hidden_size, bias, device, dtype)

    def forward(self, input: Tensor, hx=None):
        h, c = hx if hx is not None else (None, None)
        return self._run(input, h, c)


class GRUCell(_CellBase):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__("GRU", input_size, hidden_size, bias, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._run(input, hx, None)[0]
