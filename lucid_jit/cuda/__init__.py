"""lucid_jit's CUDA target: the device runtime (`runtime`), the math device functions generated
kernels call (`devmath`), and eager device ops as one-node graphs (`eager`). The kernel emitter is
`lucid_jit.codegen.cuda`; the backend is `lucid_jit.backends.CudaBackend`."""
