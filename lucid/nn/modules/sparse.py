"""Embedding: a lookup table of num_embeddings vectors of size embedding_dim."""

from __future__ import annotations

from lucid import dtypes
from lucid.autograd import no_grad
from lucid.factories import empty
from lucid.nn import functional as F
from lucid.nn import init
from lucid.nn.modules.module import Module, Parameter
from lucid.tensor import Tensor


class Embedding(Module):
    """weight[input]; weight ~ N(0, 1), with the padding_idx row zero and never updated."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 device=None, dtype=None) -> None:
        super().__init__()
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx {padding_idx} must be within "
                                 f"num_embeddings={num_embeddings}")
            padding_idx %= num_embeddings
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx
        dtype = dtypes.as_dtype(dtype or dtypes.DEFAULT_FLOAT)
        self.weight = Parameter(empty(num_embeddings, embedding_dim, dtype=dtype, device=device))
        self.reset_parameters()

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True,
                        padding_idx: int | None = None, **kwargs) -> Embedding:
        """An Embedding holding a copy of the 2-d `embeddings` (trainable unless `freeze`)."""
        if embeddings.ndim != 2:
            raise ValueError("Embeddings parameter is expected to be 2-dimensional")
        rows, cols = embeddings.shape
        module = cls(rows, cols, padding_idx=padding_idx, dtype=embeddings.dtype,
                     device=embeddings.device, **kwargs)
        with no_grad():
            module.weight.copy_(embeddings)
        module.weight.requires_grad = not freeze
        return module

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with no_grad():
                self.weight[self.padding_idx].fill_(0.0)

    def forward(self, input: Tensor) -> Tensor:
        return F.embedding(input, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s
