"""float64 oracles of ReLU, sigmoid, tanh and leaky ReLU (the backward passes take the forward's output y)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from .common import F64


def relu(x: ArrayLike) -> F64:
    """max(x, 0) elementwise; NaN stays NaN."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 0, x, np.where(np.isnan(x), x, 0.0))


def relu_backward(grad_y: ArrayLike, y: ArrayLike) -> F64:
    """grad_y where y > 0, else 0 (NaN in y gives 0: NaN > 0 is False)."""
    grad_y, y = np.asarray(grad_y, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if grad_y.shape != y.shape:
        raise ValueError(f"grad_y shape {grad_y.shape} does not match y shape {y.shape}")
    return np.where(y > 0, grad_y, 0.0)


def sigmoid(x: ArrayLike) -> F64:
    """1 / (1 + exp(-x)) in float64, from exp(-|x|) (no overflow)."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


def tanh(x: ArrayLike) -> F64:
    return np.tanh(np.asarray(x, dtype=np.float64))


def leaky_relu(x: ArrayLike, alpha: float = 0.01) -> F64:
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 0, x, alpha * x)


def grad_and_output(grad_y: ArrayLike, y: ArrayLike) -> tuple[F64, F64]:
    grad_y, y = np.asarray(grad_y, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if grad_y.shape != y.shape:
        raise ValueError(f"grad_y shape {grad_y.shape} does not match y shape {y.shape}")
    return grad_y, y


def sigmoid_backward(grad_y: ArrayLike, y: ArrayLike) -> F64:
    """From the forward's output y: sigmoid'(x) = y (1 - y)."""
    grad_y, y = grad_and_output(grad_y, y)
    return grad_y * y * (1.0 - y)


def tanh_backward(grad_y: ArrayLike, y: ArrayLike) -> F64:
    """From the forward's output y: tanh'(x) = 1 - y^2."""
    grad_y, y = grad_and_output(grad_y, y)
    return grad_y * (1.0 - y * y)


def leaky_relu_backward(grad_y: ArrayLike, y: ArrayLike, alpha: float = 0.01) -> F64:
    """From the forward's output y (alpha >= 0: y > 0 exactly where x > 0)."""
    grad_y, y = grad_and_output(grad_y, y)
    return np.where(y > 0, grad_y, alpha * grad_y)


_ACTIVATIONS: dict[str, Callable[[ArrayLike], F64]] = {
    "relu": relu,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "leaky_relu": leaky_relu,
}


def activate(y: F64, activation: str | None, alpha: float) -> F64:
    """conv2d / linear's activation= (leaky_relu with slope alpha)."""
    if activation in (None, "linear"):
        return y
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be None, 'linear' or one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    return leaky_relu(y, alpha) if activation == "leaky_relu" else _ACTIVATIONS[activation](y)
