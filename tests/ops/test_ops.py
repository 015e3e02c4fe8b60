"""Every fastconv op against the float64 NumPy reference, on each CPU path (`isa` fixture).

Random-normal data for the tolerance tests, small integers for the exact ones (STYLE.md 9, 10).
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close, check_op, noncontiguous, randn, small_ints

import fastconv as fc
from fastconv import reference as ref

DTYPES = [np.float32, np.float64]
LAYOUTS = ["NCHW", "NHWC"]

# (N, C, K, H, W, R, S, stride, padding, dilation): an edge-case grid, not only random shapes.
CONV_CASES = {
    "1x1": (1, 1, 1, 5, 5, 1, 1, 1, 0, 1),
    "1x1_s2_c33": (2, 33, 16, 6, 7, 1, 1, 2, 0, 1),
    "3x3_p1_c3k16": (2, 3, 16, 9, 7, 3, 3, 1, 1, 1),
    "3x3_same_s2": (1, 15, 17, 8, 8, 3, 3, 2, "same", 1),
    "5x5_p2_c16k15": (3, 16, 15, 7, 9, 5, 5, 1, 2, 1),
    "7x7_p3_c17k33": (1, 17, 33, 11, 10, 7, 7, 1, 3, 1),
    "3x3_valid_s3": (1, 3, 3, 13, 12, 3, 3, 3, "valid", 1),
    "3x3_same_d2": (2, 16, 17, 10, 11, 3, 3, 1, "same", 2),
    "3x3_asym_pad": (1, 4, 5, 9, 8, 3, 3, 1, ((1, 0), (2, 1)), 1),
    "5x5_same_s2_odd": (1, 3, 16, 14, 13, 5, 5, 2, "same", 1),
    "3x2_mixed": (2, 1, 33, 6, 5, 3, 2, (2, 1), (1, 0), (1, 2)),
    "q1": (1, 3, 5, 3, 3, 3, 3, 1, 0, 1),
    "q15": (1, 16, 16, 3, 17, 3, 3, 1, 0, 1),
    "q16": (1, 16, 16, 3, 16, 3, 3, 1, 1, 1),
    "q17": (1, 17, 16, 4, 19, 3, 3, 1, 0, 1),
    "q33": (1, 16, 16, 3, 35, 3, 3, 1, 0, 1),
    "q7_k48": (2, 8, 48, 5, 9, 3, 3, 1, 0, 1),
    "q8_k32": (1, 16, 32, 6, 8, 3, 3, 1, 1, 1),
    "q14_k16": (1, 3, 16, 4, 14, 3, 3, 1, "same", 1),
    "q28_k33": (1, 16, 33, 3, 30, 3, 3, 1, 0, 1),
    "first_layer_c3_k64": (3, 3, 64, 16, 16, 3, 3, 1, 1, 1),
    "k64_c32": (2, 32, 64, 12, 12, 3, 3, 1, 1, 1),
    "s2_d2_p3": (1, 15, 16, 13, 12, 3, 3, 2, 3, 2),
}
CASE_IDS = list(CONV_CASES)

# (N, C, H, W, kernel_size, stride, padding)
POOL_CASES = {
    "k2": (2, 3, 8, 8, 2, None, 0),
    "k2_odd": (1, 17, 7, 9, 2, None, 0),
    "k3_s2_p1": (2, 16, 9, 8, 3, 2, 1),
    "k3_s1_same": (1, 15, 6, 7, 3, 1, "same"),
    "k2x3_asym": (1, 33, 7, 7, (2, 3), (1, 2), ((1, 0), (0, 1))),
    "k1": (1, 1, 5, 5, 1, 1, 0),
    "k3_valid_s2": (3, 16, 11, 10, 3, 2, "valid"),
    "k2_s2_same": (1, 16, 7, 5, 2, 2, "same"),
}


def _conv_inputs(case, layout, dtype, rng, make=randn):
    N, C, K, H, W, R, S, stride, padding, dilation = case
    xs = (N, C, H, W) if layout == "NCHW" else (N, H, W, C)
    ws = (K, C, R, S) if layout == "NCHW" else (R, S, C, K)
    x, w, b = make(rng, xs, dtype), make(rng, ws, dtype), make(rng, (K,), dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, layout=layout)
    return x, w, b, kw


def _pool_inputs(case, layout, dtype, rng, make=randn):
    N, C, H, W, k, stride, padding = case
    x = make(rng, (N, C, H, W) if layout == "NCHW" else (N, H, W, C), dtype)
    return x, k, dict(stride=stride, padding=padding, layout=layout)


def _grad_y(rng, x, w, kw, make=randn):
    return make(rng, ref.conv2d(x, w, **kw).shape, x.dtype)


# ----------------------------------------------------------------------------- convolution


@pytest.mark.parametrize("case", CASE_IDS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d(isa, case, layout, dtype):
    rng = np.random.default_rng(0)
    x, w, b, kw = _conv_inputs(CONV_CASES[case], layout, dtype, rng)
    check_op("conv2d", x, w, b, **kw)
    check_op("conv2d", x, w, **kw)


@pytest.mark.parametrize("case", ["3x3_p1_c3k16", "5x5_same_s2_odd", "3x3_same_d2", "q17"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_relu(isa, case, layout, dtype):
    rng = np.random.default_rng(1)
    x, w, b, kw = _conv_inputs(CONV_CASES[case], layout, dtype, rng)
    y = check_op("conv2d", x, w, b, activation="relu", **kw)
    assert (y >= 0).all() and (y == 0).any() and (y > 0).any()
    check_op("conv2d", x, w, activation="relu", **kw)


@pytest.mark.parametrize("case", CASE_IDS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_backward(isa, case, layout, dtype):
    rng = np.random.default_rng(2)
    x, w, _, kw = _conv_inputs(CONV_CASES[case], layout, dtype, rng)
    gy = _grad_y(rng, x, w, kw)
    check_op("conv2d_backward", gy, x, w, **kw)
    check_op("conv2d_backward", gy, x, w, bias=False, **kw)
    check_op("conv2d_backward_data", gy, w, x.shape, **kw)
    check_op("conv2d_backward_weight", gy, x, w.shape, **kw)
    check_op("conv2d_backward_weight", gy, x, w.shape, bias=False, **kw)


@pytest.mark.parametrize("kind", ["slice", "fortran", "reversed"])
@pytest.mark.parametrize("case", ["3x3_p1_c3k16", "3x3_same_s2", "3x2_mixed"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_noncontiguous(isa, kind, case, layout, dtype):
    rng = np.random.default_rng(3)
    x, w, b, kw = _conv_inputs(CONV_CASES[case], layout, dtype, rng)
    gy = _grad_y(rng, x, w, kw)
    x, w, b, gy = (noncontiguous(a, kind) for a in (x, w, b, gy))
    check_op("conv2d", x, w, b, **kw)
    check_op("conv2d", x, w, b, activation="relu", **kw)
    check_op("conv2d_backward", gy, x, w, **kw)
    check_op("conv2d_backward_data", gy, w, x.shape, **kw)
    check_op("conv2d_backward_weight", gy, x, w.shape, **kw)


def test_conv2d_transposed_views(isa):
    """NCHW data handed over as a transposed view of NHWC storage (and the weight likewise)."""
    rng = np.random.default_rng(4)
    x = randn(rng, (2, 9, 8, 16)).transpose(0, 3, 1, 2)  # (N,C,H,W) view of NHWC storage
    w = randn(rng, (3, 3, 16, 17)).transpose(3, 2, 0, 1)  # (K,C,R,S) view of RSCK storage
    check_op("conv2d", x, w, padding=1)
    gy = randn(rng, (2, 8, 9, 17)).transpose(0, 3, 2, 1)  # (N,K,P,Q) view, odd strides
    check_op("conv2d_backward", gy, x, w, padding=1)


@pytest.fixture
def no_winograd():
    previous = fc.get_winograd()
    fc.set_winograd(False)
    yield
    fc.set_winograd(previous)


@pytest.mark.parametrize("case", CASE_IDS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_conv2d_exact_small_integers(isa, case, layout, no_winograd):
    """Small-integer data make every partial sum exact in float32: any order must match exactly.
    (The direct kernels; Winograd's transforms round by design, test_winograd.py bounds them.)"""
    rng = np.random.default_rng(5)
    x, w, b, kw = _conv_inputs(CONV_CASES[case], layout, np.float32, rng, make=small_ints)
    gy = _grad_y(rng, x, w, kw, make=small_ints)
    check_op("conv2d", x, w, b, exact=True, **kw)
    check_op("conv2d", x, w, b, activation="relu", exact=True, **kw)
    check_op("conv2d_backward", gy, x, w, exact=True, **kw)
    check_op("conv2d_backward_data", gy, w, x.shape, exact=True, **kw)
    check_op("conv2d_backward_weight", gy, x, w.shape, exact=True, **kw)


def test_conv2d_defaults_and_output_type(isa):
    rng = np.random.default_rng(6)
    x, w = randn(rng, (2, 3, 6, 6)), randn(rng, (4, 3, 3, 3))
    y = fc.conv2d(x, w)
    assert type(y) is np.ndarray and y.shape == (2, 4, 4, 4) and y.dtype == np.float32
    assert_close(y, ref.conv2d(x, w), dtype=np.float32)
    assert_close(
        fc.conv2d(x, w, None, stride=(1, 1), padding=[0, 0], dilation=(1, 1)), ref.conv2d(x, w), dtype=np.float32
    )


def test_conv2d_batch_independence(isa):
    """Each image of a batch gives the same result as when it is run alone."""
    rng = np.random.default_rng(7)
    x, w, b = randn(rng, (5, 16, 9, 9)), randn(rng, (17, 16, 3, 3)), randn(rng, (17,))
    y = fc.conv2d(x, w, b, padding=1)
    for n in range(5):
        assert_close(fc.conv2d(x[n : n + 1], w, b, padding=1), y[n : n + 1], dtype=np.float32, rtol=1e-5)


# ----------------------------------------------------------------------------- max pooling


@pytest.mark.parametrize("case", list(POOL_CASES))
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool2d(isa, case, layout, dtype):
    rng = np.random.default_rng(8)
    x, k, kw = _pool_inputs(POOL_CASES[case], layout, dtype, rng)
    y, idx = check_op("max_pool2d", x, k, exact=True, **kw)  # a max is exact
    gy = randn(rng, y.shape, dtype)
    check_op("max_pool2d_backward", gy, idx, x.shape, k, **kw)
    check_op("max_pool2d_backward", gy, idx.astype(np.int64), x.shape, k, **kw)
    check_op("max_pool2d_backward", noncontiguous(gy), noncontiguous(idx), x.shape, k, **kw)
    check_op("max_pool2d", noncontiguous(x, "fortran"), k, exact=True, **kw)


@pytest.mark.parametrize("case", list(POOL_CASES))
@pytest.mark.parametrize("layout", LAYOUTS)
def test_max_pool2d_ties_small_integers(isa, case, layout):
    """Many ties: the first element in row-major order must win, exactly as in the reference."""
    rng = np.random.default_rng(9)
    x, k, kw = _pool_inputs(POOL_CASES[case], layout, np.float32, rng, make=lambda r, s, d: small_ints(r, s, d, -1, 1))
    y, idx = check_op("max_pool2d", x, k, exact=True, **kw)
    check_op("max_pool2d_backward", small_ints(rng, y.shape), idx, x.shape, k, exact=True, **kw)


def test_max_pool2d_padding_never_wins(isa):
    for dtype in DTYPES:
        x = np.full((1, 2, 5, 5), -np.inf, dtype)
        x[0, 1] = -7.0
        y, idx = check_op("max_pool2d", x, 3, stride=1, padding=1, exact=True)
        assert (y[0, 0] == -np.inf).all() and (y[0, 1] == -7).all()


def test_max_pool2d_default_stride(isa):
    rng = np.random.default_rng(10)
    x = randn(rng, (1, 3, 8, 6))
    y, idx = fc.max_pool2d(x)
    assert y.shape == (1, 3, 4, 3) and idx.shape == y.shape and idx.dtype in (np.int32, np.int64)
    y2, idx2 = fc.max_pool2d(x, 3)
    assert y2.shape == (1, 3, 2, 2)


# ----------------------------------------------------------------------------- relu


# 1-D sizes around the SIMD widths (tails), and 4-D sizes spanning several 16K-element work chunks.
RELU_SHAPES = [
    (1,),
    (7,),
    (15,),
    (16,),
    (17,),
    (31,),
    (33,),
    (2, 3, 5, 5),
    (3, 17, 9, 11),
    (1, 33, 16, 16),
    (3, 17, 31, 29),
    (2, 16, 32, 32),
]


@pytest.mark.parametrize("shape", RELU_SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_relu(isa, shape, dtype):
    rng = np.random.default_rng(11)
    x = randn(rng, shape, dtype)
    y = check_op("relu", x, exact=True)
    g = randn(rng, shape, dtype)
    check_op("relu_backward", g, y, exact=True)
    check_op("relu_backward", g, x, exact=True)  # y may be any array: y > 0 decides
    if len(shape) == 4:
        check_op("relu", noncontiguous(x, "fortran"), exact=True)
        check_op("relu_backward", noncontiguous(g), noncontiguous(x, "reversed"), exact=True)


def test_relu_special_values(isa):
    for dtype in DTYPES:
        x = np.array([-2.0, -0.0, 0.0, 1e-30, 3.0, np.inf, -np.inf] * 5, dtype)
        check_op("relu", x, exact=True)
        check_op("relu_backward", np.ones_like(x), x, exact=True)


# ----------------------------------------------------------------------------- NaN propagation


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_nan_propagation(isa, layout, dtype):
    """The output is NaN exactly where the window touches a NaN input (no leaking elsewhere)."""
    rng = np.random.default_rng(12)
    x, w, b, kw = _conv_inputs(CONV_CASES["3x3_same_d2"], layout, dtype, rng)
    x[(0, 3, 4, 5) if layout == "NCHW" else (0, 4, 5, 3)] = np.nan
    x[(1, 0, 0, 0)] = np.nan
    y = check_op("conv2d", x, w, b, **kw)
    assert np.isnan(y).any() and not np.isnan(y).all()
    check_op("conv2d", x, w, b, activation="relu", **kw)
    gy = _grad_y(rng, x, w, kw)
    check_op("conv2d_backward_weight", gy, x, w.shape, **kw)
    gy[(0, 1, 1, 1)] = np.nan
    check_op("conv2d_backward_data", gy, w, x.shape, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_and_pool_nan_propagation(isa, dtype):
    rng = np.random.default_rng(13)
    x = randn(rng, (2, 3, 6, 6), dtype)
    x[0, 0, 1, 1] = x[1, 2, 4, 5] = x[1, 2, 5, 4] = np.nan
    x[0, 1, 0, 0] = -np.nan if dtype == np.float32 else np.nan
    y = check_op("relu", x, exact=True)
    assert np.isnan(y[0, 0, 1, 1])
    y, idx = check_op("max_pool2d", x, 2, exact=True)
    assert np.isnan(y[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 1 * 6 + 1
    assert np.isnan(y[1, 2, 2, 2]) and idx[1, 2, 2, 2] == 4 * 6 + 5  # first NaN in row-major order
    check_op("max_pool2d", x, 3, stride=1, padding=1, exact=True)
