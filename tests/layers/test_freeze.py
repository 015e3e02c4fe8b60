"""Freezing (Keras' `trainable = False`): no weight gradient, no backward below the lowest trainable
layer, optimizers leave frozen parameters alone, summary() counts, and the inference call."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import fastconv as fc
from fastconv.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D, ReLU


def small_model(dtype=np.float32):
    return fc.Sequential(
        [
            Conv2D(3, 3, padding="same", activation="relu", seed=1, dtype=dtype),  # 0
            MaxPooling2D(2),  # 1
            Conv2D(4, 3, activation="relu", seed=2, dtype=dtype),  # 2
            Conv2D(5, 1, seed=3, dtype=dtype),  # 3
            Flatten(),  # 4
            Dense(6, activation="relu", seed=4, dtype=dtype),  # 5
            Dense(1, activation="sigmoid", seed=5, dtype=dtype),  # 6
        ],
        input_shape=(8, 8, 2),
    )


def batch(dtype=np.float32, n=2):
    return np.random.default_rng(0).standard_normal((n, 8, 8, 2)).astype(dtype)


def train_step(model, x, opt=None):
    y = model.forward(x)
    model.backward(np.ones_like(y))
    if opt is not None:
        opt.step(model.parameters())


def record_backward_calls(model):
    """Replace each layer's backward by a wrapper that appends the layer's index to the list (the
    fusion plan's per-call arguments pass on)."""
    calls = []
    for i, layer in enumerate(model.layers):

        def wrapped(grad_y, real=layer.backward, i=i, **fused):
            calls.append(i)
            return real(grad_y, **fused)

        layer.backward = wrapped
    return calls


@pytest.mark.parametrize(
    "make_opt", [lambda: fc.SGD(lr=0.1, momentum=0.9, weight_decay=0.01), lambda: fc.Adam(lr=0.1)], ids=["sgd", "adam"]
)
def test_frozen_parameters_are_bit_identical_after_a_step(make_opt):
    model, opt, x = small_model(), make_opt(), batch()
    all_refs = model.parameters()
    train_step(model, x, opt)  # unfrozen step: grads and optimizer state exist
    for i in (0, 3, 6):
        model.layers[i].trainable = False
    before = {r.name: r.value.copy() for r in all_refs}
    for _ in range(2):
        train_step(model, x)
        opt.step(all_refs)  # refs taken before freezing: frozen ones skipped
    frozen = {r.name for r in model.non_trainable_weights}
    assert frozen == {f"{model.layers[i].name}/{k}" for i in (0, 3, 6) for k in ("kernel", "bias")}
    for r in all_refs:
        if r.name in frozen:
            assert np.array_equal(r.value, before[r.name]), r.name
            assert r.grad is None
        else:
            assert not np.array_equal(r.value, before[r.name]), r.name
    assert {r.name for r in model.parameters()} == {r.name for r in all_refs} - frozen


def test_no_weight_gradient_kernel_runs_for_frozen_layers(monkeypatch):
    model, x = small_model(), batch()
    model.layers[2].trainable = model.layers[3].trainable = model.layers[5].trainable = False
    weight_calls, data_calls = [], []
    real_w, real_d = fc.functional.conv2d_backward_weight, fc.functional.conv2d_backward_data
    monkeypatch.setattr(
        fc.layers.convolutional,
        "conv2d_backward_weight",
        lambda gy, xx, w_shape, **k: weight_calls.append(tuple(w_shape)) or real_w(gy, xx, w_shape, **k),
    )
    monkeypatch.setattr(
        fc.layers.convolutional,
        "conv2d_backward_data",
        lambda gy, w, x_shape, **k: data_calls.append(tuple(w.shape)) or real_d(gy, w, x_shape, **k),
    )
    train_step(model, x)
    assert weight_calls == [(3, 3, 2, 3)]  # the trainable conv only
    assert data_calls == [(1, 1, 4, 5), (3, 3, 3, 4)]  # frozen convs above it pass grad_x on
    assert [bool(lyr.grads) for lyr in model.layers] == [True, False, False, False, False, False, True]
    assert model.layers[5].grads == {}


def test_backward_stops_at_the_lowest_trainable_layer(monkeypatch):
    model, x = small_model(), batch()
    for i in (0, 3):
        model.layers[i].trainable = False
    calls = record_backward_calls(model)
    data_calls = []
    real_d = fc.functional.conv2d_backward_data
    monkeypatch.setattr(
        fc.layers.convolutional,
        "conv2d_backward_data",
        lambda gy, w, *a, **k: data_calls.append(tuple(w.shape)) or real_d(gy, w, *a, **k),
    )
    y = model.forward(x)
    assert model.layers[0]._x is None and model.layers[1]._indices is None  # nothing kept below
    assert model.backward(np.ones_like(y)) is None
    assert calls == [6, 5, 4, 3, 2]
    assert data_calls == [(1, 1, 4, 5)]  # layer 2, the lowest trainable, skips its grad_x
    assert model.layers[2].grads and not model.layers[0].grads


def test_frozen_model_runs_no_backward_and_vgg16_base_freezes():
    model = small_model()
    model.trainable = False
    assert not model.trainable and model.parameters() == []
    calls = record_backward_calls(model)
    y = model.forward(batch())
    assert model.backward(np.ones_like(y)) is None and calls == []
    base = fc.models.vgg16_base((32, 32, 3), trainable=False)
    assert not any(lyr.trainable for lyr in base.layers) and base.parameters() == []
    assert base.count_params(trainable=False) == 14_714_688
    assert Conv2D(2, 3, trainable=False).trainable is False and Dense(2, trainable=False).trainable is False


def test_unfreezing_takes_effect_at_the_next_backward():
    model, x = small_model(), batch()
    model.trainable = False
    model.layers[6].trainable = True
    calls = record_backward_calls(model)
    train_step(model, x)
    assert calls == [6] and not model.layers[0].grads
    model.layers[0].trainable = True  # fine-tune the whole stack
    calls.clear()
    train_step(model, x)
    assert calls == [6, 5, 4, 3, 2, 1, 0]
    assert all(not lyr.count_params() or lyr.grads == {} for lyr in model.layers[2:6])
    assert set(model.layers[0].grads) == {"kernel", "bias"}
    assert [lyr.needs_input_grad for lyr in model.layers] == [False] + [True] * 6
    assert {r.name for r in model.parameters()} == {
        f"{model.layers[i].name}/{k}" for i in (0, 6) for k in ("kernel", "bias")
    }
    model.trainable = True
    assert len(model.parameters()) == 10 and model.non_trainable_weights == []


def test_vgg16_transfer_head_summary_matches_keras():
    base = fc.models.vgg16_base(input_shape=(150, 150, 3), weights=None, seed=0, trainable=False)
    model = fc.Sequential(
        [base, Flatten(), Dense(256, activation="relu"), Dropout(0.5), Dense(1, activation="sigmoid")]
    )
    text = model.summary(print_fn=None)
    assert "Total params: 16,812,353" in text
    assert "Trainable params: 2,097,665" in text
    assert "Non-trainable params: 14,714,688" in text
    assert model.output_shape() == (1,) and model.layers[0] is base.layers[0]
    assert [r.name for r in model.trainable_weights] == ["dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias"]
    assert len(model.non_trainable_weights) == 26


def test_call_and_predict_are_inference_while_forward_trains():
    x = np.abs(np.random.default_rng(1).standard_normal((64, 30))) + 1.0  # ReLU keeps it
    model = fc.Sequential([Dropout(0.5, seed=0), ReLU()], input_shape=(30,))
    assert np.array_equal(model(x), x) and np.array_equal(model.predict(x, batch_size=16), x)
    assert np.array_equal(Dropout(0.5, seed=0)(x), x)
    y = model.forward(x)
    assert (y == 0).mean() > 0.3  # training=True: dropout on
    assert not np.array_equal(model(x, training=True), x)


@pytest.mark.parametrize("frozen", [(0, 2, 3), (2, 3), (5,), (0, 6)], ids=str)
def test_trainable_gradients_equal_those_without_freezing(frozen):
    full, x = small_model(np.float64), batch(np.float64, n=3)
    part = copy.deepcopy(full)
    for i in frozen:
        part.layers[i].trainable = False
    gy = np.random.default_rng(2).standard_normal((3, 1))
    for model in (full, part):
        model.forward(x)
        model.backward(gy)
    want = {r.name: r.grad for r in full.parameters()}
    got = part.parameters()
    assert len(got) == 2 * (5 - len(frozen))  # 5 layers with kernel and bias
    for r in got:
        np.testing.assert_allclose(r.grad, want[r.name], rtol=1e-12, atol=0, err_msg=r.name)
