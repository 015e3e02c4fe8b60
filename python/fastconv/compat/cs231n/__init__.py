"""The cs231n layer functions (fast_layers.py, layers.py, layer_utils.py, optim.py) on fastconv
kernels. Two ways in:

    import fastconv.compat.cs231n as fast
    fast.install()        # the course's own modules (classifiers/cnn.py included) use fastconv
                          # (stand-ins that %autoreload can rewrite; fast.uninstall() undoes it)

    from fastconv.compat.cs231n import *     # or: these names in your own file

Contract (the course's):
    conv_forward_fast(x, w, b, conv_param) -> out, cache   (also named conv_forward_strides / _im2col)
        x (N, C, H, W), w (F, C, HH, WW), b (F,)
        conv_param: {'stride': int, 'pad': int} (zero padding on every side)
        out (N, F, H', W'), H' = 1 + (H + 2 * pad - HH) // stride, W' likewise
    conv_backward_fast(dout, cache) -> dx, dw, db          (shapes of x, w, b)
    max_pool_forward_fast(x, pool_param) -> out, cache
        pool_param: {'pool_height': int, 'pool_width': int, 'stride': int}
        out (N, C, H', W'), H' = 1 + (H - pool_height) // stride
    max_pool_backward_fast(dout, cache) -> dx
    max_pool_forward_reshape / max_pool_backward_reshape: the same for windows that tile x
    relu_forward(x) -> out, cache;  relu_backward(dout, cache) -> dx
    batchnorm_forward(x, gamma, beta, bn_param) -> out, cache      x (N, D), gamma, beta (D,)
        bn_param: {'mode': 'train'|'test', 'eps': 1e-5, 'momentum': 0.9, 'running_mean',
        'running_var'}; 'train' stores the updated running statistics in bn_param
    batchnorm_backward(dout, cache) -> dx, dgamma, dbeta         (batchnorm_backward_alt too)
    spatial_batchnorm_forward / spatial_batchnorm_backward: x (N, C, H, W), per channel
    conv_relu_forward / conv_relu_backward, conv_relu_pool_forward / conv_relu_pool_backward
    sgd / sgd_momentum / rmsprop / adam(w, dw, config=None) -> next_w, config

Differences from the course code, none of which changes a gradient check:
- The caller's dtype is kept: float64 stays float64 (numeric gradient checks still pass),
  float32 stays float32 (the fast path). Mixed inputs use their common type, integers become
  float64, and a backward pass returns the common type of dout and the layer's arrays, as
  NumPy would (a float64 dout on a float32 layer gives float64 gradients).
- Caches hold private copies of the inputs: editing x in place after forward does not change
  what backward computes.
- The conv, max_pool_forward_fast and batchnorm caches are fastconv's own: a course backward
  function handed one (conv_backward_naive / _fast, max_pool_backward_naive / _fast, your
  batchnorm_backward) stops with a message naming the mix-up; cache[:] shows the items. The
  sandwich, relu and max_pool_forward_reshape caches have the course's shapes, and fastconv's
  conv, relu and pooling backward functions also take the course's caches (the naive ones too).
- Sizes need not divide evenly (the course's im2col asserts (H + 2 pad - HH) % stride == 0;
  here the output size is floored like the naive version).
- In max pooling backward a tie sends the gradient to the first maximum in row-major order (the
  course's reshape path splits it between the tied elements).
- batchnorm in 'train' mode needs more than one value per feature (N > 1 for the flat version),
  as PyTorch does; the course's code would return beta.
- CuPy arrays work as well (on the CUDA kernels).
"""

from __future__ import annotations

from .fast_layers import *  # noqa: F403
from .fast_layers import __all__ as _fast_layers
from .install import install, uninstall
from .layer_utils import *  # noqa: F403
from .layer_utils import __all__ as _layer_utils
from .layers import *  # noqa: F403
from .layers import __all__ as _layers
from .optim import *  # noqa: F403
from .optim import __all__ as _optim

__all__ = [*_fast_layers, *_layers, *_layer_utils, *_optim, "install", "uninstall"]
