"""Keras' training toolbox: losses and metrics against NumPy, compile / fit / evaluate against the
hand-written loop, callbacks, regularizers, get/set_weights, the batch iterator (the optimizers:
test_optimizers.py)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import fastconv as fc
from fastconv import callbacks, data, losses, metrics, optim, regularizers
from fastconv import layers as L

# ----------------------------------------------------------------------------- losses and metrics


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _numeric_grad(loss, t, y, eps=1e-6):
    g = np.zeros_like(y)
    for i in range(y.size):
        yp, ym = y.copy(), y.copy()
        yp.flat[i] += eps
        ym.flat[i] -= eps
        g.flat[i] = (loss(t, yp) - loss(t, ym)) / (2 * eps)
    return g


def _loss_cases():
    rng = np.random.default_rng(3)
    z = rng.standard_normal((6, 4))
    labels = rng.integers(0, 4, 6)
    onehot = np.eye(4)[labels]
    probs = _softmax(z)
    bz = rng.standard_normal((6, 3))
    bt = (rng.random((6, 3)) > 0.5).astype(float)
    bp = 1 / (1 + np.exp(-bz))
    return [
        (
            "sparse_logits",
            losses.SparseCategoricalCrossentropy(from_logits=True),
            labels,
            z,
            -np.log(probs[np.arange(6), labels]).mean(),
        ),
        (
            "sparse_probs",
            losses.SparseCategoricalCrossentropy(),
            labels,
            probs,
            -np.log(probs[np.arange(6), labels]).mean(),
        ),
        (
            "categorical_logits",
            losses.CategoricalCrossentropy(from_logits=True),
            onehot,
            z,
            -(onehot * np.log(probs)).sum(axis=1).mean(),
        ),
        (
            "binary_logits",
            losses.BinaryCrossentropy(from_logits=True),
            bt,
            bz,
            -(bt * np.log(bp) + (1 - bt) * np.log(1 - bp)).mean(),
        ),
        ("binary_probs", losses.BinaryCrossentropy(), bt, bp, -(bt * np.log(bp) + (1 - bt) * np.log(1 - bp)).mean()),
        ("mse", losses.get("mse"), bt, bz, ((bz - bt) ** 2).mean()),
    ]


@pytest.mark.parametrize("case", _loss_cases(), ids=lambda c: c[0])
def test_losses_match_numpy_formulas_and_finite_differences(case):
    _, loss, t, y, want = case
    assert loss(t, y) == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(loss.backward(), _numeric_grad(loss, t, y), rtol=1e-6, atol=1e-9)


def test_probability_losses_clip_like_keras():
    loss = losses.SparseCategoricalCrossentropy()
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    assert loss([1, 0], p) == pytest.approx((-np.log(1e-7) - np.log(0.5)) / 2)
    assert np.isfinite(loss.backward()).all()


def test_loss_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"class labels must lie in \[0, 3\)"):
        losses.SparseCategoricalCrossentropy()([0, 3], np.full((2, 3), 1 / 3))
    with pytest.raises(ValueError, match="y_true has shape"):
        losses.MeanSquaredError()(np.ones((2, 2)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="loss must be"):
        losses.get("hinge")
    with pytest.raises(RuntimeError, match="before the loss"):
        losses.BinaryCrossentropy().backward()


def test_accuracy_resolves_from_the_loss():
    y_pred = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert metrics.get("accuracy", losses.get("sparse_categorical_crossentropy"))[1](
        [1, 0, 0], y_pred
    ) == pytest.approx(2 / 3)
    assert metrics.get("accuracy", losses.get("categorical_crossentropy"))[1](
        np.eye(2)[[1, 1, 1]], y_pred
    ) == pytest.approx(2 / 3)
    binary = metrics.get("acc", losses.BinaryCrossentropy())[1]
    assert binary(np.array([1, 0, 1]), np.array([0.9, 0.4, 0.2])) == pytest.approx(2 / 3)
    logits = metrics.get("accuracy", losses.BinaryCrossentropy(from_logits=True))[1]
    assert logits(np.array([1, 0]), np.array([0.3, -0.2])) == 1.0  # threshold 0 on logits


# ----------------------------------------------------------------------------- compile / fit


def _problem(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6, 6, 1)).astype(np.float32)
    y = (x[:, :3].mean(axis=(1, 2, 3)) > 0).astype(np.int64) + 2 * (x[:, :, :3].mean(axis=(1, 2, 3)) > 0)
    return x, y


def _model(head=None, reg=None):
    return fc.Sequential(
        [
            L.Conv2D(4, 3, padding="same", activation="relu", input_shape=(6, 6, 1), seed=1),
            L.MaxPooling2D(),
            L.Flatten(),
            L.Dense(16, activation="relu", seed=2, kernel_regularizer=reg),
            L.Dense(4, activation=head, seed=3),
        ]
    )


def test_fit_is_the_hand_written_loop():
    """Same batches, same steps: fit's parameters equal a manual loop's bit for bit."""
    x, y = _problem()
    auto, manual = _model(), _model()
    auto.compile(optimizer=fc.Adam(learning_rate=0.01), loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    history = auto.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)
    opt, loss = fc.Adam(learning_rate=0.01), losses.SparseCategoricalCrossentropy(from_logits=True)
    values = []
    for _ in range(2):
        total = 0.0
        for xb, yb in data.batches(x, y, 32, shuffle=False):
            total += loss(yb, manual.forward(xb)) * len(xb)
            manual.backward(loss.backward())
            opt.step(manual)
        values.append(total / len(x))
    for a, b in zip(auto.get_weights(), manual.get_weights()):
        assert np.array_equal(a, b)
    assert history.history["loss"] == pytest.approx(values, rel=1e-12)
    assert history.epoch == [0, 1]


def test_fit_learns_with_validation_and_reports_metrics(capsys):
    x, y = _problem(192)
    model = _model()
    model.compile(
        optimizer=fc.Adam(learning_rate=0.01),
        loss=losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(x, y, batch_size=16, epochs=6, validation_split=0.25, verbose=2, seed=0)
    h = history.history
    assert set(h) == {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}
    assert h["loss"][-1] < h["loss"][0] and h["accuracy"][-1] > 0.5
    out = capsys.readouterr().out
    assert "Epoch 6/6" in out and "val_accuracy" in out
    loss, acc = model.evaluate(x[144:], y[144:], verbose=0)
    assert loss == pytest.approx(h["val_loss"][-1]) and acc == pytest.approx(h["val_accuracy"][-1])
    assert model.predict(x[:5]).shape == (5, 4)


def test_compile_rejects_a_softmax_head_with_a_from_logits_loss():
    with pytest.raises(ValueError, match="expects logits, but the last layer applies softmax"):
        _model(head="softmax").compile(loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(RuntimeError, match="call model.compile"):
        _model().fit(*_problem(), verbose=0)
    _model(head="softmax").compile(loss="sparse_categorical_crossentropy")  # probabilities: fine


def test_regularizer_gradient_and_reported_loss():
    x, y = _problem(32)
    lam = 0.01
    plain, reg = _model(), _model(reg=regularizers.l2(lam))
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    for m in (plain, reg):
        loss(y, m.forward(x))
        m.backward(loss.backward())
    kernel = reg.layers[3].params["kernel"]
    np.testing.assert_allclose(
        reg.layers[3].grads["kernel"], plain.layers[3].grads["kernel"] + 2 * lam * kernel, rtol=1e-5, atol=1e-7
    )
    assert reg.regularization_loss() == pytest.approx(lam * float((kernel.astype(np.float64) ** 2).sum()), rel=1e-5)
    reg.compile(optimizer="sgd", loss=loss)
    assert reg.test_on_batch(x, y)["loss"] == pytest.approx(loss(y, reg(x)) + reg.regularization_loss())
    g = regularizers.l1_l2(0.1, 0.2).gradient(np.array([-2.0, 0.0, 3.0]))
    np.testing.assert_allclose(g, [-0.1 - 0.8, 0.0, 0.1 + 1.2])


# ----------------------------------------------------------------------------- callbacks


class _Weights:
    """A stand-in model whose weights are the epoch they were set at."""

    def __init__(self):
        self.w, self.stop_training, self.optimizer, self.saved = [0], False, fc.SGD(learning_rate=1.0), []

    def get_weights(self):
        return list(self.w)

    def set_weights(self, w):
        self.w = list(w)

    def save_weights(self, path):
        self.saved.append(path)


def _drive(callback, values, key="val_loss"):
    model = _Weights()
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, v in enumerate(values):
        callback.on_epoch_begin(epoch)
        model.w = [epoch]
        callback.on_epoch_end(epoch, {key: v, "val_accuracy": -v})
        if model.stop_training:
            break
    callback.on_train_end()
    return model, epoch


def test_early_stopping_stops_after_patience_and_restores_the_best_epoch():
    model, last = _drive(callbacks.EarlyStopping(patience=2, restore_best_weights=True), [3, 2, 1, 1.5, 1.2, 0.5])
    assert last == 4 and model.w == [2]
    model, last = _drive(callbacks.EarlyStopping(monitor="val_accuracy", patience=1), [3, 2, 2.5, 2.6, 1])
    assert last == 2  # 'auto' maximizes accuracy: epoch 2 is worse than epoch 1
    with pytest.raises(KeyError, match="monitors 'val_auc'"):
        _drive(callbacks.EarlyStopping(monitor="val_auc"), [1])


def test_reduce_lr_on_plateau_and_scheduler():
    model, _ = _drive(callbacks.ReduceLROnPlateau(factor=0.5, patience=2, min_lr=0.01), [1, 1, 1, 1, 1])
    assert model.optimizer.learning_rate == pytest.approx(0.5 * 0.5)  # epochs 2 and 4
    model, _ = _drive(callbacks.ReduceLROnPlateau(factor=0.5, patience=2, min_lr=0.2), [1] * 7)
    assert model.optimizer.learning_rate == pytest.approx(0.2)  # then floored at min_lr
    sched = callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 * (epoch + 1))
    model, _ = _drive(sched, [1, 1, 1])
    assert model.optimizer.learning_rate == pytest.approx(0.3)


def test_model_checkpoint_formats_the_path_and_saves_only_improvements(tmp_path):
    cp = callbacks.ModelCheckpoint(str(tmp_path / "w-{epoch:02d}-{val_loss:.1f}.npz"), save_best_only=True)
    model, _ = _drive(cp, [3.0, 2.0, 2.5, 1.0])
    assert [p.rsplit("/", 1)[1] for p in model.saved] == ["w-01-3.0.npz", "w-02-2.0.npz", "w-04-1.0.npz"]


def test_csv_logger_history_plot_and_checkpoint_with_a_real_fit(tmp_path):
    x, y = _problem(64)
    model = _model()
    model.compile(
        optimizer=fc.RMSprop(learning_rate=1e-3),
        loss=losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    ckpt = tmp_path / "best.npz"
    history = model.fit(
        x,
        y,
        epochs=3,
        batch_size=16,
        validation_data=(x[:16], y[:16]),
        verbose=0,
        callbacks=[
            callbacks.CSVLogger(tmp_path / "log.csv"),
            callbacks.ModelCheckpoint(ckpt, monitor="val_loss", save_best_only=True),
        ],
    )
    rows = list(csv.reader(open(tmp_path / "log.csv")))
    assert rows[0] == ["epoch", "accuracy", "learning_rate", "loss", "val_accuracy", "val_loss"] and len(rows) == 4
    assert float(rows[3][3]) == pytest.approx(history.history["loss"][2])
    assert ckpt.exists()
    pytest.importorskip("matplotlib")
    png = history.plot(tmp_path / "curves.png")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------- weights and batches


def test_get_and_set_weights_round_trip_and_check_shapes():
    a, b = _model(), _model()
    b.layers[0].seed = 9
    x, _ = _problem(8)
    a.build(), b.build()
    weights = a.get_weights()
    assert [w.shape for w in weights][:2] == [(3, 3, 1, 4), (4,)]  # Keras order and layout
    b.set_weights(weights)
    assert np.array_equal(a.predict(x), b.predict(x))
    before = b.get_weights()
    bad = list(weights)
    bad[-1] = np.zeros(5)
    with pytest.raises(ValueError, match="expects shape"):
        b.set_weights(bad)
    with pytest.raises(ValueError, match="has 6 weight arrays, got 5"):
        b.set_weights(weights[:-1])
    assert all(np.array_equal(u, v) for u, v in zip(before, b.get_weights()))


def test_batches_cover_every_sample_once_and_shuffle_by_seed():
    x, y = np.arange(10), np.arange(10) * 2
    got = list(data.batches(x, y, batch_size=4, seed=5))
    assert [len(b[0]) for b in got] == [4, 4, 2]
    assert sorted(np.concatenate([b[0] for b in got])) == list(range(10))
    assert all(np.array_equal(b[1], 2 * b[0]) for b in got)
    again = list(data.batches(x, y, batch_size=4, seed=5))
    assert all(np.array_equal(u[0], v[0]) for u, v in zip(got, again))
    assert [len(b) for b in data.batches(x, batch_size=4, shuffle=False, drop_last=True)] == [4, 4]
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        next(data.batches(x, y, batch_size=0))
    with pytest.raises(ValueError, match="x has 10 samples"):
        next(data.batches(x, y[:3]))


def test_a_pytorch_state_dict_loads_by_layer_order_into_channels_last():
    """The same CNN in PyTorch (NCHW) and here (channels_last): after load_torch_state_dict the
    predictions agree, the Dense after Flatten included (columns reordered from C, H, W)."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 5, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(5 * 2 * 2, 6),
        nn.ReLU(),
        nn.Linear(6, 3),
    )
    model = fc.Sequential(
        [
            L.Conv2D(4, 3, padding="same", activation="relu", input_shape=(8, 8, 2)),
            L.MaxPooling2D(),
            L.Conv2D(5, 3, activation="relu"),
            L.Flatten(),
            L.Dense(6, activation="relu"),
            L.Dense(3),
        ]
    )
    model.load_torch_state_dict(net.state_dict())
    x = np.random.default_rng(1).standard_normal((3, 2, 8, 8)).astype(np.float32)
    want = net(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(model.predict(x.transpose(0, 2, 3, 1)), want, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="has 6 tensors, model 'sequential' has 8"):
        model.load_torch_state_dict({k: v for i, (k, v) in enumerate(net.state_dict().items()) if i < 6})
    bn = nn.BatchNorm2d(4)
    with pytest.raises(ValueError, match="other than weights and biases"):
        model.load_torch_state_dict({**net.state_dict(), **{f"bn.{k}": v for k, v in bn.state_dict().items()}})


# ----------------------------------------------------------------------------- review findings


def test_saved_optimizer_state_of_a_frozen_layer_loads(tmp_path):
    """Fine-tuning: train, freeze a layer, save with the optimizer: its state comes back too."""
    x, y = _problem(32)
    model = _model()
    model.compile(optimizer=fc.Adam(learning_rate=0.01), loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    model.layers[0].trainable = False
    model.save(tmp_path / "m.npz")
    loaded = fc.load_model(tmp_path / "m.npz")
    assert np.array_equal(loaded.optimizer.state["conv2d/kernel"][0], model.optimizer.state["conv2d/kernel"][0])


def test_a_custom_metric_is_not_saved_and_the_model_still_loads(tmp_path):
    def top1(y_true, y_pred):
        return float((y_pred.argmax(-1) == y_true).mean())

    model = _model()
    model.compile(
        optimizer="sgd", loss=losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy", top1]
    )
    model.save(tmp_path / "m.npz")
    assert [name for name, _ in fc.load_model(tmp_path / "m.npz").metrics] == ["accuracy"]


def test_callbacks_refuse_to_overwrite_a_schedule():
    model = _Weights()
    model.optimizer = fc.Adam(learning_rate=optim.CosineDecay(0.1, 10))
    for cb in (callbacks.ReduceLROnPlateau(patience=0), callbacks.LearningRateScheduler(lambda e, lr: lr)):
        cb.set_model(model)
        cb.on_train_begin()
        with pytest.raises(TypeError, match="is a schedule"):
            cb.on_epoch_begin(0)
            cb.on_epoch_end(0, {"val_loss": 1.0})
            cb.on_epoch_end(1, {"val_loss": 1.0})


def test_accuracy_follows_the_shapes_when_the_loss_does_not_say():
    name, acc = metrics.get("accuracy", losses.MeanSquaredError())
    assert acc(np.ones((4, 1)), np.array([[0.9], [0.2], [0.7], [0.6]])) == 0.75  # binary
    assert acc(np.eye(3)[[0, 1, 2]], np.eye(3)[[0, 1, 1]]) == pytest.approx(2 / 3)  # categorical
    assert acc(np.array([0, 2]), np.array([[0.9, 0.1, 0.0], [0.1, 0.2, 0.7]])) == 1.0  # sparse


def test_validation_split_floors_the_training_part_like_keras():
    (xt, _), (xv, _) = data.validation_split(np.arange(10), np.arange(10), 0.25)
    assert len(xt) == 7 and len(xv) == 3


def test_probabilities_given_as_logits_warn_like_keras():
    """Dense(10, activation="softmax") before a from-logits loss applies softmax twice: warned."""
    probs = np.array([[0.2, 0.8], [0.5, 0.5]], np.float32)
    with pytest.warns(UserWarning, match="softmax would be applied twice"):
        L.SoftmaxCrossEntropy().forward(probs, np.array([1, 0]))
    with pytest.warns(UserWarning, match="SparseCategoricalCrossentropy"):
        losses.SparseCategoricalCrossentropy(from_logits=True)([1, 0], probs)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        L.SoftmaxCrossEntropy().forward(np.array([[2.0, -1.0], [0.3, 0.1]], np.float32), np.array([0, 1]))
        losses.SparseCategoricalCrossentropy()([1, 0], probs)
