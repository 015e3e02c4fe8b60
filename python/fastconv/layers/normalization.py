"""BatchNormalization with Keras' arguments and defaults, on fastconv.batch_norm."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..backend.arrays import array_module
from ..ops._checks import flag, real
from ..ops.batchnorm import batch_norm, batch_norm_backward, batch_statistics, fold_batch_norm
from .base import Layer, layout_for

if TYPE_CHECKING:
    from .._typing import Array, Shape


class BatchNormalization(Layer):
    """Normalizes every channel over the batch and the spatial axes (4-D inputs) or over the batch
    (2-D inputs, after Dense). axis=-1 is the channels of channels_last / Dense features, axis=1
    those of channels_first. Keras' rule for the moving statistics:
    moving = momentum * moving + (1 - momentum) * batch (biased variance); they are
    non-trainable weights (counted so by summary(), saved with the weights). In training the batch
    statistics normalize, in inference (layer(x), predict) the moving ones, and a frozen layer
    (trainable=False) always uses the moving ones, as in Keras.

    forward(x, training, fused_relu=True) applies a ReLU to the output in the same pass, and its
    gradient in the matching backward: the fusion pass (models/fusion.py) asks for it, for one
    call, when the only reader of this output is a ReLU layer, which that model then skips."""

    non_trainable_keys = ("moving_mean", "moving_variance")

    def __init__(
        self,
        axis=-1,
        momentum=0.99,
        epsilon=1e-3,
        center=True,
        scale=True,
        *,
        name=None,
        input_shape=None,
        dtype="float32",
        trainable=True,
    ):
        super().__init__(name=name, input_shape=input_shape, dtype=dtype, trainable=trainable)
        if axis not in (-1, 1, 3):
            raise ValueError(f"axis must be -1 (channels last), 3 or 1 (channels first), got {axis!r}")
        self.axis = axis
        self.momentum = real("momentum", momentum, 0.0, 1.0)
        self.epsilon = real("epsilon", epsilon, 0.0, np.inf, low_open=True)
        self.center, self.scale = flag("center", center), flag("scale", scale)
        self._saved = None
        if self.input_shape is not None:
            self.build(self.input_shape)

    def _config(self):
        return {
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            **self._common_config(),
        }

    def _channels(self, input_shape):
        if len(input_shape) == 1:
            return input_shape[0]
        if len(input_shape) != 3:
            raise ValueError(
                f"BatchNormalization expects inputs of rank 2 or 4, got input shape {(None, *input_shape)}"
            )
        return input_shape[0] if self.axis == 1 else input_shape[2]

    def _build(self, input_shape):
        C = self._channels(input_shape)
        if self.scale:
            self.params["gamma"] = np.ones(C, self.dtype)
        if self.center:
            self.params["beta"] = np.zeros(C, self.dtype)
        self.params["moving_mean"] = np.zeros(C, self.dtype)
        self.params["moving_variance"] = np.ones(C, self.dtype)

    def output_shape(self, input_shape: Shape) -> Shape:
        self._channels(input_shape)
        return tuple(input_shape)

    def _as4d(self, x):
        """x as a 4-D array and its layout: (N, F) is treated as (N, F, 1, 1)."""
        if x.ndim == 2:
            return x.reshape(*x.shape, 1, 1), "NCHW"
        return x, "NCHW" if self.axis == 1 else layout_for("channels_last")

    def forward(self, x: Array, training: bool = True, *, fused_relu: bool = False) -> Array:
        relu = flag("fused_relu", fused_relu)
        x = self._ensure_built(x)
        x4, layout = self._as4d(x)
        gamma, beta = self.params.get("gamma"), self.params.get("beta")
        activation = "relu" if relu else None
        if training and self.trainable:
            y, mean, var, inv_std = batch_statistics(
                x4, gamma, beta, eps=self.epsilon, layout=layout, activation=activation
            )
            m = self.momentum
            for key, batch in (("moving_mean", mean), ("moving_variance", var)):
                moving = self.params[key]
                moving *= m
                moving += (1 - m) * batch.astype(moving.dtype)
        else:
            y, mean, inv_std = batch_norm(
                x4,
                gamma,
                beta,
                self.params["moving_mean"],
                self.params["moving_variance"],
                training=False,
                eps=self.epsilon,
                layout=layout,
                activation=activation,
            )
        if self._keeps_for_backward(training):
            self._saved = (x4, layout, mean, inv_std, training and self.trainable, x.shape, y if relu else None)
        return y.reshape(x.shape)

    def backward(self, grad_y: Array) -> Array | None:
        if self._saved is None:
            raise RuntimeError(f"{self.name or 'BatchNormalization'}.backward called before forward(training=True)")
        x4, layout, mean, inv_std, batch_stats, shape, relu_y = self._saved
        gx, ggamma, gbeta = batch_norm_backward(
            grad_y.reshape(x4.shape),
            x4,
            self.params.get("gamma"),
            mean,
            inv_std,
            training=batch_stats,
            layout=layout,
            activation=None if relu_y is None else "relu",
            y=relu_y,
        )
        self.grads = {}
        if self.trainable:
            if self.scale:
                self.grads["gamma"] = ggamma
            if self.center:
                self.grads["beta"] = gbeta
        self._saved = None
        return gx.reshape(shape) if self.needs_input_grad else None

    def folded_into(self, conv):
        """(kernel, bias) of `conv` (the Conv2D right below) with this layer's inference-mode
        normalization folded in: Sequential.fold_batch_norm uses it."""
        xp = array_module(conv.params["kernel"])
        bias = conv.params.get("bias")
        return fold_batch_norm(
            conv.params["kernel"],
            bias if bias is not None else xp.zeros(self.params["moving_mean"].shape, conv.params["kernel"].dtype),
            self.params.get("gamma"),
            self.params.get("beta"),
            self.params["moving_mean"],
            self.params["moving_variance"],
            eps=self.epsilon,
            layout=conv.layout,
        )
