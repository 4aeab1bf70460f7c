"""The cuda backend: `backend.py` (CudaBackend), `program.py` (a graph -> steps of kernel
launches), `kernels.py` (a body -> CUDA kernels), `ops.py` (kernels of single ops: copies,
slices, gathers, pad, concat, unfold/fold, pooling, argmax), `runtime.py` (the device runtime
lucid registers: device arrays, copies, views, launch settings), `devmath.py` (math device
functions), `eager.py` (eager device ops as one-node graphs), `ptxcheck.py` (compile recorded
kernels to PTX without a GPU)."""
