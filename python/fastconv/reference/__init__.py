"""float64 NumPy oracles for every op of the functional API (same names, same signatures).

Written to be obviously right, not fast: inputs are converted to float64 and to NCHW, the
padded input is cut into windows with ``sliding_window_view`` and contracted with ``einsum``,
and results are converted back to the caller's layout. Every result is a new float64 array.

    conv2d                  x (N,C,H,W), w (K,C,R,S), b (K,)       -> y (N,K,P,Q)
    conv2d_backward         gy (N,K,P,Q), x, w                     -> gx, gw, gb | None
    conv2d_backward_data    gy (N,K,P,Q), w, x_shape               -> gx (N,C,H,W)
    conv2d_backward_weight  gy (N,K,P,Q), x, w_shape               -> gw (K,C,R,S), gb | None
    max_pool2d              x (N,C,H,W)                            -> y (N,C,P,Q), indices int64
    max_pool2d_backward     gy (N,C,P,Q), indices, x_shape         -> gx (N,C,H,W)
    avg_pool2d(_backward), global_avg_pool2d / global_max_pool2d (-> (N, C)) and their _backward
    relu / relu_backward    elementwise (also sigmoid, tanh, leaky_relu and their _backward,
                            which take the forward's output y)

(with layout="NHWC": x (N,H,W,C), w (R,S,C,K), y (N,P,Q,K)). This package imports only NumPy
and the shared shape helpers, never the compiled extension; one module per kernel family.
"""

from __future__ import annotations

from .batchnorm import batch_norm, batch_norm_backward
from .conv import conv2d, conv2d_backward, conv2d_backward_data, conv2d_backward_weight
from .eltwise import (
    leaky_relu,
    leaky_relu_backward,
    relu,
    relu_backward,
    sigmoid,
    sigmoid_backward,
    tanh,
    tanh_backward,
)
from .linear import linear, linear_backward, linear_backward_data, linear_backward_weight
from .pool2d import (
    avg_pool2d,
    avg_pool2d_backward,
    global_avg_pool2d,
    global_avg_pool2d_backward,
    global_max_pool2d,
    global_max_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
)

__all__ = [
    "conv2d",
    "conv2d_backward",
    "conv2d_backward_data",
    "conv2d_backward_weight",
    "max_pool2d",
    "max_pool2d_backward",
    "relu",
    "relu_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "global_avg_pool2d",
    "global_avg_pool2d_backward",
    "global_max_pool2d",
    "global_max_pool2d_backward",
    "batch_norm",
    "batch_norm_backward",
    "sigmoid",
    "sigmoid_backward",
    "tanh",
    "tanh_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "linear",
    "linear_backward",
    "linear_backward_data",
    "linear_backward_weight",
]
