"""Shapes and random data shared by the batch-norm tests (test_batchnorm.py and its CUDA
emulation tests, test_batchnorm_cuda_emu.py)."""

from __future__ import annotations

import numpy as np

DTYPES = (np.float32, np.float64)
LAYOUTS = ("NCHW", "NHWC")
SHAPES = [(1, 1, 3, 5), (2, 15, 7, 5), (1, 16, 4, 4), (3, 17, 5, 3), (2, 33, 1, 1)]  # (N, C, H, W)


def bn_data(shape, layout, dtype, seed=0, mean=0.0):
    N, C, H, W = shape
    rng = np.random.default_rng(seed)
    x = (mean + rng.standard_normal((N, C, H, W) if layout == "NCHW" else (N, H, W, C))).astype(dtype)
    return x, rng.standard_normal(C).astype(dtype), rng.standard_normal(C).astype(dtype)


def bn_tol(dtype):
    return 3e-6 if dtype == np.float32 else 1e-10
