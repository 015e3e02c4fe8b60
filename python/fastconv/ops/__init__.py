"""The functional API (docs/api.md), one module per kernel family: conv.py (conv2d and its
backward passes), pooling.py (max, average, global), eltwise.py (relu, sigmoid, tanh,
leaky_relu), normalization.py (batch norm), linear.py (dense); softmax.py holds the NumPy/CuPy
softmax helpers the Softmax layer and the losses share. _checks.py has the argument checks they
share, _shapes.py the padding and output-size rules, _spec.py the specs handed to a backend.

Every public function checks its arguments before any pointer reaches C++: wrong types, dtypes,
ranks, shapes, channel counts, devices and hyper-parameters raise TypeError/ValueError naming
the argument and the shapes. Non-contiguous inputs are copied to contiguous ones. NumPy arrays
run on the CPU kernels (fastconv._cpu), CuPy arrays on the CUDA kernels. fastconv.functional
and the fastconv package re-export the public names.
"""

from __future__ import annotations

from .batchnorm import batch_norm, batch_norm_backward, fold_batch_norm
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
    "linear",
    "linear_backward",
    "linear_backward_data",
    "linear_backward_weight",
    "sigmoid",
    "sigmoid_backward",
    "tanh",
    "tanh_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "batch_norm",
    "batch_norm_backward",
    "fold_batch_norm",
    "avg_pool2d",
    "avg_pool2d_backward",
    "global_avg_pool2d",
    "global_avg_pool2d_backward",
    "global_max_pool2d",
    "global_max_pool2d_backward",
]
