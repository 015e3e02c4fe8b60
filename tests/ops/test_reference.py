"""The NumPy reference against naive Python loops, and its backward passes against finite differences.

Needs only NumPy: run it before the compiled package exists with
    PYTHONPATH=python python -m pytest tests/ops/test_reference.py
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import numerical_grad

from fastconv import reference as ref
from fastconv.ops._shapes import pair, resolve_padding

# ----------------------------------------------------------------------------- naive loops (NCHW)


def _geometry(H, W, R, S, stride, padding, dilation):
    (sh, sw), (dh, dw) = pair(stride, "stride"), pair(dilation, "dilation")
    top, bottom, left, right = resolve_padding(padding, (H, W), (R, S), (sh, sw), (dh, dw))
    P = (H + top + bottom - dh * (R - 1) - 1) // sh + 1
    Q = (W + left + right - dw * (S - 1) - 1) // sw + 1
    return (sh, sw), (dh, dw), (top, left), (P, Q)


def _taps(H, W, R, S, p, q, stride, dilation, origin):
    """(r, s, h, w) of every kernel tap of output (p, q) that lands inside the input."""
    for r in range(R):
        for s in range(S):
            h = p * stride[0] - origin[0] + r * dilation[0]
            w = q * stride[1] - origin[1] + s * dilation[1]
            if 0 <= h < H and 0 <= w < W:
                yield r, s, h, w


def naive_conv2d(x, w, b, stride, padding, dilation):
    N, C, H, W = x.shape
    K, _, R, S = w.shape
    st, dl, org, (P, Q) = _geometry(H, W, R, S, stride, padding, dilation)
    y = np.zeros((N, K, P, Q))
    for n in range(N):
        for k in range(K):
            for p in range(P):
                for q in range(Q):
                    acc = 0.0 if b is None else b[k]
                    for r, s, h, ww in _taps(H, W, R, S, p, q, st, dl, org):
                        for c in range(C):
                            acc += x[n, c, h, ww] * w[k, c, r, s]
                    y[n, k, p, q] = acc
    return y


def naive_conv2d_backward(gy, x, w, stride, padding, dilation):
    N, C, H, W = x.shape
    K, _, R, S = w.shape
    st, dl, org, (P, Q) = _geometry(H, W, R, S, stride, padding, dilation)
    gx, gw = np.zeros(x.shape), np.zeros(w.shape)
    for n in range(N):
        for k in range(K):
            for p in range(P):
                for q in range(Q):
                    for r, s, h, ww in _taps(H, W, R, S, p, q, st, dl, org):
                        for c in range(C):
                            gx[n, c, h, ww] += gy[n, k, p, q] * w[k, c, r, s]
                            gw[k, c, r, s] += gy[n, k, p, q] * x[n, c, h, ww]
    return gx, gw, gy.sum(axis=(0, 2, 3))


def naive_max_pool2d(x, kernel, stride, padding):
    N, C, H, W = x.shape
    kh, kw = pair(kernel, "kernel_size")
    stride = (kh, kw) if stride is None else stride
    st, dl, org, (P, Q) = _geometry(H, W, kh, kw, stride, padding, 1)
    y, idx = np.zeros((N, C, P, Q)), np.zeros((N, C, P, Q), np.int64)
    for n in range(N):
        for c in range(C):
            for p in range(P):
                for q in range(Q):
                    best, arg = None, None
                    for _, _, h, w in _taps(H, W, kh, kw, p, q, st, dl, org):  # row-major order
                        v = x[n, c, h, w]
                        if best is None or (not math.isnan(best) and (math.isnan(v) or v > best)):
                            best, arg = v, h * W + w
                    y[n, c, p, q], idx[n, c, p, q] = best, arg
    return y, idx


# ----------------------------------------------------------------------------- configurations

# (N, C, K, H, W, R, S, stride, padding, dilation)
CONV_CASES = [
    (1, 1, 1, 4, 4, 1, 1, 1, 0, 1),
    (2, 3, 2, 5, 6, 3, 3, 1, 1, 1),
    (1, 2, 3, 7, 6, 3, 2, 2, 0, 1),
    (1, 2, 2, 8, 7, 3, 3, 3, 2, 1),
    (2, 2, 3, 7, 7, 3, 3, 1, 1, 2),
    (1, 3, 2, 6, 5, 3, 3, (2, 1), ((1, 0), (2, 1)), (1, 2)),
    (1, 2, 2, 7, 6, 3, 3, 2, "same", 1),
    (1, 2, 2, 6, 6, 2, 4, 1, "same", 2),
    (2, 1, 3, 5, 7, 2, 2, 1, "valid", 1),
    (1, 2, 1, 5, 5, 5, 5, 1, (2, 1), 1),
    (1, 2, 2, 9, 8, 3, 2, 2, 1, 2),
    (2, 2, 2, 8, 9, 3, 3, (3, 2), "same", (2, 1)),
]
CONV_IDS = [f"case{i}" for i in range(len(CONV_CASES))]

# (N, C, H, W, kernel_size, stride, padding)
POOL_CASES = [
    (2, 2, 4, 4, 2, None, 0),
    (1, 3, 5, 7, 2, None, 0),
    (1, 2, 7, 6, 3, 2, 1),
    (2, 1, 6, 5, 3, 1, "same"),
    (1, 2, 7, 7, (2, 3), (1, 2), ((1, 0), (0, 1))),
    (1, 1, 5, 5, 1, 1, 0),
    (1, 2, 9, 8, 3, 2, "valid"),
]
POOL_IDS = [f"case{i}" for i in range(len(POOL_CASES))]


def _nhwc(a):
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1))


def _nchw(a):
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def _rsck(w):
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0))


def _conv_data(case, seed=0):
    N, C, K, H, W, R, S, stride, padding, dilation = case
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal((N, C, H, W)), rng.standard_normal((K, C, R, S)), rng.standard_normal(K)
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    return x, w, b, kw


# ----------------------------------------------------------------------------- conv vs loops


@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv2d_matches_loops(case):
    x, w, b, kw = _conv_data(case)
    want = naive_conv2d(x, w, b, **kw)
    y = ref.conv2d(x, w, b, **kw)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ref.conv2d(x, w, **kw), want - b[None, :, None, None], atol=1e-12)
    np.testing.assert_allclose(ref.conv2d(x, w, b, activation="relu", **kw), np.maximum(want, 0), atol=1e-12)
    y_nhwc = ref.conv2d(_nhwc(x), _rsck(w), b, layout="NHWC", **kw)
    np.testing.assert_allclose(y_nhwc, _nhwc(want), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv2d_backward_matches_loops(case):
    x, w, _, kw = _conv_data(case)
    gy = np.random.default_rng(1).standard_normal(ref.conv2d(x, w, **kw).shape)
    want_gx, want_gw, want_gb = naive_conv2d_backward(gy, x, w, **kw)

    gx, gw, gb = ref.conv2d_backward(gy, x, w, **kw)
    np.testing.assert_allclose(gx, want_gx, atol=1e-12)
    np.testing.assert_allclose(gw, want_gw, atol=1e-12)
    np.testing.assert_allclose(gb, want_gb, atol=1e-12)
    np.testing.assert_allclose(ref.conv2d_backward_data(gy, w, x.shape, **kw), want_gx, atol=1e-12)
    gw2, gb2 = ref.conv2d_backward_weight(gy, x, w.shape, bias=False, **kw)
    assert gb2 is None
    np.testing.assert_allclose(gw2, want_gw, atol=1e-12)
    assert ref.conv2d_backward(gy, x, w, bias=False, **kw)[2] is None

    gx, gw, gb = ref.conv2d_backward(_nhwc(gy), _nhwc(x), _rsck(w), layout="NHWC", **kw)
    np.testing.assert_allclose(gx, _nhwc(want_gx), atol=1e-12)
    np.testing.assert_allclose(gw, _rsck(want_gw), atol=1e-12)
    np.testing.assert_allclose(gb, want_gb, atol=1e-12)


# ----------------------------------------------------------------------------- conv gradients (FD)


@pytest.mark.parametrize("case", CONV_CASES[1:7], ids=CONV_IDS[1:7])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_conv2d_backward_finite_differences(case, layout):
    x, w, b, kw = _conv_data(case, seed=2)
    if layout == "NHWC":
        x, w = _nhwc(x), _rsck(w)
    kw["layout"] = layout
    g = np.random.default_rng(3).standard_normal(ref.conv2d(x, w, b, **kw).shape)
    gx, gw, gb = ref.conv2d_backward(g, x, w, **kw)
    np.testing.assert_allclose(gx, numerical_grad(lambda a: ref.conv2d(a, w, b, **kw), x, g), atol=1e-6)
    np.testing.assert_allclose(gw, numerical_grad(lambda a: ref.conv2d(x, a, b, **kw), w, g), atol=1e-6)
    np.testing.assert_allclose(gb, numerical_grad(lambda a: ref.conv2d(x, w, a, **kw), b, g), atol=1e-6)


# ----------------------------------------------------------------------------- max pooling


@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
def test_max_pool2d_matches_loops(case):
    N, C, H, W, k, stride, padding = case
    x = np.random.default_rng(4).standard_normal((N, C, H, W))
    want_y, want_i = naive_max_pool2d(x, k, stride, padding)
    y, i = ref.max_pool2d(x, k, stride=stride, padding=padding)
    assert i.dtype == np.int64
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(i, want_i)
    y, i = ref.max_pool2d(_nhwc(x), k, stride=stride, padding=padding, layout="NHWC")
    np.testing.assert_array_equal(y, _nhwc(want_y))
    np.testing.assert_array_equal(i, _nhwc(want_i))


@pytest.mark.parametrize("case", POOL_CASES, ids=POOL_IDS)
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_max_pool2d_backward_finite_differences(case, layout):
    N, C, H, W, k, stride, padding = case
    rng = np.random.default_rng(5)
    shape = (N, C, H, W) if layout == "NCHW" else (N, H, W, C)
    x = rng.permutation(np.arange(math.prod(shape), dtype=np.float64)).reshape(shape) * 0.1  # no ties
    kw = dict(stride=stride, padding=padding, layout=layout)
    y, idx = ref.max_pool2d(x, k, **kw)
    g = rng.standard_normal(y.shape)
    gx = ref.max_pool2d_backward(g, idx, x.shape, k, **kw)
    num = numerical_grad(lambda a: ref.max_pool2d(a, k, **kw)[0], x, g, eps=1e-3)
    np.testing.assert_allclose(gx, num, atol=1e-9)


def test_max_pool2d_ties_nan_and_padding():
    # ties: the first element in row-major order wins
    y, i = ref.max_pool2d(np.ones((1, 1, 4, 4)), 2)
    np.testing.assert_array_equal(i[0, 0], [[0, 2], [8, 10]])
    # padded cells never win, even against -inf
    y, i = ref.max_pool2d(np.full((1, 1, 3, 3), -np.inf), 3, stride=1, padding=1)
    assert np.all(y == -np.inf)
    np.testing.assert_array_equal(i[0, 0], [[0, 0, 1], [0, 0, 1], [3, 3, 4]])
    y, i = ref.max_pool2d(-np.ones((1, 1, 2, 2)), 2, stride=1, padding=1)
    assert np.all(y == -1)
    # NaN wins (the first NaN of the window), and propagates
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 1, 0] = x[0, 0, 1, 1] = np.nan
    y, i = ref.max_pool2d(x, 2)
    assert np.isnan(y[0, 0, 0, 0]) and i[0, 0, 0, 0] == 4
    assert not np.isnan(y[0, 0, 1]).any()


# ----------------------------------------------------------------------------- relu


def test_relu_and_backward():
    x = np.array([-2.0, -0.5, 0.0, 0.5, 3.0, np.nan, -np.inf, np.inf], dtype=np.float32)
    y = ref.relu(x)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, [0, 0, 0, 0.5, 3, np.nan, 0, np.inf])
    g = np.arange(1.0, 9.0)
    np.testing.assert_array_equal(ref.relu_backward(g, y), [0, 0, 0, 4, 5, 0, 0, 8])


def test_relu_backward_finite_differences():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 4, 5))
    x[np.abs(x) < 1e-2] = 0.5  # stay away from the kink
    g = rng.standard_normal(x.shape)
    np.testing.assert_allclose(ref.relu_backward(g, ref.relu(x)), numerical_grad(ref.relu, x, g), atol=1e-8)


# ----------------------------------------------------------------------------- misc


def test_float32_inputs_give_float64_outputs():
    x = np.random.default_rng(7).standard_normal((1, 2, 5, 5)).astype(np.float32)
    w = np.ones((3, 2, 3, 3), np.float32)
    assert ref.conv2d(x, w).dtype == np.float64
    assert ref.max_pool2d(x)[0].dtype == np.float64


def test_same_padding_output_size():
    x = np.zeros((1, 1, 7, 8))
    for stride in (1, 2, 3):
        y = ref.conv2d(x, np.zeros((1, 1, 4, 3)), stride=stride, padding="same", dilation=2)
        assert y.shape[2:] == (math.ceil(7 / stride), math.ceil(8 / stride))


def test_output_size_below_one_raises():
    with pytest.raises(ValueError):
        ref.conv2d(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 3, 3)))
