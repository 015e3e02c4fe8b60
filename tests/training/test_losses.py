"""fastconv.losses, the softmax cross-entropy layer, metrics and regularizers: masked (-inf)
logits, the shapes y_true may have, and the types of their arguments."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import fastconv as fc
from fastconv import losses, metrics, regularizers
from fastconv.layers import SoftmaxCrossEntropy

INF = np.inf


# ----------------------------------------------------------------------------- masked logits
# A -inf logit is a masked class: softmax gives it 0 and, when it is not the target, it adds
# nothing to the loss (PyTorch's cross_entropy gives the finite value).

MASKED = np.array([[0.0, -INF, 0.0], [1.0, 2.0, -INF]], np.float32)
LABELS = np.array([0, 1])
ONE_HOT = np.eye(3, dtype=np.float32)[LABELS]
# row 0: log 2; row 1: log(1 + e^-1); gradient (softmax - one-hot) / N, 0 at the masked classes
MASKED_LOSS = (np.log(2.0) + np.log1p(np.exp(-1.0))) / 2
MASKED_GRAD = (np.array([[0.5, 0.0, 0.5], [1 / (1 + np.e), np.e / (1 + np.e), 0.0]]) - ONE_HOT) / 2


def sparse_loss(logits, labels):
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    return loss(labels, logits), loss.backward()


def categorical_loss(logits, labels):
    loss = losses.CategoricalCrossentropy(from_logits=True)
    return loss(np.eye(logits.shape[1], dtype=np.float32)[labels], logits), loss.backward()


def layer_loss(logits, labels):
    loss = SoftmaxCrossEntropy()
    return loss(logits, labels), loss.backward()


def layer_loss_one_hot(logits, labels):
    loss = SoftmaxCrossEntropy()
    return loss(logits, np.eye(logits.shape[1], dtype=np.float32)[labels]), loss.backward()


CROSS_ENTROPIES = [sparse_loss, categorical_loss, layer_loss, layer_loss_one_hot]


@pytest.mark.parametrize("cross_entropy", CROSS_ENTROPIES, ids=lambda f: f.__name__)
def test_a_masked_non_target_logit_gives_the_finite_loss_and_gradient(cross_entropy):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "invalid value" on the way either
        value, grad = cross_entropy(MASKED, LABELS)
    np.testing.assert_allclose(value, MASKED_LOSS, rtol=1e-6)
    np.testing.assert_allclose(grad, MASKED_GRAD, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("cross_entropy", CROSS_ENTROPIES, ids=lambda f: f.__name__)
def test_a_masked_target_costs_infinity_and_an_all_masked_row_is_nan_as_in_pytorch(cross_entropy):
    with np.errstate(invalid="ignore"):
        value, grad = cross_entropy(MASKED, np.array([1, 2]))
        assert value == INF and np.isfinite(grad).all()
        value, grad = cross_entropy(np.full((1, 3), -INF, np.float32), np.array([0]))
    assert np.isnan(value) and np.isnan(grad).all()


def test_soft_targets_with_no_weight_on_a_masked_class_are_finite():
    t = np.array([[0.25, 0.0, 0.75], [0.5, 0.5, 0.0]], np.float32)
    loss = losses.CategoricalCrossentropy(from_logits=True)
    value = loss(t, MASKED)
    log_p = np.log(np.array([[0.5, 1.0, 0.5], [1 / (1 + np.e), np.e / (1 + np.e), 1.0]]))
    np.testing.assert_allclose(value, -(t * log_p).sum() / 2, rtol=1e-6)
    assert np.isfinite(loss.backward()).all()


def test_masked_logits_match_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((16, 7)).astype(np.float32)
    labels = rng.integers(0, 7, 16)
    mask = rng.random((16, 7)) < 0.4
    mask[np.arange(16), labels] = False  # the targets stay unmasked
    logits[mask] = -INF
    z = torch.tensor(logits, requires_grad=True)
    expected = torch.nn.functional.cross_entropy(z, torch.tensor(labels))
    expected.backward()
    for cross_entropy in CROSS_ENTROPIES:
        value, grad = cross_entropy(logits, labels)
        np.testing.assert_allclose(value, expected.item(), rtol=1e-5, err_msg=cross_entropy.__name__)
        np.testing.assert_allclose(grad, z.grad.numpy(), rtol=1e-5, atol=1e-7, err_msg=cross_entropy.__name__)


# ----------------------------------------------------------------------------- shapes of y_true
# As Keras: a trailing axis of 1 may be present in one of y_true / y_pred and missing in the
# other; element-wise losses also take a y_true that broadcasts to y_pred; anything else is an
# error naming both shapes (never a reshape of a y_true that merely has the same size).

ALL_LOSSES = [
    losses.MeanSquaredError(),
    losses.BinaryCrossentropy(),
    losses.CategoricalCrossentropy(),
    losses.BinaryCrossentropy(from_logits=True),
    losses.CategoricalCrossentropy(from_logits=True),
]


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=repr)
def test_a_y_true_of_the_same_size_but_another_shape_is_refused(loss):
    y_pred = np.full((6, 2), 0.5, np.float32)
    with pytest.raises(ValueError, match=r"y_true has shape \(2, 6\) but y_pred has \(6, 2\)"):
        loss(np.ones((2, 6), np.float32), y_pred)
    with pytest.raises(ValueError, match=r"\(12,\).*\(6, 2\)"):
        loss(np.ones(12, np.float32), y_pred)


@pytest.mark.parametrize("loss", ALL_LOSSES[:2] + ALL_LOSSES[3:4], ids=repr)
def test_a_trailing_axis_of_one_may_differ(loss):
    rng = np.random.default_rng(0)
    t = rng.integers(0, 2, 5).astype(np.float32)
    y = rng.uniform(0.1, 0.9, (5, 1)).astype(np.float32)
    value = loss(t[:, None], y)
    grad = loss.backward()
    assert loss(t, y) == value and np.array_equal(loss.backward(), grad)  # (5,) for (5, 1)
    assert loss(t[:, None], y[:, 0]) == value  # (5, 1) for (5,)
    assert loss.backward().shape == (5,)
    with pytest.raises(ValueError, match=r"\(5, 1, 1\)"):
        loss(t[:, None, None], y[:, 0])


def test_mean_squared_error_broadcasts_y_true_as_keras():
    y = np.arange(12, dtype=np.float32).reshape(6, 2)
    t = np.array([[1.0, 2.0]], np.float32)
    mse = losses.MeanSquaredError()
    value = mse(t, y)
    assert value == pytest.approx(((y - t) ** 2).mean())
    assert mse.backward().shape == (6, 2)
    with pytest.raises(ValueError, match=r"y_true has shape \(6, 2, 1\) but y_pred has \(6,\)"):
        mse(np.ones((6, 2, 1), np.float32), np.ones(6, np.float32))
    with pytest.raises(ValueError, match=r"y_true has shape \(6, 2\) but y_pred has \(6, 1\)"):
        mse(np.ones((6, 2), np.float32), np.ones((6, 1), np.float32))  # y_pred never broadcasts


def test_cross_entropies_need_y_pred_shape():
    with pytest.raises(ValueError, match=r"\(1, 3\).*\(4, 3\).*CategoricalCrossentropy"):
        losses.CategoricalCrossentropy()(np.array([[0, 1, 0]], np.float32), np.full((4, 3), 1 / 3, np.float32))


def test_sparse_labels_are_one_per_row():
    y = np.full((6, 3), 1 / 3, np.float32)
    loss = losses.SparseCategoricalCrossentropy()
    labels = np.array([0, 1, 2, 0, 1, 2])
    assert loss(labels, y) == loss(labels[:, None], y) == pytest.approx(np.log(3), rel=1e-6)
    for bad in (np.zeros((2, 3), int), np.zeros((6, 2), int), np.zeros(5, int), np.zeros((1, 6), int)):
        with pytest.raises(ValueError, match=re.escape(f"y_true shape {bad.shape} for y_pred shape (6, 3)")):
            loss(bad, y)


def test_metrics_check_shapes_too():
    y = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]], np.float32)
    assert metrics.sparse_categorical_accuracy(np.array([[1], [0], [0]]), y) == pytest.approx(2 / 3)
    assert metrics.categorical_accuracy(np.eye(2)[[1, 0, 0]], y) == pytest.approx(2 / 3)
    assert metrics.binary_accuracy(np.array([1, 0, 1]), y[:, 1:]) == 1.0
    with pytest.raises(ValueError, match=r"y_true shape \(1, 3\) for y_pred shape \(3, 2\)"):
        metrics.sparse_categorical_accuracy(np.array([[1, 0, 0]]), y)
    with pytest.raises(ValueError, match=r"\(2, 3\) but y_pred has \(3, 2\)"):
        metrics.categorical_accuracy(np.ones((2, 3)), y)
    with pytest.raises(ValueError, match=r"\(1, 3\) but y_pred has \(3, 1\)"):
        metrics.binary_accuracy(np.ones((1, 3)), y[:, 1:])


# ----------------------------------------------------------------------------- argument types


@pytest.mark.parametrize(
    "cls", [losses.BinaryCrossentropy, losses.CategoricalCrossentropy, losses.SparseCategoricalCrossentropy]
)
@pytest.mark.parametrize("value", ["no", "False", 0, 1, None, np.array([True])])
def test_from_logits_must_be_a_bool(cls, value):
    with pytest.raises(TypeError, match="from_logits must be True or False"):
        cls(from_logits=value)


@pytest.mark.parametrize("cls", [losses.BinaryCrossentropy, losses.CategoricalCrossentropy])
def test_from_logits_takes_numpy_bools(cls):
    assert cls(from_logits=np.bool_(True)).from_logits is True


@pytest.mark.parametrize("factor", [np.float32(0.1), np.float64(0.25), np.int64(2), np.float16(0.5)])
def test_regularizers_take_numpy_scalars(factor):
    w = np.array([[1.0, -2.0]], np.float32)
    assert regularizers.l2(factor)(w) == pytest.approx(float(factor) * 5.0)
    assert regularizers.l1(factor)(w) == pytest.approx(float(factor) * 3.0)
    assert regularizers.l1_l2(factor, factor)(w) == pytest.approx(float(factor) * 8.0)
    fc.layers.Dense(2, kernel_regularizer=regularizers.l2(factor))


@pytest.mark.parametrize("factor", [True, np.bool_(False), "0.1", None, [0.1], -0.1, np.inf, np.nan, 1j])
def test_regularizers_refuse_bools_and_non_numbers_naming_the_argument(factor):
    with pytest.raises((TypeError, ValueError), match=r"^l2 must be a finite number"):
        regularizers.l2(factor)
    with pytest.raises((TypeError, ValueError), match=r"^l1 must be a finite number"):
        regularizers.l1_l2(l1=factor)


def test_binary_cross_entropy_from_infinite_logits_takes_its_limits():
    """max(z, 0) - z t + log(1 + exp(-|z|)) at z = +-inf: inf where the logit is infinitely wrong
    (PyTorch's BCEWithLogits gives inf for +inf against 0), 0 where it is infinitely right (PyTorch
    gives NaN there); never inf - inf = NaN."""
    loss = losses.BinaryCrossentropy(from_logits=True)
    z = np.array([[np.inf], [-np.inf], [np.inf], [-np.inf]])
    t = np.array([[0.0], [1.0], [1.0], [0.0]])
    for i, want in enumerate([np.inf, np.inf, 0.0, 0.0]):
        assert loss(t[i : i + 1], z[i : i + 1]) == want, i
    assert loss(np.array([[0.5]]), np.array([[np.inf]])) == np.inf
    assert np.isnan(loss(np.array([[0.0]]), np.array([[np.nan]])))
    finite = np.array([[-3.0], [0.5], [2.0]])
    targets = np.array([[0.0], [1.0], [0.3]])
    want = np.mean(np.maximum(finite, 0) - finite * targets + np.log1p(np.exp(-np.abs(finite))))
    assert loss(targets, finite) == pytest.approx(want, rel=1e-15)
