"""The course's layer_utils.py sandwich layers that involve a convolution, with the conv and
the ReLU fused in one kernel."""

from __future__ import annotations

from ... import functional as F
from ._common import check_cache, kept_inputs
from .fast_layers import conv_args, conv_backward_fast, conv_cache, max_pool_backward_fast, max_pool_forward_fast
from .layers import relu_backward

__all__ = ["conv_relu_forward", "conv_relu_backward", "conv_relu_pool_forward", "conv_relu_pool_backward"]


def conv_relu_forward(x, w, b, conv_param):
    """Convolution followed by ReLU (fused in one kernel) -> out (N, F, H', W'), cache
    (conv_cache, relu_cache) as the course's; the relu cache is out."""
    x, w, b = kept_inputs(x=x, w=w, b=b)
    out = F.conv2d(x, w, b, activation="relu", **conv_args(conv_param))
    return out, (conv_cache(x, w, b, conv_param), out)


def conv_relu_backward(dout, cache):
    """Backward of conv_relu_forward -> dx, dw, db."""
    conv_cache, out = check_cache(cache, 2, "conv_relu_forward")
    return conv_backward_fast(relu_backward(dout, out), conv_cache)


def conv_relu_pool_forward(x, w, b, conv_param, pool_param):
    """Convolution, ReLU (fused), then max pooling -> out (N, F, H'', W''), cache
    (conv_cache, relu_cache, pool_cache) as the course's."""
    a, (conv_cache, relu_cache) = conv_relu_forward(x, w, b, conv_param)
    out, pool_cache = max_pool_forward_fast(a, pool_param)
    return out, (conv_cache, relu_cache, pool_cache)


def conv_relu_pool_backward(dout, cache):
    """Backward of conv_relu_pool_forward -> dx, dw, db."""
    conv_cache, relu_cache, pool_cache = check_cache(cache, 3, "conv_relu_pool_forward")
    return conv_relu_backward(max_pool_backward_fast(dout, pool_cache), (conv_cache, relu_cache))
