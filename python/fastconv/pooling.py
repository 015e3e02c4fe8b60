"""Average pooling and global average / max pooling with their backward passes (docs/api.md), on
fastconv's kernels: csrc/cpu/avgpool*.{inl,cpp} and the max-pooling kernels for NumPy arrays,
csrc/cuda/pool2d/ for CuPy arrays.

    y = fc.avg_pool2d(x, 2)                               # like torch.nn.functional.avg_pool2d
    y = fc.avg_pool2d(x, 3, stride=2, padding="same", count_include_pad=False)   # Keras' 'same'
    y = fc.global_avg_pool2d(x, layout="NHWC")            # (N, C): Keras' GlobalAveragePooling2D
    y, indices = fc.global_max_pool2d(x)                  # (N, C) each, indices as in max_pool2d

count_include_pad=True (PyTorch's default) divides every window by R*S, padded cells counting as
zeros; False divides by the cells of the window inside x (Keras' average pooling with 'same').
"""
from __future__ import annotations

from . import functional as F
from ._shapes import check_layout

__all__ = ["avg_pool2d", "avg_pool2d_backward", "global_avg_pool2d", "global_avg_pool2d_backward",
           "global_max_pool2d", "global_max_pool2d_backward"]


def avg_pool2d(x, kernel_size=2, *, stride=None, padding=0, layout="NCHW", count_include_pad=True):
    """The mean of each window; stride=None means stride = kernel_size."""
    layout = check_layout(layout)
    be = F._backend(x=x)
    F._float_dtype("x", x)
    F._check_ndim("x", x, 4, F._axes(layout, "x"))
    include_pad = F._flag("count_include_pad", count_include_pad)
    spec = F._pool_spec(x.shape, kernel_size, stride, padding, layout)
    return be.avg_pool2d_forward(spec, be.contiguous(x), include_pad)


def avg_pool2d_backward(grad_y, x_shape, kernel_size=2, *, stride=None, padding=0, layout="NCHW",
                        count_include_pad=True):
    """Gradient of avg_pool2d: each window's grad_y / count spread over its cells."""
    layout = check_layout(layout)
    be = F._backend(grad_y=grad_y)
    F._float_dtype("grad_y", grad_y)
    include_pad = F._flag("count_include_pad", count_include_pad)
    spec = F._pool_spec(F._shape4("x_shape", x_shape), kernel_size, stride, padding, layout)
    F._check_grad_y(grad_y, spec.y_shape, F._axes(layout, "pool_y"))
    return be.avg_pool2d_backward(spec, be.contiguous(grad_y), include_pad)


def _hw(shape, layout):
    return (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])


def _pooled4(shape, layout):
    """The (N, C) result's 4-D shape as pooling returns it: (N, C, 1, 1) or (N, 1, 1, C)."""
    N, C = shape
    return (N, C, 1, 1) if layout == "NCHW" else (N, 1, 1, C)


def _nc(a):
    return a.reshape(a.shape[0], -1)


def _check_nc_grad(grad_y, x_shape, layout):
    N, C = (x_shape[0], x_shape[1]) if layout == "NCHW" else (x_shape[0], x_shape[3])
    if grad_y.ndim != 2 or tuple(grad_y.shape) != (N, C):
        raise ValueError(f"grad_y must have shape (N, C) = {(N, C)} for x_shape {tuple(x_shape)} ({layout}), "
                         f"got {tuple(grad_y.shape)}")


def global_avg_pool2d(x, *, layout="NCHW"):
    """The mean over H and W of every (n, c): x (N, C, H, W) or (N, H, W, C) -> (N, C)."""
    layout = check_layout(layout)
    F._backend(x=x)
    F._check_ndim("x", x, 4, F._axes(layout, "x"))
    return _nc(avg_pool2d(x, _hw(x.shape, layout), layout=layout))


def global_avg_pool2d_backward(grad_y, x_shape, *, layout="NCHW"):
    """grad_y (N, C) / (H W) on every cell of its plane."""
    layout = check_layout(layout)
    x_shape = F._shape4("x_shape", x_shape)
    F._backend(grad_y=grad_y)
    _check_nc_grad(grad_y, x_shape, layout)
    return avg_pool2d_backward(grad_y.reshape(_pooled4(grad_y.shape, layout)), x_shape, _hw(x_shape, layout),
                               layout=layout)


def global_max_pool2d(x, *, layout="NCHW"):
    """(max over H and W of every (n, c), the flat index h * W + w of the first maximum): (N, C) each."""
    layout = check_layout(layout)
    F._backend(x=x)
    F._check_ndim("x", x, 4, F._axes(layout, "x"))
    y, indices = F.max_pool2d(x, _hw(x.shape, layout), layout=layout)
    return _nc(y), _nc(indices)


def global_max_pool2d_backward(grad_y, indices, x_shape, *, layout="NCHW"):
    """grad_y (N, C) to the cell of each plane that indices names."""
    layout = check_layout(layout)
    x_shape = F._shape4("x_shape", x_shape)
    F._backend(grad_y=grad_y, indices=indices)
    _check_nc_grad(grad_y, x_shape, layout)
    if tuple(indices.shape) != tuple(grad_y.shape):
        raise ValueError(f"indices has shape {tuple(indices.shape)} but grad_y has {tuple(grad_y.shape)}")
    shape4 = _pooled4(grad_y.shape, layout)
    return F.max_pool2d_backward(grad_y.reshape(shape4), indices.reshape(shape4), x_shape, _hw(x_shape, layout),
                                 layout=layout)
