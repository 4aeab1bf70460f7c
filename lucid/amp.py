"""Mixed precision, PyTorch's `torch.amp`: `autocast` and `GradScaler`, so that AMP training
scripts run unchanged.

lucid computes in its tensors' own dtypes (float32 or float64; it has no float16 or bfloat16
arithmetic), so `autocast` changes nothing inside its block. `GradScaler` does what PyTorch's
does, in float32: it multiplies the loss by a power-of-two scale (exact), divides the gradients
back, skips an optimizer step whose gradients hold an inf or nan, and grows or shrinks the scale.
Like PyTorch's, a scaler made for "cuda" where no CUDA device is available disables itself (with
a warning) and then passes everything through.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np

from lucid import dtypes
from lucid.autograd import no_grad


class _LowPrecision:
    """A dtype lucid names but does not compute in (for `autocast(dtype=...)` arguments)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"lucid.{self.name}"


float16 = np.dtype("float16")
bfloat16 = _LowPrecision("bfloat16")


class autocast:  # noqa: N801 (PyTorch's spelling)
    """A context manager (and decorator) that PyTorch uses to run ops in lower precision; in
    lucid it checks its arguments and changes nothing (see the module's doc)."""

    def __init__(self, device_type: str = "cuda", dtype=None, enabled: bool = True,
                 cache_enabled: bool | None = None) -> None:
        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
        if device_type.split(":")[0] not in ("cpu", "cuda"):
            raise RuntimeError(f"User specified an unsupported autocast device_type "
                               f"'{device_type}'")
        if dtype is not None and dtype not in (float16, bfloat16) and not (
                _is_dtype(dtype) and dtypes.is_floating(dtypes.as_dtype(dtype))):
            raise RuntimeError(f"autocast: dtype must be a floating dtype, not {dtype!r}")
        self.device_type, self.fast_dtype, self.enabled = device_type, dtype, bool(enabled)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self:
                return fn(*args, **kwargs)
        return wrapper


def _is_dtype(d) -> bool:
    try:
        dtypes.as_dtype(d)
    except TypeError:
        return False
    return True


def is_autocast_available(device_type: str) -> bool:
    return device_type in ("cpu", "cuda")


class GradScaler:
    """Dynamic loss scaling: `scale(loss)`, `step(optimizer)` (after `unscale_`, which it calls
    if you did not), `update()`; PyTorch's defaults and state dict."""

    def __init__(self, device: str = "cuda", init_scale: float = 2.0 ** 16,
                 growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True) -> None:
        if enabled and device.split(":")[0] == "cuda":
            from lucid import cuda

            if not cuda.is_available():
                from lucid.ops.registry import user_stacklevel

                warnings.warn("lucid.amp.GradScaler is enabled, but CUDA is not available. "
                              "Disabling.", UserWarning, stacklevel=user_stacklevel())
                enabled = False
        if growth_factor <= 1.0:
            raise ValueError("The growth factor must be > 1.0.")
        if backoff_factor >= 1.0:
            raise ValueError("The backoff factor must be < 1.0.")
        self.device = device
        self._enabled = enabled
        self._scale = float(init_scale)
        self._growth_factor, self._backoff_factor = float(growth_factor), float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._growth_tracker = 0
        self._per_optimizer: dict[int, dict] = {}

    def is_enabled(self) -> bool:
        return self._enabled

    def get_scale(self) -> float:
        return self._scale if self._enabled else 1.0

    def scale(self, outputs):
        """outputs times the scale (a tensor, or tensors in lists, tuples and dicts)."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        if isinstance(outputs, dict):
            return {k: self.scale(v) for k, v in outputs.items()}
        return outputs * self._scale

    def _state(self, optimizer) -> dict:
        return self._per_optimizer.setdefault(id(optimizer), {"unscaled": False,
                                                              "found_inf": False,
                                                              "stepped": False})

    def unscale_(self, optimizer) -> None:
        """Divide the optimizer's gradients by the scale, and note whether any is inf or nan."""
        if not self._enabled:
            return
        state = self._state(optimizer)
        if state["unscaled"]:
            raise RuntimeError("unscale_() has already been called on this optimizer since the "
                               "last update().")
        if state["stepped"]:
            raise RuntimeError("unscale_() is being called after step().")
        inv = 1.0 / self._scale
        found = False
        with no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    p.grad.mul_(inv)
                    if not bool(p.grad.isfinite().all().item()):
                        found = True
        state["unscaled"], state["found_inf"] = True, found

    def step(self, optimizer, *args, **kwargs):
        """optimizer.step(), unless the (unscaled) gradients hold an inf or nan."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is "
                               "enabled.")
        state = self._state(optimizer)
        if state["stepped"]:
            raise RuntimeError("step() has already been called since the last update().")
        if not state["unscaled"]:
            self.unscale_(optimizer)
        state["stepped"] = True
        if state["found_inf"]:
            return None
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale=None) -> None:
        """Shrink the scale after a skipped step, grow it after growth_interval good ones."""
        if not self._enabled:
            return
        if new_scale is not None:
            self._scale = float(new_scale.item() if hasattr(new_scale, "item") else new_scale)
        else:
            found = any(s["found_inf"] for s in self._per_optimizer.values())
            if found:
                self._scale *= self._backoff_factor
                self._growth_tracker = 0
            else:
                self._growth_tracker += 1
                if self._growth_tracker == self._growth_interval:
                    grown = self._scale * self._growth_factor
                    if math.isfinite(grown):
                        self._scale = grown
                    self._growth_tracker = 0
        self._per_optimizer = {}

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def state_dict(self) -> dict:
        if not self._enabled:
            return {}
        return {"scale": self._scale, "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval, "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state_dict: dict) -> None:
        if not self._enabled:
            return
        if not state_dict:
            raise RuntimeError("The source state dict is empty, possibly because it was saved "
                               "from a disabled instance of GradScaler.")
        self._scale = float(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])
