"""fastconv.compat.cs231n against the course's contracts: shapes, conv_param/pool_param keys,
dtype kept, values against a NumPy im2col implementation, and the course's numeric gradient check."""

from __future__ import annotations

import numpy as np
import pytest

from fastconv import reference as ref
from fastconv.compat import cs231n as cs

# ----------------------------------------------------------------------------- NumPy oracles


def im2col_conv_forward(x, w, b, stride, pad):
    """x (N,C,H,W), w (F,C,HH,WW) -> out (N,F,H',W') via explicit im2col columns and one GEMM."""
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Ho, Wo = 1 + (H + 2 * pad - HH) // stride, 1 + (W + 2 * pad - WW) // stride
    cols = np.empty((C * HH * WW, N * Ho * Wo), x.dtype)
    for i in range(Ho):
        for j in range(Wo):
            patch = xp[:, :, i * stride : i * stride + HH, j * stride : j * stride + WW]  # (N,C,HH,WW)
            cols[:, (np.arange(N) * Ho + i) * Wo + j] = patch.reshape(N, -1).T
    out = (w.reshape(F, -1) @ cols + b[:, None]).reshape(F, N, Ho, Wo)
    return out.transpose(1, 0, 2, 3)


def naive_max_pool(x, ph, pw, stride):
    N, C, H, W = x.shape
    Ho, Wo = 1 + (H - ph) // stride, 1 + (W - pw) // stride
    out = np.empty((N, C, Ho, Wo), x.dtype)
    for i in range(Ho):
        for j in range(Wo):
            out[:, :, i, j] = x[:, :, i * stride : i * stride + ph, j * stride : j * stride + pw].max(axis=(2, 3))
    return out


def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """The course's gradient_check.eval_numerical_gradient_array (centered differences)."""
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        x[ix] = old + h
        pos = f(x).copy()
        x[ix] = old - h
        neg = f(x).copy()
        x[ix] = old
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
        it.iternext()
    return grad


def rel_error(x, y):
    return np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y)))


# ----------------------------------------------------------------------------- convolution


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "N, C, H, W, F, HH, WW, stride, pad",
    [
        (2, 3, 31, 31, 5, 3, 3, 2, 1),  # the course's FastLayers shape, smaller batch
        (1, 4, 7, 6, 3, 3, 2, 1, 0),
        (3, 2, 8, 9, 4, 5, 5, 3, 2),  # (H + 2 pad - HH) % stride != 0: floored like the naive code
    ],
)
def test_conv_forward_backward_vs_im2col(N, C, H, W, F, HH, WW, stride, pad, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C, HH, WW)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    conv_param = {"stride": stride, "pad": pad}
    out, cache = cs.conv_forward_fast(x, w, b, conv_param)
    Ho, Wo = 1 + (H + 2 * pad - HH) // stride, 1 + (W + 2 * pad - WW) // stride
    assert out.shape == (N, F, Ho, Wo) and out.dtype == dtype
    tol = 1e-4 if dtype == np.float32 else 1e-10
    want = im2col_conv_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), stride, pad)
    np.testing.assert_allclose(out, want, rtol=tol, atol=tol * np.abs(want).max())

    dout = rng.standard_normal(out.shape).astype(dtype)
    dx, dw, db = cs.conv_backward_fast(dout, cache)
    assert (dx.shape, dw.shape, db.shape) == (x.shape, w.shape, b.shape)
    assert dx.dtype == dw.dtype == db.dtype == dtype
    np.testing.assert_allclose(db, dout.astype(np.float64).sum(axis=(0, 2, 3)), rtol=tol, atol=tol * N * Ho * Wo)
    want_dx, want_dw, _ = ref.conv2d_backward(dout, x, w, stride=stride, padding=pad)
    np.testing.assert_allclose(dx, want_dx, rtol=tol, atol=tol * np.abs(want_dx).max())
    np.testing.assert_allclose(dw, want_dw, rtol=tol, atol=tol * np.abs(want_dw).max())
    if dtype == np.float64 and x.size <= 1000:  # the course's check: one forward per element
        dx_num = eval_numerical_gradient_array(lambda v: cs.conv_forward_fast(v, w, b, conv_param)[0], x.copy(), dout)
        dw_num = eval_numerical_gradient_array(lambda v: cs.conv_forward_fast(x, v, b, conv_param)[0], w.copy(), dout)
        assert rel_error(dx, dx_num) < 1e-7 and rel_error(dw, dw_num) < 1e-7


def test_float64_stays_float64_and_float32_stays_float32():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 5, 5))
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    for dtype in (np.float64, np.float32):
        out, cache = cs.conv_relu_pool_forward(
            x.astype(dtype),
            w.astype(dtype),
            b.astype(dtype),
            {"stride": 1, "pad": 1},
            {"pool_height": 2, "pool_width": 2, "stride": 2},
        )
        grads = cs.conv_relu_pool_backward(np.ones_like(out), cache)
        assert out.dtype == dtype and all(g.dtype == dtype for g in grads)
    out, _ = cs.conv_forward_fast(x, w.astype(np.float32), b.astype(np.float32), {"stride": 1, "pad": 0})
    assert out.dtype == np.float64  # mixed inputs: the common type
    out, _ = cs.relu_forward(np.arange(-3, 3).reshape(2, 3))  # integers are computed in float64
    assert out.dtype == np.float64 and out.tolist() == [[0, 0, 0], [0, 1, 2]]


def test_missing_param_keys_are_named():
    x, w, b = np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), np.ones(1)
    with pytest.raises(ValueError, match="'stride' and 'pad'"):
        cs.conv_forward_fast(x, w, b, {"stride": 1})
    with pytest.raises(ValueError, match="pool_height"):
        cs.max_pool_forward_fast(x, {"pool_size": 2, "stride": 2})


def test_zero_d_array_params_work_as_the_course_code_takes_them():
    """The course's NumPy arithmetic takes conv_param={'pad': np.array(1)}; so do these."""
    rng = np.random.default_rng(13)
    x, w, b = rng.standard_normal((2, 3, 8, 8)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    conv_0d = {"stride": np.array(1), "pad": np.array(1)}
    pool_0d = {"pool_height": np.array(2), "pool_width": np.array(2), "stride": np.array(2)}
    conv, pool = {"stride": 1, "pad": 1}, {"pool_height": 2, "pool_width": 2, "stride": 2}
    out, cache = cs.conv_relu_pool_forward(x, w, b, conv_0d, pool_0d)
    want, want_cache = cs.conv_relu_pool_forward(x, w, b, conv, pool)
    np.testing.assert_array_equal(out, want)
    for g, wg in zip(
        cs.conv_relu_pool_backward(np.ones_like(out), cache), cs.conv_relu_pool_backward(np.ones_like(out), want_cache)
    ):
        np.testing.assert_array_equal(g, wg)
    bn_0d = {"mode": "train", "eps": np.array(1e-5), "momentum": np.array(0.9)}
    np.testing.assert_array_equal(
        cs.batchnorm_forward(x[:, :, 0, 0], b[:3], b[:3], bn_0d)[0],
        cs.batchnorm_forward(x[:, :, 0, 0], b[:3], b[:3], {"mode": "train"})[0],
    )
    with pytest.raises(TypeError, match="padding must be 'valid', 'same', an int"):
        cs.conv_forward_fast(x, w, b, {"stride": 1, "pad": np.array(1.0)})


# ----------------------------------------------------------------------------- pooling and relu


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape, ph, pw, stride", [((2, 3, 8, 8), 2, 2, 2), ((1, 2, 7, 9), 3, 2, 2), ((2, 1, 5, 5), 2, 2, 1)]
)
def test_max_pool_contract(shape, ph, pw, stride, dtype):
    rng = np.random.default_rng(2)
    # distinct values at least 0.01 apart: no near-ties for the numeric gradient to step across
    x = (rng.permutation(int(np.prod(shape))).reshape(shape) * 0.01).astype(dtype)
    pool_param = {"pool_height": ph, "pool_width": pw, "stride": stride}
    out, cache = cs.max_pool_forward_fast(x, pool_param)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, naive_max_pool(x, ph, pw, stride))
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = cs.max_pool_backward_fast(dout, cache)
    assert dx.shape == x.shape and dx.dtype == dtype
    if dtype == np.float64:
        dx_num = eval_numerical_gradient_array(lambda v: cs.max_pool_forward_fast(v, pool_param)[0], x.copy(), dout)
        assert rel_error(dx, dx_num) < 1e-8


def test_relu_contract():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 5))
    out, cache = cs.relu_forward(x)
    np.testing.assert_array_equal(out, np.maximum(0, x))
    dout = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(cs.relu_backward(dout, cache), dout * (x > 0))


# ----------------------------------------------------------------------------- sandwich layers


def test_sandwich_layers_match_their_parts_and_numeric_gradients():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 8, 8))
    w = rng.standard_normal((3, 3, 3, 3))
    b = rng.standard_normal(3)
    conv_param = {"stride": 1, "pad": 1}
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}

    a, _ = cs.conv_forward_fast(x, w, b, conv_param)
    out, cache = cs.conv_relu_forward(x, w, b, conv_param)
    np.testing.assert_allclose(out, np.maximum(a, 0), rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = cs.conv_relu_backward(dout, cache)
    dx_num = eval_numerical_gradient_array(lambda v: cs.conv_relu_forward(v, w, b, conv_param)[0], x.copy(), dout)
    db_num = eval_numerical_gradient_array(lambda v: cs.conv_relu_forward(x, w, v, conv_param)[0], b.copy(), dout)
    assert rel_error(dx, dx_num) < 1e-7 and rel_error(db, db_num) < 1e-7

    out, cache = cs.conv_relu_pool_forward(x, w, b, conv_param, pool_param)
    np.testing.assert_allclose(out, naive_max_pool(np.maximum(a, 0), 2, 2, 2), rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = cs.conv_relu_pool_backward(dout, cache)
    f = lambda v: cs.conv_relu_pool_forward(x, v, b, conv_param, pool_param)[0]  # noqa: E731
    dw_num = eval_numerical_gradient_array(f, w.copy(), dout)
    assert rel_error(dw, dw_num) < 1e-7


def test_noncontiguous_inputs():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 8, 6, 3)).transpose(0, 3, 1, 2)  # a view, not C-contiguous
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    out, _ = cs.conv_forward_fast(x, w, b, {"stride": 1, "pad": 1})
    np.testing.assert_allclose(out, im2col_conv_forward(np.ascontiguousarray(x), w, b, 1, 1), rtol=1e-10, atol=1e-10)


def test_course_update_rules_over_several_steps():
    """optim.py's rules with the state in config: sgd, sgd_momentum and rmsprop against their
    formulas, adam against fastconv.Adam (the same bias-corrected rule)."""
    import fastconv as fc
    from fastconv.layers import ParamRef

    rng = np.random.default_rng(12)
    w0 = rng.standard_normal((4, 5))
    grads = [rng.standard_normal((4, 5)) for _ in range(5)]
    w, cfg = w0.copy(), None
    for g in grads:
        w, cfg = cs.sgd(w, g, cfg)
    np.testing.assert_allclose(w, w0 - 1e-2 * sum(grads), rtol=1e-12)
    w, cfg, v, want = w0.copy(), {"learning_rate": 0.1, "momentum": 0.5}, 0, w0.copy()
    for g in grads:
        w, cfg = cs.sgd_momentum(w, g, cfg)
        v = 0.5 * v - 0.1 * g
        want = want + v
    np.testing.assert_allclose(w, want, rtol=1e-12)
    w, cfg, cache, want = w0.copy(), None, 0, w0.copy()
    for g in grads:
        w, cfg = cs.rmsprop(w, g, cfg)
        cache = 0.99 * cache + 0.01 * g * g
        want = want - 1e-2 * g / (np.sqrt(cache) + 1e-8)
    np.testing.assert_allclose(w, want, rtol=1e-12)

    class Holder:
        params, grads, trainable = {"w": w0.copy()}, {}, True

    opt, w, cfg = fc.Adam(learning_rate=1e-3), w0.copy(), None
    for g in grads:
        w, cfg = cs.adam(w, g, cfg)
        Holder.grads["w"] = g
        opt.step([ParamRef("w", Holder, "w")])
    assert cfg["t"] == 5
    np.testing.assert_allclose(w, Holder.params["w"], rtol=1e-12)
    with pytest.raises(TypeError, match="config must be a dict"):
        cs.adam(w, g, [1e-3])


def test_update_rules_name_a_config_value_that_is_not_a_number():
    from fastconv.compat.cs231n import optim as course_optim

    w = np.ones(3)
    for rule in (course_optim.sgd, course_optim.sgd_momentum, course_optim.rmsprop, course_optim.adam):
        with pytest.raises(TypeError, match=r"config\['learning_rate'\] must be a number, got str 'a'"):
            rule(w, w, {"learning_rate": "a"})
        next_w, _ = rule(w, w, {"learning_rate": np.array(0.5)})  # a 0-d array, as the course allows
        assert np.isfinite(next_w).all() and not np.array_equal(next_w, w)
