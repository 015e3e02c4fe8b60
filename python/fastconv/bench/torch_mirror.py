"""The PyTorch mirror of a channels_last fastconv Sequential (nn.Sequential with its weights, NCHW)
for the training-loop rows (loops.py), and the check that both compute the same outputs."""

from __future__ import annotations

import numpy as np

from .. import layers as L

CHECK_TOLERANCE = {"float32": 1e-3, "float64": 1e-8}  # ||got - want||_F / ||want||_F


def relative_error(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-300))


def _torch_padding(layer):
    if layer.padding == "valid":
        return 0
    if layer.padding == "same" and layer.strides == (1, 1) and all(k % 2 for k in layer.kernel_size):
        return tuple(k // 2 for k in layer.kernel_size)
    raise NotImplementedError(f"{layer.name}: padding {layer.padding!r} with strides {layer.strides}")


def torch_mirror(torch, model, dtype):
    """nn.Sequential computing what the channels_last fastconv `model` computes, NCHW, with its
    weights; parameters of layers with trainable False get requires_grad=False."""
    nn = torch.nn

    def copy(param, array):
        with torch.no_grad():
            param.copy_(torch.from_numpy(np.ascontiguousarray(array)))

    mods, shape, flat_from = [], model.input_shape, None
    for layer in model.layers:
        if getattr(layer, "layout", "NHWC") != "NHWC":
            raise NotImplementedError(f"{layer.name}: only channels_last models are mirrored")
        if isinstance(layer, L.Conv2D):
            R, S, C, K = layer.params["kernel"].shape
            m = nn.Conv2d(C, K, (R, S), stride=layer.strides, padding=_torch_padding(layer), bias=layer.use_bias)
            copy(m.weight, layer.params["kernel"].transpose(3, 2, 0, 1))
            new = [m]
        elif isinstance(layer, L.MaxPooling2D):
            if layer.padding != "valid":
                raise NotImplementedError(f"{layer.name}: padding {layer.padding!r}")
            new = [nn.MaxPool2d(layer.pool_size, layer.strides)]
        elif isinstance(layer, L.Flatten):
            new, flat_from = [nn.Flatten()], shape
        elif isinstance(layer, L.Dense):
            k = layer.params["kernel"]
            if flat_from is not None:  # rows in (H, W, C) order -> PyTorch's (C, H, W)
                H, W, C = flat_from
                k = k.reshape(H, W, C, -1).transpose(2, 0, 1, 3).reshape(k.shape)
                flat_from = None
            m = nn.Linear(k.shape[0], k.shape[1], bias=layer.use_bias)
            copy(m.weight, k.T)
            new = [m]
        elif isinstance(layer, L.Dropout):
            new = [nn.Dropout(layer.rate)]
        elif isinstance(layer, L.ReLU):
            new = [nn.ReLU()]
        elif isinstance(layer, L.BatchNormalization):
            if layer.center != layer.scale:
                raise NotImplementedError(f"{layer.name}: BatchNorm2d has gamma and beta together or neither")
            C = layer.params["moving_mean"].shape[0]
            m = nn.BatchNorm2d(C, eps=layer.epsilon, momentum=1 - layer.momentum, affine=layer.center)
            with torch.no_grad():
                m.running_mean.copy_(torch.from_numpy(layer.params["moving_mean"]))
                m.running_var.copy_(torch.from_numpy(layer.params["moving_variance"]))
            if m.affine:
                copy(m.weight, layer.params["gamma"])
                copy(m.bias, layer.params["beta"])
            new = [m]
        elif isinstance(layer, L.GlobalAveragePooling2D) and not layer.keepdims:
            new = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        else:
            raise NotImplementedError(f"no PyTorch mirror for {type(layer).__name__}")
        if "bias" in layer.params:
            copy(new[0].bias, layer.params["bias"])
        act = getattr(layer, "activation", None)
        if act:
            new.append({"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "softmax": lambda: nn.Softmax(1)}[act]())
        for m in new:
            m.requires_grad_(getattr(layer, "trainable", True) is not False)
        mods += new
        shape = tuple(layer.output_shape(shape))
    return nn.Sequential(*mods).to(dtype)


def nchw(torch, x):
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def check_outputs(torch, model, net, x):
    """The fastconv model's inference output against the PyTorch mirror's."""
    got = model.forward(x, training=False)
    if torch is None:
        return {"what": "inference output vs PyTorch", "error": None, "ok": True}
    net.eval()
    with torch.no_grad():
        want = net(nchw(torch, x)).numpy()
    net.train()
    err = relative_error(got, want)
    return {"what": "inference output vs PyTorch", "error": err, "ok": err <= CHECK_TOLERANCE[str(got.dtype)]}
