"""Convolution, pooling and the shape layer: Conv2D, MaxPooling2D, Flatten."""
from __future__ import annotations

import numpy as np

from .. import activations as A
from .. import functional as F
from .. import regularizers
from .._shapes import pair, window_output
from .base import Layer, _check_backward, _init_kernel, _keras_padding, _layout
from .pooling import Pooling2D


# ----------------------------------------------------------------------------- Conv2D

class Conv2D(Layer):
    """2-D convolution with Keras arguments; `activation="relu"` runs fused in the kernel,
    "sigmoid", "tanh" and "leaky_relu" (Keras' slope 0.2) in place on the output right after.

    channels_last: x (N, H, W, C), kernel (R, S, C, K) -> y (N, P, Q, K)
    channels_first: x (N, C, H, W), kernel (K, C, R, S) -> y (N, K, P, Q)
    bias (K,). Keeps x (for the weight gradient) and, with an activation, y (for its gradient).
    When needs_input_grad is False (the first layer of a Sequential) backward computes only the
    weight and bias gradients; when trainable is False, only the input gradient.
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", dilation_rate=1,
                 activation=None, use_bias=True, data_format="channels_last", input_shape=None,
                 kernel_initializer="glorot_uniform", seed=None, *, kernel_regularizer=None, name=None,
                 dtype="float32", trainable=True):
        super().__init__(name=name, input_shape=input_shape, dtype=dtype, trainable=trainable)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or filters < 1:
            raise ValueError(f"filters must be a positive int, got {filters!r}")
        activation = F.check_activation(activation, "Conv2D activation")
        self.filters = int(filters)
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.strides = pair(strides, "strides")
        self.dilation_rate = pair(dilation_rate, "dilation_rate")
        self.padding = _keras_padding(padding)
        self.activation = activation
        self.use_bias = bool(use_bias)
        self.data_format = data_format
        self.layout = _layout(data_format)
        self.kernel_initializer = kernel_initializer
        self.seed = seed
        self._x = self._y = None
        self.relu_applied_once = False
        if self.input_shape is not None:
            self.build(self.input_shape)

    def _channels_hw(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"Conv2D expects inputs of rank 4 (batch + 3 axes), got input shape "
                             f"{(None, *input_shape)}")
        if self.layout == "NHWC":
            return input_shape[2], input_shape[:2]
        return input_shape[0], input_shape[1:]

    def _build(self, input_shape):
        C, _ = self._channels_hw(input_shape)
        R, S = self.kernel_size
        K = self.filters
        rng = np.random.default_rng(self.seed)
        kernel = _init_kernel(self.kernel_initializer, (R, S, C, K), R * S * C, R * S * K, rng, self.dtype)
        self.params = {"kernel": self._import("kernel", kernel)}
        if self.use_bias:
            self.params["bias"] = np.zeros(K, self.dtype)

    def output_shape(self, input_shape):
        _, (H, W) = self._channels_hw(tuple(input_shape))
        (R, S), (sh, sw), (dh, dw) = self.kernel_size, self.strides, self.dilation_rate
        (P, Q), _ = window_output((H, W), (R, S), (sh, sw), self.padding, (dh, dw))
        if P < 1 or Q < 1:
            raise ValueError(f"{self.name or 'Conv2D'}: output size {P}x{Q} < 1 for input shape "
                             f"{(None, *input_shape)} with kernel {(R, S)}, strides {(sh, sw)}, "
                             f"padding {self.padding!r}, dilation {(dh, dw)}")
        return (P, Q, self.filters) if self.layout == "NHWC" else (self.filters, P, Q)

    def _export(self, key, array):            # (K, C, R, S) -> Keras (R, S, C, K)
        return array.transpose(2, 3, 1, 0) if key == "kernel" and self.layout == "NCHW" else array

    def _import(self, key, array):            # Keras (R, S, C, K) -> (K, C, R, S)
        if key == "kernel" and self.layout == "NCHW":
            return np.ascontiguousarray(array.transpose(3, 2, 0, 1))
        return array

    def _kw(self):
        return dict(stride=self.strides, padding=self.padding, dilation=self.dilation_rate,
                    layout=self.layout)

    def _config(self):
        return {"filters": self.filters, "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "dilation_rate": self.dilation_rate, "activation": self.activation,
                "use_bias": self.use_bias, "data_format": self.data_format,
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer), **self._common_config()}

    def forward(self, x, training=True):
        x = self._ensure_built(x)
        y = F.conv2d(x, self.params["kernel"], self.params.get("bias"), activation=self.activation,
                     alpha=A.KERAS_LEAKY_RELU_SLOPE, **self._kw())
        if self._keeps_for_backward(training):
            self._x = x
            self._y = y if self.activation else None
        return y

    def backward(self, grad_y):
        if self._x is None:
            raise RuntimeError(f"{self.name or 'Conv2D'}.backward called before forward(training=True)")
        # Sequential sets relu_applied_once when the pool above already applied the ReLU mask
        # (MaxPooling2D.backward); it holds for this one call.
        relu_applied, self.relu_applied_once = self.relu_applied_once, False
        if self._y is not None and not relu_applied:
            grad_y = A.gradient(self.activation, grad_y, self._y, A.KERAS_LEAKY_RELU_SLOPE)
        kernel = self.params["kernel"]
        self.grads = {}
        if self.trainable:
            gw, gb = F.conv2d_backward_weight(grad_y, self._x, kernel.shape, bias=self.use_bias, **self._kw())
            self.grads["kernel"] = self._regularized(gw)
            if self.use_bias:
                self.grads["bias"] = gb
        gx = None
        if self.needs_input_grad:
            gx = F.conv2d_backward_data(grad_y, kernel, self._x.shape, **self._kw())
        self._x = self._y = None
        return gx


# ----------------------------------------------------------------------------- MaxPooling2D

class MaxPooling2D(Pooling2D):
    """Max pooling; keeps the winners' indices and the input shape (not the input)."""

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format="channels_last",
                 *, name=None, input_shape=None):
        super().__init__(pool_size, strides, padding, data_format, name=name, input_shape=input_shape)
        self._indices = self._y = None
        self.keep_output = False           # set by Sequential when it fuses a ReLU mask (backward)
        self.relu_mask_once = False

    def _kw(self):
        return dict(stride=self.strides, padding=self.padding, layout=self.layout)

    def forward(self, x, training=True):
        x = self._ensure_built(x)
        y, indices = F.max_pool2d(x, self.pool_size, **self._kw())
        if self._keeps_for_backward(training):
            self._indices, self._x_shape = indices, tuple(x.shape)
            self._y = y if self.keep_output else None
        return y

    def backward(self, grad_y):
        """With relu_mask_once set (by Sequential, for this one call; needs keep_output): the layer
        below ends in ReLU, and its gradient mask is applied here, on the pooled output, where it
        is 4x smaller for 2x2 pooling and gives the same values (every window's winner holds the
        pooled value), so that layer skips its own."""
        relu_mask, self.relu_mask_once = self.relu_mask_once, False
        if not self.needs_input_grad:
            return None
        if self._indices is None:
            raise RuntimeError(f"{self.name or 'MaxPooling2D'}.backward called before forward(training=True)")
        if relu_mask:
            if self._y is None:
                raise RuntimeError(f"{self.name or 'MaxPooling2D'}: relu_mask needs keep_output = True")
            grad_y = F.relu_backward(grad_y, self._y)
        gx = F.max_pool2d_backward(grad_y, self._indices, self._x_shape, self.pool_size, **self._kw())
        self._indices = self._x_shape = self._y = None
        return gx


# ----------------------------------------------------------------------------- Flatten

class Flatten(Layer):
    """(N, ...) -> (N, prod(...)) in the array's own order (channels_last: H, W, C like Keras)."""

    def __init__(self, *, name=None, input_shape=None):
        super().__init__(name=name, input_shape=input_shape)
        self._x_shape = None

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x, training=True):
        x = self._ensure_built(x)
        self._x_shape = tuple(x.shape)
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_y):
        if self._x_shape is None:
            raise RuntimeError(f"{self.name or 'Flatten'}.backward called before forward")
        _check_backward(self, grad_y, (self._x_shape[0], int(np.prod(self._x_shape[1:]))))
        return grad_y.reshape(self._x_shape) if self.needs_input_grad else None
