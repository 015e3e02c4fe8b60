"""CUDA backend: CuPy arrays in, CuPy arrays out, kernels in fastconv._cuda (base.py has the
interface; the object is backend()).

CuPy is imported lazily (only when a CuPy array shows up). Outputs and workspaces are allocated
by CuPy, every launch goes on CuPy's current stream, nothing synchronizes the device (the one
stream synchronization, reading max_pool2d_backward's bad-index flag, is explained in
runner.py). The logic shared with the CPU emulation lives in runner.KernelRunner.
"""

from __future__ import annotations

import importlib

from .runner import KernelRunner

_runner = None


def _modules():
    import cupy  # noqa: PLC0415 - optional dependency, imported on first use

    try:
        cuda = importlib.import_module("fastconv._cuda")
    except ImportError as exc:  # built without nvcc
        raise RuntimeError(
            "fastconv was built without its CUDA kernels (no nvcc at build time); "
            "reinstall with nvcc on PATH or pass NumPy arrays"
        ) from exc
    return cupy, cuda


def backend() -> KernelRunner:
    """The CUDA backend: a KernelRunner over CuPy and fastconv._cuda (created on first use)."""
    global _runner
    if _runner is None:
        cupy, cuda = _modules()

        def device_check(name, a):
            current = cupy.cuda.Device().id
            if a.device.id != current:
                raise ValueError(
                    f"{name} lives on GPU {a.device.id} but the current CuPy device is "
                    f"GPU {current}; use `with cupy.cuda.Device({a.device.id}):`"
                )

        _runner = KernelRunner(
            cupy,
            cuda,
            ptr=lambda a: a.data.ptr,
            stream=lambda: cupy.cuda.get_current_stream().ptr,
            to_host=lambda a: a.get(),  # copies on the current stream and waits for that stream
            device_check=device_check,
        )
    return _runner
