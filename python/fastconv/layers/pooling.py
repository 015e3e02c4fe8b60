"""Pooling layers, Keras' names and defaults: MaxPooling2D, AveragePooling2D,
GlobalAveragePooling2D, GlobalMaxPooling2D, and Pooling2D, the base of the first two.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..ops._checks import flag
from ..ops._shapes import pair, window_output
from ..ops.eltwise import relu_backward
from ..ops.pool2d import (
    avg_pool2d,
    avg_pool2d_backward,
    global_avg_pool2d,
    global_avg_pool2d_backward,
    global_max_pool2d,
    global_max_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
)
from .base import Layer, keras_padding, layout_for

if TYPE_CHECKING:
    from .._typing import Array, Shape


class Pooling2D(Layer):
    """What windowed pooling layers share: Keras' pool_size / strides / padding / data_format, the
    output shape and the config."""

    def __init__(
        self, pool_size=2, strides=None, padding="valid", data_format="channels_last", *, name=None, input_shape=None
    ):
        super().__init__(name=name, input_shape=input_shape)
        self.pool_size = pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else pair(strides, "strides")
        self.padding = keras_padding(padding)
        self.data_format = data_format
        self.layout = layout_for(data_format)
        self._x_shape: Shape | None = None

    def output_shape(self, input_shape: Shape) -> Shape:
        kind = type(self).__name__
        if len(input_shape) != 3:
            raise ValueError(f"{kind} expects inputs of rank 4, got input shape {(None, *input_shape)}")
        H, W = input_shape[:2] if self.layout == "NHWC" else input_shape[1:]
        C = input_shape[2] if self.layout == "NHWC" else input_shape[0]
        (Pp, Q), _ = window_output((H, W), self.pool_size, self.strides, self.padding)
        if Pp < 1 or Q < 1:
            raise ValueError(
                f"{self.name or kind}: pooled size {Pp}x{Q} < 1 for input shape "
                f"{(None, *input_shape)}, pool_size {self.pool_size}, strides {self.strides}"
            )
        return (Pp, Q, C) if self.layout == "NHWC" else (C, Pp, Q)

    def _config(self):
        return {
            "pool_size": self.pool_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
        }


class AveragePooling2D(Pooling2D):
    """The mean of each window. padding='same' averages over the cells inside the input, as
    Keras does (count_include_pad=False); keeps only the input shape."""

    def _kw(self):
        return dict(stride=self.strides, padding=self.padding, layout=self.layout, count_include_pad=False)

    def forward(self, x: Array, training: bool = True) -> Array:
        x = self._ensure_built(x)
        if self._keeps_for_backward(training):
            self._x_shape = tuple(x.shape)
        return avg_pool2d(x, self.pool_size, **self._kw())

    def backward(self, grad_y: Array) -> Array | None:
        if not self.needs_input_grad:
            return None
        if self._x_shape is None:
            raise RuntimeError(f"{self.name or 'AveragePooling2D'}.backward called before forward(training=True)")
        gx = avg_pool2d_backward(grad_y, self._x_shape, self.pool_size, **self._kw())
        self._x_shape = None
        return gx


class _GlobalPooling(Layer):
    def __init__(self, data_format="channels_last", keepdims=False, *, name=None, input_shape=None):
        super().__init__(name=name, input_shape=input_shape)
        self.data_format = data_format
        self.layout = layout_for(data_format)
        self.keepdims = bool(keepdims)
        self._x_shape: Shape | None = None

    def output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 3:
            raise ValueError(f"{type(self).__name__} expects inputs of rank 4, got input shape {(None, *input_shape)}")
        C = input_shape[2] if self.layout == "NHWC" else input_shape[0]
        if not self.keepdims:
            return (C,)
        return (1, 1, C) if self.layout == "NHWC" else (C, 1, 1)

    def _config(self):
        return {"data_format": self.data_format, "keepdims": self.keepdims}

    def _shaped(self, y):
        N, C = y.shape
        if not self.keepdims:
            return y
        return y.reshape((N, 1, 1, C) if self.layout == "NHWC" else (N, C, 1, 1))

    def _grad_nc(self, grad_y):
        """grad_y as (N, C) and the input shape kept by forward."""
        if self._x_shape is None:
            raise RuntimeError(f"{self.name or type(self).__name__}.backward called before forward(training=True)")
        return (grad_y.reshape(grad_y.shape[0], -1) if self.keepdims else grad_y), self._x_shape


class GlobalAveragePooling2D(_GlobalPooling):
    """The mean over H and W: (N, H, W, C) -> (N, C) (keepdims: (N, 1, 1, C))."""

    def forward(self, x: Array, training: bool = True) -> Array:
        x = self._ensure_built(x)
        if self._keeps_for_backward(training):
            self._x_shape = tuple(x.shape)
        return self._shaped(global_avg_pool2d(x, layout=self.layout))

    def backward(self, grad_y: Array) -> Array | None:
        if not self.needs_input_grad:
            return None
        grad_nc, x_shape = self._grad_nc(grad_y)
        gx = global_avg_pool2d_backward(grad_nc, x_shape, layout=self.layout)
        self._x_shape = None
        return gx


class GlobalMaxPooling2D(_GlobalPooling):
    """The maximum over H and W: (N, H, W, C) -> (N, C); keeps the winners' indices."""

    def __init__(self, data_format="channels_last", keepdims=False, *, name=None, input_shape=None):
        super().__init__(data_format, keepdims, name=name, input_shape=input_shape)
        self._indices = None

    def forward(self, x: Array, training: bool = True) -> Array:
        x = self._ensure_built(x)
        y, indices = global_max_pool2d(x, layout=self.layout)
        if self._keeps_for_backward(training):
            self._x_shape, self._indices = tuple(x.shape), indices
        return self._shaped(y)

    def backward(self, grad_y: Array) -> Array | None:
        if not self.needs_input_grad:
            return None
        grad_nc, x_shape = self._grad_nc(grad_y)
        gx = global_max_pool2d_backward(grad_nc, self._indices, x_shape, layout=self.layout)
        self._x_shape = self._indices = None
        return gx


# ----------------------------------------------------------------------------- MaxPooling2D


class MaxPooling2D(Pooling2D):
    """Max pooling; keeps the winners' indices and the input shape (not the input).

    relu_mask=True, in forward and then in backward, applies the ReLU gradient mask of the
    Conv2D(activation="relu") below (whose output is this layer's input) here, on the pooled
    output: 4x smaller for 2x2 pooling and the same values (every window's winner holds the pooled
    value), so that conv skips its own (Conv2D.backward's relu_applied). The fusion pass
    (models/fusion.py) asks for both."""

    def __init__(
        self, pool_size=2, strides=None, padding="valid", data_format="channels_last", *, name=None, input_shape=None
    ):
        super().__init__(pool_size, strides, padding, data_format, name=name, input_shape=input_shape)
        self._indices = self._y = None

    def _kw(self):
        return dict(stride=self.strides, padding=self.padding, layout=self.layout)

    def forward(self, x: Array, training: bool = True, *, relu_mask: bool = False) -> Array:
        """relu_mask=True keeps the output too, for backward(relu_mask=True)."""
        keep_output = flag("relu_mask", relu_mask)
        x = self._ensure_built(x)
        y, indices = max_pool2d(x, self.pool_size, **self._kw())
        if self._keeps_for_backward(training):
            self._indices, self._x_shape = indices, tuple(x.shape)
            self._y = y if keep_output else None
        return y

    def backward(self, grad_y: Array, *, relu_mask: bool = False) -> Array | None:
        """relu_mask=True: grad_y passes the ReLU mask of the layer below first (needs a
        forward(relu_mask=True))."""
        relu_mask = flag("relu_mask", relu_mask)
        if not self.needs_input_grad:
            return None
        if self._indices is None or self._x_shape is None:
            raise RuntimeError(f"{self.name or 'MaxPooling2D'}.backward called before forward(training=True)")
        if relu_mask:
            if self._y is None:
                raise RuntimeError(
                    f"{self.name or 'MaxPooling2D'}: backward(relu_mask=True) needs forward(relu_mask=True) first"
                )
            grad_y = relu_backward(grad_y, self._y)
        gx = max_pool2d_backward(grad_y, self._indices, self._x_shape, self.pool_size, **self._kw())
        self._indices = self._x_shape = self._y = None
        return gx
