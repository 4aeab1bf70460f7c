"""Graph-to-graph passes, one per file, registered by name; `run_pipeline` runs a named list."""

# importing a pass registers it
from lucid_jit.passes import (
    cse,
    dce,
    fold,
    fuse_elementwise,
    fuse_matmul_epilogue,
    fuse_reduction,
    lower,
    simplify,
)
from lucid_jit.passes.fusion_log import FusionLog, fusion_log, fusion_report
from lucid_jit.passes.registry import PASSES, PIPELINES, PassStat, register, run_pipeline

__all__ = ["PASSES", "PIPELINES", "FusionLog", "PassStat", "fusion_log", "fusion_report",
           "register", "run_pipeline"]
