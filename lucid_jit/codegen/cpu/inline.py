"""Kernel bodies pasted into a segment (the native tier: one njit function per segment, its
kernels inlined): each call site's locals renamed apart."""

from __future__ import annotations

import functools
import textwrap

from lucid_jit.codegen.cpu.lowering import MATH_NAMES

# Names a kernel body uses that are not its own: kept as they are.
_KERNEL_GLOBALS = {"np", "range", "prange", "abs", "min", "max", "IndexError", *MATH_NAMES}


def inline_body(lines: list[str], prefix: str) -> list[str]:
    """A kernel's body for pasting into a segment: every local name gets `prefix` (so two
    call sites never share a variable), globals and attributes stay as they are; a `return`
    in the body would end the segment, and kernels have none."""
    template = _renamed("\n".join(lines))
    return [ln.replace(_PREFIX, prefix) for ln in template]


_PREFIX = "__lj_prefix__"


@functools.lru_cache(maxsize=4096)
def _renamed(body: str) -> tuple[str, ...]:
    """The body with every local name prefixed by _PREFIX (tokenized once per kernel text)."""
    import io
    import keyword
    import tokenize

    text = textwrap.dedent(body) + "\n"
    prefix = _PREFIX
    out, prev = [], None
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if (tok.type == tokenize.NAME and not keyword.iskeyword(tok.string)
                and tok.string not in _KERNEL_GLOBALS
                and not (prev is not None and prev.string == ".")):
            tok = tok._replace(string=prefix + tok.string)
        out.append(tok)
        if tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT,
                            tokenize.DEDENT):
            prev = tok
    result = tokenize.untokenize(out).rstrip("\n").split("\n")
    assert not any(ln.lstrip().startswith("return") for ln in result)
    return tuple(result)
