"""CUDA backend: CuPy arrays in, CuPy arrays out, kernels in fastconv._cuda.

CuPy is imported lazily (only when a CuPy array shows up). Outputs are allocated by CuPy and
every launch goes on CuPy's current stream.
"""
from __future__ import annotations

import importlib


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


def _stream(cupy):
    return cupy.cuda.get_current_stream().ptr


def contiguous(a):
    import cupy

    return cupy.ascontiguousarray(a)


def _not_yet(op):
    raise NotImplementedError(f"fastconv.{op} has no CUDA kernel yet; pass NumPy arrays")


def conv2d_forward(spec, x, w, bias):
    _not_yet("conv2d")


def conv2d_backward_data(spec, gy, w):
    _not_yet("conv2d_backward_data")


def conv2d_backward_weight(spec, gy, x, with_bias):
    _not_yet("conv2d_backward_weight")


def max_pool2d_forward(spec, x):
    _not_yet("max_pool2d")


def max_pool2d_backward(spec, gy, indices):
    _not_yet("max_pool2d_backward")


def relu_forward(x, out=None):
    cupy, cuda = _modules()
    y = cupy.empty_like(x) if out is None else out
    cuda.relu_forward(x.data.ptr, y.data.ptr, x.size, x.dtype == cupy.float64, _stream(cupy))
    return y


def relu_backward(gy, y):
    cupy, cuda = _modules()
    gx = cupy.empty_like(gy)
    cuda.relu_backward(gy.data.ptr, y.data.ptr, gx.data.ptr, gy.size, gy.dtype == cupy.float64, _stream(cupy))
    return gx
