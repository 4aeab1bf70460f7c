"""Variable-length sequences: pad_sequence, and PackedSequence with pack_padded_sequence,
pad_packed_sequence and pack_sequence (PyTorch's layout: `data` holds, time step after time
step, the rows of the sequences still running, longest first; `batch_sizes` counts them).

Packing and unpacking are gathers with indices made on the host from the lengths, so both
differentiate and trace. The recurrent layers take a PackedSequence: they run the padded batch
and keep each sequence's state once its last step is past (lucid/nn/modules/rnn.py).
"""

from __future__ import annotations

import numpy as np

from lucid.tensor import Tensor


class PackedSequence:
    """data (sum(lengths), *), batch_sizes (int64, one per time step), and the permutation that
    sorted the batch by decreasing length (sorted_indices) with its inverse (unsorted_indices),
    None when the batch came sorted."""

    def __init__(self, data: Tensor, batch_sizes=None, sorted_indices=None,
                 unsorted_indices=None) -> None:
        if isinstance(data, (tuple, list)) and batch_sizes is None:  # PackedSequence(*packed)
            data, batch_sizes, sorted_indices, unsorted_indices = (list(data) + [None] * 4)[:4]
        self.data = data
        self.batch_sizes = batch_sizes if isinstance(batch_sizes, Tensor) else \
            Tensor(np.asarray(batch_sizes, np.int64))
        self.sorted_indices = sorted_indices
        self.unsorted_indices = unsorted_indices
        if sorted_indices is not None and unsorted_indices is None:
            self.unsorted_indices = Tensor(np.argsort(_host(sorted_indices)).astype(np.int64))

    def __iter__(self):
        return iter((self.data, self.batch_sizes, self.sorted_indices, self.unsorted_indices))

    def __getitem__(self, k):
        return tuple(self)[k]

    def __len__(self) -> int:
        return 4

    def lengths(self) -> np.ndarray:
        """Each sequence's length, in the batch's original order."""
        sizes = _host(self.batch_sizes)
        counts = np.array([(sizes > b).sum() for b in range(int(sizes[0]) if len(sizes) else 0)],
                          np.int64)
        if self.unsorted_indices is not None:
            counts = counts[_host(self.unsorted_indices)]
        return counts

    def to(self, *args, **kwargs) -> PackedSequence:
        return PackedSequence(self.data.to(*args, **kwargs), self.batch_sizes,
                              self.sorted_indices, self.unsorted_indices)

    def __repr__(self) -> str:
        return (f"PackedSequence(data={self.data!r}, batch_sizes={self.batch_sizes!r}, "
                f"sorted_indices={self.sorted_indices!r}, "
                f"unsorted_indices={self.unsorted_indices!r})")


def _host(t) -> np.ndarray:
    return np.asarray(t.tolist() if isinstance(t, Tensor) else t, np.int64)


def _order(lengths: np.ndarray) -> np.ndarray:
    return np.argsort(-lengths, kind="stable")


def _rows(lengths: np.ndarray, order: np.ndarray):
    """(time index, batch index) of each row of `data`, in packed order."""
    steps = int(lengths.max()) if len(lengths) else 0
    t_idx, b_idx = [], []
    for t in range(steps):
        running = order[lengths[order] > t]
        t_idx.extend([t] * len(running))
        b_idx.extend(running.tolist())
    return np.asarray(t_idx, np.int64), np.asarray(b_idx, np.int64)


def pack_padded_sequence(input: Tensor, lengths, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch (T, B, *) (or (B, T, *)) of sequences of the given lengths."""
    lengths = _host(lengths).reshape(-1)
    x = input.transpose(0, 1) if batch_first else input
    if len(lengths) != x.shape[1]:
        raise ValueError(f"Expected `len(lengths)` to be equal to batch_size, but got "
                         f"{len(lengths)} (batch_size={x.shape[1]})")
    if len(lengths) and (lengths.min() <= 0 or lengths.max() > x.shape[0]):
        raise RuntimeError("Length of all samples has to be greater than 0 and at most the "
                           f"padded length {x.shape[0]}, but got lengths {lengths.tolist()}")
    if enforce_sorted:
        if np.any(np.diff(lengths) > 0):
            raise RuntimeError("`lengths` array must be sorted in decreasing order when "
                               "`enforce_sorted` is True. You can pass `enforce_sorted=False` "
                               "to pack_padded_sequence and/or pack_sequence to sidestep this "
                               "requirement if you do not need ONNX exportability.")
        order, sorted_indices = np.arange(len(lengths)), None
    else:
        order = _order(lengths)
        sorted_indices = Tensor(order.astype(np.int64), device=input.device)
    t_idx, b_idx = _rows(lengths, order)
    batch_sizes = np.bincount(t_idx, minlength=int(lengths.max()) if len(lengths) else 0)
    data = x[Tensor(t_idx, device=x.device), Tensor(b_idx, device=x.device)]
    packed = PackedSequence(data, Tensor(batch_sizes.astype(np.int64)), sorted_indices)
    packed._lengths = lengths
    return packed


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False,
                        padding_value: float = 0.0, total_length: int | None = None):
    """The padded batch (T, B, *) (or (B, T, *)) and the lengths (int64), in the original
    order."""
    from lucid.functions import cat

    lengths = getattr(sequence, "_lengths", None)
    lengths = sequence.lengths() if lengths is None else lengths
    steps = int(lengths.max()) if len(lengths) else 0
    if total_length is not None:
        if total_length < steps:
            raise ValueError(f"Expected total_length to be at least the length of the longest "
                             f"sequence in input, but got total_length={total_length} and max "
                             f"sequence length being {steps}")
        steps = total_length
    data = sequence.data
    order = np.arange(len(lengths)) if sequence.sorted_indices is None else \
        _host(sequence.sorted_indices)
    t_idx, b_idx = _rows(lengths, order)
    where = np.full((steps, len(lengths)), len(t_idx), np.int64)  # the padding row
    where[t_idx, b_idx] = np.arange(len(t_idx))
    pad_row = Tensor(np.full((1,) + tuple(data.shape[1:]), padding_value, data.dtype),
                     device=data.device)
    padded = cat([data, pad_row], 0)[Tensor(where, device=data.device)]
    out = padded.transpose(0, 1) if batch_first else padded
    return out, Tensor(lengths.astype(np.int64))


def repack(padded: Tensor, like: PackedSequence) -> PackedSequence:
    """A (T, B, *) batch packed with `like`'s lengths and order (a recurrent layer's output)."""
    lengths = getattr(like, "_lengths", None)
    lengths = like.lengths() if lengths is None else lengths
    order = np.arange(len(lengths)) if like.sorted_indices is None else \
        _host(like.sorted_indices)
    t_idx, b_idx = _rows(lengths, order)
    data = padded[Tensor(t_idx, device=padded.device), Tensor(b_idx, device=padded.device)]
    out = PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)
    out._lengths = lengths
    return out


def pack_sequence(sequences, enforce_sorted: bool = True) -> PackedSequence:
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed: PackedSequence) -> list[Tensor]:
    padded, lengths = pad_packed_sequence(packed, batch_first=True)
    return [padded[b, :int(n)] for b, n in enumerate(lengths.tolist())]


def unpad_sequence(padded: Tensor, lengths, batch_first: bool = False) -> list[Tensor]:
    x = padded if batch_first else padded.transpose(0, 1)
    return [x[b, :int(n)] for b, n in enumerate(_host(lengths).reshape(-1))]


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    """Stack tensors of shape (L_i, *) into (L_max, B, *) (or (B, L_max, *) with
    batch_first), padding with `padding_value` (after each sequence, or before it with
    padding_side="left")."""
    from lucid.functions import stack
    from lucid.nn.functional import pad

    sequences = list(sequences)
    if not sequences:
        raise RuntimeError("received an empty list of sequences")
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', not {padding_side!r}")
    longest = max(s.shape[0] for s in sequences)
    padded = []
    for s in sequences:
        extra = longest - s.shape[0]
        pairs = [0, 0] * (s.ndim - 1) + ([extra, 0] if padding_side == "left" else [0, extra])
        padded.append(pad(s, tuple(pairs), value=padding_value) if extra else s)
    out = stack(padded, 0)
    return out if batch_first else out.transpose(0, 1)
