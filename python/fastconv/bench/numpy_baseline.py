"""The plain-NumPy baseline users have today: cs231n-style convolution (im2col through
np.lib.stride_tricks.as_strided, then one matrix multiply in BLAS; col2im as R*S strided adds)
and reshape-based 2x2 max pooling. NCHW only. Timing baseline only; never used by fastconv."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided


def im2col(x, R, S, stride, pad):
    """x (N,C,H,W) -> cols (C*R*S, N*P*Q), rows ordered (c, r, s) like w.reshape(K, -1)."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))) if pad else x
    N, C, Hp, Wp = xp.shape
    P, Q = (Hp - R) // stride + 1, (Wp - S) // stride + 1
    sN, sC, sH, sW = xp.strides
    windows = as_strided(xp, (C, R, S, N, P, Q), (sC, sH, sW, sN, sH * stride, sW * stride))
    return np.ascontiguousarray(windows).reshape(C * R * S, N * P * Q), P, Q


def im2col_bytes(x_shape, R, S, stride, pad, itemsize):
    N, C, H, W = x_shape
    P, Q = (H + 2 * pad - R) // stride + 1, (W + 2 * pad - S) // stride + 1
    return C * R * S * N * P * Q * itemsize


def conv2d_cols(x, w, stride, pad):
    """x (N,C,H,W), w (K,C,R,S) -> (y (N,K,P,Q), cols): the course keeps cols for backward."""
    K, _, R, S = w.shape
    cols, P, Q = im2col(x, R, S, stride, pad)
    y = (w.reshape(K, -1) @ cols).reshape(K, x.shape[0], P, Q)
    return np.ascontiguousarray(y.transpose(1, 0, 2, 3)), cols


def conv2d(x, w, stride, pad):
    """x (N,C,H,W), w (K,C,R,S) -> y (N,K,P,Q)."""
    return conv2d_cols(x, w, stride, pad)[0]


def conv2d_backward_weight(gy, x, w_shape, stride, pad, cols=None):
    """grad_y (N,K,P,Q), x -> grad_w (K,C,R,S); `cols` from conv2d_cols saves the im2col."""
    K, _, R, S = w_shape
    if cols is None:
        cols, _, _ = im2col(x, R, S, stride, pad)
    return (gy.transpose(1, 0, 2, 3).reshape(K, -1) @ cols.T).reshape(w_shape)


def conv2d_backward_data(gy, w, x_shape, stride, pad):
    """grad_y (N,K,P,Q), w (K,C,R,S) -> grad_x (N,C,H,W): GEMM to columns, then col2im."""
    N, C, H, W = x_shape
    K, _, R, S = w.shape
    _, _, P, Q = gy.shape
    dcols = (w.reshape(K, -1).T @ gy.transpose(1, 0, 2, 3).reshape(K, -1)).reshape(C, R, S, N, P, Q)
    dxp = np.zeros((N, C, H + 2 * pad, W + 2 * pad), gy.dtype)
    for r in range(R):
        for s in range(S):
            dxp[:, :, r : r + stride * P : stride, s : s + stride * Q : stride] += dcols[:, r, s].transpose(1, 0, 2, 3)
    return dxp[:, :, pad : pad + H, pad : pad + W]


def max_pool2d(x, k):
    """Window k x k, stride k, no padding -> (y, position of the max inside each window)."""
    N, C, H, W = x.shape
    P, Q = H // k, W // k
    win = x[:, :, : P * k, : Q * k].reshape(N, C, P, k, Q, k).transpose(0, 1, 2, 4, 3, 5).reshape(N, C, P, Q, k * k)
    j = win.argmax(axis=-1)
    return np.take_along_axis(win, j[..., None], -1)[..., 0], j


def max_pool2d_backward(gy, j, x_shape, k):
    N, C, H, W = x_shape
    _, _, P, Q = gy.shape
    onehot = (np.arange(k * k) == j[..., None]) * gy[..., None]
    gx = np.zeros(x_shape, gy.dtype)
    gx[:, :, : P * k, : Q * k] = (
        onehot.reshape(N, C, P, Q, k, k).transpose(0, 1, 2, 4, 3, 5).reshape(N, C, P * k, Q * k)
    )
    return gx


def relu(x):
    return np.maximum(x, 0)


def relu_backward(gy, y):
    return gy * (y > 0)


def avg_pool2d(x, k):
    """k x k average pooling with stride k, no padding (the cs231n reshape trick)."""
    N, C, H, W = x.shape
    P, Q = H // k, W // k
    return x[:, :, : P * k, : Q * k].reshape(N, C, P, k, Q, k).mean(axis=(3, 5))


def avg_pool2d_backward(gy, x_shape, k):
    gx = np.zeros(x_shape, gy.dtype)
    P, Q = gy.shape[2:]
    gx[:, :, : P * k, : Q * k] = np.repeat(np.repeat(gy / (k * k), k, axis=2), k, axis=3)
    return gx


def batch_norm(x, gamma, beta, eps=1e-5):
    """cs231n's spatial batch norm forward (training), NCHW."""
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = x.var(axis=(0, 2, 3), keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma[None, :, None, None] + beta[None, :, None, None]


def batch_norm_backward(gy, x, gamma, mean, inv_std):
    M = x.size // x.shape[1]
    xhat = (x - mean[None, :, None, None]) * inv_std[None, :, None, None]
    dbeta, dgamma = gy.sum(axis=(0, 2, 3)), (gy * xhat).sum(axis=(0, 2, 3))
    k = (gamma * inv_std / M)[None, :, None, None]
    return k * (M * gy - dbeta[None, :, None, None] - xhat * dgamma[None, :, None, None])


def sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1, e) / (1 + e)


def sigmoid_backward(gy, y):
    return gy * y * (1 - y)


def tanh(x):
    return np.tanh(x)


def tanh_backward(gy, y):
    return gy * (1 - y * y)


def leaky_relu(x, alpha=0.01):
    return np.where(x > 0, x, alpha * x)


def leaky_relu_backward(gy, y, alpha=0.01):
    return np.where(y > 0, gy, alpha * gy)
