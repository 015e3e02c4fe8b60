"""The arguments of fit / evaluate / predict: errors that name the argument (never a
ZeroDivisionError or an unpacking error from inside the loop), and Keras' defaults for None."""

from __future__ import annotations

import numpy as np
import pytest

import fastconv as fc
from fastconv.layers import Dense


def compiled(loss="sparse_categorical_crossentropy"):
    model = fc.Sequential([Dense(3, seed=0, input_shape=(4,))])
    model.compile(fc.SGD(0.1), loss)
    return model


X = np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32)
Y = np.arange(10) % 3


@pytest.mark.parametrize(
    "value, error", [(0, ValueError), (-1, ValueError), ("4", ValueError), (2.5, ValueError), (True, ValueError)]
)
def test_fit_batch_size(value, error):
    with pytest.raises(error, match="batch_size must be a positive int"):
        compiled().fit(X, Y, batch_size=value, verbose=0)


def test_batch_size_none_is_keras_32():
    batches = []

    class Count(fc.callbacks.Callback):
        def on_train_batch_begin(self, step, logs=None):
            batches.append(step)

    x = np.random.default_rng(1).standard_normal((70, 4)).astype(np.float32)
    y = np.arange(70) % 3
    compiled().fit(x, y, batch_size=None, verbose=0, callbacks=[Count()])
    assert len(batches) == 3  # 32 + 32 + 6
    model = compiled()
    assert model.evaluate(x, y, batch_size=None, verbose=0) == model.evaluate(x, y, batch_size=32, verbose=0)
    np.testing.assert_array_equal(model.predict(x, batch_size=None), model.predict(x, batch_size=32))


@pytest.mark.parametrize(
    "value, error", [(2.5, TypeError), ("2", TypeError), (None, TypeError), (True, TypeError), (-1, ValueError)]
)
def test_fit_epochs(value, error):
    with pytest.raises(error, match="epochs must be an int >= 0"):
        compiled().fit(X, Y, epochs=value, verbose=0)
    with pytest.raises(error, match="initial_epoch must be an int >= 0"):
        compiled().fit(X, Y, initial_epoch=value, verbose=0)


def test_fit_takes_numpy_ints():
    history = compiled().fit(X, Y, batch_size=np.int64(4), epochs=np.int32(2), verbose=0)
    assert len(history.history["loss"]) == 2


@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "mse"])
def test_fit_and_evaluate_need_y_with_arrays(loss):
    model = compiled(loss)
    with pytest.raises(ValueError, match=r"fit: y \(the targets of the loss\) is required"):
        model.fit(X, verbose=0)
    with pytest.raises(ValueError, match=r"fit: y .* is required"):
        model.fit(X, None, validation_split=0.2, verbose=0)
    with pytest.raises(ValueError, match=r"evaluate: y .* is required"):
        model.evaluate(X, None, verbose=0)
    with pytest.raises(ValueError, match=r"fit: validation_data: y .* is required"):
        model.fit(X, Y, validation_data=(X, None), verbose=0)
    with pytest.raises(TypeError, match="fit: x must be a NumPy or CuPy array"):
        model.fit(None, Y, verbose=0)


@pytest.mark.parametrize("value", ["0.2", True, -0.1, 1.5, None, np.nan])
def test_fit_validation_split(value):
    with pytest.raises(ValueError, match="validation_split must be a finite number"):
        compiled().fit(X, Y, validation_split=value, verbose=0)


def test_fit_validation_split_takes_a_numpy_float():
    history = compiled().fit(X, Y, validation_split=np.float32(0.2), verbose=0)
    assert "val_loss" in history.history


@pytest.mark.parametrize("value", [[1], [fc.callbacks.History(), "x"], "callbacks", 3, {fc.callbacks.History()}])
def test_fit_callbacks_must_be_callbacks(value):
    with pytest.raises(TypeError, match="callbacks must be a list of fastconv.callbacks.Callback"):
        compiled().fit(X, Y, callbacks=value, verbose=0)


def test_fit_takes_a_single_callback_as_keras_3():
    stop = fc.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=1e9)
    history = compiled().fit(X, Y, epochs=5, callbacks=stop, verbose=0)
    assert len(history.history["loss"]) == 2  # the second epoch improves by less than 1e9


@pytest.mark.parametrize("value", [3, -1, "1", None, True, 1.0])
def test_fit_and_evaluate_verbose(value):
    with pytest.raises(ValueError, match="verbose must be 'auto', 0, 1 or 2"):
        compiled().fit(X, Y, verbose=value)
    with pytest.raises(ValueError, match="verbose must be 'auto', 0, 1 or 2"):
        compiled().evaluate(X, Y, verbose=value)


@pytest.mark.parametrize("value", ["no", 1, None])
def test_fit_shuffle_and_evaluate_return_dict_are_bools(value):
    with pytest.raises(TypeError, match="shuffle must be True or False"):
        compiled().fit(X, Y, shuffle=value, verbose=0)
    with pytest.raises(TypeError, match="return_dict must be True or False"):
        compiled().evaluate(X, Y, return_dict=value, verbose=0)


@pytest.mark.parametrize("value", [0, -2, "8", 2.0, True])
def test_evaluate_and_predict_batch_size(value):
    model = compiled()
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        model.evaluate(X, Y, batch_size=value, verbose=0)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        model.predict(X, batch_size=value)


@pytest.mark.parametrize("seed, error", [("a", TypeError), (2.5, TypeError), (True, TypeError), (-1, ValueError)])
def test_fit_names_a_bad_seed(seed, error):
    with pytest.raises(error, match="seed must be"):
        compiled().fit(X, Y, seed=seed, verbose=0)


def test_compile_wants_a_list_of_metrics():
    with pytest.raises(TypeError, match=r"metrics must be a list .* got str 'accuracy'"):
        fc.Sequential([Dense(3, input_shape=(4,))]).compile(
            "sgd", "sparse_categorical_crossentropy", metrics="accuracy"
        )


def test_targets_of_another_length_are_named_with_their_argument():
    with pytest.raises(ValueError, match=r"fit: validation_data: x has 4 samples but y has shape \(3,\)"):
        compiled().fit(X, Y, validation_data=(X[:4], Y[:3]), verbose=0)
    with pytest.raises(ValueError, match=r"evaluate: x has 10 samples but y has shape \(9,\)"):
        compiled().evaluate(X, Y[:9], verbose=0)


def test_a_weight_file_of_another_shape_is_named(tmp_path):
    path = tmp_path / "w.npz"
    fc.Sequential([Dense(9, seed=0, input_shape=(4,))]).save_weights(path)
    model = fc.Sequential([Dense(8, seed=0, input_shape=(4,))])
    with pytest.raises(ValueError, match=rf"{path.name}: layer .* the file holds shape"):
        model.load_weights(path)
