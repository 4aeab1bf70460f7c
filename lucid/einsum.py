"""`lucid.einsum`: Einstein summation lowered onto sum, permute, reshape, broadcast and batched
matmul, so the compiler sees ordinary nodes (a product's epilogue fuses as after any matmul).

Operands are contracted left to right. For each pair: letters only one operand has and nothing
later needs are summed out first; the pair is permuted to (batch, kept, contracted) and
(batch, contracted, kept), reshaped to 3-d, multiplied, and reshaped back. A letter repeated
within one operand (a diagonal, "ii->i") is an error; `...` stands for the same leading
broadcast dims in every operand.
"""

from __future__ import annotations

import string

from lucid.ops.registry import ShapeError, op_error
from lucid.tensor import Tensor

_LETTERS = string.ascii_letters


def _parse(equation: str, operands) -> tuple[list[str], str]:
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"einsum(): {len(terms)} operand terms in {equation!r} for "
                         f"{len(operands)} operands")
    # "..." becomes fresh capital-free letters, the same ones for every operand
    ell = max((t.ndim - (len(term) - 3) for term, t in zip(terms, operands, strict=True)
               if "..." in term), default=0)
    used = set(eq)
    spare = [c for c in _LETTERS if c not in used][:ell]
    out_terms = []
    for term, t in zip(terms, operands, strict=True):
        if "..." in term:
            k = t.ndim - (len(term) - 3)
            term = term.replace("...", "".join(spare[ell - k:]))
        if len(term) != t.ndim:
            raise ValueError(f"einsum(): the term {term!r} has {len(term)} subscripts for an "
                             f"operand of {t.ndim} dims")
        if len(set(term)) != len(term):
            raise NotImplementedError(f"einsum(): a repeated subscript within one operand "
                                      f"({term!r}, a diagonal) is not supported")
        out_terms.append(term)
    if arrow:
        rhs = rhs.replace("...", "".join(spare))
    else:
        counts = {}
        for term in out_terms:
            for c in term:
                counts[c] = counts.get(c, 0) + 1
        rhs = "".join(spare) + "".join(sorted(c for c, n in counts.items()
                                              if n == 1 and c not in spare))
    for c in rhs:
        if not any(c in term for term in out_terms):
            raise ValueError(f"einsum(): output subscript {c!r} appears in no operand")
    return out_terms, rhs


def _sum_out(t: Tensor, term: str, keep: set[str]) -> tuple[Tensor, str]:
    drop = [i for i, c in enumerate(term) if c not in keep]
    if drop:
        t = t.sum(tuple(drop))
        term = "".join(c for c in term if c in keep)
    return t, term


def _pair(a: Tensor, ta: str, b: Tensor, tb: str, needed: set[str]):
    a, ta = _sum_out(a, ta, needed | set(tb))
    b, tb = _sum_out(b, tb, needed | set(ta))
    batch = [c for c in ta if c in tb and c in needed]
    contract = [c for c in ta if c in tb and c not in needed]
    keep_a = [c for c in ta if c not in tb]
    keep_b = [c for c in tb if c not in ta]
    size = {}
    for t, term in ((a, ta), (b, tb)):
        for c, n in zip(term, t.shape, strict=True):
            if c in size and size[c] != n and 1 not in (size[c], n):
                raise op_error("einsum", [a.aval, b.aval], f"subscript {c!r} has sizes "
                               f"{size[c]} and {n}", ShapeError)
            size[c] = max(size.get(c, n), n)
    a = a.permute(*[ta.index(c) for c in batch + keep_a + contract])
    b = b.permute(*[tb.index(c) for c in batch + contract + keep_b])
    a = a.broadcast_to(tuple(size[c] for c in batch + keep_a + contract))
    b = b.broadcast_to(tuple(size[c] for c in batch + contract + keep_b))

    def prod(cs):
        n = 1
        for c in cs:
            n *= size[c]
        return n

    out = a.reshape(prod(batch), prod(keep_a), prod(contract)).matmul(
        b.reshape(prod(batch), prod(contract), prod(keep_b)))
    out = out.reshape(tuple(size[c] for c in batch + keep_a + keep_b))
    return out, "".join(batch + keep_a + keep_b)


def einsum(equation: str, *operands) -> Tensor:
    """Sum of products over the subscripts the output does not name (NumPy's and PyTorch's
    einsum: "ij,jk->ik", "bhqd,bhkd->bhqk", "i,i->", "...ij->...ji")."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise ValueError("einsum(): must provide at least one operand")
    from lucid.functions import _as_tensor

    operands = [_as_tensor(t) for t in operands]
    terms, rhs = _parse(equation, operands)
    t, term = operands[0], terms[0]
    for k in range(1, len(operands)):
        later = set(rhs).union(*terms[k + 1:]) if k + 1 < len(terms) else set(rhs)
        t, term = _pair(t, term, operands[k], terms[k], later)
    t, term = _sum_out(t, term, set(rhs))
    return t.permute(*[term.index(c) for c in rhs]) if term != rhs else t
