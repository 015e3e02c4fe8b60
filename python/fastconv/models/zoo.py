"""Ready-made models: the VGG16 convolutional base (Keras' VGG16(include_top=False)) and its
weights from torchvision or Keras."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..layers import Conv2D, Layer, MaxPooling2D
from .converters import as_array
from .sequential import Sequential

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

__all__ = ["vgg16_base", "VGG16_LAYERS", "vgg16_weights_from_torch", "vgg16_weights_from_keras"]

# (block name, filters, number of 3x3 convolutions) of the VGG16 convolutional base.
VGG16_LAYERS = ((1, 64, 2), (2, 128, 2), (3, 256, 3), (4, 512, 3), (5, 512, 3))


def vgg16_base(
    input_shape: Sequence[int] = (224, 224, 3),
    data_format: str = "channels_last",
    weights: str | os.PathLike[str] | None = None,
    seed: int | None = None,
    dtype: DTypeLike = "float32",
    trainable: bool = True,
) -> Sequential:
    """The VGG16 convolutional base (Keras `VGG16(include_top=False)`): 13 conv 3x3 'same' + ReLU
    layers in 5 blocks, each block closed by a 2x2 max pooling; 14,714,688 parameters.

    input_shape excludes the batch axis: (H, W, C) for channels_last, (C, H, W) for channels_first.
    weights: None (Glorot-uniform init, `seed`) or the path of an .npz with entries
    "block{b}_conv{i}/kernel" (3, 3, C, K) and "block{b}_conv{i}/bias" (K,), float32, as written
    by examples/convert_vgg16_weights.py (from a torchvision state_dict or a Keras weight list).
    Pretrained weights expect the preprocessing of their source (torchvision: RGB in [0, 1]
    normalized by the ImageNet mean/std; Keras: BGR minus the ImageNet pixel mean).
    trainable=False freezes every layer (the transfer-learning base: forward-pass cost only).
    """
    layers: list[Layer] = []
    rng = np.random.default_rng(seed)
    for block, filters, convs in VGG16_LAYERS:
        for i in range(1, convs + 1):
            layers.append(
                Conv2D(
                    filters,
                    3,
                    padding="same",
                    activation="relu",
                    data_format=data_format,
                    seed=int(rng.integers(2**31)),
                    name=f"block{block}_conv{i}",
                    dtype=dtype,
                )
            )
        layers.append(MaxPooling2D(2, data_format=data_format, name=f"block{block}_pool"))
    model = Sequential(layers, input_shape=input_shape, name="vgg16")
    model.build()
    model.trainable = trainable
    if weights is not None:
        model.load_weights(weights)
    return model


def _vgg16_conv_names():
    return [f"block{b}_conv{i}" for b, _, n in VGG16_LAYERS for i in range(1, n + 1)]


# torchvision vgg16().features indices of the 13 Conv2d modules (ReLU/MaxPool in between).
_TORCH_FEATURE_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)


def vgg16_weights_from_torch(state_dict: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """torchvision vgg16 state_dict ("features.{i}.weight" (K, C, 3, 3), "features.{i}.bias")
    -> {"block1_conv1/kernel": (3, 3, C, K) float32, ...}. Tensors or arrays; classifier.* is ignored."""
    out = {}
    for name, idx in zip(_vgg16_conv_names(), _TORCH_FEATURE_INDICES):
        try:
            w, b = state_dict[f"features.{idx}.weight"], state_dict[f"features.{idx}.bias"]
        except KeyError as exc:
            raise ValueError(
                f"state_dict has no {exc.args[0]!r}: expected torchvision vgg16 naming "
                "(features.0.weight, features.2.weight, ..., features.28.bias)"
            ) from None
        w, b = as_array(w), as_array(b)
        if w.ndim != 4 or w.shape[2:] != (3, 3):
            raise ValueError(f"features.{idx}.weight has shape {w.shape}, expected (K, C, 3, 3)")
        out[f"{name}/kernel"] = np.ascontiguousarray(w.transpose(2, 3, 1, 0), dtype=np.float32)
        out[f"{name}/bias"] = b.astype(np.float32)
    return out


def vgg16_weights_from_keras(weight_list: Iterable[Any]) -> dict[str, np.ndarray]:
    """Keras `VGG16(include_top=False).get_weights()` (26 arrays: kernel (3, 3, C, K), bias (K,)
    per conv layer, in order) -> {"block1_conv1/kernel": ..., "block1_conv1/bias": ..., ...}."""
    weight_list = [as_array(a) for a in weight_list]
    names = _vgg16_conv_names()
    if len(weight_list) != 2 * len(names):
        raise ValueError(f"expected {2 * len(names)} arrays (kernel, bias for 13 conv layers), got {len(weight_list)}")
    out = {}
    for i, name in enumerate(names):
        w, b = weight_list[2 * i], weight_list[2 * i + 1]
        if w.ndim != 4 or w.shape[:2] != (3, 3) or b.shape != (w.shape[3],):
            raise ValueError(
                f"array {2 * i} / {2 * i + 1} ({name}) have shapes {w.shape} / {b.shape}, expected (3, 3, C, K) / (K,)"
            )
        out[f"{name}/kernel"] = w.astype(np.float32)
        out[f"{name}/bias"] = b.astype(np.float32)
    return out
