"""CPU backend: NumPy arrays in, NumPy arrays out, kernels in fastconv._cpu."""
from __future__ import annotations

import os

import numpy as np

from . import _cpu

# FASTCONV_POISON=1 fills every output with NaN (indices with -1) before the kernel runs, so a
# kernel that leaves an element unwritten fails the tests instead of passing on stale memory.
POISON = os.environ.get("FASTCONV_POISON", "0") not in ("", "0")


def empty(shape, dtype):
    """An uninitialized output array. Large ones (>= 1 MiB) come from the output cache
    (csrc/bindings/output_cache.h): memory whose pages are already mapped, so the kernel does
    not pay a page fault per 4 KiB on its first write."""
    dtype = np.dtype(dtype)
    if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize >= _CACHE_MIN_BYTES:
        a = _cpu.cached_empty(tuple(int(d) for d in shape), dtype)
    else:
        a = np.empty(shape, dtype=dtype)
    if POISON:
        a.fill(-1 if dtype.kind == "i" else np.nan)
    return a


_CACHE_MIN_BYTES = 1 << 20


def contiguous(a):
    return np.ascontiguousarray(a)


def conv2d_forward(spec, x, w, bias):
    y = empty(spec.y_shape, x.dtype)
    _cpu.conv2d_forward(spec.as_tuple(), x, w, bias, y)
    return y


def conv2d_backward_data(spec, gy, w):
    gx = empty(spec.x_shape, gy.dtype)
    _cpu.conv2d_backward_data(spec.as_tuple(), gy, w, gx)
    return gx


def conv2d_backward_weight(spec, gy, x, with_bias):
    gw = empty(spec.w_shape, gy.dtype)
    gb = empty((spec.K,), gy.dtype) if with_bias else None
    _cpu.conv2d_backward_weight(spec.as_tuple(), gy, x, gw, gb)
    return gw, gb


def max_pool2d_forward(spec, x):
    y = empty(spec.y_shape, x.dtype)
    indices = empty(spec.y_shape, np.int64)
    _cpu.maxpool2d_forward(spec.as_tuple(), x, y, indices)
    return y, indices


def max_pool2d_backward(spec, gy, indices):
    gx = empty(spec.x_shape, gy.dtype)
    _cpu.maxpool2d_backward(spec.as_tuple(), gy, indices, gx)
    return gx


def relu_forward(x, out=None):
    y = empty(x.shape, x.dtype) if out is None else out
    _cpu.relu_forward(x, y)
    return y


def relu_backward(gy, y):
    gx = empty(gy.shape, gy.dtype)
    _cpu.relu_backward(gy, y, gx)
    return gx
