"""Every operation on CuPy arrays (the CUDA kernels of fastconv._cuda) against fastconv.reference.

Marked `gpu`: run with `pytest -m gpu`; skipped cleanly when fastconv.cuda_available() is False
(no CUDA build, no CuPy or no device). Random data, outputs poisoned with NaN before each kernel,
odd shapes, both layouts, float32/float64, every kernel version, and launches on a non-default
CuPy stream.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from helpers import RTOL, assert_close, randn, small_ints

import fastconv as fc
from fastconv import reference as ref

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not fc.cuda_available(), reason="needs fastconv._cuda, CuPy and a CUDA device"),
]

DTYPES = (np.float32, np.float64)
LAYOUTS = ("NCHW", "NHWC")


@pytest.fixture
def cp(poison):
    import cupy

    return cupy


@pytest.fixture
def runner():
    from fastconv.backend import cuda as backend_cuda

    return backend_cuda.backend()


def xs(layout, N, C, H, W):
    return (N, C, H, W) if layout == "NCHW" else (N, H, W, C)


def ws(layout, K, C, R, S):
    return (K, C, R, S) if layout == "NCHW" else (R, S, C, K)


def check(cp, got, want, dtype, name, exact=False):
    if want is None:
        assert got is None, name
        return
    assert isinstance(got, cp.ndarray), f"{name}: expected a CuPy array, got {type(got).__name__}"
    assert_close(
        cp.asnumpy(got), want, dtype=dtype, name=name, exact=exact, rtol=None if exact else 10 * RTOL[np.dtype(dtype)]
    )


CONV_CASES = {  # (N, C, H, W, K, R, S, stride, padding, dilation)
    "3x3_pad1": (1, 3, 7, 9, 5, 3, 3, 1, 1, 1),
    "stride_pad_dil_mixed": (2, 5, 9, 8, 7, 3, 2, (2, 1), ((1, 2), (0, 1)), (1, 2)),
    "1x1_c17_k33": (3, 17, 6, 5, 33, 1, 1, 1, 0, 1),
    "5x5_stride3": (1, 2, 11, 10, 3, 5, 5, 3, 2, 1),
    "vgg_like": (2, 64, 28, 28, 128, 3, 3, 1, 1, 1),
    "k130_odd": (3, 19, 15, 13, 130, 3, 3, 2, "same", 1),
}


@pytest.mark.parametrize("version", (1, 2, 3))
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", list(CONV_CASES), ids=str)
def test_conv2d_every_pass(cp, runner, case, dtype, layout, version):
    N, C, H, W, K, R, S, stride, padding, dilation = CONV_CASES[case]
    rng = np.random.default_rng(zlib.crc32(f"{case}{layout}{version}".encode()))
    x = randn(rng, xs(layout, N, C, H, W), dtype)
    w = randn(rng, ws(layout, K, C, R, S), dtype)
    b = randn(rng, (K,), dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, layout=layout)
    gx_, gw_, gb_ = cp.asarray(x), cp.asarray(w), cp.asarray(b)
    with runner.using(version=version):
        y = fc.conv2d(gx_, gw_, gb_, activation="relu", **kw)
        check(cp, y, ref.conv2d(x, w, b, activation="relu", **kw), dtype, "conv2d relu")
        y = fc.conv2d(gx_, gw_, None, **kw)
        check(cp, y, ref.conv2d(x, w, None, **kw), dtype, "conv2d")
        gy = randn(rng, tuple(y.shape), dtype)
        got = fc.conv2d_backward(cp.asarray(gy), gx_, gw_, **kw)
        want = ref.conv2d_backward(gy, x, w, **kw)
        for name, g, wnt in zip(("grad_x", "grad_weight", "grad_bias"), got, want):
            check(cp, g, wnt, dtype, name)
        gw2, gb2 = fc.conv2d_backward_weight(cp.asarray(gy), gx_, w.shape, bias=False, **kw)
        check(cp, gw2, want[1], dtype, "grad_weight (no bias)")
        assert gb2 is None


@pytest.mark.parametrize("version", (1, 2, 3))
@pytest.mark.parametrize("layout", LAYOUTS)
def test_conv2d_small_integers_exact(cp, runner, layout, version):
    rng = np.random.default_rng(7)
    x = small_ints(rng, xs(layout, 2, 6, 9, 7))
    w = small_ints(rng, ws(layout, 67, 6, 3, 3))
    kw = dict(stride=(1, 2), padding=1, dilation=(2, 1), layout=layout)
    with runner.using(version=version):
        y = fc.conv2d(cp.asarray(x), cp.asarray(w), **kw)
        check(cp, y, ref.conv2d(x, w, **kw), np.float32, "conv2d", exact=True)
        gy = small_ints(rng, tuple(y.shape))
        gx, gw, gb = fc.conv2d_backward(cp.asarray(gy), cp.asarray(x), cp.asarray(w), **kw)
    want = ref.conv2d_backward(gy, x, w, **kw)
    for name, g, wnt in zip(("grad_x", "grad_weight", "grad_bias"), (gx, gw, gb), want):
        check(cp, g, wnt, np.float32, name, exact=True)


def test_backward_weight_is_reproducible(cp, runner):
    rng = np.random.default_rng(1)
    x = cp.asarray(randn(rng, (4, 32, 30, 30)))
    gy = cp.asarray(randn(rng, (4, 48, 30, 30)))
    for splits in (0, 7):
        with runner.using(splits=splits):
            a = fc.conv2d_backward_weight(gy, x, (48, 32, 3, 3), padding=1)
            b = fc.conv2d_backward_weight(gy, x, (48, 32, 3, 3), padding=1)
        assert bool((a[0] == b[0]).all()) and bool((a[1] == b[1]).all())


def test_noncontiguous_cupy_inputs(cp):
    rng = np.random.default_rng(2)
    x = randn(rng, (2, 3, 10, 9))
    w = randn(rng, (4, 3, 3, 3))
    gxs = cp.asarray(np.ascontiguousarray(np.swapaxes(x, 2, 3))).swapaxes(2, 3)  # strided view
    assert not gxs.flags.c_contiguous
    gws = cp.asfortranarray(cp.asarray(w))
    assert not gws.flags.c_contiguous
    y = fc.conv2d(gxs, gws, padding=1)
    check(cp, y, ref.conv2d(x, w, padding=1), np.float32, "conv2d (non-contiguous)")


def test_non_default_stream(cp):
    """Every op queued on a non-blocking stream; synchronizing that stream alone suffices."""
    rng = np.random.default_rng(3)
    x = randn(rng, (2, 9, 14, 13))
    w = randn(rng, (16, 9, 3, 3))
    b = randn(rng, (16,))
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        gx_, gw_, gb_ = cp.asarray(x), cp.asarray(w), cp.asarray(b)
        y = fc.relu(fc.conv2d(gx_, gw_, gb_, padding=1))
        p, idx = fc.max_pool2d(y, 2)
        gp = fc.max_pool2d_backward(p, idx, y.shape, 2)
        gy = fc.relu_backward(gp, y)
        grads = fc.conv2d_backward(gy, gx_, gw_, padding=1)
    stream.synchronize()
    check(cp, y, ref.relu(ref.conv2d(x, w, b, padding=1)), np.float32, "relu(conv2d)")
    # The rest of the chain is checked from the GPU's own intermediates, so that a float32 value
    # rounding to the other side of 0 cannot move a pooling winner.
    y_np = cp.asnumpy(y)
    p_ref, idx_ref = ref.max_pool2d(y_np, 2)
    check(cp, p, p_ref, np.float32, "max_pool2d", exact=True)
    check(cp, idx, idx_ref, np.float32, "indices", exact=True)
    gp_ref = ref.max_pool2d_backward(p_ref, idx_ref, y_np.shape, 2)
    check(cp, gp, gp_ref, np.float32, "max_pool2d_backward", exact=True)
    gy_ref = ref.relu_backward(gp_ref, y_np)
    check(cp, gy, gy_ref, np.float32, "relu_backward", exact=True)
    for name, g, wnt in zip(
        ("grad_x", "grad_weight", "grad_bias"), grads, ref.conv2d_backward(gy_ref, x, w, padding=1)
    ):
        check(cp, g, wnt, np.float32, name)


POOL_CASES = {
    "2x2": (2, 8, 8, 6, 2, None, 0),
    "3x3_s2_p1_oddC": (1, 3, 9, 7, 3, 2, 1),
    "overlap_asym": (2, 8, 7, 9, (3, 2), (1, 2), ((1, 0), (0, 1))),
    "vgg_like": (4, 64, 56, 56, 2, 2, 0),
}


@pytest.mark.parametrize("version", (1, 2))
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", list(POOL_CASES), ids=str)
def test_max_pool2d(cp, runner, case, dtype, layout, version):
    N, C, H, W, k, stride, padding = POOL_CASES[case]
    rng = np.random.default_rng(zlib.crc32(f"{case}{layout}".encode()))
    x = small_ints(rng, xs(layout, N, C, H, W), dtype, low=-4, high=-1)  # ties, all negative
    x.flat[::17] = np.nan
    kw = dict(stride=stride, padding=padding, layout=layout)
    with runner.using(version=version):
        y, idx = fc.max_pool2d(cp.asarray(x), k, **kw)
        y_ref, idx_ref = ref.max_pool2d(x, k, **kw)
        check(cp, y, y_ref, dtype, "y", exact=True)
        check(cp, idx, idx_ref, dtype, "indices", exact=True)
        gy = randn(rng, y_ref.shape, dtype)
        gx = fc.max_pool2d_backward(cp.asarray(gy), idx, x.shape, k, **kw)
        check(cp, gx, ref.max_pool2d_backward(gy, idx_ref, x.shape, k, **kw), dtype, "grad_x")


def test_max_pool2d_backward_bad_index(cp):
    x = cp.asarray(randn(np.random.default_rng(4), (1, 2, 6, 6)))
    y, idx = fc.max_pool2d(x, 2)
    idx[0, 0, 0, 0] = 36
    with pytest.raises(ValueError, match="indices"):
        fc.max_pool2d_backward(y, idx, x.shape, 2)


@pytest.mark.parametrize("version", (1, 2))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_relu(cp, runner, dtype, version):
    rng = np.random.default_rng(5)
    x = randn(rng, (3, 7, 11, 13), dtype)
    x.flat[::9] = np.nan
    with runner.using(version=version):
        y = fc.relu(cp.asarray(x))
        check(cp, y, ref.relu(x), dtype, "relu", exact=True)
        gy = randn(rng, x.shape, dtype)
        check(
            cp,
            fc.relu_backward(cp.asarray(gy), y),
            ref.relu_backward(gy, ref.relu(x)),
            dtype,
            "relu_backward",
            exact=True,
        )
        inplace = cp.asarray(x)
        assert fc.relu(inplace, out=inplace) is inplace
        check(cp, inplace, ref.relu(x), dtype, "relu in place", exact=True)


def test_mixing_numpy_and_cupy_is_a_value_error(cp):
    x = np.ones((1, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match="same device"):
        fc.conv2d(x, cp.ones((1, 1, 3, 3), cp.float32))
