"""The cs231n three-layer convnet as the course writes it (cnn.py's ThreeLayerConvNet.loss on
layers.py / layer_utils.py), for the benchmark's loop row (d).

    conv 7x7 pad 3 stride 1 - relu - 2x2 max pool stride 2 - affine - relu - affine - softmax

The affine, ReLU and softmax-loss functions are the course's NumPy code (x.reshape(N, -1).dot(w)
+ b and its backward). The conv-relu-pool sandwich is passed in: fastconv.compat.cs231n's, or
the course-style NumPy im2col one below (numpy_baseline's im2col; the columns are kept for the
weight gradient as the course's conv_forward_fast does). Both compute dX like the course.
"""

from __future__ import annotations

import numpy as np

from . import numpy_baseline as npb

# The leaf NumPy layer functions of the course; the loop row times each call of a step alone.
LAYER_FUNCTIONS = ("affine_forward", "affine_backward", "relu_forward", "relu_backward", "softmax_loss")


def init_params(
    rng,
    input_dim=(3, 32, 32),
    num_filters=32,
    filter_size=7,
    hidden_dim=100,
    num_classes=10,
    weight_scale=1e-3,
    dtype=np.float64,
):
    """The course's initialization: weights weight_scale * randn, biases zero."""
    C, H, W = input_dim
    shapes = {
        "W1": (num_filters, C, filter_size, filter_size),
        "W2": (num_filters * H * W // 4, hidden_dim),
        "W3": (hidden_dim, num_classes),
    }
    params = {k: (weight_scale * rng.standard_normal(s)).astype(dtype) for k, s in shapes.items()}
    params.update(b1=np.zeros(num_filters, dtype), b2=np.zeros(hidden_dim, dtype), b3=np.zeros(num_classes, dtype))
    return params


# ----------------------------------------------------------------------------- the course's NumPy layers


def affine_forward(x, w, b):
    out = x.reshape(x.shape[0], -1).dot(w) + b
    return out, (x, w, b)


def affine_backward(dout, cache):
    x, w, b = cache
    dx = dout.dot(w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T.dot(dout)
    db = np.sum(dout, axis=0)
    return dx, dw, db


def relu_forward(x):
    return np.maximum(0, x), x


def relu_backward(dout, cache):
    return dout * (cache > 0)


def affine_relu_forward(x, w, b):
    a, fc_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    return out, (fc_cache, relu_cache)


def affine_relu_backward(dout, cache):
    fc_cache, relu_cache = cache
    return affine_backward(relu_backward(dout, relu_cache), fc_cache)


def softmax_loss(x, y):
    shifted_logits = x - np.max(x, axis=1, keepdims=True)
    Z = np.sum(np.exp(shifted_logits), axis=1, keepdims=True)
    log_probs = shifted_logits - np.log(Z)
    probs = np.exp(log_probs)
    N = x.shape[0]
    loss = -np.sum(log_probs[np.arange(N), y]) / N
    dx = probs.copy()
    dx[np.arange(N), y] -= 1
    dx /= N
    return loss, dx


def three_layer_convnet_loss(params, X, y, conv_relu_pool_forward, conv_relu_pool_backward, reg=0.0):
    """ThreeLayerConvNet.loss(X, y) -> (loss, grads), grads["dX"] included (the course computes it)."""
    W1, b1, W2, b2, W3, b3 = (params[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3"))
    filter_size = W1.shape[2]
    conv_param = {"stride": 1, "pad": (filter_size - 1) // 2}
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    out1, cache1 = conv_relu_pool_forward(X, W1, b1, conv_param, pool_param)
    out2, cache2 = affine_relu_forward(out1, W2, b2)
    scores, cache3 = affine_forward(out2, W3, b3)
    loss, dscores = softmax_loss(scores, y)
    loss += 0.5 * reg * (np.sum(W1 * W1) + np.sum(W2 * W2) + np.sum(W3 * W3))
    grads = {}
    dout2, grads["W3"], grads["b3"] = affine_backward(dscores, cache3)
    dout1, grads["W2"], grads["b2"] = affine_relu_backward(dout2, cache2)
    grads["dX"], grads["W1"], grads["b1"] = conv_relu_pool_backward(dout1, cache1)
    for k in ("W1", "W2", "W3"):
        grads[k] += reg * params[k]
    return loss, grads


# ----------------------------------------------------------------------------- NumPy im2col sandwich


def numpy_conv_relu_pool_forward(x, w, b, conv_param, pool_param):
    """conv (im2col + one GEMM, columns kept) + bias, relu, 2x2 max pool (numpy_baseline)."""
    stride, pad = conv_param["stride"], conv_param["pad"]
    k = pool_param["pool_height"]
    conv, cols = npb.conv2d_cols(x, w, stride, pad)
    a = npb.relu(conv + b[:, None, None])
    out, j = npb.max_pool2d(a, k)
    return out, (x, w, conv_param, cols, a, j, k)


def numpy_conv_relu_pool_backward(dout, cache):
    x, w, conv_param, cols, a, j, k = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    da = npb.relu_backward(npb.max_pool2d_backward(dout, j, a.shape, k), a)
    dw = npb.conv2d_backward_weight(da, x, w.shape, stride, pad, cols=cols)
    dx = npb.conv2d_backward_data(da, w, x.shape, stride, pad)
    return dx, dw, da.sum(axis=(0, 2, 3))
