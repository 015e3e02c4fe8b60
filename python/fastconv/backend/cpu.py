"""CPU backend: NumPy arrays in, NumPy arrays out, kernels in fastconv._cpu (base.py has
the interface)."""

from __future__ import annotations

import math

import numpy as np

from .. import _cpu
from . import blas, env
from .base import Backend

# FASTCONV_POISON=1 fills every output with NaN (indices with -1) before the kernel runs, so a
# kernel that leaves an element unwritten fails the tests instead of passing on stale memory.
POISON = env.switch("FASTCONV_POISON", False)


def empty(shape, dtype):
    """An uninitialized output array. Large ones (>= 1 MiB) come from the output cache
    (csrc/cpu/runtime/output_cache.h): memory whose pages are already mapped, so the kernel does
    not pay a page fault per 4 KiB on its first write."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    try:
        if nbytes >= _CACHE_MIN_BYTES:
            a = _cpu.cached_empty(tuple(int(d) for d in shape), dtype)
        else:
            a = np.empty(shape, dtype=dtype)
    except MemoryError:
        raise MemoryError(
            f"cannot allocate the {dtype.name} output of shape {tuple(shape)} ({nbytes / 2**30:.1f} GiB)"
        ) from None
    if POISON:
        a.fill(-1 if dtype.kind == "i" else np.nan)
    return a


_CACHE_MIN_BYTES = _cpu.output_cache_min_bytes  # csrc/cpu/runtime/output_cache.h owns the threshold


def contiguous(a):
    """a itself when the kernels can read it in place (C-contiguous and element-aligned), else an
    aligned C-contiguous copy (a view at an odd byte offset, e.g. into a uint8 buffer, is copied:
    the kernels' vector loads and streaming stores assume element alignment). Keeps 0-d arrays 0-d."""
    if a.flags.c_contiguous and a.flags.aligned:
        return a
    return np.array(a, order="C", copy=True)


def _before_parallel(work):
    """A kernel doing `work` multiply-adds or element visits is about to run: when it will use
    several threads, NumPy's idle BLAS threads must not hold the cores (blas.park)."""
    if work >= _cpu.min_parallel_work() and _cpu.get_num_threads() > 1:
        blas.park()


def _same_memory(a, b):
    """a and b are the same elements in the same order (out=x)."""
    return (
        a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        and a.strides == b.strides
        and a.shape == b.shape
    )


def _stored(a):
    """(C-contiguous memory of a, whether a is its transpose): a `.T` view is read in place."""
    if a.flags.f_contiguous and not a.flags.c_contiguous and a.flags.aligned:
        return a.T, True
    return contiguous(a), False


class CpuBackend(Backend):
    """The fastconv._cpu kernels on NumPy arrays; outputs from `empty` (the output cache)."""

    def contiguous(self, a):
        return contiguous(a)

    def conv2d_forward(self, spec, x, w, bias):
        y = empty(spec.y_shape, x.dtype)
        _before_parallel(spec.flops // 2)
        _cpu.conv2d_forward(spec.native(_cpu), x, w, bias, y)
        return y

    def conv2d_backward_data(self, spec, gy, w):
        gx = empty(spec.x_shape, gy.dtype)
        _before_parallel(spec.flops // 2)
        _cpu.conv2d_backward_data(spec.native(_cpu), gy, w, gx)
        return gx

    def conv2d_backward_weight(self, spec, gy, x, with_bias):
        gw = empty(spec.w_shape, gy.dtype)
        gb = empty((spec.K,), gy.dtype) if with_bias else None
        _before_parallel(spec.flops // 2)
        _cpu.conv2d_backward_weight(spec.native(_cpu), gy, x, gw, gb)
        return gw, gb

    def max_pool2d_forward(self, spec, x):
        y = empty(spec.y_shape, x.dtype)
        indices = empty(spec.y_shape, np.int64)
        _before_parallel(y.size * spec.R * spec.S)
        _cpu.maxpool2d_forward(spec.native(_cpu), x, y, indices)
        return y, indices

    def max_pool2d_backward(self, spec, gy, indices):
        gx = empty(spec.x_shape, gy.dtype)
        _before_parallel(gx.size)
        _cpu.maxpool2d_backward(spec.native(_cpu), gy, indices, gx)
        return gx

    def avg_pool2d_forward(self, spec, x, include_pad):
        y = empty(spec.y_shape, x.dtype)
        _before_parallel(x.size)
        _cpu.avgpool2d_forward(spec.native(_cpu), include_pad, x, y)
        return y

    def avg_pool2d_backward(self, spec, gy, include_pad):
        gx = empty(spec.x_shape, gy.dtype)
        _before_parallel(gx.size)
        _cpu.avgpool2d_backward(spec.native(_cpu), include_pad, gy, gx)
        return gx

    @staticmethod
    def _bn_shape(x, layout):
        N, C = x.shape[0], x.shape[1 if layout == "NCHW" else 3]
        return N, C, x.size // (N * C), layout

    def batch_norm_train(self, x, gamma, beta, eps, layout, relu=False):
        s = self._bn_shape(x, layout)
        y = empty(x.shape, x.dtype)
        mean, var, inv_std = (np.empty(s[1], x.dtype) for _ in range(3))
        _before_parallel(2 * x.size)
        _cpu.batchnorm_train_forward(*s, x, gamma, beta, eps, relu, y, mean, var, inv_std)
        return y, mean, var, inv_std

    def batch_norm_normalize(self, x, mean, scale, shift, layout, relu=False):
        y = empty(x.shape, x.dtype)
        _before_parallel(x.size)
        f64 = [np.ascontiguousarray(a, np.float64) for a in (mean, scale, shift)]
        _cpu.batchnorm_normalize(*self._bn_shape(x, layout), x, *f64, relu, y)
        return y

    def batch_norm_backward(self, gy, x, mean, inv_std, gamma, training, layout, relu_y=None):
        s = self._bn_shape(x, layout)
        gx = empty(x.shape, x.dtype)
        ggamma, gbeta = np.empty(s[1], x.dtype), np.empty(s[1], x.dtype)
        _before_parallel(2 * x.size)
        _cpu.batchnorm_backward(*s, training, gy, relu_y, x, mean, inv_std, gamma, gx, ggamma, gbeta)
        return gx, ggamma, gbeta

    @staticmethod
    def _elementwise(x, out, kernel):
        """kernel(x, y) into `out` (or a new array). `out` is written by the kernel only when it is
        aligned and either x itself or disjoint from x; otherwise through a temporary (like NumPy,
        which buffers partially overlapping operands)."""
        in_place = out is not None and out.flags.aligned and (_same_memory(out, x) or not np.shares_memory(out, x))
        y = out if in_place else empty(x.shape, x.dtype)
        _before_parallel(x.size)
        kernel(x, y)
        if out is not None and not in_place:
            out[...] = y
            return out
        return y

    def relu_forward(self, x, out=None):
        return self._elementwise(x, out, _cpu.relu_forward)

    def relu_backward(self, gy, y):
        gx = empty(gy.shape, gy.dtype)
        _before_parallel(gx.size)
        _cpu.relu_backward(gy, y, gx)
        return gx

    def activation_forward(self, name, alpha, x, out=None):
        return self._elementwise(x, out, lambda x, y: _cpu.activation_forward(name, alpha, x, y))

    def activation_backward(self, name, alpha, gy, y):
        gx = empty(gy.shape, gy.dtype)
        _before_parallel(gx.size)
        _cpu.activation_backward(name, alpha, gy, y, gx)
        return gx

    def matmul(self, a, b, bias=None, activation=None, alpha=0.0):
        """activation(a (M, K) @ b (K, N) [+ bias]) on the dense-layer GEMM kernel, the activation
        fused into its epilogue."""
        (M, K), N = a.shape, b.shape[1]
        sa, a_t = _stored(a)
        sb, b_t = _stored(b)
        c = empty((M, N), a.dtype)
        _before_parallel(M * N * K)
        _cpu.gemm(sa, a_t, sb, b_t, M, N, K, bias, activation or "none", alpha, c)
        return c

    def column_sums(self, g):
        sums = empty((g.shape[1],), g.dtype)
        _cpu.column_sums(contiguous(g), g.shape[0], g.shape[1], sums)
        return sums


CPU = CpuBackend()
