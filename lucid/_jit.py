"""The one place lucid names lucid_jit, its compiler: `lucid.compile` and the device runtimes
lucid_jit provides are loaded from here on first use, so `import lucid` stays free of the
compiler and of numba. lucid calls what they register (`lucid.device.register_runtime`); it never
reaches into them."""

from __future__ import annotations


def compiler():
    """lucid_jit's `compile`."""
    from lucid_jit import compile as _compile

    return _compile


def load_device_runtime(name: str) -> bool:
    """Load the runtime of device `name` ("cuda"): it registers itself with lucid.device when
    its device is there. Whether it is (ImportError where its packages are missing)."""
    if name != "cuda":
        return False
    from lucid_jit.codegen.cuda import runtime

    return runtime.available()
