"""Activation layers: ReLU, LeakyReLU, Activation(name) and Softmax, Keras' names and defaults, on
fastconv's elementwise kernels (ops/eltwise.py) and the softmax of ops/softmax.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..ops._checks import check_activation, check_alpha
from ..ops.eltwise import (
    KERAS_LEAKY_RELU_SLOPE,
    activate,
    gradient,
    leaky_relu,
    leaky_relu_backward,
    relu,
    relu_backward,
)
from ..ops.softmax import softmax, softmax_backward
from .base import Layer, check_backward

if TYPE_CHECKING:
    from .._typing import Array


class _Elementwise(Layer):
    """y = f(x), whose gradient is computed from y: keeps the output for backward.

    A model's fusion pass (models/fusion.py) may run a ReLU inside the BatchNormalization below
    it: the model then calls neither forward nor backward of this layer for that call."""

    def __init__(self, *, name=None, input_shape=None):
        super().__init__(name=name, input_shape=input_shape)
        self._y = None

    def forward(self, x: Array, training: bool = True) -> Array:
        x = self._ensure_built(x)
        y = self._apply(x)
        if self._keeps_for_backward(training):
            self._y = y
        return y

    def _apply(self, x):
        raise NotImplementedError(f"{type(self).__name__} does not implement _apply")

    def _gradient(self, grad_y, y):
        raise NotImplementedError(f"{type(self).__name__} does not implement _gradient")

    def backward(self, grad_y: Array) -> Array | None:
        if not self.needs_input_grad:
            return None
        if self._y is None:
            raise RuntimeError(f"{self.name or type(self).__name__}.backward called before forward(training=True)")
        gx = self._gradient(grad_y, self._y)
        self._y = None
        return gx


class ReLU(_Elementwise):
    """max(x, 0); the gradient is grad_y where y > 0."""

    def _apply(self, x):
        return relu(x)

    def _gradient(self, grad_y, y):
        return relu_backward(grad_y, y)


class LeakyReLU(_Elementwise):
    """x where x > 0, else negative_slope * x (Keras' default slope 0.3)."""

    def __init__(self, negative_slope=0.3, *, name=None, input_shape=None):
        super().__init__(name=name, input_shape=input_shape)
        try:
            self.negative_slope = check_alpha(negative_slope)
        except ValueError:
            raise ValueError(f"negative_slope must be a finite number >= 0, got {negative_slope!r}") from None

    def _config(self):
        return {"negative_slope": self.negative_slope}

    def _apply(self, x):
        return leaky_relu(x, self.negative_slope)

    def _gradient(self, grad_y, y):
        return leaky_relu_backward(grad_y, y, self.negative_slope)


class Activation(_Elementwise):
    """Keras' Activation layer: 'relu', 'sigmoid', 'tanh', 'leaky_relu' (slope 0.2, as
    keras.activations.leaky_relu), 'softmax' (over the last axis) or 'linear'."""

    def __init__(self, activation, *, name=None, input_shape=None):
        super().__init__(name=name, input_shape=input_shape)
        if activation != "softmax":
            check_activation(activation, "Activation")
        self.activation = activation

    def _config(self):
        return {"activation": self.activation}

    def _apply(self, x):
        if self.activation == "softmax":
            return softmax(x)
        if self.activation == "linear":
            return x
        return activate(self.activation, x, KERAS_LEAKY_RELU_SLOPE)

    def _gradient(self, grad_y, y):
        if self.activation == "softmax":
            return softmax_backward(grad_y, y)
        return gradient(check_activation(self.activation), grad_y, y, KERAS_LEAKY_RELU_SLOPE)


# ----------------------------------------------------------------------------- Softmax


class Softmax(Layer):
    """Softmax over the last axis (numerically stable); keeps the output."""

    def __init__(self, *, name=None, input_shape=None):
        super().__init__(name=name, input_shape=input_shape)
        self._s = None

    def forward(self, x: Array, training: bool = True) -> Array:
        x = self._ensure_built(x)
        s = softmax(x)
        if training:
            self._s = s
        return s

    def backward(self, grad_y: Array) -> Array | None:
        check_backward(self, grad_y, None if self._s is None else tuple(self._s.shape))
        return softmax_backward(grad_y, self._s) if self.needs_input_grad else None
