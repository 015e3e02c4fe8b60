"""Losses with Keras' names, arguments and formulas, for `model.compile(loss=...)` and for
hand-written loops:

    loss = fc.losses.SparseCategoricalCrossentropy(from_logits=True)
    value = loss(y_true, y_pred)          # Keras' argument order; the mean over the batch
    grad = loss.backward()                # d value / d y_pred, for model.backward(grad)

Each loss is the mean over every sample (and, for the element-wise ones, every output), like
Keras' default reduction. Probabilities (from_logits=False) are clipped to [1e-7, 1 - 1e-7] as
Keras does, and the gradient is that of the clipped formula (zero where clipping is active).
Strings: "sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy",
"mse" / "mean_squared_error".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._typing import Array
from ..backend.arrays import array_module
from ..ops._checks import flag
from ..ops.softmax import cross_entropy_sum, log_softmax, stable_sigmoid, warn_if_probabilities

__all__ = [
    "Loss",
    "SparseCategoricalCrossentropy",
    "CategoricalCrossentropy",
    "BinaryCrossentropy",
    "MeanSquaredError",
    "get",
]

EPSILON = 1e-7  # Keras' backend epsilon


def same_rank(y_true: Array, y_pred: Array) -> Array:
    """y_true with a trailing axis of 1 dropped or added when its rank is y_pred's +- 1, as Keras'
    squeeze_or_expand_to_same_rank: (N,) labels for an (N, 1) head, (N, 1) for an (N,) one."""
    if y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        return y_true[..., 0]
    if y_pred.ndim == y_true.ndim + 1 and y_pred.shape[-1] == 1:
        return y_true[..., None]
    return y_true


def _broadcasts_to(shape: Sequence[int], target: Sequence[int]) -> bool:
    try:
        return np.broadcast_shapes(tuple(shape), tuple(target)) == tuple(target)
    except ValueError:
        return False


def target_like(y_true: ArrayLike, y_pred: Array, who: str, broadcast: bool = False) -> Array:
    """y_true (an array of y_pred's module) with y_pred's shape, after same_rank; with broadcast,
    any shape that broadcasts to y_pred's is taken too. ValueError naming both shapes otherwise."""
    xp = array_module(y_pred)
    given = xp.asarray(y_true)
    t = same_rank(given, y_pred)
    if t.shape == y_pred.shape:
        return t
    if broadcast and _broadcasts_to(t.shape, y_pred.shape):
        return xp.broadcast_to(t, y_pred.shape)
    rule = "broadcasts to y_pred's" if broadcast else "equals y_pred's"
    raise ValueError(
        f"y_true has shape {tuple(given.shape)} but y_pred has "
        f"{tuple(y_pred.shape)}: {who} needs a y_true shape that {rule} (as in Keras, a trailing "
        "axis of 1 may be present in one and missing in the other)"
    )


def class_labels(y_true: ArrayLike, y_pred: Array, who: str) -> Array:
    """Integer class labels of y_pred's shape without its class axis (a trailing axis of 1 on
    y_true dropped, as Keras does); ValueError naming both shapes otherwise."""
    labels = array_module(y_pred).asarray(y_true)
    given = tuple(labels.shape)
    if labels.ndim == y_pred.ndim and labels.ndim and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if labels.shape != y_pred.shape[:-1]:
        raise ValueError(
            f"{who}: y_true must hold one class label per row of y_pred, got y_true shape {given} "
            f"for y_pred shape {tuple(y_pred.shape)}"
        )
    return labels


class Loss:
    """Base class: __call__(y_true, y_pred) -> float and backward() -> gradient for y_pred."""

    name = "loss"
    from_logits = False
    broadcasts = False  # y_true may broadcast to y_pred's shape (Keras' element-wise losses)

    def __init__(self) -> None:
        self._grad: Array | None = None

    def __call__(self, y_true: ArrayLike, y_pred: Array) -> float:
        y_pred = self._check_pred(y_pred)
        value, self._grad = self._value_and_grad(self._target(y_true, y_pred), y_pred)
        return value

    def backward(self, grad: float = 1.0) -> Array:
        """Gradient of the last value with respect to y_pred (times `grad`)."""
        if self._grad is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before the loss was computed")
        return self._grad if grad == 1.0 else self._grad * self._grad.dtype.type(grad)

    def _check_pred(self, y_pred: Any) -> Array:
        if not hasattr(y_pred, "dtype") or y_pred.dtype.kind != "f":
            raise TypeError(f"y_pred must be a float array, got {type(y_pred).__name__} {getattr(y_pred, 'dtype', '')}")
        if y_pred.ndim < 1 or y_pred.shape[0] == 0:
            raise ValueError(f"y_pred must have a non-empty batch axis, got shape {tuple(y_pred.shape)}")
        return y_pred

    def _target(self, y_true: ArrayLike, y_pred: Array) -> Array:
        xp = array_module(y_pred)
        t = xp.asarray(y_true)
        if t.dtype.kind not in "fiub":
            raise TypeError(f"y_true must be real numbers, got dtype {t.dtype}")
        return target_like(t, y_pred, type(self).__name__, self.broadcasts).astype(y_pred.dtype)

    def _value_and_grad(self, t: Array, y: Array) -> tuple[float, Array]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(from_logits={self.from_logits})"


class CategoricalCrossentropy(Loss):
    """-mean over samples of sum_c t_c log p_c, with p = softmax(y_pred) when from_logits, else
    p = y_pred / sum(y_pred) clipped to [1e-7, 1 - 1e-7] (Keras). y_true: one-hot or probability
    rows of y_pred's shape."""

    name = "categorical_crossentropy"

    def __init__(self, from_logits: bool = False) -> None:
        super().__init__()
        self.from_logits = flag("from_logits", from_logits)

    def _value_and_grad(self, t: Array, y: Array) -> tuple[float, Array]:
        n = y.shape[0]
        dt = y.dtype.type
        if self.from_logits:
            warn_if_probabilities(y, type(self).__name__ + "(from_logits=True)")
            log_p = log_softmax(y)
            value = cross_entropy_sum(t, log_p) / n
            grad = (array_module(y).exp(log_p) * t.sum(axis=-1, keepdims=True) - t) * dt(1.0 / n)
            return float(value), grad
        s = y.sum(axis=-1, keepdims=True)
        q = y / s
        inside = (q > EPSILON) & (q < 1 - EPSILON)
        qc = q.clip(EPSILON, 1 - EPSILON)
        value = -(t * array_module(y).log(qc)).sum() / n
        gq = -t / qc * inside  # d value / d q (times n)
        grad = (gq - (gq * q).sum(axis=-1, keepdims=True)) / s * dt(1.0 / n)
        return float(value), grad.astype(y.dtype, copy=False)


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """CategoricalCrossentropy with integer class labels y_true (N,) (or (N, 1))."""

    name = "sparse_categorical_crossentropy"

    def _target(self, y_true: ArrayLike, y_pred: Array) -> Array:
        xp = array_module(y_pred)
        n, classes = y_pred.shape[0], y_pred.shape[-1]
        if y_pred.ndim != 2:
            raise ValueError(f"y_pred must be (N, classes), got shape {tuple(y_pred.shape)}")
        labels = class_labels(y_true, y_pred, type(self).__name__)
        if labels.dtype.kind not in "iu":
            if labels.dtype.kind != "f" or not bool((labels == xp.round(labels)).all()):
                raise TypeError(f"y_true must be integer class labels, got dtype {labels.dtype}")
            labels = labels.astype(np.int64)
        if int(labels.min()) < 0 or int(labels.max()) >= classes:
            raise ValueError(f"class labels must lie in [0, {classes}), got [{int(labels.min())}, {int(labels.max())}]")
        t = xp.zeros_like(y_pred)
        t[xp.arange(n), labels] = 1
        return t


class BinaryCrossentropy(Loss):
    """-mean of t log p + (1 - t) log(1 - p) over every output, p = sigmoid(y_pred) when
    from_logits (computed stably from the logits), else y_pred clipped to [1e-7, 1 - 1e-7]."""

    name = "binary_crossentropy"

    def __init__(self, from_logits: bool = False) -> None:
        super().__init__()
        self.from_logits = flag("from_logits", from_logits)

    def _value_and_grad(self, t: Array, y: Array) -> tuple[float, Array]:
        xp = array_module(y)
        dt = y.dtype.type
        scale = dt(1.0 / y.size)
        if self.from_logits:
            # max(z, 0) - z t + log(1 + exp(-|z|)) = z (1 - t) or -z t (by the sign of z) + log(1 + exp(-|z|)):
            # no overflow for any z, and a product with a zero target weight is 0 even for an
            # infinite logit (inf - inf would be NaN where the loss is inf or 0)
            linear = xp.where(y >= 0, _times_nonzero(y, 1 - t, xp), _times_nonzero(-y, t, xp))
            value = (linear + xp.log1p(xp.exp(-xp.abs(y)))).mean()
            return float(value), (stable_sigmoid(y) - t) * scale
        inside = (y > EPSILON) & (y < 1 - EPSILON)
        p = y.clip(EPSILON, 1 - EPSILON)
        value = -(t * xp.log(p) + (1 - t) * xp.log(1 - p)).mean()
        grad = ((p - t) / (p * (1 - p)) * inside) * scale
        return float(value), grad.astype(y.dtype, copy=False)


def _times_nonzero(a: Array, w: Array, xp: Any) -> Array:
    """a * w, with 0 where the weight w is 0 (whatever a is, inf included)."""
    with np.errstate(invalid="ignore"):
        return xp.where(w == 0, 0, a * w)


class MeanSquaredError(Loss):
    """mean((y_pred - y_true)^2) over every output; y_true may broadcast to y_pred's shape."""

    name = "mean_squared_error"
    broadcasts = True

    def _value_and_grad(self, t: Array, y: Array) -> tuple[float, Array]:
        d = y - t
        return float((d * d).mean()), d * y.dtype.type(2.0 / y.size)


_BY_NAME: dict[str, type[Loss]] = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
}


class SoftmaxCrossEntropy:
    """Mean cross-entropy of softmax(logits) against integer labels (or one-hot/probability rows),
    computed from the logits with log-sum-exp (no overflow, no log(0); a -inf logit of a
    non-target class adds nothing, as in PyTorch).

        loss = SoftmaxCrossEntropy()
        value = loss.forward(logits, labels)      # logits (N, classes), labels (N,) ints -> float
        grad_logits = loss.backward()             # (softmax(logits) - onehot(labels)) / N
    """

    def __init__(self) -> None:
        self._probs: Array | None = None
        self._target: Array | None = None

    def forward(self, logits: Array, labels: ArrayLike) -> float:
        xp = array_module(logits)
        if logits.ndim != 2:
            raise ValueError(f"logits must be (N, classes), got shape {tuple(logits.shape)}")
        N, classes = logits.shape
        if N == 0 or classes == 0:
            raise ValueError(f"logits must have at least one row and one class, got shape {tuple(logits.shape)}")
        warn_if_probabilities(logits, "SoftmaxCrossEntropy")
        log_probs = log_softmax(logits)
        given = xp.asarray(labels)
        if given.ndim == 1:
            if given.shape[0] != N:
                raise ValueError(f"labels has {given.shape[0]} entries for {N} rows of logits")
            if given.dtype.kind not in "iu":
                raise TypeError(f"integer labels expected, got dtype {given.dtype}")
            if N and (int(given.min()) < 0 or int(given.max()) >= classes):
                raise ValueError(f"labels must lie in [0, {classes}), got [{int(given.min())}, {int(given.max())}]")
            target = xp.zeros_like(logits)
            target[xp.arange(N), given] = 1
        elif tuple(given.shape) == tuple(logits.shape):
            target = given.astype(logits.dtype)
        else:
            raise ValueError(
                f"labels must be (N,) class indices or {tuple(logits.shape)} rows, got shape {tuple(given.shape)}"
            )
        self._probs, self._target = xp.exp(log_probs), target
        return float(cross_entropy_sum(target, log_probs) / N)

    __call__ = forward

    def backward(self, grad: float = 1.0) -> Array:
        """Gradient of the mean loss with respect to the logits (times `grad`)."""
        if self._probs is None:
            raise RuntimeError("SoftmaxCrossEntropy.backward called before forward")
        N = self._probs.shape[0]
        g = (self._probs - self._target) * self._probs.dtype.type(grad / N)
        return g


def get(identifier: Loss | str) -> Loss:
    """A loss from a Keras string (probabilities, from_logits=False, as in Keras) or the loss."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(f"loss must be a fastconv.losses.Loss or one of {sorted(_BY_NAME)}, got {identifier!r}")
