"""The course's fast_layers.py (convolution and max pooling) on fastconv's kernels.

The course's aliases name the same functions here, as conv_forward_fast = conv_forward_strides
does there: conv_forward_strides / conv_forward_im2col are conv_forward_fast, and their backward
functions conv_backward_fast. max_pool_forward_reshape keeps the course's reshape contract
(square windows that tile the input) and its cache.
"""

from __future__ import annotations

from ... import functional as F
from ._common import FastconvCache, as_dtype, check_cache, grad_dtype, kept_inputs, param_value

__all__ = [
    "conv_forward_fast",
    "conv_backward_fast",
    "conv_forward_strides",
    "conv_backward_strides",
    "conv_forward_im2col",
    "conv_backward_im2col",
    "max_pool_forward_fast",
    "max_pool_backward_fast",
    "max_pool_forward_reshape",
    "max_pool_backward_reshape",
]

CONV_BACKWARD = (
    "conv_backward_fast (a whole conv_relu / conv_relu_pool cache: conv_relu_backward / conv_relu_pool_backward)"
)


def conv_args(conv_param):
    try:
        stride, pad = conv_param["stride"], conv_param["pad"]
    except (KeyError, TypeError):
        raise ValueError(f"conv_param must be a dict with keys 'stride' and 'pad', got {conv_param!r}") from None
    return dict(stride=param_value(stride), padding=param_value(pad), layout="NCHW")


def _pool_args(pool_param):
    try:
        ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    except (KeyError, TypeError):
        raise ValueError(
            f"pool_param must be a dict with keys 'pool_height', 'pool_width' and 'stride', got {pool_param!r}"
        ) from None
    return (param_value(ph), param_value(pw)), dict(stride=param_value(stride), padding=0, layout="NCHW")


def conv_cache(x, w, b, conv_param):
    """conv_forward_fast's cache: the inputs (private copies), no im2col columns."""
    return FastconvCache((x, w, b, dict(conv_param)), "conv_forward_fast", CONV_BACKWARD)


# ----------------------------------------------------------------------------- convolution


def conv_forward_fast(x, w, b, conv_param):
    """Convolution: x (N, C, H, W), w (F, C, HH, WW), b (F,), conv_param {'stride', 'pad'}
    -> out (N, F, H', W') with H' = 1 + (H + 2 pad - HH) // stride, and a cache for backward.

    The cache holds private copies of the inputs and no im2col columns; the course's
    conv_backward_* functions, handed it, stop with a message naming the mix-up."""
    x, w, b = kept_inputs(x=x, w=w, b=b)
    out = F.conv2d(x, w, b, **conv_args(conv_param))
    return out, conv_cache(x, w, b, conv_param)


def conv_backward_fast(dout, cache):
    """Backward of conv_forward_fast: dout (N, F, H', W') -> dx (N, C, H, W), dw (F, C, HH, WW), db (F,).
    Also takes the caches of the course's conv_forward_naive (4 items) and conv_forward_* (5)."""
    if isinstance(cache, tuple) and not isinstance(cache, FastconvCache) and len(cache) == 5:
        cache = cache[:4]  # the course's columns: not needed
    x, w, _, conv_param = check_cache(cache, 4, "conv_forward_fast", arrays=3)
    dout, dtype = grad_dtype(dout, x, w)
    dout, x, w = as_dtype(dtype, dout, x, w)
    return F.conv2d_backward(dout, x, w, bias=True, **conv_args(conv_param))


conv_forward_strides = conv_forward_im2col = conv_forward_fast
conv_backward_strides = conv_backward_im2col = conv_backward_fast


# ----------------------------------------------------------------------------- max pooling


def max_pool_forward_fast(x, pool_param):
    """Max pooling: x (N, C, H, W), pool_param {'pool_height', 'pool_width', 'stride'}
    -> out (N, C, H', W') with H' = 1 + (H - pool_height) // stride, and a cache for backward.
    The cache keeps the winners' indices, not x; the course's max_pool_backward_* functions,
    handed it, stop with a message naming the mix-up."""
    (x,) = kept_inputs(x=x)
    kernel, kw = _pool_args(pool_param)
    out, indices = F.max_pool2d(x, kernel, **kw)
    return out, FastconvCache(
        (x.shape, x.dtype, indices, dict(pool_param)), "max_pool_forward_fast", "max_pool_backward_fast"
    )


def max_pool_backward_fast(dout, cache):
    """Backward of max_pool_forward_fast: dout (N, C, H', W') -> dx (N, C, H, W). Also takes the
    caches of the course's max_pool_forward_fast (('reshape', ...) and ('im2col', ...)) and
    max_pool_forward_naive ((x, pool_param))."""
    if isinstance(cache, FastconvCache):
        x_shape, x_dtype, indices, pool_param = check_cache(cache, 4, "max_pool_forward_fast")
        dout, dtype = grad_dtype(dout, x_dtype)
        kernel, kw = _pool_args(pool_param)
        return F.max_pool2d_backward(dout.astype(dtype, copy=False), indices, x_shape, kernel, **kw)
    first, second = check_cache(cache, 2, "max_pool_forward_fast")
    if isinstance(first, str):
        if first == "reshape":
            return max_pool_backward_reshape(dout, second)
        if first == "im2col":
            x, _, _, pool_param = check_cache(second, 4, "the course's max_pool_forward_im2col", arrays=1)
            return _recomputed_pool_backward(dout, x, *_pool_args(pool_param))
        raise TypeError(f"cache must be the cache returned by max_pool_forward_fast, got method {first!r}")
    if hasattr(first, "shape") and isinstance(second, dict):
        return _recomputed_pool_backward(dout, first, *_pool_args(second))
    raise TypeError(
        "cache must be the cache returned by max_pool_forward_fast (or the course's "
        f"max_pool_forward_naive: (x, pool_param)), got a tuple of {type(first).__name__} "
        f"and {type(second).__name__}"
    )


def _recomputed_pool_backward(dout, x, kernel, kw):
    """dx from x itself (a course cache holds x, not fastconv's indices): the winners again, then
    the scatter."""
    dout, dtype = grad_dtype(dout, x)
    (x,) = kept_inputs(x=x)
    _, indices = F.max_pool2d(x, kernel, **kw)
    return F.max_pool2d_backward(dout.astype(dtype, copy=False), indices, x.shape, kernel, **kw)


def max_pool_forward_reshape(x, pool_param):
    """The course's reshape max pooling: square windows with stride equal to the window that tile
    x exactly -> out, cache (x, x_reshaped, out) as the course's, so either project's
    max_pool_backward_reshape takes it."""
    (x,) = kept_inputs(x=x)
    kernel, kw = _pool_args(pool_param)
    ph, pw = kernel
    if x.ndim != 4:
        raise ValueError(f"x must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
    N, C, H, W = x.shape
    if not (ph == pw == kw["stride"] and H % ph == 0 and W % pw == 0):
        raise ValueError(
            "max_pool_forward_reshape needs pool_height == pool_width == stride dividing H and W, "
            f"got pool_param {pool_param!r} for x {tuple(x.shape)}; use max_pool_forward_fast"
        )
    out, _ = F.max_pool2d(x, kernel, **kw)
    return out, (x, x.reshape(N, C, H // ph, ph, W // pw, pw), out)


def max_pool_backward_reshape(dout, cache):
    """Backward of max_pool_forward_reshape -> dx (a tie sends the gradient to the first maximum)."""
    x, _, out = check_cache(cache, 3, "max_pool_forward_reshape", arrays=3)
    ph = x.shape[2] // out.shape[2]
    return _recomputed_pool_backward(dout, x, (ph, ph), dict(stride=ph, padding=0, layout="NCHW"))
