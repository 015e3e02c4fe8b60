"""The convolution layer: Conv2D (Keras' arguments and defaults) on fc.conv2d and its backward passes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..ops._checks import check_activation, flag
from ..ops._shapes import pair, window_output
from ..ops.conv import conv2d, conv2d_backward_data, conv2d_backward_weight
from ..ops.eltwise import KERAS_LEAKY_RELU_SLOPE, gradient
from ..training import regularizers
from .base import Layer, init_kernel, keras_padding, layout_for

if TYPE_CHECKING:
    from .._typing import Array, Shape

# ----------------------------------------------------------------------------- Conv2D


class Conv2D(Layer):
    """2-D convolution with Keras arguments; `activation="relu"` runs fused in the kernel,
    "sigmoid", "tanh" and "leaky_relu" (Keras' slope 0.2) in place on the output right after.

    channels_last: x (N, H, W, C), kernel (R, S, C, K) -> y (N, P, Q, K)
    channels_first: x (N, C, H, W), kernel (K, C, R, S) -> y (N, K, P, Q)
    bias (K,). Keeps x (for the weight gradient) and, with an activation, y (for its gradient).
    When needs_input_grad is False (the first layer of a Sequential) backward computes only the
    weight and bias gradients; when trainable is False, only the input gradient.
    backward(grad_y, relu_applied=True) (activation "relu" only) skips the ReLU gradient: the
    MaxPooling2D reading this output applied it (MaxPooling2D.backward's relu_mask).
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        dilation_rate=1,
        activation=None,
        use_bias=True,
        data_format="channels_last",
        input_shape=None,
        kernel_initializer="glorot_uniform",
        seed=None,
        *,
        kernel_regularizer=None,
        name=None,
        dtype="float32",
        trainable=True,
    ):
        super().__init__(name=name, input_shape=input_shape, dtype=dtype, trainable=trainable)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or filters < 1:
            raise ValueError(f"filters must be a positive int, got {filters!r}")
        activation = check_activation(activation, "Conv2D activation")
        self.filters = int(filters)
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.strides = pair(strides, "strides")
        self.dilation_rate = pair(dilation_rate, "dilation_rate")
        self.padding = keras_padding(padding)
        self.activation = activation
        self.use_bias = bool(use_bias)
        self.data_format = data_format
        self.layout = layout_for(data_format)
        self.kernel_initializer = kernel_initializer
        self.seed = seed
        self._x = self._y = None
        if self.input_shape is not None:
            self.build(self.input_shape)

    def _channels_hw(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                f"Conv2D expects inputs of rank 4 (batch + 3 axes), got input shape {(None, *input_shape)}"
            )
        if self.layout == "NHWC":
            return input_shape[2], input_shape[:2]
        return input_shape[0], input_shape[1:]

    def _build(self, input_shape):
        C, _ = self._channels_hw(input_shape)
        R, S = self.kernel_size
        K = self.filters
        rng = np.random.default_rng(self.seed)
        kernel = init_kernel(self.kernel_initializer, (R, S, C, K), R * S * C, R * S * K, rng, self.dtype)
        self.params = {"kernel": self._import("kernel", kernel)}
        if self.use_bias:
            self.params["bias"] = np.zeros(K, self.dtype)

    def output_shape(self, input_shape: Shape) -> Shape:
        _, (H, W) = self._channels_hw(tuple(input_shape))
        (R, S), (sh, sw), (dh, dw) = self.kernel_size, self.strides, self.dilation_rate
        (P, Q), _ = window_output((H, W), (R, S), (sh, sw), self.padding, (dh, dw))
        if P < 1 or Q < 1:
            raise ValueError(
                f"{self.name or 'Conv2D'}: output size {P}x{Q} < 1 for input shape "
                f"{(None, *input_shape)} with kernel {(R, S)}, strides {(sh, sw)}, "
                f"padding {self.padding!r}, dilation {(dh, dw)}"
            )
        return (P, Q, self.filters) if self.layout == "NHWC" else (self.filters, P, Q)

    def _export(self, key, array):  # (K, C, R, S) -> Keras (R, S, C, K)
        return array.transpose(2, 3, 1, 0) if key == "kernel" and self.layout == "NCHW" else array

    def _import(self, key, array):  # Keras (R, S, C, K) -> (K, C, R, S)
        if key == "kernel" and self.layout == "NCHW":
            return np.ascontiguousarray(array.transpose(3, 2, 0, 1))
        return array

    def _kw(self):
        return dict(stride=self.strides, padding=self.padding, dilation=self.dilation_rate, layout=self.layout)

    def _config(self):
        return {
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "dilation_rate": self.dilation_rate,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "data_format": self.data_format,
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            **self._common_config(),
        }

    def forward(self, x: Array, training: bool = True) -> Array:
        x = self._ensure_built(x)
        y = conv2d(
            x,
            self.params["kernel"],
            self.params.get("bias"),
            activation=self.activation,
            alpha=KERAS_LEAKY_RELU_SLOPE,
            **self._kw(),
        )
        if self._keeps_for_backward(training):
            self._x = x
            self._y = y if self.activation else None
        return y

    def backward(self, grad_y: Array, *, relu_applied: bool = False) -> Array | None:
        if flag("relu_applied", relu_applied) and self.activation != "relu":
            raise ValueError(
                f"relu_applied=True needs activation 'relu', {self.name or 'Conv2D'} has {self.activation!r}"
            )
        if self._x is None:
            raise RuntimeError(f"{self.name or 'Conv2D'}.backward called before forward(training=True)")
        if self._y is not None and not relu_applied:
            grad_y = gradient(self.activation, grad_y, self._y, KERAS_LEAKY_RELU_SLOPE)
        kernel = self.params["kernel"]
        self.grads = {}
        if self.trainable:
            gw, gb = conv2d_backward_weight(grad_y, self._x, kernel.shape, bias=self.use_bias, **self._kw())
            self.grads["kernel"] = self._regularized(gw)
            if self.use_bias:
                self.grads["bias"] = gb
        gx = None
        if self.needs_input_grad:
            gx = conv2d_backward_data(grad_y, kernel, self._x.shape, **self._kw())
        self._x = self._y = None
        return gx
