"""Python side of the CUDA kernels, shared by the GPU backend and its CPU emulation.

`KernelRunner` takes validated specs (from ops/) and contiguous arrays, allocates the
outputs and workspaces with the array module `xp` and hands raw pointers plus the stream to a
kernel module with the interface of csrc/bindings/cuda_module.cpp:

    GPU:        KernelRunner(cupy,  fastconv._cuda,     ...)  -> cuda.backend()
    emulation:  KernelRunner(numpy, fastconv._cuda_emu, ...)  -> cuda_emu.backend()

so the tests run this exact code, pointer handling included, through the emulated kernels.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

from . import env
from .base import Backend

# FASTCONV_POISON=1: outputs start as NaN (indices as -1), so an element a kernel forgets to
# write fails the tests instead of passing on stale memory.
POISON = env.switch("FASTCONV_POISON", False)

# Kernel version for every op (see csrc/cuda/kernels.h): 0 = best for the shape, 1 = naive,
# 2 = smem tiled / vectorized, 3 = register-tiled implicit GEMM.
DEFAULT_VERSION = int(os.environ.get("FASTCONV_CUDA_KERNEL", "0") or 0)


class KernelRunner(Backend):
    """Calls one kernel module on arrays of one array module (see the module docstring).

    ptr(a) -> int address of a's first element; stream() -> the stream handle to launch on;
    to_host(a) -> NumPy copy (for the bad-index flag); device_check(a) raises ValueError when a is
    not on the current device (None: nothing to check).
    """

    def __init__(self, xp, module, *, ptr, stream, to_host, device_check=None):
        self.xp = xp
        self.module = module
        self.ptr = ptr
        self.stream = stream
        self.to_host = to_host
        self.device_check = device_check
        self.version = DEFAULT_VERSION
        self.bwd_weight_splits = 0  # 0: the launcher picks

    @contextlib.contextmanager
    def using(self, version=None, splits=None):
        """Temporarily force a kernel version (and the backward-weight split count)."""
        saved = self.version, self.bwd_weight_splits
        if version is not None:
            self.version = int(version)
        if splits is not None:
            self.bwd_weight_splits = int(splits)
        try:
            yield self
        finally:
            self.version, self.bwd_weight_splits = saved

    # ------------------------------------------------------------------ helpers
    def empty(self, shape, dtype):
        xp = self.xp
        if POISON:
            return xp.full(shape, -1 if np.dtype(dtype).kind == "i" else np.nan, dtype=dtype)
        return xp.empty(shape, dtype=dtype)

    def contiguous(self, a):
        return self.xp.ascontiguousarray(a)

    def _arg(self, name, a, shape=None, dtype=None):
        """Pointer of a C-contiguous array of the expected shape/dtype (else ValueError/TypeError)."""
        if self.device_check is not None:
            self.device_check(name, a)
        if shape is not None and tuple(a.shape) != tuple(shape):
            raise ValueError(f"{name} has shape {tuple(a.shape)}, expected {tuple(shape)}")
        if dtype is not None and a.dtype != dtype:
            raise TypeError(f"{name} has dtype {a.dtype}, expected {np.dtype(dtype)}")
        if not a.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous")
        return self.ptr(a)

    @staticmethod
    def _f64(dtype):
        return np.dtype(dtype) == np.float64

    # ------------------------------------------------------------------ convolution
    def conv2d_forward(self, spec, x, w, bias):
        dt = x.dtype
        y = self.empty(spec.y_shape, dt)
        self.module.conv2d_forward(
            spec.native(self.module),
            self._arg("x", x, spec.x_shape, dt),
            self._arg("weight", w, spec.w_shape, dt),
            0 if bias is None else self._arg("bias", bias, (spec.K,), dt),
            self.ptr(y),
            self._f64(dt),
            self.version,
            self.stream(),
        )
        return y

    def conv2d_backward_data(self, spec, gy, w):
        dt = gy.dtype
        gx = self.empty(spec.x_shape, dt)
        self.module.conv2d_backward_data(
            spec.native(self.module),
            self._arg("grad_y", gy, spec.y_shape, dt),
            self._arg("weight", w, spec.w_shape, dt),
            self.ptr(gx),
            self._f64(dt),
            self.version,
            self.stream(),
        )
        return gx

    def conv2d_backward_weight(self, spec, gy, x, with_bias):
        dt = gy.dtype
        gw = self.empty(spec.w_shape, dt)
        gb = self.empty((spec.K,), dt) if with_bias else None
        params, f64 = spec.native(self.module), self._f64(dt)
        nbytes = self.module.conv2d_backward_weight_workspace_bytes(
            params, f64, bool(with_bias), self.version, self.bwd_weight_splits
        )
        # Partial sums of the split reduction; freed (back to CuPy's pool) when this returns,
        # which is safe: the pool is stream-ordered and later users are queued behind the kernels.
        ws = self.xp.empty(nbytes, dtype=np.uint8) if nbytes else None
        self.module.conv2d_backward_weight(
            params,
            self._arg("grad_y", gy, spec.y_shape, dt),
            self._arg("x", x, spec.x_shape, dt),
            self.ptr(gw),
            0 if gb is None else self.ptr(gb),
            0 if ws is None else self.ptr(ws),
            nbytes,
            f64,
            self.version,
            self.bwd_weight_splits,
            self.stream(),
        )
        return gw, gb

    # ------------------------------------------------------------------ pooling
    def max_pool2d_forward(self, spec, x):
        dt = x.dtype
        y = self.empty(spec.y_shape, dt)
        indices = self.empty(spec.y_shape, np.int64)
        self.module.maxpool2d_forward(
            spec.native(self.module),
            self._arg("x", x, spec.x_shape, dt),
            self.ptr(y),
            self.ptr(indices),
            self._f64(dt),
            self.version,
            self.stream(),
        )
        return y, indices

    def max_pool2d_backward(self, spec, gy, indices):
        dt = gy.dtype
        gx = self.empty(spec.x_shape, dt)
        bad = self.xp.zeros(1, dtype=np.int32)
        self.module.maxpool2d_backward(
            spec.native(self.module),
            self._arg("grad_y", gy, spec.y_shape, dt),
            self._arg("indices", indices, spec.y_shape, np.int64),
            self.ptr(gx),
            self.ptr(bad),
            self._f64(dt),
            self.version,
            self.stream(),
        )
        # Reading the flag back waits for this stream only (not the device): the one synchronizing
        # step of the CUDA backend, accepted here so that a bad index is a ValueError, as on the CPU.
        if int(self.to_host(bad)[0]) != 0:
            plane = spec.H * spec.W
            raise ValueError(
                f"indices: an index lies outside its pooling window (valid flat indices are in "
                f"[0, H*W) = [0, {plane}) and inside the window of their output)"
            )
        return gx

    def avg_pool2d_forward(self, spec, x, include_pad):
        dt = x.dtype
        y = self.empty(spec.y_shape, dt)
        self.module.avgpool2d_forward(
            spec.native(self.module),
            include_pad,
            self._arg("x", x, spec.x_shape, dt),
            self.ptr(y),
            self._f64(dt),
            self.stream(),
        )
        return y

    def avg_pool2d_backward(self, spec, gy, include_pad):
        dt = gy.dtype
        gx = self.empty(spec.x_shape, dt)
        self.module.avgpool2d_backward(
            spec.native(self.module),
            include_pad,
            self._arg("grad_y", gy, spec.y_shape, dt),
            self.ptr(gx),
            self._f64(dt),
            self.stream(),
        )
        return gx

    # ------------------------------------------------------------------ batch normalization
    @staticmethod
    def _bn_shape(x, layout):
        N, C = x.shape[0], x.shape[1 if layout == "NCHW" else 3]
        return N, C, x.size // (N * C), layout == "NHWC"

    def _bn_workspace(self, shape):
        # partial sums of the statistics and the per-channel coefficients, freed (back to CuPy's
        # stream-ordered pool) when the call returns
        return self.xp.empty(self.module.batchnorm_workspace_bytes(*shape), dtype=np.uint8)

    def _optional(self, name, a, C, dtype):
        """Pointer of a per-channel array, or 0 for None. `a` must be the caller's reference (kept
        alive until the launch returns), not a temporary."""
        return 0 if a is None else self._arg(name, a, (C,), dtype)

    def _contiguous_or_none(self, *arrays):
        return [None if a is None else self.contiguous(a) for a in arrays]

    # The CUDA batch-norm kernels have no ReLU of their own: relu runs the ReLU kernels around them.
    def batch_norm_train(self, x, gamma, beta, eps, layout, relu=False):
        shape, dt = self._bn_shape(x, layout), x.dtype
        C = shape[1]
        gamma, beta = self._contiguous_or_none(gamma, beta)
        y = self.empty(x.shape, dt)
        mean, var, inv_std = (self.empty((C,), dt) for _ in range(3))
        ws = self._bn_workspace(shape)
        self.module.batchnorm_train_forward(
            *shape,
            self._arg("x", x, x.shape, dt),
            self._optional("gamma", gamma, C, dt),
            self._optional("beta", beta, C, dt),
            float(eps),
            self.ptr(y),
            self.ptr(mean),
            self.ptr(var),
            self.ptr(inv_std),
            self.ptr(ws),
            self._f64(dt),
            self.stream(),
        )
        return (self.relu_forward(y, out=y) if relu else y), mean, var, inv_std

    def batch_norm_normalize(self, x, mean, scale, shift, layout, relu=False):
        shape, dt = self._bn_shape(x, layout), x.dtype
        y = self.empty(x.shape, dt)
        coef = self.xp.concatenate([self.xp.asarray(a, dtype=np.float64).ravel() for a in (mean, scale, shift)])
        self.module.batchnorm_normalize(
            *shape,
            self._arg("x", x, x.shape, dt),
            self._arg("coef", coef, (3 * shape[1],)),
            self.ptr(y),
            self._f64(dt),
            self.stream(),
        )
        return self.relu_forward(y, out=y) if relu else y

    def batch_norm_backward(self, gy, x, mean, inv_std, gamma, training, layout, relu_y=None):
        shape, dt = self._bn_shape(x, layout), x.dtype
        if relu_y is not None:
            gy = self.relu_backward(gy, relu_y)
        C = shape[1]
        (gamma,) = self._contiguous_or_none(gamma)
        gx = self.empty(x.shape, dt)
        ggamma, gbeta = self.empty((C,), dt), self.empty((C,), dt)
        ws = self._bn_workspace(shape)
        self.module.batchnorm_backward(
            *shape,
            bool(training),
            self._arg("grad_y", gy, x.shape, dt),
            self._arg("x", x, x.shape, dt),
            self._arg("saved_mean", mean, (C,), dt),
            self._arg("saved_inv_std", inv_std, (C,), dt),
            self._optional("gamma", gamma, C, dt),
            self.ptr(gx),
            self.ptr(ggamma),
            self.ptr(gbeta),
            self.ptr(ws),
            self._f64(dt),
            self.stream(),
        )
        return gx, ggamma, gbeta

    # ------------------------------------------------------------------ relu
    def relu_forward(self, x, out=None):
        y = self.empty(x.shape, x.dtype) if out is None else out
        self.module.relu_forward(
            self._arg("x", x),
            self._arg("out", y, x.shape, x.dtype),
            x.size,
            self._f64(x.dtype),
            self.stream(),
            self.version,
        )
        return y

    def relu_backward(self, gy, y):
        gx = self.empty(gy.shape, gy.dtype)
        self.module.relu_backward(
            self._arg("grad_y", gy),
            self._arg("y", y, gy.shape, gy.dtype),
            self.ptr(gx),
            gy.size,
            self._f64(gy.dtype),
            self.stream(),
            self.version,
        )
        return gx

    # ------------------------------------------------------------------ sigmoid, tanh, leaky_relu
    def activation_forward(self, name, alpha, x, out=None):
        y = self.empty(x.shape, x.dtype) if out is None else out
        self.module.activation_forward(
            name,
            alpha,
            self._arg("x", x),
            self._arg("out", y, x.shape, x.dtype),
            x.size,
            self._f64(x.dtype),
            self.stream(),
        )
        return y

    def activation_backward(self, name, alpha, gy, y):
        gx = self.empty(gy.shape, gy.dtype)
        self.module.activation_backward(
            name,
            alpha,
            self._arg("grad_y", gy),
            self._arg("y", y, gy.shape, gy.dtype),
            self.ptr(gx),
            gy.size,
            self._f64(gy.dtype),
            self.stream(),
        )
        return gx

    # ------------------------------------------------------------------ dense layers
    def matmul(self, a, b, bias=None, activation=None, alpha=0.0):
        """activation(a (M, K) @ b (K, N) [+ bias]) by the array module (cuBLAS for CuPy), on the
        current stream; the activation runs in place on the product (cuBLAS has no epilogue)."""
        c = a @ b
        if bias is not None:
            c += bias
        if activation == "relu":
            self.xp.maximum(c, 0, out=c)  # NaN propagates like the CPU kernels
        elif activation is not None:
            self.activation_forward(activation, alpha, c, c)
        return c

    def column_sums(self, g):
        return g.sum(axis=0)
