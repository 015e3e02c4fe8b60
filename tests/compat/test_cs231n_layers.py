"""fastconv.compat.cs231n beyond conv and pooling: batch normalization with the course's bn_param
contract, the fast_layers aliases, the dtype of gradients, caches that ignore later edits of x,
and caches crossing between the course's functions and fastconv's."""

from __future__ import annotations

import numpy as np
import pytest
from test_cs231n import eval_numerical_gradient_array, rel_error

from fastconv import reference as ref
from fastconv.compat import cs231n as cs

CONV = {"stride": 1, "pad": 1}
POOL = {"pool_height": 2, "pool_width": 2, "stride": 2}


def course_batchnorm(x, gamma, beta, bn_param):
    """The course's batchnorm_forward, written out: (N, D) per feature, running statistics with
    running = momentum * running + (1 - momentum) * batch (biased variance)."""
    eps, momentum = bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.9)
    rm = bn_param.get("running_mean", np.zeros(x.shape[1]))
    rv = bn_param.get("running_var", np.zeros(x.shape[1]))
    if bn_param["mode"] == "train":
        mean, var = x.mean(axis=0), x.var(axis=0)
        rm, rv = momentum * rm + (1 - momentum) * mean, momentum * rv + (1 - momentum) * var
    else:
        mean, var = rm, rv
    return gamma * (x - mean) / np.sqrt(var + eps) + beta, rm, rv


# ----------------------------------------------------------------------------- batch normalization


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("N, D", [(2, 1), (7, 17), (33, 5)])
def test_batchnorm_matches_the_course_over_train_and_test_steps(N, D, dtype):
    rng = np.random.default_rng(0)
    gamma = rng.standard_normal(D).astype(dtype)
    beta = rng.standard_normal(D).astype(dtype)
    ours, want = {"mode": "train", "momentum": 0.8}, {"mode": "train", "momentum": 0.8}
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for _ in range(3):
        x = (5 + 3 * rng.standard_normal((N, D))).astype(dtype)
        out, _ = cs.batchnorm_forward(x, gamma, beta, ours)
        y, want["running_mean"], want["running_var"] = course_batchnorm(x.astype(np.float64), gamma, beta, want)
        assert out.dtype == dtype and out.shape == (N, D)
        np.testing.assert_allclose(out, y, rtol=tol, atol=tol)
        for key in ("running_mean", "running_var"):
            assert ours[key].dtype == dtype
            np.testing.assert_allclose(ours[key], want[key], rtol=tol, atol=tol)
    ours["mode"] = want["mode"] = "test"
    x = rng.standard_normal((N, D)).astype(dtype)
    out, _ = cs.batchnorm_forward(x, gamma, beta, ours)
    np.testing.assert_allclose(out, course_batchnorm(x.astype(np.float64), gamma, beta, want)[0], rtol=tol, atol=tol)


def test_batchnorm_backward_passes_the_course_gradient_check():
    rng = np.random.default_rng(1)
    N, D = 4, 5
    x = 5 * rng.standard_normal((N, D)) + 12
    gamma, beta = rng.standard_normal(D), rng.standard_normal(D)
    dout = rng.standard_normal((N, D))
    f = lambda a, g, b: cs.batchnorm_forward(a, g, b, {"mode": "train"})[0]  # noqa: E731
    _, cache = cs.batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dx, dgamma, dbeta = cs.batchnorm_backward(dout, cache)
    # the finite differences lose digits to x's mean of 12; the closed form is the sharp check
    assert rel_error(dx, eval_numerical_gradient_array(lambda v: f(v, gamma, beta), x.copy(), dout)) < 1e-6
    x_hat = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5)
    dx_hat = dout * gamma
    want = (N * dx_hat - dx_hat.sum(0) - x_hat * (dx_hat * x_hat).sum(0)) / (N * np.sqrt(x.var(0) + 1e-5))
    np.testing.assert_allclose(dx, want, rtol=1e-10, atol=1e-13)
    assert rel_error(dgamma, eval_numerical_gradient_array(lambda v: f(x, v, beta), gamma.copy(), dout)) < 1e-7
    assert rel_error(dbeta, eval_numerical_gradient_array(lambda v: f(x, gamma, v), beta.copy(), dout)) < 1e-7
    assert cs.batchnorm_backward_alt is cs.batchnorm_backward


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_spatial_batchnorm_is_the_flat_one_over_n_h_w(dtype):
    """The course's definition: spatial batchnorm of (N, C, H, W) is batchnorm of the (N*H*W, C)
    matrix; the gradients too. Also checked against fastconv's float64 reference."""
    rng = np.random.default_rng(2)
    N, C, H, W = 3, 17, 5, 7
    x = (rng.standard_normal((N, C, H, W)) * 2 - 1).astype(dtype)
    gamma, beta = rng.standard_normal(C).astype(dtype), rng.standard_normal(C).astype(dtype)
    flat = lambda a: a.transpose(0, 2, 3, 1).reshape(-1, C)  # noqa: E731
    p_spatial, p_flat = {"mode": "train"}, {"mode": "train"}
    out, cache = cs.spatial_batchnorm_forward(x, gamma, beta, p_spatial)
    out_flat, cache_flat = cs.batchnorm_forward(flat(x), gamma, beta, p_flat)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(flat(out), out_flat, rtol=tol, atol=tol)
    np.testing.assert_allclose(p_spatial["running_var"], p_flat["running_var"], rtol=tol, atol=tol)
    want = ref.batch_norm(x.astype(np.float64), gamma, beta, None, None, training=True)[0]
    np.testing.assert_allclose(out, want, rtol=tol, atol=tol)
    dout = rng.standard_normal(x.shape).astype(dtype)
    grads = cs.spatial_batchnorm_backward(dout, cache)
    grads_flat = cs.batchnorm_backward(flat(dout), cache_flat)
    assert grads[0].shape == x.shape and all(g.dtype == dtype for g in grads)
    np.testing.assert_allclose(flat(grads[0]), grads_flat[0], rtol=10 * tol, atol=10 * tol)
    for g, gf in zip(grads[1:], grads_flat[1:]):
        np.testing.assert_allclose(g, gf, rtol=10 * tol, atol=10 * tol * N * H * W)
    with pytest.raises(TypeError, match="pass it to spatial_batchnorm_backward"):
        cs.batchnorm_backward(flat(dout), cache)


def test_test_mode_backward_uses_fixed_statistics():
    rng = np.random.default_rng(3)
    x, gamma, beta = rng.standard_normal((6, 4)), rng.standard_normal(4), rng.standard_normal(4)
    p = {"mode": "test", "running_mean": rng.standard_normal(4), "running_var": rng.random(4) + 0.5}
    _, cache = cs.batchnorm_forward(x, gamma, beta, p)
    dout = rng.standard_normal(x.shape)
    dx, dgamma, dbeta = cs.batchnorm_backward(dout, cache)
    np.testing.assert_allclose(dx, dout * gamma / np.sqrt(p["running_var"] + 1e-5), rtol=1e-12)
    np.testing.assert_allclose(dbeta, dout.sum(0), rtol=1e-12)


def test_bad_bn_param_and_shapes_are_named():
    x, g, b = np.ones((4, 3)), np.ones(3), np.zeros(3)
    for bad in (None, {}, {"mode": "training"}):
        with pytest.raises(ValueError, match="bn_param must be a dict with 'mode'"):
            cs.batchnorm_forward(x, g, b, bad)
    with pytest.raises(ValueError, match=r"bn_param\['momentum'\]"):
        cs.batchnorm_forward(x, g, b, {"mode": "train", "momentum": 1.5})
    with pytest.raises(ValueError, match=r"bn_param\['eps'\]"):
        cs.batchnorm_forward(x, g, b, {"mode": "train", "eps": 0})
    with pytest.raises(ValueError, match=r"running_mean'\] must have shape \(3,\)"):
        cs.batchnorm_forward(x, g, b, {"mode": "test", "running_mean": np.zeros(4)})
    with pytest.raises(ValueError, match="more than one value per feature"):
        cs.batchnorm_forward(x[:1], g, b, {"mode": "train"})
    with pytest.raises(ValueError, match="2-D"):
        cs.batchnorm_forward(np.ones((2, 3, 1, 1)), g, b, {"mode": "train"})
    with pytest.raises(ValueError, match="4-D"):
        cs.spatial_batchnorm_forward(x, g, b, {"mode": "train"})
    with pytest.raises(ValueError, match=r"gamma must have shape \(3,\)"):
        cs.batchnorm_forward(x, np.ones(2), b, {"mode": "train"})
    _, cache = cs.batchnorm_forward(x + np.arange(4)[:, None], g, b, {"mode": "train"})
    with pytest.raises(ValueError, match=r"dout has shape \(4, 2\)"):
        cs.batchnorm_backward(np.ones((4, 2)), cache)
    course_cache = (x, x, g, g, "train")  # a student's cache of 4 arrays and a string
    with pytest.raises(TypeError, match="returned by fastconv's batchnorm_forward, got tuple; a cache of the course"):
        cs.batchnorm_backward(np.ones((4, 3)), course_cache)


# ----------------------------------------------------------------------------- fast_layers aliases


def test_fast_layers_aliases_are_the_fast_functions():
    assert cs.conv_forward_strides is cs.conv_forward_im2col is cs.conv_forward_fast
    assert cs.conv_backward_strides is cs.conv_backward_im2col is cs.conv_backward_fast


def test_max_pool_reshape_contract_and_cache():
    rng = np.random.default_rng(4)
    x = rng.permutation(2 * 3 * 8 * 6).reshape(2, 3, 8, 6) * 0.01
    out, cache = cs.max_pool_forward_reshape(x, POOL)
    want, _ = ref.max_pool2d(x, 2)
    np.testing.assert_array_equal(out, want)
    cx, x_reshaped, cout = cache  # the course's (x, x_reshaped, out)
    assert x_reshaped.shape == (2, 3, 4, 2, 3, 2) and cout is out
    np.testing.assert_array_equal(x_reshaped.max(axis=3).max(axis=4), out)
    dout = rng.standard_normal(out.shape)
    dx = cs.max_pool_backward_reshape(dout, cache)
    np.testing.assert_array_equal(dx, course_max_pool_backward_reshape(dout, cache))
    np.testing.assert_array_equal(cs.max_pool_backward_fast(dout, ("reshape", cache)), dx)
    with pytest.raises(ValueError, match="use max_pool_forward_fast"):
        cs.max_pool_forward_reshape(x[:, :, :7], POOL)
    with pytest.raises(ValueError, match="use max_pool_forward_fast"):
        cs.max_pool_forward_reshape(x, {"pool_height": 3, "pool_width": 3, "stride": 2})


def course_max_pool_backward_reshape(dout, cache):
    """The course's reshape backward, written out: the gradient goes to every window maximum."""
    x, x_reshaped, out = cache
    mask = x_reshaped == out[:, :, :, None, :, None]
    dx = np.where(mask, dout[:, :, :, None, :, None], 0.0)
    return (dx / mask.sum(axis=(3, 5), keepdims=True)).reshape(x.shape)


# How the course's backward functions read their caches (the first lines of the course code and
# of the solutions students write in layers.py).
def course_conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    return x


def course_conv_backward_strides(dout, cache):
    x, w, b, conv_param, x_cols = cache
    return dout.transpose(1, 0, 2, 3).reshape(w.shape[0], -1).dot(x_cols.T)


def course_max_pool_backward_naive(dout, cache):
    x, pool_param = cache
    return np.zeros_like(x)


def course_max_pool_backward_fast(dout, cache):
    method, real_cache = cache
    if method in ("reshape", "im2col"):
        return None
    raise ValueError(f'Unrecognized method "{method}"')


def course_batchnorm_backward(dout, cache):
    x, x_hat, mean, var, gamma, eps = cache
    return x_hat


def course_batchnorm_backward_of_a_dict(dout, cache):
    return cache["x_hat"]


def course_batchnorm_backward_by_index(dout, cache):
    return cache[1]


def course_conv_relu_pool_backward(dout, cache):
    """layer_utils.py's: the sandwich's own tuple unpacks, the layer caches inside it do not."""
    conv_cache, relu_cache, pool_cache = cache
    ds = course_max_pool_backward_fast(dout, pool_cache)
    return course_conv_backward_strides(ds, conv_cache)


def _mix_up_cases():
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    g = rng.standard_normal(3)
    conv = lambda: cs.conv_forward_fast(x, w, b, CONV)  # noqa: E731
    pool = lambda: cs.max_pool_forward_fast(x, POOL)  # noqa: E731
    bn = lambda: cs.batchnorm_forward(x[:, :, 0, 0], g, g, {"mode": "train"})  # noqa: E731
    sbn = lambda: cs.spatial_batchnorm_forward(x, g, g, {"mode": "train"})  # noqa: E731
    sandwich = lambda: cs.conv_relu_pool_forward(x, w, b, CONV, POOL)  # noqa: E731
    return {  # forward, the course's backward, the forward and backward the message names
        "conv_naive": (conv, course_conv_backward_naive, "conv_forward_fast", "conv_backward_fast"),
        "conv_strides": (conv, course_conv_backward_strides, "conv_forward_fast", "conv_backward_fast"),
        "pool_naive": (pool, course_max_pool_backward_naive, "max_pool_forward_fast", "max_pool_backward_fast"),
        "pool_fast": (pool, course_max_pool_backward_fast, "max_pool_forward_fast", "max_pool_backward_fast"),
        "bn": (bn, course_batchnorm_backward, "batchnorm_forward", "batchnorm_backward"),
        "bn_dict": (bn, course_batchnorm_backward_of_a_dict, "batchnorm_forward", "batchnorm_backward"),
        "bn_index": (bn, course_batchnorm_backward_by_index, "batchnorm_forward", "batchnorm_backward"),
        "spatial_bn": (sbn, course_batchnorm_backward, "spatial_batchnorm_forward", "spatial_batchnorm_backward"),
        "conv_relu_pool": (sandwich, course_conv_relu_pool_backward, "max_pool_forward_fast", "max_pool_backward_fast"),
    }


@pytest.mark.parametrize("case", list(_mix_up_cases()))
def test_course_backward_functions_name_the_mix_up(case):
    forward, course_backward, forward_name, backward_name = _mix_up_cases()[case]
    out, cache = forward()
    with pytest.raises(
        TypeError,
        match=rf"came from fastconv\.compat\.cs231n\.{forward_name}, .*"
        rf"pass it to fastconv's {backward_name}\b.*install\(\)",
    ):
        course_backward(np.ones_like(out), cache)


def test_a_fastconv_cache_names_its_own_backward():
    rng = np.random.default_rng(10)
    x, w, b = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    out, cache = cs.conv_forward_fast(x, w, b, CONV)
    with pytest.raises(TypeError, match="cache came from conv_forward_fast; pass it to conv_backward_fast"):
        cs.max_pool_backward_fast(np.ones_like(out), cache)
    out, cache = cs.max_pool_forward_fast(x, POOL)
    with pytest.raises(TypeError, match="cache came from max_pool_forward_fast; pass it to max_pool_backward_fast"):
        cs.conv_backward_fast(np.ones_like(out), cache)
    assert type(cache[:]) is tuple and cache[:][3] == POOL  # the items, for a look


def test_fastconv_backward_takes_the_course_caches():
    rng = np.random.default_rng(6)
    x, w, b = rng.standard_normal((2, 3, 7, 7)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    out, cache = cs.conv_forward_fast(x, w, b, CONV)
    dout = rng.standard_normal(out.shape)
    want = cs.conv_backward_fast(dout, cache)
    for course_cache in ((x, w, b, CONV, "x_cols"), (x, w, b, CONV)):  # conv_forward_strides / _naive
        for got, exp in zip(cs.conv_backward_fast(dout, course_cache), want):
            np.testing.assert_allclose(got, exp, rtol=1e-12)
    pool = {"pool_height": 3, "pool_width": 3, "stride": 2}
    out, cache = cs.max_pool_forward_fast(x, pool)
    dout = rng.standard_normal(out.shape)
    course_im2col = ("im2col", (x, "x_cols", "x_cols_argmax", pool))
    np.testing.assert_array_equal(
        cs.max_pool_backward_fast(dout, course_im2col), cs.max_pool_backward_fast(dout, cache)
    )
    naive = (x, pool)  # max_pool_forward_naive's
    np.testing.assert_array_equal(cs.max_pool_backward_fast(dout, naive), cs.max_pool_backward_fast(dout, cache))
    with pytest.raises(TypeError, match="max_pool_forward_fast, got method 'strided'"):
        cs.max_pool_backward_fast(dout, ("strided", naive))
    with pytest.raises(TypeError, match=r"max_pool_forward_naive: \(x, pool_param\)\), got a tuple of ndarray and li"):
        cs.max_pool_backward_fast(dout, (x, [3, 3, 2]))


# ----------------------------------------------------------------------------- dtypes and caches


def _layers(x, w, b, gamma, beta):
    """(forward, backward, inputs) of every compat layer, for the dtype and cache tests."""
    xf = x.reshape(x.shape[0], -1)
    return {
        "conv": (lambda: cs.conv_forward_fast(x, w, b, CONV), cs.conv_backward_fast),
        "pool_fast": (lambda: cs.max_pool_forward_fast(x, POOL), cs.max_pool_backward_fast),
        "pool_reshape": (lambda: cs.max_pool_forward_reshape(x, POOL), cs.max_pool_backward_reshape),
        "relu": (lambda: cs.relu_forward(x), cs.relu_backward),
        "conv_relu": (lambda: cs.conv_relu_forward(x, w, b, CONV), cs.conv_relu_backward),
        "conv_relu_pool": (lambda: cs.conv_relu_pool_forward(x, w, b, CONV, POOL), cs.conv_relu_pool_backward),
        "spatial_bn": (
            lambda: cs.spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"}),
            cs.spatial_batchnorm_backward,
        ),
        "bn": (
            lambda: cs.batchnorm_forward(
                xf, np.resize(gamma, xf.shape[1]), np.resize(beta, xf.shape[1]), {"mode": "train"}
            ),
            cs.batchnorm_backward,
        ),
    }


def _inputs(dtype, seed=7):
    rng = np.random.default_rng(seed)
    x = rng.permutation(2 * 3 * 6 * 6).reshape(2, 3, 6, 6) * 0.01 - 0.5  # no ties in pooling
    return [
        a.astype(dtype)
        for a in (
            x,
            rng.standard_normal((4, 3, 3, 3)),
            rng.standard_normal(4),
            rng.standard_normal(3),
            rng.standard_normal(3),
        )
    ]


def _as_tuple(g):
    return g if isinstance(g, tuple) else (g,)


@pytest.mark.parametrize("name", list(_layers(*_inputs(np.float64))))
def test_float64_dout_on_a_float32_layer_gives_float64_gradients(name):
    """As NumPy would: the float32 layer's arrays promoted by the float64 dout. The values equal
    the float64 layer's within float32 rounding of the forward's inputs."""
    f32, f64 = _inputs(np.float32), [a.astype(np.float64) for a in _inputs(np.float32)]
    fwd32, bwd = _layers(*f32)[name]
    fwd64, _ = _layers(*f64)[name]
    out32, cache32 = fwd32()
    out64, cache64 = fwd64()
    assert out32.dtype == np.float32
    dout = np.random.default_rng(8).standard_normal(out64.shape)
    got, want = _as_tuple(bwd(dout, cache32)), _as_tuple(bwd(dout, cache64))
    assert all(g.dtype == np.float64 for g in got), [g.dtype for g in got]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(w).max()))
    got = _as_tuple(bwd(dout.astype(np.float32), cache32))
    assert all(g.dtype == np.float32 for g in got)


@pytest.mark.parametrize("name", list(_layers(*_inputs(np.float64))))
def test_cache_ignores_edits_of_x_after_forward(name):
    inputs = _inputs(np.float64)
    fwd, bwd = _layers(*inputs)[name]
    out, cache = fwd()
    dout = np.random.default_rng(9).standard_normal(out.shape)
    want = [g.copy() for g in _as_tuple(bwd(dout, cache))]
    out, cache = fwd()
    for a in inputs:
        a *= -3.0  # the caller reuses its buffers in place
        a += 1.0
    for g, w in zip(_as_tuple(bwd(dout, cache)), want):
        np.testing.assert_array_equal(g, w)
