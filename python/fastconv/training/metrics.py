"""Accuracy metrics with Keras' names, as functions of (y_true, y_pred) returning the fraction
correct over a batch; `fit` and `evaluate` average them over batches weighted by batch size.

"accuracy" in `compile(metrics=[...])` resolves as in Keras: from a cross-entropy loss (sparse
categorical -> sparse_categorical_accuracy, categorical -> categorical_accuracy, binary ->
binary_accuracy with threshold 0.5 on probabilities, or 0 on logits when the loss has
from_logits=True, where Keras would still use 0.5), otherwise from the shapes of each batch
(one output per sample -> binary, class indices -> sparse, else categorical).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from numpy.typing import ArrayLike

from .._typing import Array
from ..backend.arrays import array_module
from .losses import class_labels, target_like

__all__ = ["sparse_categorical_accuracy", "categorical_accuracy", "binary_accuracy", "get"]


def sparse_categorical_accuracy(y_true: ArrayLike, y_pred: Array) -> float:
    labels = class_labels(y_true, y_pred, "sparse_categorical_accuracy")
    return float((y_pred.argmax(axis=-1) == labels).mean())


def categorical_accuracy(y_true: ArrayLike, y_pred: Array) -> float:
    t = target_like(y_true, y_pred, "categorical_accuracy")
    return float((y_pred.argmax(axis=-1) == t.argmax(axis=-1)).mean())


def binary_accuracy(y_true: ArrayLike, y_pred: Array, threshold: float = 0.5) -> float:
    t = target_like(y_true, y_pred, "binary_accuracy")
    return float(((y_pred > threshold) == (t > 0.5)).mean())


Metric = Callable[[ArrayLike, Array], float]

_BY_NAME: dict[str, Metric] = {
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "binary_accuracy": binary_accuracy,
}


def _accuracy_by_shape(y_true: ArrayLike, y_pred: Array, binary_threshold: float = 0.5) -> float:
    """Keras' "accuracy": binary when y_pred has one output per sample, sparse when y_true holds
    class indices (lower rank or a last axis of 1), categorical otherwise."""
    t = array_module(y_pred).asarray(y_true)
    if y_pred.ndim == 1 or y_pred.shape[-1] == 1:
        return binary_accuracy(t, y_pred, threshold=binary_threshold)
    if t.ndim < y_pred.ndim or t.shape[-1] == 1:
        return sparse_categorical_accuracy(t, y_pred)
    return categorical_accuracy(t, y_pred)


def get(identifier: str | Callable[..., Any], loss: object = None) -> tuple[str, Metric]:
    """(name, fn) of a metric: a name above, "accuracy"/"acc" (resolved as Keras does), or a
    callable fn(y_true, y_pred) -> float (named after the function)."""
    if callable(identifier):
        return getattr(identifier, "__name__", "metric"), identifier
    if identifier in ("accuracy", "acc"):
        name = getattr(loss, "name", "")
        fn: Metric
        if name == "binary_crossentropy":
            fn = (
                binary_accuracy
                if not getattr(loss, "from_logits", False)
                else functools.partial(binary_accuracy, threshold=0.0)
            )
        elif name == "categorical_crossentropy":
            fn = categorical_accuracy
        elif name == "sparse_categorical_crossentropy":
            fn = sparse_categorical_accuracy
        else:
            fn = _accuracy_by_shape
        return "accuracy", fn
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return identifier, _BY_NAME[identifier]
    raise ValueError(f"metric must be a callable, 'accuracy' or one of {sorted(_BY_NAME)}, got {identifier!r}")
