"""fastconv.Sequential (summary, weight files), the VGG16 base and its converters, optimizers."""

from __future__ import annotations

import os

import numpy as np
import pytest

import fastconv as fc
from fastconv.layers import Conv2D, Dense, Flatten, MaxPooling2D


def course_model(data_format="channels_last", input_shape=(28, 28, 1)):
    kw = dict(activation="relu", data_format=data_format)
    return fc.Sequential(
        [
            Conv2D(32, 3, input_shape=input_shape, seed=0, **kw),
            MaxPooling2D(2, data_format=data_format),
            Conv2D(64, 3, seed=1, **kw),
            MaxPooling2D(2, data_format=data_format),
            Conv2D(64, 3, seed=2, **kw),
            Flatten(),
            Dense(64, activation="relu", seed=3),
            Dense(10, seed=4),
        ]
    )


# ----------------------------------------------------------------------------- summary and shapes


def test_course_model_matches_keras_counts_and_shapes():
    model = course_model()
    text = model.summary(print_fn=None)
    rows = [
        ("conv2d (Conv2D)", "(None, 26, 26, 32)", "320"),
        ("max_pooling2d (MaxPooling2D)", "(None, 13, 13, 32)", "0"),
        ("conv2d_1 (Conv2D)", "(None, 11, 11, 64)", "18,496"),
        ("max_pooling2d_1 (MaxPooling2D)", "(None, 5, 5, 64)", "0"),
        ("conv2d_2 (Conv2D)", "(None, 3, 3, 64)", "36,928"),
        ("flatten (Flatten)", "(None, 576)", "0"),
        ("dense (Dense)", "(None, 64)", "36,928"),
        ("dense_1 (Dense)", "(None, 10)", "650"),
    ]
    lines = text.splitlines()
    for name, shape, count in rows:
        line = next(ln for ln in lines if ln.strip().startswith(name + " ") or ln.strip().startswith(name + "("))
        assert line.split()[-1] == count and shape in line, line
    assert "Total params: 93,322" in text
    assert model.count_params() == 93_322
    y = model.forward(np.random.default_rng(0).standard_normal((2, 28, 28, 1)).astype(np.float32))
    assert y.shape == (2, 10) and np.all(np.isfinite(y))


def test_channels_first_model_has_the_same_counts():
    model = course_model("channels_first", (1, 28, 28))
    assert model.count_params() == 93_322
    assert model.layers[4].output_shape((64, 5, 5)) == (64, 3, 3)


def test_vgg16_base_counts_and_shapes():
    model = fc.models.vgg16_base((224, 224, 3))
    assert model.count_params() == 14_714_688
    assert model.output_shape() == (7, 7, 512)
    assert sum(isinstance(lyr, Conv2D) for lyr in model.layers) == 13
    assert sum(isinstance(lyr, MaxPooling2D) for lyr in model.layers) == 5
    assert model.layers[0].name == "block1_conv1" and model.layers[-1].name == "block5_pool"
    first = fc.models.vgg16_base((3, 64, 48), data_format="channels_first")
    assert first.output_shape() == (512, 2, 1)


# ----------------------------------------------------------------------------- weight files


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 28, 28, 1)).astype(np.float32)
    a = course_model()
    for ref in a.parameters():  # non-zero biases too
        ref.value[...] = rng.standard_normal(ref.value.shape) * 0.1
    a.save_weights(tmp_path / "w.npz")
    b = course_model()
    kernel = b.layers[0].params["kernel"]
    b.load_weights(tmp_path / "w.npz")
    assert b.layers[0].params["kernel"] is kernel  # loaded in place (optimizer refs stay valid)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    with np.load(tmp_path / "w.npz") as f:
        assert f["conv2d/kernel"].shape == (3, 3, 1, 32) and f["dense_1/bias"].shape == (10,)


def test_weights_move_between_data_formats(tmp_path):
    rng = np.random.default_rng(2)
    last = fc.Sequential([Conv2D(4, 3, seed=0, input_shape=(7, 8, 3)), MaxPooling2D(2), Conv2D(2, 2, seed=1)])
    for ref in last.parameters():
        ref.value[...] = rng.standard_normal(ref.value.shape)
    last.save_weights(tmp_path / "w.npz")
    first = fc.Sequential(
        [
            Conv2D(4, 3, data_format="channels_first", input_shape=(3, 7, 8)),
            MaxPooling2D(2, data_format="channels_first"),
            Conv2D(2, 2, data_format="channels_first"),
        ]
    )
    first.load_weights(tmp_path / "w.npz")
    x = rng.standard_normal((2, 7, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(
        first.forward(x.transpose(0, 3, 1, 2)), last.forward(x).transpose(0, 3, 1, 2), rtol=1e-5, atol=1e-5
    )


def test_load_weights_shape_mismatch_names_layer_and_shapes(tmp_path):
    course_model().save_weights(tmp_path / "w.npz")
    other = fc.Sequential(
        [
            Conv2D(32, 3, input_shape=(28, 28, 1)),
            MaxPooling2D(2),
            Conv2D(48, 3),
            MaxPooling2D(2),
            Conv2D(64, 3),
            Flatten(),
            Dense(64),
            Dense(10),
        ]
    )
    before = other.layers[0].params["kernel"].copy()
    with pytest.raises(ValueError, match=r"'conv2d_1'.*'kernel'.*\(3, 3, 32, 64\).*\(3, 3, 32, 48\)"):
        other.load_weights(tmp_path / "w.npz")
    np.testing.assert_array_equal(other.layers[0].params["kernel"], before)  # nothing half-loaded
    with pytest.raises(ValueError, match="missing"):
        fc.Sequential([Dense(3, input_shape=(4,), name="head")]).load_weights(tmp_path / "w.npz")


# ----------------------------------------------------------------------------- VGG16 converters


def _fake_vgg16_arrays(rng):
    """Small random stand-ins with VGG16's exact shapes (K, C, 3, 3) in torchvision naming."""
    state, c = {}, 3
    idx = iter((0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28))
    for _, k, n in fc.models.VGG16_LAYERS:
        for _ in range(n):
            i = next(idx)
            state[f"features.{i}.weight"] = rng.standard_normal((k, c, 3, 3)).astype(np.float32) * 0.05
            state[f"features.{i}.bias"] = rng.standard_normal(k).astype(np.float32)
            c = k
    state["classifier.0.weight"] = np.zeros((4, 4), np.float32)  # ignored
    return state


def test_vgg16_weights_from_torch_and_keras(tmp_path):
    rng = np.random.default_rng(3)
    state = _fake_vgg16_arrays(rng)
    weights = fc.models.vgg16_weights_from_torch(state)
    assert len(weights) == 26
    np.testing.assert_array_equal(weights["block3_conv2/kernel"], state["features.12.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(weights["block5_conv3/bias"], state["features.28.bias"])
    keras_list = [
        weights[f"{n}/{p}"]
        for n in (lyr.name for lyr in fc.models.vgg16_base((32, 32, 3)).layers if isinstance(lyr, Conv2D))
        for p in ("kernel", "bias")
    ]
    again = fc.models.vgg16_weights_from_keras(keras_list)
    assert all(np.array_equal(again[k], weights[k]) for k in weights)
    np.savez(tmp_path / "vgg.npz", **weights)

    # the same weights give the same features in both data formats; block1_conv1 = torch's conv
    x = rng.standard_normal((1, 32, 32, 3)).astype(np.float32)
    last = fc.models.vgg16_base((32, 32, 3), weights=tmp_path / "vgg.npz")
    first = fc.models.vgg16_base((3, 32, 32), data_format="channels_first", weights=tmp_path / "vgg.npz")
    np.testing.assert_array_equal(first.layers[0].params["kernel"], state["features.0.weight"])
    y_last = last.forward(x, training=False)
    y_first = first.forward(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), training=False)
    assert y_last.shape == (1, 1, 1, 512)
    np.testing.assert_allclose(y_first.transpose(0, 2, 3, 1), y_last, rtol=1e-4, atol=1e-4 * np.abs(y_last).max())

    del state["features.14.bias"]
    with pytest.raises(ValueError, match="features.14.bias"):
        fc.models.vgg16_weights_from_torch(state)
    with pytest.raises(ValueError, match="26"):
        fc.models.vgg16_weights_from_keras(keras_list[:-1])


# ----------------------------------------------------------------------------- optimizers


def _param_layer(p, g):
    layer = Dense(p.shape[-1], input_shape=(p.shape[0],), use_bias=False, dtype=np.float64, name="d")
    layer.params["kernel"][...] = p
    layer.grads = {"kernel": g.copy()}
    return layer


def test_sgd_plain_momentum_nesterov_weight_decay():
    rng = np.random.default_rng(4)
    p0 = rng.standard_normal((3, 2))
    gs = [rng.standard_normal((3, 2)) for _ in range(3)]
    for momentum, nesterov, wd in [(0.0, False, 0.0), (0.9, False, 0.0), (0.9, True, 0.0), (0.5, True, 0.01)]:
        layer = _param_layer(p0, gs[0])
        opt = fc.SGD(lr=0.1, momentum=momentum, nesterov=nesterov, weight_decay=wd)
        p, v = p0.copy(), None
        for g in gs:
            layer.grads["kernel"] = g
            opt.step(layer.parameters())
            d = g + wd * p
            v = d if v is None else momentum * v + d
            p = p - 0.1 * ((d + momentum * v) if nesterov else (v if momentum else d))
            np.testing.assert_allclose(layer.params["kernel"], p, rtol=1e-12)


def test_adam_matches_hand_computed_steps():
    rng = np.random.default_rng(5)
    p0 = rng.standard_normal((4, 3))
    layer = _param_layer(p0, p0)
    opt = fc.Adam(lr=0.01, betas=(0.8, 0.9), eps=1e-7)
    p, m, v = p0.copy(), 0.0, 0.0
    for t in range(1, 4):
        g = rng.standard_normal((4, 3))
        layer.grads["kernel"] = g
        opt.step(layer)
        m = 0.8 * m + 0.2 * g
        v = 0.9 * v + 0.1 * g * g
        p = p - 0.01 * (m / (1 - 0.8**t)) / (np.sqrt(v / (1 - 0.9**t)) + 1e-7)
        np.testing.assert_allclose(layer.params["kernel"], p, rtol=1e-12)
    # the first Adam step moves every weight by about lr, whatever the gradient's scale
    fresh = _param_layer(p0, 1e-3 * rng.standard_normal((4, 3)))
    fc.Adam(lr=0.01).step(fresh)
    np.testing.assert_allclose(np.abs(fresh.params["kernel"] - p0), 0.01, rtol=1e-3)


def test_optimizer_argument_errors():
    with pytest.raises(ValueError, match="lr"):
        fc.SGD(lr=0)
    with pytest.raises(ValueError, match="nesterov"):
        fc.SGD(nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        fc.Adam(betas=(1.0, 0.9))


def test_convert_script_writes_a_loadable_file(tmp_path):
    import sys

    examples = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "examples")
    sys.path.insert(0, examples)
    try:
        import convert_vgg16_weights
    finally:
        sys.path.remove(examples)
    state = _fake_vgg16_arrays(np.random.default_rng(6))
    np.savez(tmp_path / "sd.npz", **state)
    convert_vgg16_weights.main(["--torch-npz", str(tmp_path / "sd.npz"), "-o", str(tmp_path / "out.npz")])
    model = fc.models.vgg16_base((3, 32, 32), data_format="channels_first", weights=tmp_path / "out.npz")
    np.testing.assert_array_equal(model.layers[-2].params["kernel"], state["features.28.weight"])


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("pool", [dict(pool_size=2), dict(pool_size=3, strides=2, padding="same")])
def test_relu_mask_fused_into_the_pool_gives_the_same_gradients(data_format, pool):
    """Sequential applies a Conv2D's ReLU gradient mask in the MaxPooling2D above it (on the small
    pooled output): every gradient must be bit-identical to the unfused layer-by-layer chain,
    with overlapping windows and NaN inputs too."""
    from fastconv.layers import Conv2D, Dense, Flatten, MaxPooling2D

    rng = np.random.default_rng(7)
    shape = (10, 10, 3) if data_format == "channels_last" else (3, 10, 10)
    model = fc.Sequential(
        [
            Conv2D(8, 3, activation="relu", padding="same", data_format=data_format, input_shape=shape, seed=1),
            MaxPooling2D(data_format=data_format, **pool),
            Conv2D(6, 3, activation="relu", data_format=data_format, seed=2),
            MaxPooling2D(data_format=data_format, **pool),
            Flatten(),
            Dense(5, seed=3),
        ],
        input_grad=True,
    )
    model.build()
    assert [i for i, call in enumerate(model._fusion_plan()) if call.backward.get("relu_mask")] == [1, 3]
    x = rng.standard_normal((4, *shape)).astype(np.float32)
    x[0, 1, 1, 1] = np.nan
    y = model.forward(x)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    gx_fused = model.backward(gy)
    fused = {r.name: r.grad.copy() for r in model.parameters()}

    model.forward(x)
    g = gy
    for layer in reversed(model.layers):  # plain chain: each layer does its own ReLU
        g = layer.backward(g)
    for r in model.parameters():
        assert np.array_equal(r.grad, fused[r.name], equal_nan=True), r.name
    assert np.array_equal(g, gx_fused, equal_nan=True)


# ----------------------------------------------------------------------------- batch-norm folding


@pytest.mark.parametrize(
    "data_format, axis, folds",
    [
        ("channels_first", 1, True),
        ("channels_first", -1, False),
        ("channels_first", 3, False),
        ("channels_last", -1, True),
        ("channels_last", 3, True),
        ("channels_last", 1, False),
    ],
)
def test_fold_batch_norm_folds_only_a_batch_norm_over_the_conv_channels(data_format, axis, folds):
    # 4 filters on 6x6 'valid' 3x3: H = W = channels = 4, so a batch norm over H or W builds too
    shape = (2, 6, 6) if data_format == "channels_first" else (6, 6, 2)
    model = fc.Sequential(
        [
            Conv2D(4, 3, data_format=data_format, input_shape=shape, seed=0),
            fc.layers.BatchNormalization(axis=axis),
            Flatten(),
            Dense(3, seed=1),
        ]
    )
    model.build()
    rng = np.random.default_rng(5)
    bn = model.layers[1].params
    for key, low in (("gamma", 0.5), ("beta", -1.0), ("moving_mean", -1.0), ("moving_variance", 0.2)):
        bn[key][...] = rng.uniform(low, 2.0, bn[key].shape)
    x = rng.standard_normal((3, *shape)).astype(np.float32)
    folded = model.fold_batch_norm()
    kinds = [type(layer).__name__ for layer in folded.layers]
    assert kinds == (["Conv2D", "Flatten", "Dense"] if folds else ["Conv2D", "BatchNormalization", "Flatten", "Dense"])
    np.testing.assert_allclose(folded.predict(x), model.predict(x), rtol=1e-4, atol=1e-5)
