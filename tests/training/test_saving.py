"""model.save / fastconv.load_model: architecture, weights, compile settings and optimizer state
in one .npz; round trips are bit-identical, damaged files raise clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from npz_files import rewrite_npz

import fastconv as fc
from fastconv import layers as L
from fastconv import losses


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((48, 7, 7, 2)).astype(np.float32), rng.integers(0, 3, 48)


def _model(data_format="channels_last", extra=()):
    shape = (7, 7, 2) if data_format == "channels_last" else (2, 7, 7)
    return fc.Sequential(
        [
            L.Conv2D(
                5,
                3,
                padding="same",
                activation="relu",
                data_format=data_format,
                input_shape=shape,
                seed=1,
                kernel_regularizer=fc.regularizers.l1_l2(1e-4, 1e-3),
            ),
            L.MaxPooling2D(2, data_format=data_format),
            L.Conv2D(4, (2, 3), strides=(1, 2), seed=2, data_format=data_format),
            L.ReLU(),
            L.Flatten(),
            *extra,
            L.Dense(8, activation="relu", seed=3),
            L.Dense(3, seed=4),
        ],
        name="net",
    )


@pytest.mark.parametrize(
    "optimizer",
    [
        lambda: fc.Adam(learning_rate=0.01),
        lambda: fc.AdamW(weight_decay=0.1),
        lambda: fc.RMSprop(momentum=0.5, centered=True),
        lambda: fc.SGD(learning_rate=fc.optim.CosineDecay(0.1, 40), momentum=0.9, nesterov=True),
    ],
    ids=["adam", "adamw", "rmsprop", "sgd_cosine"],
)
def test_round_trip_predicts_and_keeps_training_bit_identically(tmp_path, optimizer):
    x, y = _data()
    model = _model()
    model.compile(
        optimizer=optimizer(), loss=losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, seed=0)
    path = tmp_path / "model.fastconv"
    model.save(path)
    assert path.exists()  # exactly the given name
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
    model.save(tmp_path / "m.npz")  # not compiled: architecture and weights only
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

    rewrite_npz(path, damage_json)
    with pytest.raises(ValueError, match="model description is damaged"):
        fc.load_model(path)
    model.save(path)

    def unknown_layer(e):
        d = json.loads(str(e["__fastconv_model__"]))
        d["layers"][3]["class"] = "LSTM"
        e["__fastconv_model__"] = np.array(json.dumps(d))

    rewrite_npz(path, unknown_layer)
    with pytest.raises(ValueError, match="unknown layer class 'LSTM'"):
        fc.load_model(path)
    model.save(path)

    def wrong_shape(e):
        e["dense_1/kernel"] = np.zeros((8, 4), np.float32)

    rewrite_npz(path, wrong_shape)
    with pytest.raises(ValueError, match="dense_1.*'kernel'.*shape"):
        fc.load_model(path)


def test_layer_configs_rebuild_equal_layers():
    for layer in _model().layers:
        clone = type(layer)(**layer.get_config())
        assert clone.get_config() == layer.get_config()


# ----------------------------------------------------------------------------- atomic writes

_FULL_DISK = r"""
import os, resource, signal, sys
import numpy as np
import fastconv as fc
from fastconv import layers as L

kind, folder = sys.argv[1], sys.argv[2]
model = fc.Sequential([L.Flatten(input_shape=(16, 16, 3)), L.Dense(64, seed=0), L.Dense(10, seed=1)])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
path = os.path.join(folder, "w.npz")
save = {"save": lambda: model.save(path), "save_weights": lambda: model.save_weights(path)}
if kind == "checkpoint":
    cp = fc.callbacks.ModelCheckpoint(path)
    cp.set_model(model)
    save["checkpoint"] = lambda: cp.on_epoch_end(0, {"loss": 1.0})
save[kind]()                                    # the previous file, ~200 KB
model.set_weights([w + 1 for w in model.get_weights()])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)    # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))
try:
    save[kind]()
except OSError as exc:
    print("OSError", exc.errno, exc)
"""


@pytest.mark.parametrize("kind", ["save", "save_weights", "checkpoint"])
def test_a_save_that_fails_on_a_full_disk_keeps_the_previous_file(tmp_path, kind):
    import errno
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, kind, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"OSError {errno.EFBIG} ") and "cannot write" in out.stdout
    assert str(tmp_path / "w.npz") in out.stdout and "left as it was" in out.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]  # no temporary file left
    assert (tmp_path / "w.npz").stat().st_size > 100_000
    model = fc.Sequential([L.Flatten(input_shape=(16, 16, 3)), L.Dense(64, seed=0), L.Dense(10, seed=1)])
    old = model.get_weights()
    loaded = fc.load_model(tmp_path / "w.npz") if kind == "save" else model.load_weights(tmp_path / "w.npz")
    assert all(np.array_equal(a, b) for a, b in zip(loaded.get_weights(), old))


def test_saves_replace_the_file_keep_its_mode_and_write_through_a_symlink(tmp_path):
    import os
    import stat

    model = _model()
    target = tmp_path / "real.npz"
    model.save(target)
    os.chmod(target, 0o640)
    (tmp_path / "link.npz").symlink_to(target)
    model.save(tmp_path / "link.npz")
    assert (tmp_path / "link.npz").is_symlink()
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.npz", "real.npz"]
    with pytest.raises(FileNotFoundError, match="cannot write .*no_folder.*m.npz"):
        model.save(tmp_path / "no_folder" / "m.npz")


# ----------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "optimizer",
    [
        lambda: fc.Adam(learning_rate=0.01),
        lambda: fc.RMSprop(momentum=0.5, centered=True),
        lambda: fc.SGD(momentum=0.9),
    ],
    ids=["adam", "rmsprop", "sgd"],
)
def test_any_layer_name_round_trips_with_the_optimizer_state(tmp_path, optimizer):
    x, y = _data()
    names = ["dense@1", "head#2", "a/b@c#0", "__optimizer__", "x.npy", "名 前", "..", "@", "#1"]
    model = fc.Sequential(
        [
            L.Conv2D(3, 3, input_shape=(7, 7, 2), seed=1, name=names[0]),
            L.BatchNormalization(name=names[1]),
            L.Flatten(name=names[2]),
            L.Dense(8, seed=2, name=names[3]),
            L.Dense(6, seed=3, name=names[4]),
            L.Dense(5, seed=4, name=names[5]),
            L.Dense(4, seed=5, name=names[6]),
            L.Dense(3, seed=6, name=names[7]),
            L.Softmax(name=names[8]),
        ]
    )
    model.compile(optimizer=optimizer(), loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, seed=0)
    model.save(tmp_path / "m.npz")
    loaded = fc.load_model(tmp_path / "m.npz")
    assert [layer.name for layer in loaded.layers] == names
    assert sorted(loaded.optimizer.state) == sorted(model.optimizer.state)
    for name, state in model.optimizer.state.items():
        got = loaded.optimizer.state[name]
        items = state.values() if isinstance(state, dict) else state if isinstance(state, tuple) else [state]
        loaded_items = got.values() if isinstance(got, dict) else got if isinstance(got, tuple) else [got]
        assert all((a is None and b is None) or np.array_equal(a, b) for a, b in zip(items, loaded_items))
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    loaded.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), loaded.get_weights()))


def test_a_name_no_file_can_carry_is_refused_before_writing(tmp_path):
    model = fc.Sequential([L.Dense(2, input_shape=(3,), name="a\0b")])
    with pytest.raises(ValueError, match=r"cannot save layer 'a\\x00b'.*without NUL"):
        model.save(tmp_path / "m.npz")
    assert not list(tmp_path.iterdir())
