"""Keras parity: the same model, initial weights and data trained by Keras 3 (PyTorch backend) and
by fastconv give the same loss curve and the same final weights, for every optimizer and loss
fastconv shares with Keras. Skipped where Keras or PyTorch is not installed (the `parity` extra)."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras", reason="Keras 3 not installed (pip install '.[parity]')")
if keras.backend.backend() != "torch":
    pytest.skip(
        f"the parity tests run Keras on its PyTorch backend, this process has {keras.backend.backend()!r}",
        allow_module_level=True,
    )

import fastconv as fc  # noqa: E402
from fastconv import layers as L  # noqa: E402

# Keras' PyTorch backend converts tensors with np.array(x, copy=False) semantics NumPy 2 deprecates
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

N, BATCH, EPOCHS = 48, 8, 3


def _data(head, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, 9, 9, 2)).astype(np.float32)
    if head == "binary":
        y = (x[:, :4].mean(axis=(1, 2, 3)) > 0).astype(np.float32)[:, None]
    elif head == "regression":
        y = rng.standard_normal((N, 3)).astype(np.float32)
    else:
        y = (np.abs(x).sum(axis=(1, 2, 3)) * 7).astype(np.int64) % 5
        if head == "onehot":
            y = np.eye(5, dtype=np.float32)[y]
    return x, y


def _models(head, l2):
    """The same network twice: Keras (its initializer draws the weights) and fastconv."""
    units, act = {"binary": (1, "sigmoid"), "regression": (3, None)}.get(head, (5, head_activation(head)))
    reg_k = keras.regularizers.L2(l2) if l2 else None
    keras.utils.set_random_seed(1)
    km = keras.Sequential(
        [
            keras.Input((9, 9, 2)),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu", kernel_regularizer=reg_k),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(6, (2, 3), strides=(1, 2), activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(units, activation=act, kernel_regularizer=reg_k),
        ]
    )
    reg_f = fc.regularizers.l2(l2) if l2 else None
    fm = fc.Sequential(
        [
            L.Conv2D(4, 3, padding="same", activation="relu", kernel_regularizer=reg_f, input_shape=(9, 9, 2)),
            L.MaxPooling2D(2),
            L.Conv2D(6, (2, 3), strides=(1, 2), activation="relu"),
            L.Flatten(),
            L.Dense(units, activation=act, kernel_regularizer=reg_f),
        ]
    )
    fm.build()
    fm.set_weights(km.get_weights())
    return km, fm


def head_activation(head):
    return None if head == "logits" else "softmax"


LOSSES = {  # case -> (head, Keras loss, fastconv loss, metrics)
    "sparse_ce_softmax": (
        "softmax",
        "sparse_categorical_crossentropy",
        "sparse_categorical_crossentropy",
        ["accuracy"],
    ),
    "sparse_ce_logits": (
        "logits",
        "sparse_ce_logits",
        fc.losses.SparseCategoricalCrossentropy(from_logits=True),
        ["accuracy"],
    ),
    "categorical_ce": ("onehot", "categorical_crossentropy", "categorical_crossentropy", ["accuracy"]),
    "binary_ce": ("binary", "binary_crossentropy", "binary_crossentropy", ["accuracy"]),
    "mse": ("regression", "mse", "mse", []),
}

OPTIMIZERS = {  # name -> (Keras optimizer, fastconv optimizer), both with Keras' argument names
    "sgd": (lambda: keras.optimizers.SGD(learning_rate=0.05), lambda: fc.SGD(learning_rate=0.05)),
    "sgd_nesterov": (
        lambda: keras.optimizers.SGD(learning_rate=0.02, momentum=0.9, nesterov=True),
        lambda: fc.SGD(learning_rate=0.02, momentum=0.9, nesterov=True),
    ),
    "rmsprop": (lambda: keras.optimizers.RMSprop(learning_rate=3e-3), lambda: fc.RMSprop(learning_rate=3e-3)),
    "rmsprop_centered_momentum": (
        lambda: keras.optimizers.RMSprop(learning_rate=1e-3, rho=0.8, momentum=0.5, centered=True),
        lambda: fc.RMSprop(learning_rate=1e-3, rho=0.8, momentum=0.5, centered=True),
    ),
    "adam": (
        lambda: keras.optimizers.Adam(learning_rate=3e-3, beta_1=0.8, beta_2=0.99),
        lambda: fc.Adam(learning_rate=3e-3, beta_1=0.8, beta_2=0.99),
    ),
    "adamw": (
        lambda: keras.optimizers.AdamW(learning_rate=3e-3, weight_decay=0.2),
        lambda: fc.AdamW(learning_rate=3e-3, weight_decay=0.2),
    ),
}


def _keras_loss(name):
    if name == "sparse_ce_logits":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return name


def _train_both(loss_case, opt_name, l2=0.0, validation_split=0.0):
    head, k_loss, f_loss, mets = LOSSES[loss_case]
    x, y = _data(head)
    km, fm = _models(head, l2)
    k_opt, f_opt = OPTIMIZERS[opt_name]
    km.compile(optimizer=k_opt(), loss=_keras_loss(k_loss), metrics=list(mets))
    fm.compile(optimizer=f_opt(), loss=f_loss, metrics=list(mets))
    kw = dict(batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0, validation_split=validation_split)
    kh = km.fit(x, y, **kw).history
    fh = fm.fit(x, y, **kw).history
    return km, fm, kh, fh


def _assert_same_training(km, fm, kh, fh, keys):
    for key in keys:
        np.testing.assert_allclose(fh[key], kh[key], rtol=2e-4, atol=1e-6, err_msg=f"history[{key!r}]")
    for i, (kw, fw) in enumerate(zip(km.get_weights(), fm.get_weights())):
        np.testing.assert_allclose(fw, kw, rtol=1e-4, atol=2e-5, err_msg=f"weight {i} after training")


@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
def test_every_optimizer_follows_keras_loss_curve(opt_name):
    km, fm, kh, fh = _train_both("sparse_ce_softmax", opt_name)
    assert len(fh["loss"]) == EPOCHS and fh["loss"][-1] < fh["loss"][0]
    _assert_same_training(km, fm, kh, fh, ["loss", "accuracy"])


@pytest.mark.parametrize("loss_case", sorted(LOSSES))
def test_every_loss_follows_keras_loss_curve(loss_case):
    mets = LOSSES[loss_case][3]
    km, fm, kh, fh = _train_both(loss_case, "adam")
    _assert_same_training(km, fm, kh, fh, ["loss", *mets])


def test_l2_regularizer_and_validation_split_follow_keras():
    km, fm, kh, fh = _train_both("sparse_ce_softmax", "rmsprop", l2=1e-2, validation_split=0.25)
    _assert_same_training(km, fm, kh, fh, ["loss", "accuracy", "val_loss", "val_accuracy"])


def test_evaluate_and_predict_match_keras():
    head, k_loss, f_loss, mets = LOSSES["sparse_ce_softmax"]
    x, y = _data(head, seed=3)
    km, fm = _models(head, 0.0)
    km.compile(optimizer="rmsprop", loss=k_loss, metrics=list(mets))
    fm.compile(optimizer="rmsprop", loss=f_loss, metrics=list(mets))
    np.testing.assert_allclose(
        fm.predict(x, batch_size=16), km.predict(x, batch_size=16, verbose=0), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        fm.evaluate(x, y, batch_size=16, verbose=0), km.evaluate(x, y, batch_size=16, verbose=0), rtol=1e-5, atol=1e-6
    )


# ----------------------------------------------------------------------------- the new layers, one call each


@pytest.mark.parametrize(
    "make",
    [
        lambda k: (
            k.layers.AveragePooling2D(3, strides=2, padding="same"),
            L.AveragePooling2D(3, strides=2, padding="same"),
        ),
        lambda k: (k.layers.AveragePooling2D(2), L.AveragePooling2D(2)),
        lambda k: (k.layers.GlobalAveragePooling2D(), L.GlobalAveragePooling2D()),
        lambda k: (k.layers.GlobalMaxPooling2D(), L.GlobalMaxPooling2D()),
        lambda k: (k.layers.LeakyReLU(), L.LeakyReLU()),
        lambda k: (k.layers.Activation("tanh"), L.Activation("tanh")),
        lambda k: (k.layers.Activation("sigmoid"), L.Activation("sigmoid")),
        lambda k: (k.layers.Activation("leaky_relu"), L.Activation("leaky_relu")),
    ],
    ids=["avgpool_same", "avgpool_valid", "gap", "gmp", "leaky_relu", "tanh", "sigmoid", "leaky_relu_act"],
)
def test_layers_match_keras(make):
    theirs, ours = make(keras)
    # 9 x 9: 'same' pads 1 on every side. (With uneven padding Keras' PyTorch backend pads by
    # repeating the edge cells, which its TensorFlow backend and fastconv do not: the mean is over
    # the cells inside the input.)
    x = np.random.default_rng(0).standard_normal((2, 9, 9, 5)).astype(np.float32)
    want = np.asarray(theirs(x))
    got = ours(x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
