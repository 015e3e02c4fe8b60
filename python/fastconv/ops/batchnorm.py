"""Batch normalization (docs/api.md) on fastconv's kernels (csrc/cpu/batchnorm/ for NumPy
arrays, csrc/cuda/batchnorm/ for CuPy arrays), and folding it into a conv.

    y, mean, inv_std = fc.batch_norm(x, gamma, beta, running_mean, running_var, training=True)
    gx, ggamma, gbeta = fc.batch_norm_backward(gy, x, gamma, mean, inv_std)
    y, ... = fc.batch_norm(..., activation="relu")          # BN then ReLU in one pass
    gx, ... = fc.batch_norm_backward(gy, x, ..., activation="relu", y=y)
    w2, b2 = fc.fold_batch_norm(w, b, gamma, beta, running_mean, running_var)   # inference

The functional API follows PyTorch: momentum=0.1, eps=1e-5, and training updates running_mean /
running_var in place as running = (1 - momentum) * running + momentum * batch, with the unbiased
batch variance. The BatchNormalization layer follows Keras (momentum=0.99, epsilon=1e-3,
moving = momentum * moving + (1 - momentum) * batch, with the biased variance).
"""

from __future__ import annotations

import math

import numpy as np

from .._typing import Array, DType
from ..backend.arrays import array_module
from ..backend.base import Backend
from ._checks import axes, backend_for, check_ndim, flag, float_dtype, real, same_dtype
from ._shapes import check_layout

__all__ = ["batch_norm", "batch_norm_backward", "fold_batch_norm"]


def _channels(x: Array, layout: str) -> int:
    return x.shape[1] if layout == "NCHW" else x.shape[3]


def _per_channel(name: str, a: Array | None, C: int, dtype: DType) -> Array:
    """a (C,) of x's dtype (a strided view as given: running statistics are updated in place;
    _contiguous copies what a kernel reads)."""
    if a is None:
        raise TypeError(f"{name} must be an array of shape ({C},), got None")
    if tuple(a.shape) != (C,):
        raise ValueError(f"{name} must have shape ({C},) (one per channel), got {tuple(a.shape)}")
    if a.dtype != dtype:
        raise TypeError(f"{name} has dtype {a.dtype} but x has {dtype}; cast them to one dtype")
    return a


def _optional_per_channel(name: str, a: Array | None, C: int, dtype: DType) -> Array | None:
    """_per_channel's check of a, or None when a is None (gamma, beta: no scale, no shift)."""
    return None if a is None else _per_channel(name, a, C, dtype)


def _contiguous(be: Backend, a: Array | None) -> Array | None:
    return None if a is None else be.contiguous(a)


def _check_x(x: Array, layout: str) -> int:
    float_dtype("x", x)
    check_ndim("x", x, 4, axes(layout, "x"))
    return _channels(x, layout)


def _train(
    be: Backend, x: Array, gamma: Array | None, beta: Array | None, eps: float, layout: str, relu: bool
) -> tuple[Array, Array, Array, Array]:
    if x.size // _channels(x, layout) < 2:
        raise ValueError(f"batch_norm in training needs more than one value per channel, got x {tuple(x.shape)}")
    return be.batch_norm_train(be.contiguous(x), gamma, beta, eps, layout, relu)


def _relu_flag(activation: str | None) -> bool:
    """activation= of the batch-norm functions: None, or "relu" (a ReLU fused into the pass)."""
    if activation not in (None, "relu"):
        raise ValueError(f"activation must be None or 'relu' (a ReLU fused into batch norm), got {activation!r}")
    return activation == "relu"


def batch_statistics(
    x: Array, gamma: Array | None, beta: Array | None, *, eps: float, layout: str, activation: str | None = None
) -> tuple[Array, Array, Array, Array]:
    """Training-mode normalization: (y, batch mean, biased batch variance, inverse std). For the
    layers; fc.batch_norm is the public entry point."""
    relu = _relu_flag(activation)
    be = backend_for(x=x, gamma=gamma, beta=beta)
    C = _check_x(x, layout)
    gamma = _contiguous(be, _optional_per_channel("gamma", gamma, C, x.dtype))
    beta = _contiguous(be, _optional_per_channel("beta", beta, C, x.dtype))
    return _train(be, x, gamma, beta, eps, layout, relu)


def batch_norm(
    x: Array,
    gamma: Array | None,
    beta: Array | None,
    running_mean: Array | None,
    running_var: Array | None,
    *,
    training: bool,
    momentum: float = 0.1,
    eps: float = 1e-5,
    layout: str = "NCHW",
    activation: str | None = None,
) -> tuple[Array, Array, Array]:
    """Normalize x per channel over N, H, W -> (y, saved_mean, saved_inv_std) (the last two for
    batch_norm_backward). training=True: the batch statistics, and running_mean / running_var
    (None: not tracked) are updated in place; training=False: the running statistics.
    activation="relu": y = max(y, 0) in the same pass (Conv2D - BatchNormalization - ReLU)."""
    layout = check_layout(layout)
    training = flag("training", training)
    relu = _relu_flag(activation)
    eps = real("eps", eps, 0.0, math.inf, low_open=True)
    momentum = real("momentum", momentum, 0.0, 1.0)
    be = backend_for(x=x, gamma=gamma, beta=beta, running_mean=running_mean, running_var=running_var)
    C = _check_x(x, layout)
    gamma = _contiguous(be, _optional_per_channel("gamma", gamma, C, x.dtype))
    beta = _contiguous(be, _optional_per_channel("beta", beta, C, x.dtype))
    if not training:
        running_mean = _per_channel("running_mean", running_mean, C, x.dtype)
        running_var = _per_channel("running_var", running_var, C, x.dtype)
        xp = array_module(x)
        inv_std = 1.0 / xp.sqrt(running_var.astype(np.float64) + eps)
        scale = inv_std * (1.0 if gamma is None else gamma.astype(np.float64))
        shift = xp.zeros(C) if beta is None else beta.astype(np.float64)
        y = be.batch_norm_normalize(be.contiguous(x), running_mean.astype(np.float64), scale, shift, layout, relu)
        # saturated like the training kernel's: the largest finite value where 1 / sqrt(var + eps)
        # overflows x's dtype
        return y, running_mean.copy(), xp.minimum(inv_std, np.finfo(x.dtype).max).astype(x.dtype)
    if running_mean is not None or running_var is not None:
        running_mean = _per_channel("running_mean", running_mean, C, x.dtype)
        running_var = _per_channel("running_var", running_var, C, x.dtype)
        if not (running_mean.flags.writeable and running_var.flags.writeable):
            raise ValueError("running_mean and running_var must be writeable (training updates them in place)")
    y, mean, var, inv_std = _train(be, x, gamma, beta, eps, layout, relu)
    if running_mean is not None and running_var is not None:  # both checked above, or both None
        M = x.size // C
        running_mean *= 1 - momentum
        running_mean += momentum * mean
        running_var *= 1 - momentum
        running_var += (momentum * M / (M - 1)) * var
    return y, mean, inv_std


def batch_norm_backward(
    grad_y: Array,
    x: Array,
    gamma: Array | None,
    saved_mean: Array,
    saved_inv_std: Array,
    *,
    training: bool = True,
    layout: str = "NCHW",
    activation: str | None = None,
    y: Array | None = None,
) -> tuple[Array, Array, Array]:
    """-> (grad_x, grad_gamma, grad_beta) of batch_norm. training=True differentiates through the
    batch statistics; False through fixed statistics (a frozen BatchNormalization).
    activation="relu" with y, the output of batch_norm(..., activation="relu"): grad_y is the
    gradient of that output and first goes through the ReLU (counted where y > 0), in the same pass."""
    layout = check_layout(layout)
    training = flag("training", training)
    relu = _relu_flag(activation)
    be = backend_for(
        grad_y=grad_y,
        x=x,
        gamma=gamma,
        saved_mean=saved_mean,
        saved_inv_std=saved_inv_std,
        **({"y": y} if y is not None else {}),
    )
    C = _check_x(x, layout)
    same_dtype(grad_y=grad_y, x=x)
    if tuple(grad_y.shape) != tuple(x.shape):
        raise ValueError(f"grad_y has shape {tuple(grad_y.shape)} but x has {tuple(x.shape)}")
    if relu:
        if y is None:
            raise TypeError("batch_norm_backward(activation='relu') needs y, the forward's output")
        same_dtype(y=y, x=x)
        if tuple(y.shape) != tuple(x.shape):
            raise ValueError(f"y has shape {tuple(y.shape)} but x has {tuple(x.shape)}")
    elif y is not None:
        raise ValueError("y is the output of a fused ReLU: pass it with activation='relu'")
    gamma = _contiguous(be, _optional_per_channel("gamma", gamma, C, x.dtype))
    mean = _per_channel("saved_mean", saved_mean, C, x.dtype)
    inv_std = _per_channel("saved_inv_std", saved_inv_std, C, x.dtype)
    return be.batch_norm_backward(
        be.contiguous(grad_y),
        be.contiguous(x),
        be.contiguous(mean),
        be.contiguous(inv_std),
        gamma,
        training,
        layout,
        be.contiguous(y) if relu else None,
    )


def fold_batch_norm(
    weight: Array,
    bias: Array | None,
    gamma: Array | None,
    beta: Array | None,
    running_mean: Array,
    running_var: Array,
    *,
    eps: float = 1e-5,
    layout: str = "NCHW",
) -> tuple[Array, Array]:
    """Conv weights with an inference-mode batch norm after the conv folded in: conv2d(x, w2, b2)
    equals batch_norm(conv2d(x, weight, bias), ..., training=False). weight is (K, C, R, S) for
    NCHW or (R, S, C, K) for NHWC; bias, gamma, beta may be None. Returns (w2, b2), new arrays."""
    layout = check_layout(layout)
    eps = real("eps", eps, 0.0, math.inf, low_open=True)
    backend_for(weight=weight, bias=bias, gamma=gamma, beta=beta, running_mean=running_mean, running_var=running_var)
    if weight.ndim != 4:
        raise ValueError(f"weight must be 4-D {axes(layout, 'w')}, got shape {tuple(weight.shape)}")
    K = weight.shape[0] if layout == "NCHW" else weight.shape[3]
    arrays = {
        "weight": weight,
        "bias": bias,
        "gamma": gamma,
        "beta": beta,
        "running_mean": running_mean,
        "running_var": running_var,
    }
    for name, a in arrays.items():
        if a is None and name.startswith("running"):
            raise TypeError(f"{name} must be an array of shape ({K},), got None")
        if a is not None:
            float_dtype(name, a)
            if name != "weight":
                _per_channel(name, a, K, a.dtype)
    xp = array_module(weight)
    f64 = np.float64
    scale = (1.0 if gamma is None else gamma.astype(f64)) / xp.sqrt(running_var.astype(f64) + eps)
    b = 0.0 if bias is None else bias.astype(f64)
    b2 = (b - running_mean.astype(f64)) * scale + (0.0 if beta is None else beta.astype(f64))
    per_k = scale[:, None, None, None] if layout == "NCHW" else scale
    return (weight.astype(f64) * per_k).astype(weight.dtype), b2.astype(weight.dtype)
