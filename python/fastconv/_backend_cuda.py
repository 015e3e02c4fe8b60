"""CUDA backend: CuPy arrays in, CuPy arrays out, kernels in fastconv._cuda.

CuPy is imported lazily (only when a CuPy array shows up). Outputs and workspaces are allocated
by CuPy, every launch goes on CuPy's current stream, nothing synchronizes the device (the one
stream synchronization, reading max_pool2d_backward's bad-index flag, is explained in
_cuda_runner.py). The logic shared with the CPU emulation lives in _cuda_runner.KernelRunner.
"""
from __future__ import annotations

import importlib

from ._cuda_runner import KernelRunner

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


def runner() -> KernelRunner:
    """The KernelRunner over CuPy and fastconv._cuda (created on first use)."""
    global _runner
    if _runner is None:
        cupy, cuda = _modules()

        def device_check(name, a):
            current = cupy.cuda.Device().id
            if a.device.id != current:
                raise ValueError(f"{name} lives on GPU {a.device.id} but the current CuPy device is "
                                 f"GPU {current}; use `with cupy.cuda.Device({a.device.id}):`")

        _runner = KernelRunner(
            cupy, cuda,
            ptr=lambda a: a.data.ptr,
            stream=lambda: cupy.cuda.get_current_stream().ptr,
            to_host=lambda a: a.get(),  # copies on the current stream and waits for that stream
            device_check=device_check,
        )
    return _runner


def contiguous(a):
    import cupy  # noqa: PLC0415

    return cupy.ascontiguousarray(a)


def conv2d_forward(spec, x, w, bias):
    return runner().conv2d_forward(spec, x, w, bias)


def conv2d_backward_data(spec, gy, w):
    return runner().conv2d_backward_data(spec, gy, w)


def conv2d_backward_weight(spec, gy, x, with_bias):
    return runner().conv2d_backward_weight(spec, gy, x, with_bias)


def max_pool2d_forward(spec, x):
    return runner().max_pool2d_forward(spec, x)


def max_pool2d_backward(spec, gy, indices):
    return runner().max_pool2d_backward(spec, gy, indices)


def relu_forward(x, out=None):
    return runner().relu_forward(x, out)


def relu_backward(gy, y):
    return runner().relu_backward(gy, y)


def matmul(a, b, bias=None, relu=False):
    """a (M, K) @ b (K, N) [+ bias] [ReLU] through CuPy (cuBLAS), on the current stream."""
    import cupy  # noqa: PLC0415

    c = a @ b
    if bias is not None:
        c += bias
    if relu:
        cupy.maximum(c, 0, out=c)   # NaN propagates like the CPU kernels
    return c


def column_sums(g):
    return g.sum(axis=0)
