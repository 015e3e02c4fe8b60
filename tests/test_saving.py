"""model.save / fastconv.load_model: architecture, weights, compile settings and optimizer state
in one .npz; round trips are bit-identical, damaged files raise clear errors."""
from __future__ import annotations

import json

import numpy as np
import pytest

import fastconv as fc
from fastconv import layers as L
from fastconv import losses


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((48, 7, 7, 2)).astype(np.float32), rng.integers(0, 3, 48)


def _model(data_format="channels_last", extra=()):
    shape = (7, 7, 2) if data_format == "channels_last" else (2, 7, 7)
    return fc.Sequential([
        L.Conv2D(5, 3, padding="same", activation="relu", data_format=data_format, input_shape=shape,
                 seed=1, kernel_regularizer=fc.regularizers.l1_l2(1e-4, 1e-3)),
        L.MaxPooling2D(2, data_format=data_format), L.Conv2D(4, (2, 3), strides=(1, 2), seed=2,
                                                              data_format=data_format),
        L.ReLU(), L.Flatten(), *extra, L.Dense(8, activation="relu", seed=3), L.Dense(3, seed=4)], name="net")


@pytest.mark.parametrize("optimizer", [lambda: fc.Adam(learning_rate=0.01), lambda: fc.AdamW(weight_decay=0.1),
                                       lambda: fc.RMSprop(momentum=0.5, centered=True),
                                       lambda: fc.SGD(learning_rate=fc.optim.CosineDecay(0.1, 40), momentum=0.9,
                                                      nesterov=True)],
                         ids=["adam", "adamw", "rmsprop", "sgd_cosine"])
def test_round_trip_predicts_and_keeps_training_bit_identically(tmp_path, optimizer):
    x, y = _data()
    model = _model()
    model.compile(optimizer=optimizer(), loss=losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, seed=0)
    path = tmp_path / "model.fastconv"
    model.save(path)
    assert path.exists()                        # exactly the given name
    loaded = fc.load_model(path)
    assert loaded.name == "net" and [type(a) for a in loaded.layers] == [type(b) for b in model.layers]
    assert np.array_equal(loaded.predict(x), model.predict(x))
    assert loaded.optimizer.iterations == model.optimizer.iterations == 6
    assert loaded.metrics[0][0] == "accuracy"
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    loaded.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        assert np.array_equal(a, b)


def test_channels_first_dropout_softmax_and_frozen_layers(tmp_path):
    x, _ = _data(1)
    model = _model("channels_first", extra=(L.Dropout(0.3, seed=7),))
    model.add(L.Softmax())
    model.layers[0].trainable = False
    model.save(tmp_path / "m.npz")                 # not compiled: architecture and weights only
    loaded = fc.load_model(tmp_path / "m.npz")
    xc = x.transpose(0, 3, 1, 2).copy()
    assert np.array_equal(loaded.predict(xc), model.predict(xc))
    assert loaded.layers[0].trainable is False and loaded.optimizer is None
    assert loaded.count_params(trainable=False) == model.count_params(trainable=False)


def test_save_without_optimizer_and_load_without_compile(tmp_path):
    x, y = _data()
    model = _model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.save(tmp_path / "a.npz", include_optimizer=False)
    loaded = fc.load_model(tmp_path / "a.npz")
    assert isinstance(loaded.optimizer, fc.RMSprop) and loaded.optimizer.iterations == 0
    assert fc.load_model(tmp_path / "a.npz", compile=False).loss is None
    model.optimizer = fc.SGD(learning_rate=lambda step: 0.1)
    with pytest.raises(ValueError, match="cannot save the learning-rate schedule"):
        model.save(tmp_path / "b.npz")


def _rewrite(path, change):
    with np.load(path) as f:
        entries = {k: f[k] for k in f.files}
    change(entries)
    with open(path, "wb") as f:
        np.savez(f, **entries)


def test_damaged_or_wrong_files_raise_clear_errors(tmp_path):
    model = _model()
    model.save_weights(tmp_path / "weights.npz")
    with pytest.raises(ValueError, match="not a model file written by model.save"):
        fc.load_model(tmp_path / "weights.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="not an .npz weight archive"):
        fc.load_model(tmp_path / "junk.npz")
    path = tmp_path / "m.npz"
    model.save(path)

    def damage_json(e):
        e["__fastconv_model__"] = np.array('{"format": "fastconv.Sequential/1", "layers": [')
    _rewrite(path, damage_json)
    with pytest.raises(ValueError, match="model description is damaged"):
        fc.load_model(path)
    model.save(path)

    def unknown_layer(e):
        d = json.loads(str(e["__fastconv_model__"]))
        d["layers"][3]["class"] = "LSTM"
        e["__fastconv_model__"] = np.array(json.dumps(d))
    _rewrite(path, unknown_layer)
    with pytest.raises(ValueError, match="unknown layer class 'LSTM'"):
        fc.load_model(path)
    model.save(path)

    def wrong_shape(e):
        e["dense_1/kernel"] = np.zeros((8, 4), np.float32)
    _rewrite(path, wrong_shape)
    with pytest.raises(ValueError, match="dense_1.*'kernel'.*shape"):
        fc.load_model(path)


def test_layer_configs_rebuild_equal_layers():
    for layer in _model().layers:
        clone = type(layer)(**layer.get_config())
        assert clone.get_config() == layer.get_config()
