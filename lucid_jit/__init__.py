"""lucid_jit: the compiler for lucid (tracing, graph IR, fusion, Numba codegen).

`lucid.compile` imports this package on first use, so `import lucid` stays free of numba.
"""

__version__ = "0.1.0"
