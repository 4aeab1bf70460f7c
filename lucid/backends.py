"""PyTorch's `torch.backends` switches, so that training scripts that set them run unchanged.

lucid's CUDA target runs its own kernels (no cuDNN) and there is no MPS device, so
`cudnn.is_available()` and `mps.is_available()` are False and the flags are recorded, not acted
on: lucid's kernels are deterministic and do not use TF32 either way.
"""

from __future__ import annotations


class _Switches:
    def __init__(self, **flags) -> None:
        self.__dict__.update(flags)

    def __repr__(self) -> str:
        return f"<lucid.backends switches {self.__dict__}>"


class _CuDNN(_Switches):
    @staticmethod
    def is_available() -> bool:
        return False

    @staticmethod
    def version() -> None:
        return None


class _Unavailable(_Switches):
    @staticmethod
    def is_available() -> bool:
        return False

    @staticmethod
    def is_built() -> bool:
        return False


class _Cuda(_Switches):
    @staticmethod
    def is_built() -> bool:
        from lucid import cuda

        return cuda.is_available()


cudnn = _CuDNN(enabled=True, benchmark=False, deterministic=False, allow_tf32=True)
cuda = _Cuda(matmul=_Switches(allow_tf32=False, allow_fp16_reduced_precision_reduction=True,
                              allow_bf16_reduced_precision_reduction=True))
mps = _Unavailable()
mkldnn = _Unavailable(enabled=False)
