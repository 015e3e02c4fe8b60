"""float64 oracles of max, average and global pooling and their backward passes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._typing import IntPair, Padding, Shape
from ..ops._shapes import check_layout, pair, resolve_padding
from .common import F64, Pairs, as_f64, nchw_shape, pad_nchw, window_starts, window_view, x_from_nchw, x_to_nchw


def pool_geometry(
    hw: Sequence[int], kernel_size: IntPair, stride: IntPair | None, padding: Padding
) -> tuple[Pairs, Pairs, tuple[int, int, int, int], Pairs]:
    kernel = pair(kernel_size, "kernel_size")
    step = kernel if stride is None else pair(stride, "stride")
    pads = resolve_padding(padding, hw, kernel, step)
    P = window_starts(hw[0], pads[0], pads[1], kernel[0], step[0])
    Q = window_starts(hw[1], pads[2], pads[3], kernel[1], step[1])
    if P < 1 or Q < 1:
        raise ValueError(f"pooled size {P}x{Q} < 1 for input {hw}, kernel_size {kernel}, stride {step}, padding {pads}")
    return kernel, step, pads, (P, Q)


def max_pool2d(
    x: ArrayLike, kernel_size: IntPair = 2, *, stride: IntPair | None = None, padding: Padding = 0, layout: str = "NCHW"
) -> tuple[F64, NDArray[np.int64]]:
    """-> (y, indices int64): max over each window (NaN wins, first max in row-major order wins,
    padded cells never win); indices[n,c,p,q] = h*W + w of the winner in the (n,c) plane."""
    layout = check_layout(layout)
    x = x_to_nchw(as_f64(x, "x"), layout)
    N, C, H, W = x.shape
    (kh, kw), stride, pads, (P, Q) = pool_geometry((H, W), kernel_size, stride, padding)
    top, left = pads[0], pads[2]

    vals = window_view(pad_nchw(x, pads, -np.inf), (kh, kw), stride, (1, 1), (P, Q))
    valid = window_view(pad_nchw(np.ones((1, 1, H, W), bool), pads, False), (kh, kw), stride, (1, 1), (P, Q))
    vals = vals.reshape(N, C, P, Q, kh * kw)
    valid = valid.reshape(1, 1, P, Q, kh * kw)
    if not valid.any(axis=-1).all():
        raise ValueError(f"padding {pads} leaves a pooling window with no input cell")

    # np.argmax returns the first NaN if there is one, else the first maximum. It can only pick a
    # padded cell (-inf) when every real cell of the window is -inf too: take the first real one.
    j = np.argmax(vals, axis=-1)
    picked_valid = np.take_along_axis(np.broadcast_to(valid, vals.shape), j[..., None], -1)[..., 0]
    j = np.where(picked_valid, j, np.argmax(valid, axis=-1))
    y = np.take_along_axis(vals, j[..., None], -1)[..., 0]

    h = np.arange(P)[:, None] * stride[0] - top + j // kw  # (N,C,P,Q) input row
    w = np.arange(Q)[None, :] * stride[1] - left + j % kw  # input column
    indices = (h * W + w).astype(np.int64)
    return x_from_nchw(y, layout), x_from_nchw(indices, layout)


def max_pool2d_backward(
    grad_y: ArrayLike,
    indices: ArrayLike,
    x_shape: Shape,
    kernel_size: IntPair = 2,
    *,
    stride: IntPair | None = None,
    padding: Padding = 0,
    layout: str = "NCHW",
) -> F64:
    """gx[n,c].flat[indices[n,c,p,q]] += gy[n,c,p,q] (overlapping windows accumulate)."""
    layout = check_layout(layout)
    N, C, H, W = nchw_shape(x_shape, layout)
    _, _, _, (P, Q) = pool_geometry((H, W), kernel_size, stride, padding)
    gy = x_to_nchw(as_f64(grad_y, "grad_y"), layout)
    idx = x_to_nchw(np.asarray(indices), layout)
    if gy.shape != (N, C, P, Q) or idx.shape != (N, C, P, Q):
        raise ValueError(f"grad_y and indices must have shape {(N, C, P, Q)} (NCHW), got {gy.shape} and {idx.shape}")
    if not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"indices must be an integer array, got {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= H * W):
        raise ValueError(f"indices must lie in [0, {H * W}), got [{idx.min()}, {idx.max()}]")
    gx = np.zeros((N * C, H * W))
    rows = np.arange(N * C)[:, None]
    np.add.at(gx, (rows, idx.reshape(N * C, P * Q)), gy.reshape(N * C, P * Q))
    return x_from_nchw(gx.reshape(N, C, H, W), layout)


def avg_pool2d(
    x: ArrayLike,
    kernel_size: IntPair = 2,
    *,
    stride: IntPair | None = None,
    padding: Padding = 0,
    layout: str = "NCHW",
    count_include_pad: bool = True,
) -> F64:
    """The mean of each window: sum / (R*S) with count_include_pad (padded cells count as 0),
    else sum / (cells of the window inside x)."""
    layout = check_layout(layout)
    x = x_to_nchw(as_f64(x, "x"), layout)
    N, C, H, W = x.shape
    (kh, kw), stride, pads, (P, Q) = pool_geometry((H, W), kernel_size, stride, padding)
    sums = window_view(pad_nchw(x, pads), (kh, kw), stride, (1, 1), (P, Q)).sum(axis=(-2, -1))
    return x_from_nchw(sums / avg_counts((H, W), (kh, kw), stride, pads, (P, Q), count_include_pad), layout)


def avg_counts(
    hw: Sequence[int],
    khw: Sequence[int],
    stride: Sequence[int],
    pads: Sequence[int],
    pq: Sequence[int],
    count_include_pad: bool,
) -> float | F64:
    if count_include_pad:
        return float(khw[0] * khw[1])
    ones = pad_nchw(np.ones((1, 1, *hw)), pads)
    return window_view(ones, khw, stride, (1, 1), pq).sum(axis=(-2, -1))


def avg_pool2d_backward(
    grad_y: ArrayLike,
    x_shape: Shape,
    kernel_size: IntPair = 2,
    *,
    stride: IntPair | None = None,
    padding: Padding = 0,
    layout: str = "NCHW",
    count_include_pad: bool = True,
) -> F64:
    """Each window's grad_y / count added to every cell of the window (padded cells dropped)."""
    layout = check_layout(layout)
    N, C, H, W = nchw_shape(x_shape, layout)
    (kh, kw), (sh, sw), pads, (P, Q) = pool_geometry((H, W), kernel_size, stride, padding)
    gy = x_to_nchw(as_f64(grad_y, "grad_y"), layout)
    if gy.shape != (N, C, P, Q):
        raise ValueError(f"grad_y must have shape {(N, C, P, Q)} (NCHW), got {gy.shape}")
    g = gy / avg_counts((H, W), (kh, kw), (sh, sw), pads, (P, Q), count_include_pad)
    top, bottom, left, right = pads
    gxp = np.zeros((N, C, H + top + bottom, W + left + right))
    for r in range(kh):
        for s in range(kw):
            gxp[:, :, r : r + sh * (P - 1) + 1 : sh, s : s + sw * (Q - 1) + 1 : sw] += g
    return x_from_nchw(gxp[:, :, top : top + H, left : left + W], layout)


def to_nc(a: NDArray[Any], layout: str) -> NDArray[Any]:
    """(N, C, 1, 1) or (N, 1, 1, C) -> (N, C)."""
    return a.reshape(a.shape[0], -1)


def global_avg_pool2d(x: ArrayLike, *, layout: str = "NCHW") -> F64:
    """The mean over H and W of each (n, c): (N, C)."""
    layout = check_layout(layout)
    return to_nc(avg_pool2d(x, spatial_size(x, layout), layout=layout), layout)


def global_avg_pool2d_backward(grad_y: ArrayLike, x_shape: Shape, *, layout: str = "NCHW") -> F64:
    N, C, H, W = nchw_shape(x_shape, layout)
    gy = np.asarray(grad_y, dtype=np.float64)
    if gy.shape != (N, C):
        raise ValueError(f"grad_y must have shape {(N, C)}, got {gy.shape}")
    gx = np.broadcast_to((gy / (H * W))[:, :, None, None], (N, C, H, W))
    return x_from_nchw(np.ascontiguousarray(gx), check_layout(layout))


def global_max_pool2d(x: ArrayLike, *, layout: str = "NCHW") -> tuple[F64, NDArray[np.int64]]:
    """(max over H and W of each (n, c), its flat index h * W + w): both (N, C)."""
    layout = check_layout(layout)
    y, idx = max_pool2d(x, spatial_size(x, layout), layout=layout)
    return to_nc(y, layout), to_nc(idx, layout)


def global_max_pool2d_backward(grad_y: ArrayLike, indices: ArrayLike, x_shape: Shape, *, layout: str = "NCHW") -> F64:
    layout = check_layout(layout)
    N, C, H, W = nchw_shape(x_shape, layout)
    shape4 = (N, C, 1, 1) if layout == "NCHW" else (N, 1, 1, C)
    return max_pool2d_backward(
        np.asarray(grad_y).reshape(shape4), np.asarray(indices).reshape(shape4), x_shape, (H, W), layout=layout
    )


def spatial_size(x: ArrayLike, layout: str) -> Pairs:
    shape = np.shape(x)
    return (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])
