"""Code generation: scalar building blocks that compiled kernels call (see vmath.py)."""
