"""float64 oracles of batch normalization."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._typing import Shape
from ..ops._shapes import check_layout
from .common import F64, as_f64, x_from_nchw, x_to_nchw
from .eltwise import activate, relu_backward


def channels_last(x: ArrayLike, layout: str) -> tuple[F64, Shape]:
    """x as (M, C) float64: every channel's N*H*W elements in a column."""
    x = x_to_nchw(as_f64(x, "x"), layout)
    return x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1]), x.shape


def from_channels_last(a: F64, nchw_shape: Shape, layout: str) -> F64:
    N, C, H, W = nchw_shape
    return x_from_nchw(a.reshape(N, H, W, C).transpose(0, 3, 1, 2), layout)


def batch_norm(
    x: ArrayLike,
    gamma: ArrayLike | None,
    beta: ArrayLike | None,
    running_mean: ArrayLike | None,
    running_var: ArrayLike | None,
    *,
    training: bool,
    momentum: float = 0.1,
    eps: float = 1e-5,
    layout: str = "NCHW",
    activation: str | None = None,
) -> tuple[F64 | None, ...]:
    """-> (y, saved_mean, saved_inv_std), PyTorch's convention. Training: the batch statistics
    (biased variance) normalize x, and running_mean / running_var (when given) are returned
    updated as (1 - momentum) * running + momentum * batch (unbiased variance) in a 4th and 5th
    value; inference: the running statistics. activation="relu": y = max(y, 0). Arrays in, new
    float64 arrays out."""
    layout = check_layout(layout)
    a, shape = channels_last(x, layout)
    C = a.shape[1]
    g = np.ones(C) if gamma is None else np.asarray(gamma, np.float64)
    b = np.zeros(C) if beta is None else np.asarray(beta, np.float64)
    if training:
        mean, var = a.mean(axis=0), a.var(axis=0)
    else:
        mean, var = np.asarray(running_mean, np.float64), np.asarray(running_var, np.float64)
    inv_std = 1.0 / np.sqrt(var + eps)
    y = from_channels_last((a - mean) * inv_std * g + b, shape, layout)
    if activation is not None:
        y = activate(y, activation, 0.0)
    if not training:
        return y, mean, inv_std
    M = a.shape[0]
    new_mean = new_var = None
    if running_mean is not None:
        new_mean = (1 - momentum) * np.asarray(running_mean, np.float64) + momentum * mean
        new_var = (1 - momentum) * np.asarray(running_var, np.float64) + momentum * var * M / max(M - 1, 1)
    return y, mean, inv_std, new_mean, new_var


def batch_norm_backward(
    grad_y: ArrayLike,
    x: ArrayLike,
    gamma: ArrayLike | None,
    saved_mean: ArrayLike,
    saved_inv_std: ArrayLike,
    *,
    training: bool = True,
    layout: str = "NCHW",
    activation: str | None = None,
    y: ArrayLike | None = None,
) -> tuple[F64, F64, F64]:
    """-> (grad_x, grad_gamma, grad_beta); training: through the batch statistics.
    activation="relu": grad_y is the gradient of the ReLU's output y, first taken through it."""
    layout = check_layout(layout)
    if activation == "relu":
        if y is None:
            raise TypeError("batch_norm_backward(activation='relu') needs y, the forward's output")
        grad_y = relu_backward(grad_y, y)
    a, shape = channels_last(x, layout)
    g_, _ = channels_last(grad_y, layout)
    C, M = a.shape[1], a.shape[0]
    g = np.ones(C) if gamma is None else np.asarray(gamma, np.float64)
    mean, inv_std = np.asarray(saved_mean, np.float64), np.asarray(saved_inv_std, np.float64)
    xhat = (a - mean) * inv_std
    dbeta, dgamma = g_.sum(axis=0), (g_ * xhat).sum(axis=0)
    if training:
        gx = g * inv_std / M * (M * g_ - dbeta - xhat * dgamma)
    else:
        gx = g_ * g * inv_std
    return from_channels_last(gx, shape, layout), dgamma, dbeta
