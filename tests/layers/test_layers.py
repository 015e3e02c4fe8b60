"""fastconv.layers: every layer's forward/backward against fastconv.reference (or a NumPy formula)
and against finite differences (fastconv.testing.check_layer_gradients)."""

from __future__ import annotations

import numpy as np
import pytest

import fastconv as fc
from fastconv import reference as ref
from fastconv.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D, ReLU, Softmax, SoftmaxCrossEntropy
from fastconv.testing import check_layer_gradients

TOL = {np.float32: 2e-4, np.float64: 1e-10}


def rand(rng, shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def close(got, want, dtype, what=""):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    scale = max(1.0, float(np.abs(want).max()))
    err = np.abs(got - want)
    i = np.unravel_index(int(err.argmax()), err.shape)
    assert err[i] <= TOL[dtype] * scale, f"{what}: at {i} got {got[i]}, want {want[i]}"


def nhwc_shape(data_format, n, c, h, w):
    return (n, h, w, c) if data_format == "channels_last" else (n, c, h, w)


# ----------------------------------------------------------------------------- Conv2D

CONV_CASES = [
    # filters, kernel, strides, padding, dilation, activation, use_bias, (N, C, H, W)
    (5, 3, 1, "valid", 1, None, True, (2, 3, 7, 6)),
    (4, 3, 1, "same", 1, "relu", True, (1, 1, 5, 5)),
    (7, (3, 2), 2, "same", 1, "relu", False, (3, 17, 9, 8)),
    (3, 1, 1, "valid", 1, None, True, (2, 16, 4, 5)),
    (6, 3, (2, 1), "valid", 2, "relu", True, (2, 5, 11, 9)),
    (2, 5, 2, "SAME", 1, None, True, (1, 4, 6, 7)),
    (5, 3, 1, "same", 1, "sigmoid", True, (2, 3, 7, 6)),
    (4, 3, 2, "valid", 1, "tanh", True, (1, 17, 9, 8)),
    (3, 3, 1, "same", 1, "leaky_relu", True, (2, 5, 6, 5)),
]

# Keras' activations (leaky_relu with keras.activations' slope 0.2), float64, and their gradients
# from the output y.
KERAS_ACTIVATIONS = {
    None: (lambda z: z, lambda g, y: g),
    "relu": (ref.relu, ref.relu_backward),
    "sigmoid": (ref.sigmoid, ref.sigmoid_backward),
    "tanh": (ref.tanh, ref.tanh_backward),
    "leaky_relu": (lambda z: ref.leaky_relu(z, 0.2), lambda g, y: ref.leaky_relu_backward(g, y, 0.2)),
}


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_forward_backward_vs_reference(case, dtype, data_format):
    filters, kernel, strides, padding, dilation, activation, use_bias, (N, C, H, W) = case
    rng = np.random.default_rng(1)
    layer = Conv2D(
        filters,
        kernel,
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
        activation=activation,
        use_bias=use_bias,
        data_format=data_format,
        seed=3,
        dtype=dtype,
    )
    x = rand(rng, nhwc_shape(data_format, N, C, H, W), dtype)
    layer.build(x.shape[1:])
    if use_bias:
        layer.params["bias"][...] = rand(rng, (filters,), dtype)
    layout = layer.layout
    kw = dict(stride=strides, padding=padding.lower(), dilation=dilation, layout=layout)
    y = layer.forward(x)
    assert y.dtype == dtype and y.shape == (N, *layer.output_shape(x.shape[1:]))
    act, act_grad = KERAS_ACTIVATIONS[activation]
    want_y = act(ref.conv2d(x, layer.params["kernel"], layer.params.get("bias"), **kw))
    close(y, want_y, dtype, "y")

    gy = rand(rng, y.shape, dtype)
    gx = layer.backward(gy)
    gz = act_grad(gy, want_y)
    want_gx, want_gw, want_gb = ref.conv2d_backward(gz, x, layer.params["kernel"], bias=use_bias, **kw)
    close(gx, want_gx, dtype, "grad_x")
    close(layer.grads["kernel"], want_gw, dtype, "grad_kernel")
    if use_bias:
        close(layer.grads["bias"], want_gb, dtype, "grad_bias")
    else:
        assert "bias" not in layer.grads and "bias" not in layer.params


def test_conv2d_weight_layout_and_param_count():
    last = Conv2D(8, (3, 5), input_shape=(10, 10, 3))
    first = Conv2D(8, (3, 5), data_format="channels_first", input_shape=(3, 10, 10))
    assert last.params["kernel"].shape == (3, 5, 3, 8)  # (R, S, C, K), Keras
    assert first.params["kernel"].shape == (8, 3, 3, 5)  # (K, C, R, S), PyTorch
    assert last.count_params() == first.count_params() == 3 * 5 * 3 * 8 + 8
    assert last.params["kernel"].dtype == np.float32


def test_first_conv_skips_the_data_gradient(monkeypatch):
    rng = np.random.default_rng(2)
    layer = Conv2D(4, 3, padding="same", seed=0)
    x = rand(rng, (2, 6, 6, 3))
    y = layer.forward(x)
    layer.needs_input_grad = False
    calls = []
    real = fc.functional.conv2d_backward_data
    monkeypatch.setattr(
        fc.layers.convolutional, "conv2d_backward_data", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    assert layer.backward(rand(rng, y.shape)) is None
    assert not calls and layer.grads["kernel"].shape == (3, 3, 3, 4)


def test_sequential_marks_only_the_leading_layers():
    model = fc.Sequential([ReLU(), Conv2D(2, 3), ReLU(), Conv2D(2, 3), Flatten(), Dense(3)], input_shape=(9, 9, 2))
    model.build()
    assert [lyr.needs_input_grad for lyr in model.layers] == [False, False, True, True, True, True]
    x = rand(np.random.default_rng(0), (2, 9, 9, 2))
    y = model.forward(x)
    assert model.backward(np.ones_like(y)) is None
    assert all(ref_.grad is not None for ref_ in model.parameters())


def test_conv2d_initializers_are_seeded_and_scaled():
    a = Conv2D(64, 3, seed=7, input_shape=(8, 8, 32)).params["kernel"]
    b = Conv2D(64, 3, seed=7, input_shape=(8, 8, 32)).params["kernel"]
    assert np.array_equal(a, b)
    limit = np.sqrt(6.0 / (9 * 32 + 9 * 64))
    assert np.abs(a).max() <= limit and np.abs(a).max() > 0.95 * limit
    he = Conv2D(64, 3, seed=7, kernel_initializer="he_normal", input_shape=(8, 8, 32)).params["kernel"]
    assert abs(he.std() / np.sqrt(2.0 / (9 * 32)) - 1) < 0.05  # truncated-normal, corrected std
    assert np.abs(he).max() <= 2 * np.sqrt(2.0 / (9 * 32)) / 0.87962566103423978 + 1e-6


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(filters=0, kernel_size=3), "filters"),
        (dict(filters=2, kernel_size=3, activation="elu"), "activation"),
        (dict(filters=2, kernel_size=3, padding="full"), "padding"),
        (dict(filters=2, kernel_size=3, data_format="NHWC"), "data_format"),
        (dict(filters=2, kernel_size=3, kernel_initializer="orthogonal", input_shape=(4, 4, 1)), "kernel_initializer"),
    ],
)
def test_conv2d_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Conv2D(**kwargs)


def test_conv2d_too_small_input_names_the_layer():
    with pytest.raises(ValueError, match="big_kernel"):
        fc.Sequential([Conv2D(2, 5, name="big_kernel")], input_shape=(3, 3, 1))


# ----------------------------------------------------------------------------- pooling, relu, flatten


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize(
    "pool, strides, padding, shape",
    [
        (2, None, "valid", (2, 3, 8, 6)),
        (3, 2, "valid", (1, 5, 7, 9)),
        ((2, 3), (1, 2), "same", (2, 17, 5, 7)),
        (2, None, "same", (3, 2, 7, 5)),
    ],
)
def test_max_pooling_vs_reference(pool, strides, padding, shape, data_format):
    rng = np.random.default_rng(3)
    x = rand(rng, nhwc_shape(data_format, *shape))
    layer = MaxPooling2D(pool, strides, padding, data_format=data_format)
    y = layer.forward(x)
    kw = dict(stride=strides, padding=padding, layout=layer.layout)
    want_y, idx = ref.max_pool2d(x, pool, **kw)
    close(y, want_y, np.float32, "y")
    assert y.shape == (x.shape[0], *layer.output_shape(x.shape[1:]))
    gy = rand(rng, y.shape)
    close(layer.backward(gy), ref.max_pool2d_backward(gy, idx, x.shape, pool, **kw), np.float32, "grad_x")


def test_relu_and_flatten():
    rng = np.random.default_rng(4)
    x = rand(rng, (3, 4, 5, 2))
    relu, flat = ReLU(), Flatten()
    y = relu.forward(x)
    close(y, ref.relu(x), np.float32)
    gy = rand(rng, x.shape)
    close(relu.backward(gy), ref.relu_backward(gy, ref.relu(x)), np.float32)
    f = flat.forward(x)
    assert f.shape == (3, 40) and np.array_equal(f[1], x[1].ravel())
    assert flat.output_shape((4, 5, 2)) == (40,)
    assert np.array_equal(flat.backward(f * 2), x * 2)


# ----------------------------------------------------------------------------- dense, dropout, softmax


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "leaky_relu"])
def test_dense_activation_forward_backward_vs_reference(activation):
    rng = np.random.default_rng(6)
    layer = Dense(5, activation=activation, seed=1, input_shape=(9,), dtype=np.float64)
    layer.params["bias"][...] = rng.standard_normal(5)
    x, gy = rng.standard_normal((4, 9)), rng.standard_normal((4, 5))
    act, act_grad = KERAS_ACTIVATIONS[activation]
    want_y = act(x @ layer.params["kernel"] + layer.params["bias"])
    close(layer.forward(x), want_y, np.float64, "y")
    gz = act_grad(gy, want_y)
    close(layer.backward(gy), gz @ layer.params["kernel"].T, np.float64, "grad_x")
    close(layer.grads["kernel"], x.T @ gz, np.float64, "grad_kernel")


@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "softmax"])
def test_dense_vs_numpy(activation):
    rng = np.random.default_rng(5)
    layer = Dense(7, activation=activation, seed=1, input_shape=(11,), dtype=np.float64)
    layer.params["bias"][...] = rng.standard_normal(7)
    x = rng.standard_normal((4, 11))
    z = x @ layer.params["kernel"] + layer.params["bias"]
    if activation == "relu":
        want = np.maximum(z, 0)
    elif activation == "sigmoid":
        want = 1 / (1 + np.exp(-z))
    elif activation == "softmax":
        want = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    else:
        want = z
    close(layer.forward(x), want, np.float64, "y")
    assert layer.count_params() == 11 * 7 + 7


def test_dense_sigmoid_does_not_overflow():
    layer = Dense(1, activation="sigmoid", kernel_initializer=lambda shape: np.ones(shape), input_shape=(1,))
    with np.errstate(over="raise"):
        y = layer.forward(np.array([[-1000.0], [-20.0], [0.0], [1000.0]], np.float32))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y[:, 0], [0.0, 1 / (1 + np.exp(20.0)), 0.5, 1.0], rtol=1e-6)


def test_dense_needs_flat_input():
    with pytest.raises(ValueError, match="Flatten"):
        Dense(3).forward(np.ones((2, 3, 3, 1), np.float32))


def test_dropout_is_inverted_and_off_at_inference():
    rng = np.random.default_rng(6)
    x = rand(rng, (200, 50)) + 3.0
    layer = Dropout(0.3, seed=0)
    assert np.array_equal(layer.forward(x, training=False), x)
    y = layer.forward(x, training=True)
    kept = y != 0
    assert abs(1 - kept.mean() - 0.3) < 0.02
    np.testing.assert_allclose(y[kept], x[kept] / 0.7, rtol=1e-6)
    gy = rand(rng, x.shape)
    np.testing.assert_allclose(layer.backward(gy), np.where(kept, gy / 0.7, 0), rtol=1e-6)
    with pytest.raises(ValueError, match="rate"):
        Dropout(1.0)


def test_softmax_cross_entropy_is_stable_and_matches_the_formula():
    rng = np.random.default_rng(7)
    logits = rng.standard_normal((5, 4)) * 3
    labels = np.array([0, 3, 1, 1, 2])
    loss = SoftmaxCrossEntropy()
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    want = -np.log(p[np.arange(5), labels]).mean()
    assert abs(loss.forward(logits, labels) - want) < 1e-12
    onehot = np.eye(4)[labels]
    np.testing.assert_allclose(loss.backward(), (p - onehot) / 5, atol=1e-14)
    assert abs(loss.forward(logits, onehot) - want) < 1e-12  # one-hot rows work too
    # finite differences of the loss itself
    eps, g = 1e-6, loss.forward(logits, labels) and loss.backward()
    for i, j in [(0, 0), (2, 3), (4, 1)]:
        lp, lm = logits.copy(), logits.copy()
        lp[i, j] += eps
        lm[i, j] -= eps
        num = (SoftmaxCrossEntropy().forward(lp, labels) - SoftmaxCrossEntropy().forward(lm, labels)) / (2 * eps)
        assert abs(num - g[i, j]) < 1e-8
    huge = np.array([[1000.0, 0.0], [-1000.0, 0.0]], np.float32)  # exp would overflow
    value = loss.forward(huge, np.array([1, 0]))
    assert np.isfinite(value) and abs(value - 1000.0) < 1e-3
    assert np.all(np.isfinite(loss.backward()))
    with pytest.raises(ValueError, match="labels"):
        loss.forward(logits, np.array([0, 1, 2, 3, 4]))


def test_softmax_layer():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 6)) + 500.0  # shifted: still finite
    s = Softmax().forward(x)
    np.testing.assert_allclose(s.sum(1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(s, Softmax().forward(x - 500.0), rtol=1e-9)


# ----------------------------------------------------------------------------- finite differences

GRAD_LAYERS = {
    "conv_valid": (lambda: Conv2D(3, 3, seed=1), (2, 5, 6, 2)),
    "conv_same_relu_s2": (lambda: Conv2D(4, 3, strides=2, padding="same", activation="relu", seed=1), (2, 7, 6, 3)),
    "conv_dilated_nchw": (
        lambda: Conv2D(2, 2, dilation_rate=2, data_format="channels_first", kernel_initializer="he_normal", seed=1),
        (2, 3, 6, 5),
    ),
    "conv_no_bias": (lambda: Conv2D(3, (1, 3), use_bias=False, seed=1), (1, 4, 5, 2)),
    "max_pool": (lambda: MaxPooling2D(2), (2, 6, 4, 3)),
    "max_pool_same_nchw": (lambda: MaxPooling2D(3, 2, "same", data_format="channels_first"), (1, 2, 7, 5)),
    "relu": (lambda: ReLU(), (2, 3, 4, 2)),
    "flatten": (lambda: Flatten(), (2, 3, 2, 2)),
    "dense": (lambda: Dense(5, seed=1), (3, 6)),
    "dense_relu": (lambda: Dense(4, activation="relu", seed=1), (3, 6)),
    "dense_softmax": (lambda: Dense(4, activation="softmax", seed=1), (3, 6)),
    "dense_sigmoid": (lambda: Dense(4, activation="sigmoid", seed=1), (3, 6)),
    "dropout": (lambda: Dropout(0.4, seed=3), (4, 7)),
    "softmax": (lambda: Softmax(), (3, 5)),
}


@pytest.mark.parametrize("name", list(GRAD_LAYERS))
def test_layer_gradients_by_finite_differences(name):
    make, shape = GRAD_LAYERS[name]
    x = np.random.default_rng(9).standard_normal(shape)
    errors = check_layer_gradients(make(), x, max_checks=40)
    assert "x" in errors and all(e < 1e-6 for e in errors.values())
    if name.startswith(("conv", "dense")):
        assert any(k.endswith("/kernel") for k in errors)


def test_whole_model_gradients_by_finite_differences():
    model = fc.Sequential(
        [
            Conv2D(3, 3, padding="same", activation="relu", seed=1),
            MaxPooling2D(2),
            Conv2D(4, 3, seed=2),
            ReLU(),
            Flatten(),
            Dropout(0.2, seed=0),
            Dense(5, activation="relu", seed=3),
            Dense(3, seed=4),
        ],
        input_shape=(8, 8, 2),
    )
    x = np.random.default_rng(10).standard_normal((2, 8, 8, 2))
    errors = check_layer_gradients(model, x, max_checks=12)
    assert set(errors) == {"x"} | {r.name for r in model.parameters()}
    assert model.layers[0].needs_input_grad is False  # the caller's model is left as it was
    assert model.layers[0].params["kernel"].dtype == np.float32


def test_gradient_checker_catches_a_wrong_backward():
    class Wrong(Dense):
        def backward(self, grad_y):
            gx = super().backward(grad_y)
            self.grads["bias"] = self.grads["bias"] * 1.01
            return gx

    with pytest.raises(AssertionError, match="bias"):
        check_layer_gradients(Wrong(3, seed=0), np.random.default_rng(0).standard_normal((2, 4)))


def test_inputs_take_the_layer_dtype_like_keras():
    rng = np.random.default_rng(11)
    conv = Conv2D(2, 3, seed=0)
    x64 = rng.standard_normal((2, 5, 5, 1))
    y = conv.forward(x64)  # float32 layer: the float64 input is cast
    assert y.dtype == np.float32 and conv.params["kernel"].dtype == np.float32
    close(y, ref.conv2d(x64.astype(np.float32), conv.params["kernel"], conv.params["bias"], layout="NHWC"), np.float32)
    assert conv.backward(np.ones_like(y)).dtype == np.float32
    u8 = rng.integers(0, 255, (2, 5, 5, 1), dtype=np.uint8)
    assert Conv2D(2, 3, seed=0).forward(u8).dtype == np.float32
    assert Dense(3, dtype=np.float64).forward(np.ones((2, 4), np.float32)).dtype == np.float64


# ----------------------------------------------------------------------------- LeakyReLU, Activation


@pytest.mark.parametrize("slope", [0.3, 0.0, 1.5])
def test_leaky_relu_layer_keras_default_and_gradient(slope):
    from fastconv.layers import LeakyReLU

    rng = np.random.default_rng(8)
    layer = LeakyReLU() if slope == 0.3 else LeakyReLU(slope)
    assert layer.negative_slope == slope and layer.get_config()["negative_slope"] == slope
    x, gy = rand(rng, (2, 5, 4, 3), np.float32), rand(rng, (2, 5, 4, 3), np.float32)
    y = layer.forward(x)
    close(y, ref.leaky_relu(x, slope), np.float32, "y")
    close(layer.backward(gy), ref.leaky_relu_backward(gy, y, slope), np.float32, "grad_x")
    with pytest.raises(ValueError, match="negative_slope"):
        LeakyReLU(-0.1)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "leaky_relu", "softmax", "linear"])
def test_activation_layer(name):
    from fastconv.layers import Activation

    rng = np.random.default_rng(9)
    layer = Activation(name)
    x, gy = rng.standard_normal((3, 6)), rng.standard_normal((3, 6))
    y = layer.forward(x)
    if name == "softmax":
        e = np.exp(x - x.max(1, keepdims=True))
        want = e / e.sum(1, keepdims=True)
        want_gx = want * (gy - (gy * want).sum(1, keepdims=True))
    elif name == "linear":
        want, want_gx = x, gy
    else:
        act, act_grad = KERAS_ACTIVATIONS[name]
        want = act(x)
        want_gx = act_grad(gy, want)
    close(y, want, np.float64, "y")
    close(layer.backward(gy), want_gx, np.float64, "grad_x")
    assert Activation(**layer.get_config()).activation == name


def test_activation_layer_rejects_unknown_names():
    from fastconv.layers import Activation

    with pytest.raises(ValueError, match="Activation must be"):
        Activation("elu")


# ----------------------------------------------------------------------------- average and global pooling


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_average_pooling_layer_same_excludes_padding_like_keras(data_format):
    from fastconv.layers import AveragePooling2D

    rng = np.random.default_rng(10)
    layout = "NHWC" if data_format == "channels_last" else "NCHW"
    x = rand(rng, (2, 7, 6, 3) if layout == "NHWC" else (2, 3, 7, 6), np.float32)
    layer = AveragePooling2D(3, strides=2, padding="same", data_format=data_format)
    y = layer.forward(x)
    kw = dict(stride=2, padding="same", layout=layout, count_include_pad=False)
    close(y, ref.avg_pool2d(x, 3, **kw), np.float32, "y")
    assert y.shape[1:] == layer.output_shape(x.shape[1:])
    gy = rand(rng, y.shape, np.float32)
    close(layer.backward(gy), ref.avg_pool2d_backward(gy, x.shape, 3, **kw), np.float32, "grad_x")


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("kind", ["avg", "max"])
def test_global_pooling_layers(kind, keepdims):
    from fastconv.layers import GlobalAveragePooling2D, GlobalMaxPooling2D

    rng = np.random.default_rng(11)
    x = rand(rng, (3, 5, 4, 6), np.float32)
    layer = (GlobalAveragePooling2D if kind == "avg" else GlobalMaxPooling2D)(keepdims=keepdims)
    y = layer.forward(x)
    want = ref.global_avg_pool2d(x, layout="NHWC") if kind == "avg" else ref.global_max_pool2d(x, layout="NHWC")[0]
    assert y.shape == ((3, 1, 1, 6) if keepdims else (3, 6)) and y.shape[1:] == layer.output_shape(x.shape[1:])
    close(y.reshape(3, 6), want, np.float32, "y")
    gy = rand(rng, y.shape, np.float32)
    gx = layer.backward(gy)
    if kind == "avg":
        want_gx = ref.global_avg_pool2d_backward(gy.reshape(3, 6), x.shape, layout="NHWC")
    else:
        want_gx = ref.global_max_pool2d_backward(
            gy.reshape(3, 6), ref.global_max_pool2d(x, layout="NHWC")[1], x.shape, layout="NHWC"
        )
    close(gx, want_gx, np.float32, "grad_x")


def test_gap_head_model_trains_and_round_trips_its_config(tmp_path):
    from fastconv.layers import GlobalAveragePooling2D

    rng = np.random.default_rng(12)
    x = rng.standard_normal((16, 8, 8, 3)).astype(np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 0).astype(np.int64)
    model = fc.Sequential(
        [
            Conv2D(8, 3, padding="same", activation="relu", input_shape=(8, 8, 3), seed=1),
            GlobalAveragePooling2D(),
            Dense(2, seed=2),
        ]
    )
    model.compile(fc.Adam(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=15, batch_size=8, verbose=0, shuffle=False)
    assert history.history["loss"][-1] < history.history["loss"][0]
    path = tmp_path / "gap.npz"
    model.save(path)
    again = fc.load_model(path)
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
