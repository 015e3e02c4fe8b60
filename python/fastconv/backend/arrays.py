"""Which array library an array belongs to, without importing CuPy unless the caller uses it."""

from __future__ import annotations

import numpy as np


def is_cupy(a) -> bool:
    return type(a).__module__.split(".")[0] == "cupy"


def array_module(a):
    """NumPy for NumPy arrays (and scalars), CuPy for CuPy arrays; never imports CuPy otherwise."""
    if is_cupy(a):
        import cupy  # noqa: PLC0415 - only when the caller already uses CuPy

        return cupy
    return np


def module_named(device):
    """The array module a device name stands for: 'numpy'/'cpu' or 'cupy'/'gpu'/'cuda'."""
    if device in ("numpy", "cpu", np):
        return np
    if device in ("cupy", "gpu", "cuda") or getattr(device, "__name__", None) == "cupy":
        import cupy  # noqa: PLC0415

        return cupy
    raise ValueError(f"device must be 'numpy'/'cpu' or 'cupy'/'gpu', got {device!r}")


def to_numpy(a):
    """A NumPy array of a's values (a copy from the GPU for CuPy arrays)."""
    return a.get() if hasattr(a, "get") and is_cupy(a) else np.asarray(a)
