"""Graph-to-graph passes, one per file, registered by name; `run_pipeline` runs a named list."""

from lucid_jit.passes import cse, dce, fold, simplify  # importing a pass registers it
from lucid_jit.passes.registry import PASSES, PIPELINES, PassStat, register, run_pipeline

__all__ = ["PASSES", "PIPELINES", "PassStat", "register", "run_pipeline"]
