"""Weights from other frameworks: a PyTorch state_dict converted to the Keras order of a model's
parameters (Sequential.load_torch_state_dict), and torch tensors as NumPy arrays."""

from __future__ import annotations

import numpy as np

from ..layers import Conv2D, Flatten


def torch_state_dict_to_keras(model, state_dict):
    """The arrays of a PyTorch state_dict in Keras' order for model.set_weights, matched by order: the i-th
    weight / bias tensors of the state_dict go to the i-th Conv2D / Dense layer (nn.Conv2d
    (K, C, R, S), nn.Linear (out, in) are converted to this model's layouts; BatchNorm
    running statistics and other buffers are not accepted). A Dense layer after a Flatten of
    a channels_last feature map gets its input columns reordered from PyTorch's (C, H, W)
    flattening to the model's (H, W, C). Shapes are checked (Sequential.load_torch_state_dict)."""
    tensors = [(k, as_array(v)) for k, v in state_dict.items()]
    stray = [k for k, _ in tensors if not (k.endswith(".weight") or k.endswith(".bias"))]
    if stray:
        raise ValueError(
            f"state_dict entries other than weights and biases: {stray[:4]} "
            "(BatchNorm and other layers have no counterpart here)"
        )
    slots = [(layer, k) for layer in model._built_layers() for k in layer.params]
    if len(tensors) != len(slots):
        raise ValueError(
            f"the state_dict has {len(tensors)} tensors, model {model.name!r} has "
            f"{len(slots)} parameters (layer by layer: "
            f"{[f'{layer.name}/{k}' for layer, k in slots]})"
        )
    keras_order = []
    for (layer, key), (name, t) in zip(slots, tensors):
        if key == "kernel" and isinstance(layer, Conv2D) and t.ndim == 4:
            t = t.transpose(2, 3, 1, 0)  # (K, C, R, S) -> (R, S, C, K)
        elif key == "kernel" and t.ndim == 2:
            t = torch_dense_columns(model, layer, t).T  # (out, in) -> (in, out)
        want = tuple(layer._export(key, layer.params[key]).shape)
        if tuple(t.shape) != want:
            raise ValueError(
                f"state_dict entry {name!r} (shape {tuple(as_array(state_dict[name]).shape)}) "
                f"does not fit layer {layer.name!r} parameter {key!r} of shape {want}"
            )
        keras_order.append(t)
    return keras_order


def torch_dense_columns(model, layer, w):
    """w (out, in) with its columns in this model's flattening order."""
    i = model.layers.index(layer)
    below = model.layers[i - 1] if i > 0 else None
    if not isinstance(below, Flatten) or i < 2:
        return w
    shape = model._shapes[i - 2]  # the flattened feature map
    source = next((lyr for lyr in reversed(model.layers[: i - 1]) if hasattr(lyr, "layout")), None)
    if len(shape) != 3 or source is None or source.layout != "NHWC" or w.shape[1] != int(np.prod(shape)):
        return w
    h, wd, c = shape
    return w.reshape(w.shape[0], c, h, wd).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)


def as_array(t):
    if hasattr(t, "detach"):  # torch.Tensor
        t = t.detach().cpu().numpy()
    return np.asarray(t)
