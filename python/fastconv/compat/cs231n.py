"""The cs231n layer functions (fast_layers.py, layers.py, layer_utils.py) on fastconv kernels.

Change one import line and an existing NumPy training loop runs on the compiled kernels:

    # from cs231n.fast_layers import conv_forward_fast, conv_backward_fast, ...
    from fastconv.compat.cs231n import conv_forward_fast, conv_backward_fast, ...

Contract (the course's):
    conv_forward_fast(x, w, b, conv_param) -> out, cache
        x (N, C, H, W), w (F, C, HH, WW), b (F,)
        conv_param: {'stride': int, 'pad': int} (zero padding on every side)
        out (N, F, H', W'), H' = 1 + (H + 2 * pad - HH) // stride, W' likewise
    conv_backward_fast(dout, cache) -> dx, dw, db          (shapes of x, w, b)
    max_pool_forward_fast(x, pool_param) -> out, cache
        pool_param: {'pool_height': int, 'pool_width': int, 'stride': int}
        out (N, C, H', W'), H' = 1 + (H - pool_height) // stride
    max_pool_backward_fast(dout, cache) -> dx
    relu_forward(x) -> out, cache;  relu_backward(dout, cache) -> dx
    conv_relu_forward(x, w, b, conv_param) -> out, cache
    conv_relu_backward(dout, cache) -> dx, dw, db
    conv_relu_pool_forward(x, w, b, conv_param, pool_param) -> out, cache
    conv_relu_pool_backward(dout, cache) -> dx, dw, db
    sgd / sgd_momentum / rmsprop / adam(w, dw, config=None) -> next_w, config   (optim.py: the
        course's update rules and config keys, e.g. config["learning_rate"], "velocity", "cache",
        "m", "v", "t"; the state lives in config, as the course's Solver expects)

Differences from the course code, none of which changes a gradient check:
- The caller's dtype is kept: float64 stays float64 (so numeric gradient checks still pass),
  float32 stays float32 (the fast path). Mixed inputs use their common type; integer inputs
  are computed in float64.
- Sizes need not divide evenly (the course's im2col asserts (H + 2 pad - HH) % stride == 0;
  here the output size is floored like the naive version).
- In max pooling backward a tie sends the gradient to the first maximum in row-major order (the
  course's reshape path gives it to every tied element).
- Caches are tuples of arrays and dicts like the course's, but their items differ (do not
  unpack them; pass them back to the matching backward function).
- CuPy arrays work as well (on the CUDA kernels).
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from .._arrays import array_module

__all__ = [
    "conv_forward_fast", "conv_backward_fast", "max_pool_forward_fast", "max_pool_backward_fast",
    "relu_forward", "relu_backward", "conv_relu_forward", "conv_relu_backward",
    "conv_relu_pool_forward", "conv_relu_pool_backward", "sgd", "sgd_momentum", "rmsprop", "adam",
]


def _common_float(**named):
    """The named arrays (array-likes such as lists are accepted, like the course's NumPy code) in
    their common float dtype: float32 only when every float input is float32."""
    arrays = []
    for name, a in named.items():
        if a is None:
            raise TypeError(f"{name} must be an array, got None")
        if not hasattr(a, "dtype") or not hasattr(a, "shape"):
            try:
                a = np.asarray(a)
            except (TypeError, ValueError) as e:
                raise TypeError(f"{name} must be an array or array-like of numbers: {e}") from None
        if a.dtype.kind not in "fiub":
            raise TypeError(f"{name} must be real-valued (float32/float64), got dtype {a.dtype}"
                            + ("; complex values would be truncated" if a.dtype.kind == "c" else ""))
        arrays.append(a)
    xp = array_module(arrays[0])
    dtype = np.result_type(*[a.dtype for a in arrays])
    if dtype not in (np.float32, np.float64):
        dtype = np.dtype(np.float64)
    return [xp.asarray(a, dtype=dtype) for a in arrays]


def _cache(cache, size, producer, arrays=0):
    """The cache a forward function returned (its first `arrays` items arrays), checked well
    enough to name the mistake."""
    if (not isinstance(cache, tuple) or len(cache) != size
            or not all(hasattr(a, "dtype") and hasattr(a, "shape") for a in cache[:arrays])):
        raise TypeError(f"cache must be the cache returned by {producer}, got {type(cache).__name__}")
    return cache


def _conv_args(conv_param):
    try:
        stride, pad = conv_param["stride"], conv_param["pad"]
    except (KeyError, TypeError):
        raise ValueError(f"conv_param must be a dict with keys 'stride' and 'pad', got {conv_param!r}") from None
    return dict(stride=stride, padding=pad, layout="NCHW")


def _pool_args(pool_param):
    try:
        ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    except (KeyError, TypeError):
        raise ValueError("pool_param must be a dict with keys 'pool_height', 'pool_width' and 'stride', "
                         f"got {pool_param!r}") from None
    return (ph, pw), dict(stride=stride, padding=0, layout="NCHW")


# ----------------------------------------------------------------------------- convolution

def conv_forward_fast(x, w, b, conv_param):
    """Convolution: x (N, C, H, W), w (F, C, HH, WW), b (F,), conv_param {'stride', 'pad'}
    -> out (N, F, H', W') with H' = 1 + (H + 2 pad - HH) // stride, and a cache for backward."""
    x, w, b = _common_float(x=x, w=w, b=b)
    out = F.conv2d(x, w, b, **_conv_args(conv_param))
    return out, (x, w, b, conv_param)


def conv_backward_fast(dout, cache):
    """Backward of conv_forward_fast: dout (N, F, H', W') -> dx (N, C, H, W), dw (F, C, HH, WW), db (F,)."""
    x, w, b, conv_param = _cache(cache, 4, "conv_forward_fast", arrays=3)
    (dout,) = _common_float(dout=dout)
    dout = array_module(x).asarray(dout, dtype=x.dtype)
    dx, dw, db = F.conv2d_backward(dout, x, w, bias=True, **_conv_args(conv_param))
    return dx, dw, db


# ----------------------------------------------------------------------------- max pooling

def max_pool_forward_fast(x, pool_param):
    """Max pooling: x (N, C, H, W), pool_param {'pool_height', 'pool_width', 'stride'}
    -> out (N, C, H', W') with H' = 1 + (H - pool_height) // stride, and a cache for backward."""
    (x,) = _common_float(x=x)
    kernel, kw = _pool_args(pool_param)
    out, indices = F.max_pool2d(x, kernel, **kw)
    return out, (x.shape, indices, pool_param)


def max_pool_backward_fast(dout, cache):
    """Backward of max_pool_forward_fast: dout (N, C, H', W') -> dx (N, C, H, W)."""
    x_shape, indices, pool_param = _cache(cache, 3, "max_pool_forward_fast", arrays=0)
    kernel, kw = _pool_args(pool_param)
    (dout,) = _common_float(dout=dout)
    return F.max_pool2d_backward(dout, indices, x_shape, kernel, **kw)


# ----------------------------------------------------------------------------- relu

def relu_forward(x):
    """ReLU: x (any shape) -> out = max(x, 0), cache = x."""
    (x,) = _common_float(x=x)
    return F.relu(x), x


def relu_backward(dout, cache):
    """Backward of relu_forward: dout -> dx = dout where x > 0, else 0."""
    (x,) = _common_float(cache=cache)
    (dout,) = _common_float(dout=dout)
    dout = array_module(x).asarray(dout, dtype=x.dtype)
    return F.relu_backward(dout, x)          # x > 0 exactly where relu(x) > 0


# ----------------------------------------------------------------------------- sandwich layers

def conv_relu_forward(x, w, b, conv_param):
    """Convolution followed by ReLU (fused in one kernel) -> out (N, F, H', W'), cache."""
    x, w, b = _common_float(x=x, w=w, b=b)
    out = F.conv2d(x, w, b, activation="relu", **_conv_args(conv_param))
    return out, ((x, w, b, conv_param), out)


def conv_relu_backward(dout, cache):
    """Backward of conv_relu_forward -> dx, dw, db."""
    conv_cache, out = _cache(cache, 2, "conv_relu_forward")
    (dout,) = _common_float(dout=dout)
    dout = array_module(out).asarray(dout, dtype=out.dtype)
    return conv_backward_fast(F.relu_backward(dout, out), conv_cache)


def conv_relu_pool_forward(x, w, b, conv_param, pool_param):
    """Convolution, ReLU (fused), then max pooling -> out (N, F, H'', W''), cache."""
    a, conv_relu_cache = conv_relu_forward(x, w, b, conv_param)
    out, pool_cache = max_pool_forward_fast(a, pool_param)
    return out, (conv_relu_cache, pool_cache)


def conv_relu_pool_backward(dout, cache):
    """Backward of conv_relu_pool_forward -> dx, dw, db."""
    conv_relu_cache, pool_cache = _cache(cache, 2, "conv_relu_pool_forward")
    return conv_relu_backward(max_pool_backward_fast(dout, pool_cache), conv_relu_cache)


# ----------------------------------------------------------------------------- optim.py

def _config(config, defaults):
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict or None, got {type(config).__name__}")
    for k, v in defaults.items():
        config.setdefault(k, v)
    return config


def sgd(w, dw, config=None):
    """Vanilla SGD (the course's optim.sgd): w - learning_rate * dw. Returns (next_w, config)."""
    config = _config(config, {"learning_rate": 1e-2})
    return w - config["learning_rate"] * dw, config


def sgd_momentum(w, dw, config=None):
    """SGD with momentum: v = momentum * v - learning_rate * dw; next_w = w + v."""
    config = _config(config, {"learning_rate": 1e-2, "momentum": 0.9})
    v = config.get("velocity")
    v = (0 if v is None else config["momentum"] * v) - config["learning_rate"] * dw
    config["velocity"] = v
    return w + v, config


def rmsprop(w, dw, config=None):
    """RMSProp: cache = decay_rate * cache + (1 - decay_rate) * dw^2;
    next_w = w - learning_rate * dw / (sqrt(cache) + epsilon)."""
    config = _config(config, {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8})
    cache = config.get("cache")
    cache = (1 - config["decay_rate"]) * dw * dw + (0 if cache is None else config["decay_rate"] * cache)
    config["cache"] = cache
    return w - config["learning_rate"] * dw / (array_module(w).sqrt(cache) + config["epsilon"]), config


def adam(w, dw, config=None):
    """Adam with bias correction, as the course's optim.adam: t += 1; m, v moving averages;
    next_w = w - learning_rate * m_hat / (sqrt(v_hat) + epsilon)."""
    config = _config(config, {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "t": 0})
    xp = array_module(w)
    m = config.get("m")
    v = config.get("v")
    m = xp.zeros_like(w) if m is None else m
    v = xp.zeros_like(w) if v is None else v
    t = config["t"] + 1
    b1, b2 = config["beta1"], config["beta2"]
    m = b1 * m + (1 - b1) * dw
    v = b2 * v + (1 - b2) * dw * dw
    config.update(m=m, v=v, t=t)
    m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
    return w - config["learning_rate"] * m_hat / (xp.sqrt(v_hat) + config["epsilon"]), config
