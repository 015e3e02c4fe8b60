"""Batch normalization's CUDA kernels (csrc/cuda/batchnorm/) through the emulation: against the
float64 reference, the fused ReLU, no affine, strided gamma/beta, independence from thread order
and launch splits, and extreme values."""

from __future__ import annotations

import numpy as np
import pytest
from batchnorm_data import DTYPES, LAYOUTS, SHAPES, bn_data, bn_tol
from helpers import assert_close, check_op

import fastconv as fc
from fastconv import _cuda_emu
from fastconv import reference as ref
from fastconv.backend import cpu as backend_cpu
from fastconv.backend import cuda_emu as emu

# SHAPES plus the statistics chunking of csrc/cuda/batchnorm/batchnorm.cu: a plane longer than one chunk
# (HW > 4096), many planes over several chunks, NHWC channel tiles and row chunks beyond one.
CUDA_SHAPES = SHAPES[:4] + [(1, 2, 70, 70), (90, 2, 7, 7), (2, 40, 15, 13)]


@pytest.fixture
def emu_backend(monkeypatch, poison):
    monkeypatch.setattr(backend_cpu, "CPU", emu.backend())
    yield emu.backend()
    _cuda_emu.set_thread_order("forward", 0)


def _bn_passes(x, g, b, layout, training=True):
    """Training forward and backward (or inference and the frozen backward) -> every output."""
    gy = np.random.default_rng(1).standard_normal(x.shape).astype(x.dtype)
    if training:
        y, m, s = fc.batch_norm(x, g, b, None, None, training=True, layout=layout)
    else:
        C = g.shape[0]
        y, m, s = fc.batch_norm(
            x, g, b, np.full(C, 3.0, x.dtype), np.full(C, 0.5, x.dtype), training=False, layout=layout
        )
    return (y, m, s, *fc.batch_norm_backward(gy, x, g, m, s, training=training, layout=layout))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", CUDA_SHAPES, ids=[str(s) for s in CUDA_SHAPES])
def test_cuda_kernels_emulated(emu_backend, shape, layout, dtype):
    x, g, b = bn_data(shape, layout, dtype, mean=1e4)
    y, m, s = fc.batch_norm(x, g, b, None, None, training=True, layout=layout)
    assert f"batchnorm_fwd_{layout.lower()}" in _cuda_emu.last_kernel()
    want = ref.batch_norm(x, g, b, None, None, training=True, layout=layout)
    assert_close(y, want[0], dtype=dtype, rtol=bn_tol(dtype), name="y")
    assert_close(s, want[2], dtype=dtype, rtol=bn_tol(dtype), name="inv_std")
    gy = np.random.default_rng(1).standard_normal(x.shape).astype(dtype)
    check_op("batch_norm_backward", gy, x, g, m, s, layout=layout, rtol=2e-5 if dtype == np.float32 else 1e-9)
    assert f"batchnorm_bwd_{layout.lower()}" in _cuda_emu.last_kernel()
    rm, rv = (1e4 + np.arange(shape[1])).astype(dtype), np.linspace(0.5, 2, shape[1]).astype(dtype)
    y, m, s = fc.batch_norm(x, g, b, rm, rv, training=False, layout=layout)
    assert "batchnorm_normalize" in _cuda_emu.last_kernel()
    assert_close(y, ref.batch_norm(x, g, b, rm, rv, training=False, layout=layout)[0], dtype=dtype, rtol=bn_tol(dtype))
    check_op("batch_norm_backward", gy, x, g, m, s, training=False, layout=layout, rtol=bn_tol(dtype))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_cuda_fused_relu_emulated(emu_backend, layout):
    """The CUDA batch norm runs the ReLU kernels around its own: the same results as the reference."""
    x, g, b = bn_data((2, 5, 4, 3), layout, np.float64, seed=9)
    y, m, s = fc.batch_norm(x, g, b, None, None, training=True, layout=layout, activation="relu")
    assert_close(
        y,
        ref.batch_norm(x, g, b, None, None, training=True, layout=layout, activation="relu")[0],
        dtype=np.float64,
        rtol=bn_tol(np.float64),
    )
    gy = np.random.default_rng(10).standard_normal(x.shape)
    check_op("batch_norm_backward", gy, x, g, m, s, layout=layout, activation="relu", y=y, rtol=1e-9)
    y, _, _ = fc.batch_norm(x, g, b, m, 1 / s**2, training=False, layout=layout, activation="relu")
    assert (y >= 0).all() and (y == 0).any()


def test_cuda_kernels_without_affine_emulated(emu_backend):
    x, _, _ = bn_data((2, 3, 4, 5), "NHWC", np.float64)
    y, m, s = fc.batch_norm(x, None, None, None, None, training=True, layout="NHWC")
    assert_close(y, ref.batch_norm(x, None, None, None, None, training=True, layout="NHWC")[0], dtype=np.float64)
    check_op("batch_norm_backward", np.random.default_rng(1).standard_normal(x.shape), x, None, m, s, layout="NHWC")


def test_cuda_kernels_with_strided_gamma_and_beta_emulated(emu_backend):
    """gamma and beta as strided views: the runner's contiguous copies must live through the launch."""
    x, _, _ = bn_data((2, 5, 3, 4), "NCHW", np.float64)
    rng = np.random.default_rng(4)
    g, b = rng.standard_normal(10)[::2], 3.0 + rng.standard_normal(10)[::2]
    y, m, s = fc.batch_norm(x, g, b, None, None, training=True)
    assert_close(y, ref.batch_norm(x, g, b, None, None, training=True)[0], dtype=np.float64, rtol=bn_tol(np.float64))
    gy = rng.standard_normal(x.shape)
    got = fc.batch_norm_backward(gy, x, g, m, s)
    want = ref.batch_norm_backward(gy, x, g, m, s)
    for a, w, name in zip(got, want, ("grad_x", "grad_gamma", "grad_beta")):
        assert_close(a, w, dtype=np.float64, rtol=bn_tol(np.float64), name=name)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_cuda_kernels_do_not_depend_on_thread_order_or_launch_splits(emu_backend, layout):
    """Fixed-order sums: the same bits in every emulated thread order, and when the elementwise
    passes are split into many launches (32-bit launch limit lowered; NCHW then starts launches
    part-way through the channels)."""
    x, g, b = bn_data((3, 7, 5, 6), layout, np.float32, mean=50.0)
    for training in (True, False):
        _cuda_emu.set_thread_order("forward", 0)
        want = _bn_passes(x, g, b, layout, training)
        for order, seed in (("reverse", 0), ("shuffled", 1)):
            _cuda_emu.set_thread_order(order, seed)
            assert all(np.array_equal(a, w) for a, w in zip(_bn_passes(x, g, b, layout, training), want)), order
        _cuda_emu.set_thread_order("forward", 0)
        old = _cuda_emu.max_launch_elements()
        try:
            for limit in (30, 4 * 30 + 3, 7 * 30):  # NCHW: 1, 4 and 7 planes of 30; NHWC: 4, 17, 30 pixels
                _cuda_emu.set_max_launch_elements(limit)
                got = _bn_passes(x, g, b, layout, training)
                assert all(np.array_equal(a, w) for a, w in zip(got, want)), limit
        finally:
            _cuda_emu.set_max_launch_elements(old)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_cuda_extreme_values_emulated(emu_backend, layout):
    """The CUDA statistics: values near +-max/2 give an inf variance and y = beta (not NaN), and
    eps = 1e-300 on a constant float32 channel gives beta."""
    half = np.finfo(np.float64).max / 2
    rng = np.random.default_rng(14)
    beta = np.array([0.5, -1.0, 0.0])
    x = np.where(rng.random((1, 3, 1, 2)) < 0.5, -1.0, 1.0) * half * rng.uniform(0.9, 1.0, (1, 3, 1, 2))
    if layout == "NHWC":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    y = fc.batch_norm(x, None, beta, None, None, training=True, layout=layout)[0]
    with np.errstate(over="ignore"):
        want = ref.batch_norm(x, None, beta, None, None, training=True, layout=layout)[0]
    assert np.isfinite(want).all() and np.array_equal(y, want)
    x = np.full((2, 3, 4, 5) if layout == "NCHW" else (2, 4, 5, 3), 1.5, np.float32)
    y = fc.batch_norm(x, None, beta.astype(np.float32), None, None, training=True, eps=1e-300, layout=layout)[0]
    assert np.array_equal(
        y, np.broadcast_to(beta.astype(np.float32).reshape((1, 3, 1, 1) if layout == "NCHW" else 3), x.shape)
    )
