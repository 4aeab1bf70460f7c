"""`lucid.cuda`: whether the CUDA device is there, and waiting for it.

Importing this module does not load numba: `is_available()` loads the device runtime, the first
time it is called.
"""

from __future__ import annotations

from lucid import device


def is_available() -> bool:
    """Whether tensors can live on "cuda": numba-cuda is installed and finds a GPU and driver
    (or runs its simulator, with NUMBA_ENABLE_CUDASIM=1 set before numba is imported)."""
    return device.available("cuda")


def device_count() -> int:
    return 1 if is_available() else 0


def synchronize() -> None:
    """Wait for every queued kernel and copy on the device to finish."""
    device.runtime().synchronize()


def is_simulator() -> bool:
    """Whether "cuda" is numba's CUDA simulator (kernels run as Python on the CPU)."""
    return is_available() and device.runtime().simulator


def manual_seed(seed: int) -> None:
    """lucid has one generator for every device (the same numbers on the CPU and the GPU):
    this seeds it, as lucid.manual_seed does."""
    from lucid.factories import manual_seed as seed_all

    seed_all(seed)


manual_seed_all = manual_seed


def seed() -> int:
    from lucid.factories import seed as reseed

    return reseed()


seed_all = seed


def is_bf16_supported(including_emulation: bool = True) -> bool:
    """False: lucid has no bfloat16 arithmetic."""
    return False


def current_device() -> int:
    return 0


def get_device_name(device=None) -> str:
    if not is_available():
        raise RuntimeError("lucid.cuda: no CUDA device is available")
    return "CUDA simulator" if is_simulator() else "CUDA device"


def empty_cache() -> None:
    """Nothing to release: lucid frees device arrays when their tensors go."""


class amp:  # noqa: N801 (PyTorch's `torch.cuda.amp` namespace)
    """`lucid.cuda.amp.autocast()` and `GradScaler()`: lucid.amp's, for "cuda"."""

    @staticmethod
    def autocast(enabled: bool = True, dtype=None, cache_enabled: bool | None = None):
        from lucid.amp import autocast

        return autocast("cuda", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)

    @staticmethod
    def GradScaler(*args, **kwargs):  # noqa: N802
        from lucid.amp import GradScaler

        return GradScaler("cuda", *args, **kwargs)
