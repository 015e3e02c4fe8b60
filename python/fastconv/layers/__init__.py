"""Keras-style layers for NumPy (or CuPy) training loops, built on the functional API (ops/), one
module per kind: convolutional.py, pooling.py, activation.py, normalization.py, core.py (Dense,
Dropout, Flatten); base.py has Layer. SoftmaxCrossEntropy lives with the losses (training/losses.py).

Every layer has
    forward(x, training=True) -> y       keeps only what backward needs
    backward(grad_y) -> grad_x           fills .grads; returns None when .needs_input_grad is False
    params / grads                       dicts name -> array (grads filled by backward)
    trainable                            False freezes the layer (Keras): backward computes no
                                         weight gradient and parameters() leaves it out
    build(input_shape)                   input_shape without the batch axis; called on the first
                                         forward when not given (input channels are inferred)

    conv = Conv2D(32, 3, padding="same", activation="relu")      # NHWC, kernel (R, S, C, K)
    y = conv.forward(x)                                          # x (N, H, W, C) float32
    gx = conv.backward(gy)                                       # conv.grads["kernel"], ["bias"]

Weights follow the array layout the kernels use: `data_format="channels_last"` (default, NHWC)
holds the kernel as (R, S, C, K) like Keras, `"channels_first"` (NCHW) as (K, C, R, S) like
PyTorch. Files written by `Sequential.save_weights` always hold the Keras order (see models/).

`layer(x)` is the inference call (`training=False`: Dropout off), as in Keras; `forward(x)` trains.

Layers work unchanged on CuPy arrays: array operations go through the module of the input
(NumPy or CuPy, found without importing CuPy unless the input is a CuPy array) and parameters
created at the first call live where that input lives (`Layer.to("cupy")` moves them).
"""

from __future__ import annotations

from ..backend.arrays import array_module
from ..training.losses import SoftmaxCrossEntropy
from .activation import Activation, LeakyReLU, ReLU, Softmax
from .base import Layer, ParamRef  # noqa: F401 - ParamRef: for custom layers and optimizers
from .convolutional import Conv2D
from .core import Dense, Dropout, Flatten
from .normalization import BatchNormalization
from .pooling import AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D

__all__ = [
    "Layer",
    "Conv2D",
    "BatchNormalization",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "ReLU",
    "LeakyReLU",
    "Activation",
    "Flatten",
    "Dense",
    "Dropout",
    "Softmax",
    "SoftmaxCrossEntropy",
    "array_module",
]
