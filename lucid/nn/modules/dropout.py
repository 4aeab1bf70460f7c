"""Dropout: active in training mode (module.train()), the identity in eval mode."""

from __future__ import annotations

from lucid.nn import functional as F
from lucid.nn.functional.dropout import _check_p
from lucid.nn.modules.module import Module
from lucid.tensor import Tensor


class Dropout(Module):
    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        self.p = _check_p("Dropout", p)
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
