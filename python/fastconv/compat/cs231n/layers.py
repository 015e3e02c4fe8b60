"""The course's layers.py functions that fastconv has kernels for: ReLU and batch normalization
(the flat (N, D) version and the spatial (N, C, H, W) one), with the course's bn_param contract.

    bn_param: {'mode': 'train' | 'test', 'eps': 1e-5, 'momentum': 0.9,
               'running_mean': (D,), 'running_var': (D,)}      (the last two start at zeros)

'train' normalizes with the batch statistics and stores new running statistics in bn_param as
running = momentum * running + (1 - momentum) * batch, with the biased batch variance (the
course's rule, not PyTorch's); 'test' normalizes with the running statistics.
"""

from __future__ import annotations

import math
import numbers

from ... import functional as F
from ...backend.arrays import array_module
from ...ops import batchnorm
from ._common import FastconvCache, as_dtype, check_cache, common_float, grad_dtype, kept_inputs, param_value

__all__ = [
    "relu_forward",
    "relu_backward",
    "batchnorm_forward",
    "batchnorm_backward",
    "batchnorm_backward_alt",
    "spatial_batchnorm_forward",
    "spatial_batchnorm_backward",
]


# ----------------------------------------------------------------------------- relu


def relu_forward(x):
    """ReLU: x (any shape) -> out = max(x, 0), cache. The cache is out itself, not the caller's x
    (out > 0 exactly where x > 0), so editing x afterwards changes nothing."""
    (x,) = common_float(x=x)
    out = F.relu(x)
    return out, out


def relu_backward(dout, cache):
    """Backward of relu_forward: dout -> dx = dout where the input was > 0, else 0. The cache may
    be relu_forward's or the course's (its x)."""
    (y,) = common_float(cache=cache)
    dout, dtype = grad_dtype(dout, y)
    dout, y = as_dtype(dtype, dout, y)
    return F.relu_backward(dout, y)


# ----------------------------------------------------------------------------- batch normalization


def _bn_param(bn_param):
    if not isinstance(bn_param, dict) or bn_param.get("mode") not in ("train", "test"):
        raise ValueError(
            "bn_param must be a dict with 'mode' set to 'train' or 'test' "
            f"(and optionally 'eps', 'momentum', 'running_mean', 'running_var'), got {bn_param!r}"
        )
    eps, momentum = param_value(bn_param.get("eps", 1e-5)), param_value(bn_param.get("momentum", 0.9))
    for name, v, ok in (("eps", eps, lambda v: v > 0), ("momentum", momentum, lambda v: 0 <= v <= 1)):
        if not (isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) and ok(v)):
            raise ValueError(
                f"bn_param['{name}'] must be a finite number {'> 0' if name == 'eps' else 'in [0, 1]'}, got {v!r}"
            )
    return bn_param["mode"], float(eps), float(momentum)


def _bn_forward(x, gamma, beta, bn_param, spatial):
    """Both course forward functions. The flat (N, D) x runs as an NHWC (N, 1, 1, D) batch, so
    the kernel reads it once along its rows."""
    mode, eps, momentum = _bn_param(bn_param)
    name = "spatial_batchnorm_forward" if spatial else "batchnorm_forward"
    x, gamma, beta = kept_inputs(x=x, gamma=gamma, beta=beta)
    if x.ndim != (4 if spatial else 2):
        raise ValueError(
            f"{name}: x must be {'4-D (N, C, H, W)' if spatial else '2-D (N, D)'}, got shape {tuple(x.shape)}"
        )
    D = x.shape[1]
    layout = "NCHW" if spatial else "NHWC"
    x4 = x if spatial else x.reshape(x.shape[0], 1, 1, D)
    xp = array_module(x)
    running_mean = bn_param.get("running_mean")
    running_var = bn_param.get("running_var")
    running_mean = xp.zeros(D, x.dtype) if running_mean is None else running_mean
    running_var = xp.zeros(D, x.dtype) if running_var is None else running_var
    for key, a in (("running_mean", running_mean), ("running_var", running_var)):
        if tuple(getattr(a, "shape", ())) != (D,):
            raise ValueError(
                f"bn_param['{key}'] must have shape ({D},) (one per feature of x {tuple(x.shape)}), "
                f"got {tuple(getattr(a, 'shape', ()))}"
            )
    if mode == "train":
        if x.size // D < 2:
            raise ValueError(f"{name} in 'train' mode needs more than one value per feature, got x {tuple(x.shape)}")
        y, mean, var, inv_std = batchnorm.batch_statistics(x4, gamma, beta, eps=eps, layout=layout)
        bn_param["running_mean"] = momentum * running_mean + (1 - momentum) * mean
        bn_param["running_var"] = momentum * running_var + (1 - momentum) * var
    else:
        rm, rv = as_dtype(x.dtype, running_mean, running_var)
        y, mean, inv_std = batchnorm.batch_norm(x4, gamma, beta, rm, rv, training=False, eps=eps, layout=layout)
        bn_param["running_mean"], bn_param["running_var"] = running_mean, running_var
    return y.reshape(x.shape), FastconvCache((x, gamma, mean, inv_std, mode), name, name.replace("forward", "backward"))


def _bn_backward(dout, cache, spatial):
    name = "spatial_batchnorm_forward" if spatial else "batchnorm_forward"
    if not isinstance(cache, FastconvCache):  # the course's caches are whatever its student chose
        raise TypeError(
            f"cache must be the cache returned by fastconv's {name}, got {type(cache).__name__}; "
            f"a cache of the course's {name} goes to the course's {name.replace('forward', 'backward')}"
        )
    x, gamma, mean, inv_std, mode = check_cache(cache, 5, name, arrays=4)
    dout, dtype = grad_dtype(dout, x)
    if tuple(dout.shape) != tuple(x.shape):
        raise ValueError(f"dout has shape {tuple(dout.shape)} but the forward's x had {tuple(x.shape)}")
    dout, x, gamma, mean, inv_std = as_dtype(dtype, dout, x, gamma, mean, inv_std)
    layout = "NCHW" if spatial else "NHWC"
    as4 = (lambda a: a) if spatial else (lambda a: a.reshape(a.shape[0], 1, 1, a.shape[1]))
    dx, dgamma, dbeta = batchnorm.batch_norm_backward(
        as4(dout), as4(x), gamma, mean, inv_std, training=mode == "train", layout=layout
    )
    return dx.reshape(x.shape), dgamma, dbeta


def batchnorm_forward(x, gamma, beta, bn_param):
    """Batch normalization of x (N, D) per feature, gamma and beta (D,), bn_param as in the module
    docstring (updated in place) -> out (N, D), cache."""
    return _bn_forward(x, gamma, beta, bn_param, spatial=False)


def batchnorm_backward(dout, cache):
    """Backward of batchnorm_forward: dout (N, D) -> dx (N, D), dgamma (D,), dbeta (D,)."""
    return _bn_backward(dout, cache, spatial=False)


batchnorm_backward_alt = batchnorm_backward


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    """Batch normalization of x (N, C, H, W) per channel over N, H, W; gamma and beta (C,);
    bn_param as in the module docstring (updated in place) -> out (N, C, H, W), cache."""
    return _bn_forward(x, gamma, beta, bn_param, spatial=True)


def spatial_batchnorm_backward(dout, cache):
    """Backward of spatial_batchnorm_forward -> dx (N, C, H, W), dgamma (C,), dbeta (C,)."""
    return _bn_backward(dout, cache, spatial=True)
