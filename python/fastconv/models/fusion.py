"""The layer fusions Sequential decides: a ReLU applied inside the BatchNormalization below it, the
ReLU gradient of a Conv2D applied in the MaxPooling2D above it (fuse_relus, run whenever the
marks of trainable layers change), and batch norms folded into the convolution below them for
inference (fold_batch_norm)."""

from __future__ import annotations

from ..backend.arrays import array_module
from ..layers import Activation, BatchNormalization, Conv2D, MaxPooling2D, ReLU


def fuse_relus(model):
    """Indices of BatchNormalization layers right below a ReLU (or Activation("relu")): in
    forward, Sequential asks such a layer to apply the ReLU in its own passes for that one
    call (relu_once) and the ReLU layer to pass its output through (passed_once), so neither
    direction runs a separate ReLU pass. One call at a time, so that a layer shared with
    another model, or called on its own, computes what it computes there.
    Indices of MaxPooling2D layers directly above a Conv2D(activation="relu") of the same
    layout: backward applies the conv's ReLU gradient mask in the pool, on its small output,
    and the conv skips its own pass over the large one (MNIST CNN step: -1.5 ms of ~19; VGG16
    at batch 8: no ReLU backward over conv1_2's 103 MB output)."""
    model._relu_pools, model._bn_relus = set(), set()
    for i, layer in enumerate(model.layers):
        above = model.layers[i + 1] if i + 1 < len(model.layers) else None
        if isinstance(layer, BatchNormalization) and (
            isinstance(above, ReLU) or (isinstance(above, Activation) and above.activation == "relu")
        ):
            model._bn_relus.add(i)
        if isinstance(layer, MaxPooling2D):
            below = model.layers[i - 1] if i > 0 else None
            fused = (
                isinstance(below, Conv2D)
                and below.activation == "relu"
                and below.layout == layer.layout
                and i - 1 >= model._first
            )
            layer.keep_output = fused
            if fused:
                model._relu_pools.add(i)


def fold_batch_norm(model):
    """The layers of an inference model in which every Conv2D (without activation) followed by a
    BatchNormalization over its channel axis is one Conv2D with the normalization folded into
    its kernel and bias (fc.fold_batch_norm): the pair then costs one convolution. A batch
    norm over another axis (axis=-1 after a channels_first conv normalizes W) stays a layer.
    Other layers are shared with the model; Sequential.fold_batch_norm makes the inference
    model (for layer(x) / predict, not for training) from the list returned."""
    model._built_layers()
    folded, i = [], 0
    while i < len(model.layers):
        layer = model.layers[i]
        above = model.layers[i + 1] if i + 1 < len(model.layers) else None
        if isinstance(layer, Conv2D) and layer.activation is None and layer.built and normalizes_channels(above, layer):
            w2, b2 = model.layers[i + 1].folded_into(layer)
            config = {**layer.get_config(), "use_bias": True, "name": layer.name}
            conv = Conv2D(**config)
            conv.build(layer.input_shape)
            conv.to(array_module(w2))
            conv.params["kernel"][...] = w2
            conv.params["bias"][...] = b2
            folded.append(conv)
            i += 2
            continue
        folded.append(layer)
        i += 1
    return folded


def normalizes_channels(bn, conv):
    """Whether `bn` is a BatchNormalization over the channel axis of `conv`'s 4-D output
    (N, C, H, W) or (N, H, W, C): axis 1 / -3 or 3 / -1 by the conv's data_format."""
    if not isinstance(bn, BatchNormalization):
        return False
    return bn.axis % 4 == (1 if conv.layout == "NCHW" else 3)
