"""The cpu backend: numba code generated per graph. `backend.py` (NumbaBackend, Program: tiers,
pool, first calls), `module.py` (a graph -> one Python module of segments and host ops),
`kernels.py` (a body -> one njit kernel), `runtime.py` and `vmath.py` (what generated code
imports), `process.py` (what the backend changes in its process)."""
