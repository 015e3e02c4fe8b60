"""Finite-difference checks of fastconv's backward ops in float64 (loss = sum(y * g))."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import numerical_grad

import fastconv as fc

# (N, C, K, H, W, R, S, stride, padding, dilation)
CONV_CASES = {
    "3x3_p1": (2, 3, 2, 5, 5, 3, 3, 1, 1, 1),
    "3x2_s2": (1, 2, 3, 7, 6, 3, 2, 2, 0, 1),
    "d2_same": (1, 2, 2, 6, 7, 3, 3, 1, "same", 2),
    "asym_pad_s3": (1, 2, 2, 8, 7, 3, 3, (3, 2), ((1, 0), (2, 1)), 1),
    "1x1": (2, 3, 4, 3, 4, 1, 1, 1, 0, 1),
}
# (N, C, H, W, kernel_size, stride, padding)
POOL_CASES = {
    "k2": (2, 2, 4, 6, 2, None, 0),
    "k3_s2_p1": (1, 2, 7, 6, 3, 2, 1),
    "k3_s1_same": (1, 1, 5, 5, 3, 1, "same"),
    "k2x3_asym": (1, 2, 6, 7, (2, 3), (1, 2), ((1, 0), (0, 1))),
}
LAYOUTS = ["NCHW", "NHWC"]


def _close(got, want, name):
    assert got.dtype == np.float64, f"{name}: dtype {got.dtype}"
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("case", list(CONV_CASES))
@pytest.mark.parametrize("layout", LAYOUTS)
def test_conv2d_backward_finite_differences(case, layout):
    N, C, K, H, W, R, S, stride, padding, dilation = CONV_CASES[case]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W) if layout == "NCHW" else (N, H, W, C))
    w = rng.standard_normal((K, C, R, S) if layout == "NCHW" else (R, S, C, K))
    b = rng.standard_normal(K)
    kw = dict(stride=stride, padding=padding, dilation=dilation, layout=layout)
    g = rng.standard_normal(fc.conv2d(x, w, b, **kw).shape)

    num_gx = numerical_grad(lambda a: fc.conv2d(a, w, b, **kw), x, g)
    num_gw = numerical_grad(lambda a: fc.conv2d(x, a, b, **kw), w, g)
    num_gb = numerical_grad(lambda a: fc.conv2d(x, w, a, **kw), b, g)

    gx, gw, gb = fc.conv2d_backward(g, x, w, **kw)
    _close(gx, num_gx, "conv2d_backward grad_x")
    _close(gw, num_gw, "conv2d_backward grad_weight")
    _close(gb, num_gb, "conv2d_backward grad_bias")
    _close(fc.conv2d_backward_data(g, w, x.shape, **kw), num_gx, "conv2d_backward_data")
    gw, gb = fc.conv2d_backward_weight(g, x, w.shape, **kw)
    _close(gw, num_gw, "conv2d_backward_weight grad_weight")
    _close(gb, num_gb, "conv2d_backward_weight grad_bias")


@pytest.mark.parametrize("case", list(POOL_CASES))
@pytest.mark.parametrize("layout", LAYOUTS)
def test_max_pool2d_backward_finite_differences(case, layout):
    N, C, H, W, k, stride, padding = POOL_CASES[case]
    rng = np.random.default_rng(1)
    shape = (N, C, H, W) if layout == "NCHW" else (N, H, W, C)
    x = rng.permutation(np.arange(np.prod(shape), dtype=np.float64)).reshape(shape) * 0.1  # no ties
    kw = dict(stride=stride, padding=padding, layout=layout)
    y, idx = fc.max_pool2d(x, k, **kw)
    g = rng.standard_normal(y.shape)
    num = numerical_grad(lambda a: fc.max_pool2d(a, k, **kw)[0], x, g, eps=1e-3)
    _close(fc.max_pool2d_backward(g, idx, x.shape, k, **kw), num, "max_pool2d_backward")


def test_relu_backward_finite_differences():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 4, 5))
    x[np.abs(x) < 1e-2] = 0.5  # stay away from the kink
    g = rng.standard_normal(x.shape)
    num = numerical_grad(fc.relu, x, g)
    _close(fc.relu_backward(g, fc.relu(x)), num, "relu_backward")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_conv2d_relu_chain_finite_differences(layout):
    """conv2d(activation='relu') followed by relu_backward and conv2d_backward: the layer gradient."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 5, 5) if layout == "NCHW" else (1, 5, 5, 2))
    w = rng.standard_normal((3, 2, 3, 3) if layout == "NCHW" else (3, 3, 2, 3))
    b = rng.standard_normal(3)
    kw = dict(padding="same", layout=layout)
    y = fc.conv2d(x, w, b, activation="relu", **kw)
    assert (y > 0).any() and (y == 0).any()
    g = rng.standard_normal(y.shape)
    gx, gw, gb = fc.conv2d_backward(fc.relu_backward(g, y), x, w, **kw)
    _close(gx, numerical_grad(lambda a: fc.conv2d(a, w, b, activation="relu", **kw), x, g), "grad_x")
    _close(gw, numerical_grad(lambda a: fc.conv2d(x, a, b, activation="relu", **kw), w, g), "grad_weight")
