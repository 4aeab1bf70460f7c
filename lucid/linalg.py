"""lucid.linalg: the norms (PyTorch's torch.linalg.norm, vector_norm, matrix_norm) in lucid ops.
Decompositions, inverses and determinants are not there (docs/DIFFERENCES.md)."""

from __future__ import annotations

from lucid.tensor import Tensor


def vector_norm(x: Tensor, ord=2, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A002
    return x.norm(ord, dim, keepdim)


def matrix_norm(x: Tensor, ord="fro", dim=(-2, -1), keepdim: bool = False) -> Tensor:  # noqa: A002
    if ord != "fro":
        raise NotImplementedError(f"matrix_norm(ord={ord!r}): lucid has the Frobenius norm")
    return x.norm("fro", dim, keepdim)


def norm(x: Tensor, ord=None, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A002
    """The 2-norm of the flattened tensor by default; `ord` a vector order (with a vector dim)
    or "fro"."""
    if ord is None:
        return x.norm(2, dim, keepdim)
    if ord == "fro":
        return x.norm("fro", dim if dim is not None else (-2, -1), keepdim)
    return x.norm(ord, dim, keepdim)
