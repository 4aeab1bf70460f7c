"""THE op registry: every primitive lucid has, one family per file. See registry.py.

Every registered primitive is `lucid.ops.<name>` (taken from the registry itself, so a new op is
one `defop` block in its family's file and nothing here)."""

from lucid.ops import (  # noqa: F401
    collective,
    conv,
    creation,
    elementwise,
    linalg,
    matmul,
    movement,
    reduction,
)
from lucid.ops.creation import GENERATOR
from lucid.ops.movement import Slice, Slot
from lucid.ops.registry import (
    ALL,
    CURRENT_TRACER,
    GRAD_ENABLED,
    OUT,
    REGISTRY,
    Aval,
    Context,
    DTypeError,
    LucidError,
    Op,
    ShapeError,
    bind,
    defop,
    op_error,
    user_location,
)

globals().update(REGISTRY)

__all__ = sorted(name for name in dir() if not name.startswith("_"))
