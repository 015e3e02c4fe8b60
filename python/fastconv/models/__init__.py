"""Models: Sequential (sequential.py: a stack of fastconv.layers with Keras' compile / fit /
evaluate), the fusion pass a model runs over its layer calls (fusion.py), the VGG16 convolutional base (zoo.py) and
weights converted from other frameworks (converters.py, zoo.py)."""

from __future__ import annotations

from .sequential import Sequential
from .zoo import VGG16_LAYERS, vgg16_base, vgg16_weights_from_keras, vgg16_weights_from_torch

__all__ = [
    "Sequential",
    "vgg16_base",
    "VGG16_LAYERS",
    "vgg16_weights_from_torch",
    "vgg16_weights_from_keras",
]
