"""The CUDA backend on the CPU: fastconv's CUDA kernels compiled as host C++ (fastconv._cuda_emu,
see csrc/cuda/emu/cuda_emu.h) run on NumPy arrays through the same KernelRunner as the GPU.

For tests and debugging, not speed (every GPU thread is a fiber). Same function names and
signatures as _backend_cpu.py / _backend_cuda.py, plus `runner()` to pick kernel versions:

    from fastconv import _backend_cuda_emu as emu
    with emu.runner().using(version=2):
        y = emu.conv2d_forward(spec, x, w, b)
"""
from __future__ import annotations

import numpy as np

from . import _cuda_emu
from ._cuda_runner import KernelRunner

_runner = KernelRunner(
    np, _cuda_emu,
    ptr=lambda a: a.ctypes.data,
    stream=lambda: 0,  # emulated launches run synchronously
    to_host=np.asarray,
)


def runner() -> KernelRunner:
    return _runner


def contiguous(a):
    """A C-contiguous array. In the sanitized build (.ci/run's sanitizer job) always a fresh copy
    that ends exactly where its allocation ends, so AddressSanitizer reports a read past it
    instead of letting it see a neighbour's bytes; the copy keeps the address modulo 16, so the
    kernels' alignment rules choose the same path."""
    if not _cuda_emu.sanitized:
        return np.ascontiguousarray(a)
    a = np.asarray(a)
    shift = a.ctypes.data % 16
    copy = np.empty(a.nbytes + shift, np.uint8)[shift:].view(a.dtype).reshape(a.shape)
    copy[...] = a
    return copy


def conv2d_forward(spec, x, w, bias):
    return _runner.conv2d_forward(spec, x, w, bias)


def conv2d_backward_data(spec, gy, w):
    return _runner.conv2d_backward_data(spec, gy, w)


def conv2d_backward_weight(spec, gy, x, with_bias):
    return _runner.conv2d_backward_weight(spec, gy, x, with_bias)


def max_pool2d_forward(spec, x):
    return _runner.max_pool2d_forward(spec, x)


def max_pool2d_backward(spec, gy, indices):
    return _runner.max_pool2d_backward(spec, gy, indices)


def relu_forward(x, out=None):
    return _runner.relu_forward(x, out)


def relu_backward(gy, y):
    return _runner.relu_backward(gy, y)
