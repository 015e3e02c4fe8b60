"""Batch normalization (fastconv.ops.batchnorm, CPU kernels csrc/cpu/batchnorm/ per ISA, CUDA
kernels csrc/cuda/batchnorm/ through the emulation). The reference agreement (training and
inference, fused relu, no affine, a large mean), finite differences, bad inputs and threads
are rows of tests/ops/families/batchnorm.py; here what only batch norm promises: the running
statistics updated in place against PyTorch's rule (and PyTorch itself when installed), the
layer against Keras' rule, values at the extremes, the fused relu's bits, thread-count
independence, folding into a conv, a model that trains, the CUDA kernels through the emulation.
"""

from __future__ import annotations

import numpy as np
import pytest
from batchnorm_data import DTYPES, LAYOUTS, SHAPES, bn_data, bn_tol
from helpers import assert_close

import fastconv as fc
from fastconv import reference as ref
from fastconv.layers import BatchNormalization, Conv2D, Dense, Flatten


@pytest.mark.parametrize("mean", [0.0, 1e4])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES, ids=[str(s) for s in SHAPES])
def test_running_statistics_are_updated_in_place_like_the_reference(isa, poison, shape, layout, dtype, mean):
    x, g, b = bn_data(shape, layout, dtype, mean=mean)
    C = shape[1]
    rm, rv = np.full(C, 0.5, dtype), np.full(C, 2.0, dtype)
    fc.batch_norm(x, g, b, rm, rv, training=True, momentum=0.2, layout=layout)
    want = ref.batch_norm(x, g, b, np.full(C, 0.5), np.full(C, 2.0), training=True, momentum=0.2, layout=layout)
    assert_close(rm, want[3], dtype=dtype, rtol=bn_tol(dtype), name="running_mean")
    assert_close(rv, want[4], dtype=dtype, rtol=bn_tol(dtype), name="running_var")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_statistics_when_the_first_values_are_far_from_the_mean(layout):
    """The sums are shifted by each channel's first value; a first value of 0 before 65535
    values around 300 (std 1) must not cost the variance its accuracy (float terms of
    (x - K)^2 ~ 9e4 would leave var ~2.4 with an error of ~2e-3)."""
    rng = np.random.default_rng(15)
    x = (300 + rng.standard_normal((16, 3, 64, 64))).astype(np.float32)
    x[0, :, 0, 0] = 0
    if layout == "NHWC":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    y, m, s = fc.batch_norm(x, None, None, None, None, training=True, layout=layout)
    want = ref.batch_norm(x, None, None, None, None, training=True, layout=layout)
    assert_close(s, want[2], dtype=np.float32, rtol=1e-6, name="inv_std")
    assert_close(y, want[0], dtype=np.float32, rtol=bn_tol(np.float32), name="y")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_thread_count_does_not_change_a_bit(layout, restore_cpu_state):
    x, g, b = bn_data((4, 40, 17, 19), layout, np.float32)
    gy = np.random.default_rng(7).standard_normal(x.shape).astype(np.float32)
    runs = []
    for t in (1, 2):
        fc.set_num_threads(t)
        y, m, s = fc.batch_norm(x, g, b, None, None, training=True, layout=layout)
        runs.append((y, m, s, *fc.batch_norm_backward(gy, x, g, m, s, layout=layout)))
    assert all(np.array_equal(a, b) for a, b in zip(*runs))


def test_running_statistics_match_pytorch():
    torch = pytest.importorskip("torch")
    x, g, b = bn_data((4, 6, 5, 5), "NCHW", np.float32, seed=8, mean=3.0)
    rm, rv = np.zeros(6, np.float32), np.ones(6, np.float32)
    trm, trv = torch.zeros(6), torch.ones(6)
    for _ in range(3):
        y, _, _ = fc.batch_norm(x, g, b, rm, rv, training=True, momentum=0.1, eps=1e-5)
        ty = torch.nn.functional.batch_norm(
            torch.from_numpy(x),
            trm,
            trv,
            torch.from_numpy(g),
            torch.from_numpy(b),
            training=True,
            momentum=0.1,
            eps=1e-5,
        )
    np.testing.assert_allclose(y, ty.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rm, trm.numpy(), rtol=1e-5)
    np.testing.assert_allclose(rv, trv.numpy(), rtol=1e-5)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_tiny_eps_on_a_constant_float32_channel_is_not_nan(isa, poison, layout):
    """eps = 1e-300 on a constant channel: 1 / sqrt(eps) = 1e150 overflows float32, and
    0 * inf was NaN where the float64 reference gives 0 (beta)."""
    rng = np.random.default_rng(11)
    x = np.full((2, 3, 4, 5), 1.5, np.float32)
    x[:, 1] = rng.standard_normal((2, 4, 5))
    beta = np.array([0.25, -0.5, 2.0], np.float32)
    if layout == "NHWC":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    gamma = np.ones(3, np.float32)
    y = fc.batch_norm(x, gamma, beta, None, None, training=True, eps=1e-300, layout=layout)[0]
    want = ref.batch_norm(x, gamma, beta, None, None, training=True, eps=1e-300, layout=layout)[0]
    assert_close(y, want, dtype=np.float32)
    running = np.array([1.5, 0.0, 1.5], np.float32), np.array([0.0, 1.0, 0.0], np.float32)
    with np.errstate(over="ignore"):  # the returned inv_std is inf in float32
        y = fc.batch_norm(x, gamma, beta, *running, training=False, eps=1e-300, layout=layout)[0]
    want = ref.batch_norm(x, gamma, beta, *running, training=False, eps=1e-300, layout=layout)[0]
    assert_close(y, want, dtype=np.float32)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_float64_values_near_half_the_largest_double(isa, poison, layout):
    """Squares of values near +-max/2 overflow double: the variance is inf, inv_std 0 and y = beta,
    as in the reference (an inf - inf made it NaN). Where the reference's own mean overflows
    (many such values), the mean stays finite and y = beta."""
    half = np.finfo(np.float64).max / 2
    rng = np.random.default_rng(12)
    beta = np.array([0.5, -1.0, 0.0])
    for shape in ((1, 3, 1, 2), (2, 3, 1, 1)):
        for sign in (np.ones(shape), np.where(rng.random(shape) < 0.5, -1.0, 1.0)):
            x = sign * half * rng.uniform(0.9, 1.0, shape)
            if layout == "NHWC":
                x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
            y, mean, _ = fc.batch_norm(x, None, beta, None, None, training=True, layout=layout)
            with np.errstate(over="ignore"):  # the reference's sum of squares
                want, want_mean = ref.batch_norm(x, None, beta, None, None, training=True, layout=layout)[:2]
            assert np.isfinite(want).all() and np.array_equal(y, want)
            assert_close(mean, want_mean, dtype=np.float64)
    x = half * rng.uniform(0.9, 1.0, (8, 3, 4, 4))
    if layout == "NHWC":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    y, mean, _ = fc.batch_norm(x, None, beta, None, None, training=True, layout=layout)
    axes = (0, 2, 3) if layout == "NCHW" else (0, 1, 2)
    assert_close(mean, (x * 2.0**-64).mean(axis=axes) * 2.0**64, dtype=np.float64)
    assert np.array_equal(y, np.broadcast_to(beta.reshape((1, 3, 1, 1) if layout == "NCHW" else 3), x.shape))


def test_fold_batch_norm_names_bad_arguments():
    w, v = np.ones((2, 1, 1, 1), np.float32), np.ones(2, np.float32)
    for args, error, match in [
        (([1.0], None, None, None, v, v), TypeError, "weight must be a NumPy or CuPy array, got list"),
        ((None, None, None, None, v, v), TypeError, "weight must be a NumPy or CuPy array, got None"),
        ((w.astype(np.int32), None, None, None, v, v), TypeError, "weight has dtype int32"),
        ((w.astype(np.float16), None, None, None, v, v), TypeError, "weight has dtype float16"),
        ((w, None, v.astype(np.int32), None, v, v), TypeError, "gamma has dtype int32"),
        ((w, [1, 2], None, None, v, v), TypeError, "bias must be a NumPy or CuPy array, got list"),
        ((w, None, None, None, None, v), TypeError, "running_mean must be an array of shape"),
    ]:
        with pytest.raises(error, match=match):
            fc.fold_batch_norm(*args)


# ----------------------------------------------------------------------------- folding and the layer


@pytest.mark.parametrize("layout", LAYOUTS)
def test_folded_conv_equals_conv_then_batch_norm(layout):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 5, 9, 8) if layout == "NCHW" else (2, 9, 8, 5))
    w = rng.standard_normal((7, 5, 3, 3) if layout == "NCHW" else (3, 3, 5, 7))
    b, g, beta = rng.standard_normal(7), rng.standard_normal(7), rng.standard_normal(7)
    rm, rv = rng.standard_normal(7), rng.uniform(0.5, 2, 7)
    want = fc.batch_norm(fc.conv2d(x, w, b, padding=1, layout=layout), g, beta, rm, rv, training=False, layout=layout)[
        0
    ]
    w2, b2 = fc.fold_batch_norm(w, b, g, beta, rm, rv, layout=layout)
    assert_close(fc.conv2d(x, w2, b2, padding=1, layout=layout), want, dtype=np.float64, rtol=1e-12)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_layer_uses_keras_momentum_rule_and_counts_moving_statistics_as_non_trainable(data_format):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((4, 5, 6, 3) if data_format == "channels_last" else (4, 3, 5, 6)).astype(np.float32)
    layer = BatchNormalization(axis=-1 if data_format == "channels_last" else 1)
    layout = "NHWC" if data_format == "channels_last" else "NCHW"
    y = layer.forward(x)
    batch_mean = ref.batch_norm(x, None, None, None, None, training=True, layout=layout)[1]
    axes = (0, 1, 2) if layout == "NHWC" else (0, 2, 3)
    np.testing.assert_allclose(layer.params["moving_mean"], 0.01 * batch_mean, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(layer.params["moving_variance"], 0.99 + 0.01 * x.var(axis=axes), rtol=1e-5)
    assert_close(
        y,
        ref.batch_norm(x, np.ones(3), np.zeros(3), None, None, training=True, eps=1e-3, layout=layout)[0],
        dtype=np.float32,
        rtol=3e-6,
    )
    assert {r.key for r in layer.parameters()} == {"gamma", "beta"}
    assert layer.count_params() == 12 and layer.count_params(trainable=False) == 6
    inference = layer(x)  # moving statistics
    assert_close(
        inference,
        ref.batch_norm(
            x,
            np.ones(3),
            np.zeros(3),
            layer.params["moving_mean"],
            layer.params["moving_variance"],
            training=False,
            eps=1e-3,
            layout=layout,
        )[0],
        dtype=np.float32,
        rtol=3e-6,
    )


def test_model_with_batch_norm_trains_saves_and_folds(tmp_path):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((64, 8, 8, 1)).astype(np.float32)
    labels = (x[:, :4].mean(axis=(1, 2, 3)) > x[:, 4:].mean(axis=(1, 2, 3))).astype(np.int64)
    model = fc.Sequential(
        [
            Conv2D(6, 3, padding="same", input_shape=(8, 8, 1), seed=1),
            BatchNormalization(),
            fc.layers.ReLU(),
            Flatten(),
            Dense(2, seed=2),
        ]
    )
    model.compile(fc.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, labels, epochs=8, batch_size=16, verbose=0, shuffle=False)
    assert history.history["loss"][-1] < 0.7 * history.history["loss"][0]
    lines = []
    model.summary(print_fn=lines.append)
    assert any("Non-trainable params: 12" in line for line in lines)  # moving mean + variance
    path = tmp_path / "bn.npz"
    model.save(path)
    np.testing.assert_array_equal(fc.load_model(path).predict(x), model.predict(x))
    folded = model.fold_batch_norm()
    assert sum(isinstance(layer, BatchNormalization) for layer in folded.layers) == 0
    np.testing.assert_allclose(folded.predict(x), model.predict(x), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- fused ReLU
# batch_norm(..., activation="relu") applies max(y, 0) in the normalizing pass, and
# batch_norm_backward(..., activation="relu", y=y) counts grad_y where y > 0 in its sums and
# grad_x: the same bits as the separate ReLU kernels around the unfused calls.


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES + [(3, 17, 37, 29)], ids=[str(s) for s in SHAPES + [(3, 17, 37, 29)]])
def test_fused_relu_equals_the_separate_relu_bit_for_bit(isa, poison, shape, layout, dtype, training):
    x, g, b = bn_data(shape, layout, dtype, seed=5)
    C = shape[1]
    stats = (None, None) if training else (np.full(C, 0.2, dtype), np.full(C, 1.5, dtype))
    y, m, s = fc.batch_norm(x, g, b, *stats, training=training, layout=layout, activation="relu")
    y0, m0, s0 = fc.batch_norm(x, g, b, *stats, training=training, layout=layout)
    assert np.array_equal(y, fc.relu(y0)) and np.array_equal(m, m0) and np.array_equal(s, s0)
    assert (y == 0).any() and (y > 0).any()
    gy = np.random.default_rng(6).standard_normal(x.shape).astype(dtype)
    fused = fc.batch_norm_backward(gy, x, g, m, s, training=training, layout=layout, activation="relu", y=y)
    separate = fc.batch_norm_backward(fc.relu_backward(gy, y), x, g, m, s, training=training, layout=layout)
    for a, w, name in zip(fused, separate, ("grad_x", "grad_gamma", "grad_beta")):
        assert np.array_equal(a, w), name


@pytest.mark.parametrize("layout", LAYOUTS)
def test_fused_relu_backward_drops_non_finite_gradients_where_the_relu_is_off(layout):
    """As relu_backward: an infinite or NaN grad_y where y == 0 contributes nothing."""
    x, g, b = bn_data((2, 5, 6, 7), layout, np.float32, seed=11)
    y, m, s = fc.batch_norm(x, g, b, None, None, training=True, layout=layout, activation="relu")
    gy = np.random.default_rng(12).standard_normal(x.shape).astype(np.float32)
    off = np.flatnonzero(y == 0)
    gy.flat[off[::2]] = np.inf
    gy.flat[off[1::2]] = np.nan
    fused = fc.batch_norm_backward(gy, x, g, m, s, layout=layout, activation="relu", y=y)
    separate = fc.batch_norm_backward(fc.relu_backward(gy, y), x, g, m, s, layout=layout)
    assert all(np.isfinite(a).all() and np.array_equal(a, w) for a, w in zip(fused, separate))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_fused_relu_gives_plus_zero_like_relu(layout):
    """gamma 0 and beta -0.0 make y a mix of -0.0 and +0.0: the fused ReLU returns +0.0 for
    both, as relu does."""
    x, _, _ = bn_data((2, 3, 4, 5), layout, np.float32, seed=16)
    g, b = np.zeros(3, np.float32), np.full(3, -0.0, np.float32)
    y = fc.batch_norm(x, g, b, None, None, training=True, layout=layout, activation="relu")[0]
    plain = fc.batch_norm(x, g, b, None, None, training=True, layout=layout)[0]
    assert np.signbit(plain).any() and (plain == 0).all() and not np.signbit(y).any()
    assert np.array_equal(np.signbit(y), np.signbit(fc.relu(plain)))


@pytest.mark.parametrize("relu_layer", ["ReLU", "Activation"])
def test_sequential_fuses_the_relu_above_a_batch_norm(monkeypatch, relu_layer):
    """Conv2D - BatchNormalization - ReLU in a Sequential: the ReLU runs inside the batch norm
    (no ReLU kernel call forward or backward) with the same output and gradients as the same
    layers called one by one, which Sequential does not fuse."""

    def layers():
        relu = fc.layers.ReLU() if relu_layer == "ReLU" else fc.layers.Activation("relu")
        return [
            Conv2D(5, 3, padding="same", input_shape=(6, 7, 3), seed=1),
            BatchNormalization(),
            relu,
            Flatten(),
            Dense(2, seed=2),
        ]

    rng = np.random.default_rng(13)
    x = rng.standard_normal((4, 6, 7, 3)).astype(np.float32)
    gy = rng.standard_normal((4, 2)).astype(np.float32)
    loose = layers()
    a = x
    for layer in loose:
        a = layer.forward(a, training=True)
    g = gy
    for layer in reversed(loose):
        g = layer.backward(g)

    calls = []
    for name in ("relu_forward", "relu_backward"):
        real = getattr(fc._cpu, name)
        monkeypatch.setattr(fc._cpu, name, lambda *args, real=real, name=name: (calls.append(name), real(*args))[1])
    loose_calls = []
    loose[2].forward(np.ones((1, 2), np.float32))  # the loose ReLU does call the kernel
    loose_calls, calls[:] = list(calls), []
    model = fc.Sequential(layers())
    y = model.forward(x, training=True)
    model.backward(gy)
    assert loose_calls == ["relu_forward"] and calls == []
    assert np.array_equal(y, a)
    for fused_layer, loose_layer in zip(model.layers, loose):
        for key in fused_layer.grads:
            assert np.array_equal(fused_layer.grads[key], loose_layer.grads[key]), (fused_layer.name, key)
    inference = x
    for layer in loose:
        inference = layer.forward(inference, training=False)
    assert np.array_equal(model(x), inference)


def test_a_batch_norm_shared_with_a_model_without_the_relu_applies_none():
    """The fusion holds for one call of the model that has the ReLU: a batch norm shared with a
    model where something else follows it, or called alone, computes no ReLU."""
    bn = BatchNormalization(input_shape=(3, 3, 2))
    with_relu = fc.Sequential([bn, fc.layers.ReLU()])
    without = fc.Sequential([bn, Flatten()])
    x = np.random.default_rng(14).standard_normal((2, 3, 3, 2)).astype(np.float32)
    fused = with_relu.forward(x)
    plain = without.forward(x)
    assert (fused >= 0).all() and (plain < 0).any()
    np.testing.assert_array_equal(fused.reshape(2, -1), np.maximum(plain, 0))
    assert (bn.forward(x) < 0).any()
    relu = with_relu.layers[1]
    np.testing.assert_array_equal(relu.forward(x), np.maximum(x, 0))
    with pytest.raises(ValueError):
        with_relu.forward(np.ones((2, 3, 3, 5), np.float32))  # 5 channels: its gamma has 2, it raises
    assert (bn.forward(x) < 0).any()  # and was asked for one call only


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_tiny_eps_on_a_constant_float32_channel_has_a_finite_backward(isa, poison, layout):
    """The saved inv_std (1e150 in float64) saturates at float32's largest value instead of inf,
    so the backward through a constant channel gives the reference's 0, not 0 * inf = NaN."""
    x = np.full((4, 2, 3, 3) if layout == "NCHW" else (4, 3, 3, 2), 5.0, np.float32)
    y, mean, inv_std = fc.batch_norm(x, None, None, None, None, training=True, eps=1e-300, layout=layout)
    assert np.array_equal(inv_std, np.full(2, np.finfo(np.float32).max, np.float32))
    gx, ggamma, gbeta = fc.batch_norm_backward(np.ones_like(x), x, None, mean, inv_std, layout=layout)
    assert np.array_equal(gx, np.zeros_like(x)) and np.array_equal(ggamma, np.zeros(2, np.float32))
    layer = BatchNormalization(axis=1 if layout == "NCHW" else -1, epsilon=1e-300)
    out = layer.forward(x, training=True)
    assert np.array_equal(layer.backward(np.ones_like(out)), np.zeros_like(x))
    _, _, inv_std = fc.batch_norm(
        x, None, None, np.full(2, 5.0, np.float32), np.zeros(2, np.float32), training=False, eps=1e-300, layout=layout
    )
    assert np.isfinite(inv_std).all()


def test_strided_running_statistics_are_updated_in_place():
    rng = np.random.default_rng(15)
    x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    store = np.zeros((2, 6), np.float32)
    store[1] = 1.0
    running_mean, running_var = store[0, ::2], store[1, ::2]
    fc.batch_norm(x, None, None, running_mean, running_var, training=True, momentum=0.5)
    want_mean, want_var = np.zeros(3, np.float32), np.ones(3, np.float32)
    fc.batch_norm(x, None, None, want_mean, want_var, training=True, momentum=0.5)
    assert np.array_equal(running_mean, want_mean) and np.array_equal(running_var, want_var)
    assert not np.array_equal(want_mean, np.zeros(3))
    assert np.array_equal(store[:, 1::2], [[0, 0, 0], [1, 1, 1]])  # the elements between untouched


def test_layer_flags_and_slopes_name_their_argument():
    with pytest.raises(TypeError, match="center must be True or False"):
        BatchNormalization(center="no")
    with pytest.raises(TypeError, match="scale must be True or False"):
        BatchNormalization(scale=1)
    with pytest.raises(ValueError, match="negative_slope must be a finite number >= 0, got -1"):
        fc.layers.LeakyReLU(negative_slope=-1)
