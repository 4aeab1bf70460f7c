"""Cache entries: a compiled graph with its inputs' sources, guards and write-backs, or an eager
fallback. A `CompiledEntry`'s `check` (check.py) and `run` (run.py) are generated for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lucid.tensor import Tensor
from lucid_jit.ir.graph import Graph
from lucid_jit.tracing.capture import Effect  # noqa: F401 (entries hold them)

_share = Tensor._share


# ----------------------------------------------------------------------------- entries


@dataclass
class Stage:
    name: str
    seconds: float
    nodes: int


@dataclass
class EagerEntry:
    """An input signature the function runs eagerly for (a graph break, or a failed trace)."""

    key: tuple
    reason: str
    location: str
    guards: list = field(default_factory=list)
    kind: str = "eager"
    hits: int = 0

    def __post_init__(self) -> None:
        from lucid_jit.cache.check import compile_guards

        # check(flat): () when the guards hold, else None; failures(flat): why not
        self.check, self.failures = compile_guards(self.guards, "an eager entry")


@dataclass
class CompiledEntry:
    key: tuple
    traced: Graph
    forward: Graph
    input_sources: list
    input_checks: list
    alias_checks: list
    slot_sources: list
    float_guards: list
    guards: list
    modules: list
    epoch: int
    effects: list[Effect]
    out_spec: Any
    out_leaves: list
    n_user: int
    backward: Graph | None = None
    backward_traced: Graph | None = None
    backward_sources: list = field(default_factory=list)
    leaf_sources: list = field(default_factory=list)
    grad_index: list = field(default_factory=list)
    diff_avals: list = field(default_factory=list)
    stages: list[Stage] = field(default_factory=list)
    pass_stats: dict = field(default_factory=dict)
    backend: Any = None
    name: str = "fn"
    index: int = 0  # in its function's cache (explain and the logs number entries alike)
    kind: str = "compiled"
    hits: int = 0
    # run(flat, arrays): the generated call (cache/run.py), made once the backend is prepared
    run: Any = None
    device: str = "cpu"
    input_hosts: dict = field(default_factory=dict)
    first_call_seconds: float | None = None  # the wall time of the call that traced it

    # ------------------------------------------------------------------ guards

    def __post_init__(self) -> None:
        from lucid_jit.cache.check import compile_check

        # check(flat): the forward graph's input arrays for this call, or None when a guard
        # fails: generated straight-line code (check.py), since it runs on every call.
        self.check = compile_check(self)
        self._failures = None

    def failures(self, flat) -> list[str]:
        """Why `check` fails, one line per failed condition, with the traced and the current
        value (generated from the same conditions as `check`, on first use)."""
        if self._failures is None:
            from lucid_jit.cache.check import compile_failures

            self._failures = compile_failures(self)
        return self._failures(flat)

    _traced_slots: list = field(default_factory=list)
