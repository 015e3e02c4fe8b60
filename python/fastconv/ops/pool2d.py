"""Max, average and global average / max pooling with their backward passes (docs/api.md), on
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

import numpy as np

from .._typing import Array, IntPair, Padding, Shape
from ._checks import (
    INDEX_DTYPES,
    axes,
    backend_for,
    cached,
    canonical,
    check_extents,
    check_grad_y,
    check_ndim,
    flag,
    float_dtype,
    shape4,
)
from ._shapes import check_layout, pair, window_output
from ._spec import Pool2dSpec

__all__ = [
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "global_avg_pool2d",
    "global_avg_pool2d_backward",
    "global_max_pool2d",
    "global_max_pool2d_backward",
]


@cached
def pool_spec(
    x_shape: Shape, kernel_size: IntPair, stride: IntPair | None, padding: Padding, layout: str
) -> Pool2dSpec:
    if layout == "NCHW":
        N, C, H, W = x_shape
    else:
        N, H, W, C = x_shape
    R, S = pair(kernel_size, "kernel_size")
    sh, sw = (R, S) if stride is None else pair(stride, "stride")
    (P, Q), (pt, pb, pl, pr) = window_output((H, W), (R, S), (sh, sw), padding)
    if max(pt, pb) >= R or max(pl, pr) >= S:
        raise ValueError(
            f"padding {(pt, pb, pl, pr)} must be smaller than kernel_size {(R, S)} on every side "
            f"(a window made only of padding has no input cell)"
        )
    check_extents(
        ("padding", "padded input", H + pt + pb),
        ("padding", "padded input", W + pl + pr),
        ("kernel_size", "kernel", R),
        ("kernel_size", "kernel", S),
    )
    if P < 1 or Q < 1:
        raise ValueError(
            f"output size {P}x{Q} < 1: x {tuple(x_shape)}, kernel_size {(R, S)}, stride {(sh, sw)}, "
            f"padding {(pt, pb, pl, pr)}"
        )
    sh, sw = canonical(P, sh), canonical(Q, sw)
    return Pool2dSpec(N, C, H, W, R, S, P, Q, (sh, sw), (pt, pb, pl, pr), layout)


# ----------------------------------------------------------------------------- pooling


def max_pool2d(
    x: Array, kernel_size: IntPair = 2, *, stride: IntPair | None = None, padding: Padding = 0, layout: str = "NCHW"
) -> tuple[Array, Array]:
    """Max pooling -> (y, indices). indices (int64, y's shape) holds the flat h*W+w of each
    winner inside its (n, c) plane; ties go to the first element, padded cells never win."""
    layout = check_layout(layout)
    be = backend_for(x=x)
    float_dtype("x", x)
    check_ndim("x", x, 4, axes(layout, "x"))
    spec = pool_spec(x.shape, kernel_size, stride, padding, layout)
    return be.max_pool2d_forward(spec, be.contiguous(x))


def max_pool2d_backward(
    grad_y: Array,
    indices: Array,
    x_shape: Shape,
    kernel_size: IntPair = 2,
    *,
    stride: IntPair | None = None,
    padding: Padding = 0,
    layout: str = "NCHW",
) -> Array:
    """Gradient of max_pool2d: scatters grad_y to the winners recorded in indices."""
    layout = check_layout(layout)
    be = backend_for(grad_y=grad_y, indices=indices)
    float_dtype("grad_y", grad_y)
    if indices.dtype not in INDEX_DTYPES:
        raise TypeError(f"indices has dtype {indices.dtype}; expected int32 or int64 (from max_pool2d)")
    spec = pool_spec(shape4("x_shape", x_shape), kernel_size, stride, padding, layout)
    check_grad_y(grad_y, spec.y_shape, axes(layout, "pool_y"))
    if tuple(indices.shape) != spec.y_shape:
        raise ValueError(f"indices has shape {tuple(indices.shape)} but grad_y has {tuple(grad_y.shape)}")
    idx = be.contiguous(indices)
    if idx.dtype != np.int64:
        idx = idx.astype(np.int64)
    return be.max_pool2d_backward(spec, be.contiguous(grad_y), idx)


def avg_pool2d(
    x: Array,
    kernel_size: IntPair = 2,
    *,
    stride: IntPair | None = None,
    padding: Padding = 0,
    layout: str = "NCHW",
    count_include_pad: bool = True,
) -> Array:
    """The mean of each window; stride=None means stride = kernel_size."""
    layout = check_layout(layout)
    be = backend_for(x=x)
    float_dtype("x", x)
    check_ndim("x", x, 4, axes(layout, "x"))
    include_pad = flag("count_include_pad", count_include_pad)
    spec = pool_spec(x.shape, kernel_size, stride, padding, layout)
    return be.avg_pool2d_forward(spec, be.contiguous(x), include_pad)


def avg_pool2d_backward(
    grad_y: Array,
    x_shape: Shape,
    kernel_size: IntPair = 2,
    *,
    stride: IntPair | None = None,
    padding: Padding = 0,
    layout: str = "NCHW",
    count_include_pad: bool = True,
) -> Array:
    """Gradient of avg_pool2d: each window's grad_y / count spread over its cells."""
    layout = check_layout(layout)
    be = backend_for(grad_y=grad_y)
    float_dtype("grad_y", grad_y)
    include_pad = flag("count_include_pad", count_include_pad)
    spec = pool_spec(shape4("x_shape", x_shape), kernel_size, stride, padding, layout)
    check_grad_y(grad_y, spec.y_shape, axes(layout, "pool_y"))
    return be.avg_pool2d_backward(spec, be.contiguous(grad_y), include_pad)


def _hw(shape: Shape, layout: str) -> tuple[int, int]:
    return (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])


def _pooled4(shape: Shape, layout: str) -> Shape:
    """The (N, C) result's 4-D shape as pooling returns it: (N, C, 1, 1) or (N, 1, 1, C)."""
    N, C = shape
    return (N, C, 1, 1) if layout == "NCHW" else (N, 1, 1, C)


def _nc(a: Array) -> Array:
    return a.reshape(a.shape[0], -1)


def _check_nc_grad(grad_y: Array, x_shape: Shape, layout: str) -> None:
    N, C = (x_shape[0], x_shape[1]) if layout == "NCHW" else (x_shape[0], x_shape[3])
    if grad_y.ndim != 2 or tuple(grad_y.shape) != (N, C):
        raise ValueError(
            f"grad_y must have shape (N, C) = {(N, C)} for x_shape {tuple(x_shape)} ({layout}), "
            f"got {tuple(grad_y.shape)}"
        )


def global_avg_pool2d(x: Array, *, layout: str = "NCHW") -> Array:
    """The mean over H and W of every (n, c): x (N, C, H, W) or (N, H, W, C) -> (N, C)."""
    layout = check_layout(layout)
    backend_for(x=x)
    check_ndim("x", x, 4, axes(layout, "x"))
    return _nc(avg_pool2d(x, _hw(x.shape, layout), layout=layout))


def global_avg_pool2d_backward(grad_y: Array, x_shape: Shape, *, layout: str = "NCHW") -> Array:
    """grad_y (N, C) / (H W) on every cell of its plane."""
    layout = check_layout(layout)
    x_shape = shape4("x_shape", x_shape)
    backend_for(grad_y=grad_y)
    _check_nc_grad(grad_y, x_shape, layout)
    return avg_pool2d_backward(
        grad_y.reshape(_pooled4(grad_y.shape, layout)), x_shape, _hw(x_shape, layout), layout=layout
    )


def global_max_pool2d(x: Array, *, layout: str = "NCHW") -> tuple[Array, Array]:
    """(max over H and W of every (n, c), the flat index h * W + w of the first maximum): (N, C) each."""
    layout = check_layout(layout)
    backend_for(x=x)
    check_ndim("x", x, 4, axes(layout, "x"))
    y, indices = max_pool2d(x, _hw(x.shape, layout), layout=layout)
    return _nc(y), _nc(indices)


def global_max_pool2d_backward(grad_y: Array, indices: Array, x_shape: Shape, *, layout: str = "NCHW") -> Array:
    """grad_y (N, C) to the cell of each plane that indices names."""
    layout = check_layout(layout)
    x_shape = shape4("x_shape", x_shape)
    backend_for(grad_y=grad_y, indices=indices)
    _check_nc_grad(grad_y, x_shape, layout)
    if tuple(indices.shape) != tuple(grad_y.shape):
        raise ValueError(f"indices has shape {tuple(indices.shape)} but grad_y has {tuple(grad_y.shape)}")
    pooled = _pooled4(grad_y.shape, layout)
    return max_pool2d_backward(
        grad_y.reshape(pooled), indices.reshape(pooled), x_shape, _hw(x_shape, layout), layout=layout
    )
