"""The core layers: Dense, Dropout and Flatten."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..backend.arrays import array_module
from ..ops._checks import check_activation
from ..ops.eltwise import KERAS_LEAKY_RELU_SLOPE, gradient
from ..ops.linear import column_sums, dense_kernel_grad, linear, linear_backward_data
from ..ops.softmax import softmax, softmax_backward
from ..training import regularizers
from .base import Layer, check_backward, init_kernel

if TYPE_CHECKING:
    from .._typing import Array, Shape

# ----------------------------------------------------------------------------- Dense


class Dense(Layer):
    """y = x @ kernel + bias, kernel (in, units) like Keras; activation None, 'relu' (fused in the
    GEMM), 'sigmoid', 'tanh', 'leaky_relu' (Keras' slope 0.2; fastconv's kernels in place on y) or
    'softmax'. All three passes run on fastconv's GEMM kernel (fc.linear), never NumPy's BLAS.

    x (N, in) -> y (N, units). Keeps x (for the kernel gradient) and the activated output.
    """

    def __init__(
        self,
        units,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        seed=None,
        *,
        kernel_regularizer=None,
        name=None,
        input_shape=None,
        dtype="float32",
        trainable=True,
    ):
        super().__init__(name=name, input_shape=input_shape, dtype=dtype, trainable=trainable)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
            raise ValueError(f"units must be a positive int, got {units!r}")
        if activation != "softmax":
            activation = check_activation(activation, "Dense activation (or 'softmax')")
        self.units = int(units)
        self.activation = activation
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.seed = seed
        self._x = self._y = None
        if self.input_shape is not None:
            self.build(self.input_shape)

    def _config(self):
        return {
            "units": self.units,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            **self._common_config(),
        }

    def _build(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(
                f"Dense expects inputs of shape (N, features), got {(None, *input_shape)}; "
                "put a Flatten layer before it"
            )
        fan_in = input_shape[0]
        rng = np.random.default_rng(self.seed)
        self.params = {
            "kernel": init_kernel(self.kernel_initializer, (fan_in, self.units), fan_in, self.units, rng, self.dtype)
        }
        if self.use_bias:
            self.params["bias"] = np.zeros(self.units, self.dtype)

    def output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 1:
            raise ValueError(
                f"Dense expects inputs of shape (N, features), got {(None, *input_shape)}; "
                "put a Flatten layer before it"
            )
        return (self.units,)

    def forward(self, x: Array, training: bool = True) -> Array:
        x = self._ensure_built(x)
        if x.ndim != 2 or x.shape[1] != self.params["kernel"].shape[0]:
            raise ValueError(
                f"{self.name or 'Dense'} expects x of shape (N, {self.params['kernel'].shape[0]}), got {tuple(x.shape)}"
            )
        # the kernel (in, units) is the transposed PyTorch weight: read in place, no copy
        fused = None if self.activation == "softmax" else self.activation
        y = linear(
            x,
            self.params["kernel"].T,
            self.params["bias"] if self.use_bias else None,
            activation=fused,
            alpha=KERAS_LEAKY_RELU_SLOPE,
        )
        if self.activation == "softmax":
            y = softmax(y)
        if self._keeps_for_backward(training):
            self._x = x
            self._y = y if self.activation else None
        return y

    def backward(self, grad_y: Array) -> Array | None:
        if self._x is None:
            raise RuntimeError(f"{self.name or 'Dense'}.backward called before forward(training=True)")
        if self.activation == "softmax":
            grad_y = softmax_backward(grad_y, self._y)
        else:
            grad_y = gradient(self.activation, grad_y, self._y, KERAS_LEAKY_RELU_SLOPE)
        self.grads = {}
        if self.trainable:
            self.grads["kernel"] = self._regularized(dense_kernel_grad(grad_y, self._x))
            if self.use_bias:
                self.grads["bias"] = column_sums(grad_y)
        gx = linear_backward_data(grad_y, self.params["kernel"].T) if self.needs_input_grad else None
        self._x = self._y = None
        return gx


# ----------------------------------------------------------------------------- Dropout


class Dropout(Layer):
    """Inverted dropout: in training zeroes each element with probability `rate` and scales the
    rest by 1/(1-rate), so inference (training=False) is the identity. Keeps the scaled mask."""

    def __init__(self, rate, seed=None, *, name=None, input_shape=None):
        super().__init__(name=name, input_shape=input_shape)
        if (
            isinstance(rate, bool)
            or not isinstance(rate, (int, float, np.integer, np.floating))
            or not 0.0 <= float(rate) < 1.0
        ):
            raise ValueError(f"Dropout rate must be a number in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._mask = None
        self._y_shape = None  # the shape of the last training output (backward checks grad_y)

    def _config(self):
        seed = int(self.seed) if isinstance(self.seed, (int, np.integer)) else None  # a Generator is not kept
        return {"rate": self.rate, "seed": seed}

    def forward(self, x: Array, training: bool = True) -> Array:
        x = self._ensure_built(x)
        if training:
            self._y_shape = tuple(x.shape)
        if not training or self.rate == 0.0:
            self._mask = None
            return x
        xp = array_module(x)
        if xp is np:
            keep = self._rng.random(x.shape) >= self.rate
        else:
            keep = xp.random.random(x.shape) >= self.rate
        self._mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.rate))
        return x * self._mask

    def backward(self, grad_y: Array) -> Array | None:
        check_backward(self, grad_y, self._y_shape)
        if not self.needs_input_grad:
            return None
        return grad_y if self._mask is None else grad_y * self._mask


# ----------------------------------------------------------------------------- Flatten


class Flatten(Layer):
    """(N, ...) -> (N, prod(...)) in the array's own order (channels_last: H, W, C like Keras)."""

    def __init__(self, *, name=None, input_shape=None):
        super().__init__(name=name, input_shape=input_shape)
        self._x_shape = None

    def output_shape(self, input_shape: Shape) -> Shape:
        return (int(np.prod(input_shape)),)

    def forward(self, x: Array, training: bool = True) -> Array:
        x = self._ensure_built(x)
        self._x_shape = tuple(x.shape)
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_y: Array) -> Array | None:
        if self._x_shape is None:
            raise RuntimeError(f"{self.name or 'Flatten'}.backward called before forward")
        check_backward(self, grad_y, (self._x_shape[0], int(np.prod(self._x_shape[1:]))))
        return grad_y.reshape(self._x_shape) if self.needs_input_grad else None
