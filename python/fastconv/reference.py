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

(with layout="NHWC": x (N,H,W,C), w (R,S,C,K), y (N,P,Q,K)). This module imports only NumPy
and the shared shape helpers, never the compiled extension.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray

from ._typing import IntPair, Padding, Shape
from .ops._shapes import check_layout, pair, resolve_padding

F64: TypeAlias = NDArray[np.float64]
Pairs: TypeAlias = tuple[int, int]

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


# ----------------------------------------------------------------------------- layout helpers


def _f64(a: ArrayLike, name: str, ndim: int = 4) -> F64:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    return a


def _x_to_nchw(x: NDArray[Any], layout: str) -> NDArray[Any]:  # (N,H,W,C) -> (N,C,H,W)
    return x if layout == "NCHW" else x.transpose(0, 3, 1, 2)


def _x_from_nchw(x: NDArray[Any], layout: str) -> NDArray[Any]:  # (N,C,H,W) -> (N,H,W,C)
    return np.ascontiguousarray(x if layout == "NCHW" else x.transpose(0, 2, 3, 1))


def _w_to_kcrs(w: F64, layout: str) -> F64:  # (R,S,C,K) -> (K,C,R,S)
    return w if layout == "NCHW" else w.transpose(3, 2, 0, 1)


def _w_from_kcrs(w: F64, layout: str) -> F64:  # (K,C,R,S) -> (R,S,C,K)
    return np.ascontiguousarray(w if layout == "NCHW" else w.transpose(2, 3, 1, 0))


def _nchw_shape(shape: Sequence[int], layout: str) -> tuple[int, int, int, int]:
    dims = tuple(int(d) for d in shape)
    if len(dims) != 4:
        raise ValueError(f"x_shape must have 4 entries, got {dims}")
    return (dims[0], dims[1], dims[2], dims[3]) if layout == "NCHW" else (dims[0], dims[3], dims[1], dims[2])


def _kcrs_shape(shape: Sequence[int], layout: str) -> tuple[int, int, int, int]:
    dims = tuple(int(d) for d in shape)
    if len(dims) != 4:
        raise ValueError(f"weight_shape must have 4 entries, got {dims}")
    return (dims[0], dims[1], dims[2], dims[3]) if layout == "NCHW" else (dims[3], dims[2], dims[0], dims[1])


# ----------------------------------------------------------------------------- conv geometry


def _window_starts(size: int, pad_begin: int, pad_end: int, extent: int, stride: int) -> int:
    """Positions of a window of `extent` cells, `stride` apart, that fit in the padded size: the
    output size counted, not computed by the kernels' formula (the oracle keeps its own)."""
    return len(range(0, size + pad_begin + pad_end - extent + 1, stride))


def _conv_geometry(
    hw: Sequence[int], rs: Sequence[int], stride: IntPair, padding: Padding, dilation: IntPair
) -> tuple[Pairs, Pairs, tuple[int, int, int, int], Pairs]:
    """-> (stride, dilation, (top, bottom, left, right), (P, Q)); ValueError when P or Q < 1."""
    sh_sw, dh_dw = pair(stride, "stride"), pair(dilation, "dilation")
    pads = resolve_padding(padding, hw, rs, sh_sw, dh_dw)
    P = _window_starts(hw[0], pads[0], pads[1], dh_dw[0] * (rs[0] - 1) + 1, sh_sw[0])
    Q = _window_starts(hw[1], pads[2], pads[3], dh_dw[1] * (rs[1] - 1) + 1, sh_sw[1])
    if P < 1 or Q < 1:
        raise ValueError(
            f"output size {P}x{Q} < 1 for input {hw}, kernel {rs}, stride {sh_sw}, padding {pads}, dilation {dh_dw}"
        )
    return sh_sw, dh_dw, pads, (P, Q)


def _windows(
    xp: NDArray[Any], rs: Sequence[int], stride: Sequence[int], dilation: Sequence[int], pq: Sequence[int]
) -> NDArray[Any]:
    """padded (N,C,Hp,Wp) -> view (N,C,P,Q,R,S): [n,c,p,q,r,s] = xp[n,c,p*sh+r*dh,q*sw+s*dw]."""
    (R, S), (sh, sw), (dh, dw), (P, Q) = rs, stride, dilation, pq
    win = sliding_window_view(xp, (dh * (R - 1) + 1, dw * (S - 1) + 1), axis=(2, 3))
    return win[:, :, ::sh, ::sw, ::dh, ::dw][:, :, :P, :Q]


def _pad(x: NDArray[Any], pads: Sequence[int], value: float = 0.0) -> NDArray[Any]:
    top, bottom, left, right = pads
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


# ----------------------------------------------------------------------------- convolution


def conv2d(
    x: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    *,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    layout: str = "NCHW",
    activation: str | None = None,
    alpha: float = 0.01,
) -> F64:
    """y[n,k,p,q] = b[k] + sum_{c,r,s} xpad[n,c,p*sh+r*dh,q*sw+s*dw] * w[k,c,r,s], then activation."""
    layout = check_layout(layout)
    _activate(np.zeros(1), activation, alpha)  # validates the name before the work
    x = _x_to_nchw(_f64(x, "x"), layout)
    w = _w_to_kcrs(_f64(weight, "weight"), layout)
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x has {x.shape[1]} channels but weight expects {w.shape[1]}")
    stride, dilation, pads, pq = _conv_geometry(x.shape[2:], w.shape[2:], stride, padding, dilation)
    y = np.einsum("ncpqrs,kcrs->nkpq", _windows(_pad(x, pads), w.shape[2:], stride, dilation, pq), w)
    if bias is not None:
        b = np.asarray(bias, dtype=np.float64)
        if b.shape != (w.shape[0],):
            raise ValueError(f"bias must have shape ({w.shape[0]},), got {b.shape}")
        y = y + b[None, :, None, None]
    return _x_from_nchw(_activate(y, activation, alpha), layout)


def conv2d_backward_data(
    grad_y: ArrayLike,
    weight: ArrayLike,
    x_shape: Shape,
    *,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    layout: str = "NCHW",
) -> F64:
    """The adjoint of conv2d in x: scatter-add gy[n,k,p,q]*w[k,c,r,s] into xpad, then crop."""
    layout = check_layout(layout)
    N, C, H, W = _nchw_shape(x_shape, layout)
    w = _w_to_kcrs(_f64(weight, "weight"), layout)
    gy = _x_to_nchw(_f64(grad_y, "grad_y"), layout)
    K, _, R, S = w.shape
    (sh, sw), (dh, dw), pads, (P, Q) = _conv_geometry((H, W), (R, S), stride, padding, dilation)
    if gy.shape != (N, K, P, Q):
        raise ValueError(f"grad_y must have shape {(N, K, P, Q)} (NCHW), got {gy.shape}")
    top, bottom, left, right = pads
    gxp = np.zeros((N, C, H + top + bottom, W + left + right))
    for r in range(R):
        for s in range(S):
            rows = slice(r * dh, r * dh + sh * (P - 1) + 1, sh)  # p*sh + r*dh, p < P
            cols = slice(s * dw, s * dw + sw * (Q - 1) + 1, sw)  # q*sw + s*dw, q < Q
            gxp[:, :, rows, cols] += np.einsum("nkpq,kc->ncpq", gy, w[:, :, r, s])
    return _x_from_nchw(gxp[:, :, top : top + H, left : left + W], layout)


def conv2d_backward_weight(
    grad_y: ArrayLike,
    x: ArrayLike,
    weight_shape: Shape,
    *,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    layout: str = "NCHW",
    bias: bool = True,
) -> tuple[F64, F64 | None]:
    """gw[k,c,r,s] = sum_{n,p,q} gy[n,k,p,q] * xpad[n,c,p*sh+r*dh,q*sw+s*dw]; gb[k] = sum gy."""
    layout = check_layout(layout)
    K, C, R, S = _kcrs_shape(weight_shape, layout)
    x = _x_to_nchw(_f64(x, "x"), layout)
    gy = _x_to_nchw(_f64(grad_y, "grad_y"), layout)
    if x.shape[1] != C:
        raise ValueError(f"x has {x.shape[1]} channels but weight_shape expects {C}")
    stride, dilation, pads, (P, Q) = _conv_geometry(x.shape[2:], (R, S), stride, padding, dilation)
    if gy.shape != (x.shape[0], K, P, Q):
        raise ValueError(f"grad_y must have shape {(x.shape[0], K, P, Q)} (NCHW), got {gy.shape}")
    win = _windows(_pad(x, pads), (R, S), stride, dilation, (P, Q))
    gw = _w_from_kcrs(np.einsum("nkpq,ncpqrs->kcrs", gy, win), layout)
    return gw, (gy.sum(axis=(0, 2, 3)) if bias else None)


def conv2d_backward(
    grad_y: ArrayLike,
    x: ArrayLike,
    weight: ArrayLike,
    *,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    layout: str = "NCHW",
    bias: bool = True,
) -> tuple[F64, F64, F64 | None]:
    """-> (grad_x, grad_weight, grad_bias or None)."""
    weight = np.asarray(weight)
    kw: dict[str, Any] = dict(stride=stride, padding=padding, dilation=dilation, layout=layout)
    gx = conv2d_backward_data(grad_y, weight, np.shape(x), **kw)
    gw, gb = conv2d_backward_weight(grad_y, x, weight.shape, bias=bias, **kw)
    return gx, gw, gb


# ----------------------------------------------------------------------------- max pooling


def _pool_geometry(
    hw: Sequence[int], kernel_size: IntPair, stride: IntPair | None, padding: Padding
) -> tuple[Pairs, Pairs, tuple[int, int, int, int], Pairs]:
    kernel = pair(kernel_size, "kernel_size")
    step = kernel if stride is None else pair(stride, "stride")
    pads = resolve_padding(padding, hw, kernel, step)
    P = _window_starts(hw[0], pads[0], pads[1], kernel[0], step[0])
    Q = _window_starts(hw[1], pads[2], pads[3], kernel[1], step[1])
    if P < 1 or Q < 1:
        raise ValueError(f"pooled size {P}x{Q} < 1 for input {hw}, kernel_size {kernel}, stride {step}, padding {pads}")
    return kernel, step, pads, (P, Q)


def max_pool2d(
    x: ArrayLike, kernel_size: IntPair = 2, *, stride: IntPair | None = None, padding: Padding = 0, layout: str = "NCHW"
) -> tuple[F64, NDArray[np.int64]]:
    """-> (y, indices int64): max over each window (NaN wins, first max in row-major order wins,
    padded cells never win); indices[n,c,p,q] = h*W + w of the winner in the (n,c) plane."""
    layout = check_layout(layout)
    x = _x_to_nchw(_f64(x, "x"), layout)
    N, C, H, W = x.shape
    (kh, kw), stride, pads, (P, Q) = _pool_geometry((H, W), kernel_size, stride, padding)
    top, left = pads[0], pads[2]

    vals = _windows(_pad(x, pads, -np.inf), (kh, kw), stride, (1, 1), (P, Q))
    valid = _windows(_pad(np.ones((1, 1, H, W), bool), pads, False), (kh, kw), stride, (1, 1), (P, Q))
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
    return _x_from_nchw(y, layout), _x_from_nchw(indices, layout)


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
    N, C, H, W = _nchw_shape(x_shape, layout)
    _, _, _, (P, Q) = _pool_geometry((H, W), kernel_size, stride, padding)
    gy = _x_to_nchw(_f64(grad_y, "grad_y"), layout)
    idx = _x_to_nchw(np.asarray(indices), layout)
    if gy.shape != (N, C, P, Q) or idx.shape != (N, C, P, Q):
        raise ValueError(f"grad_y and indices must have shape {(N, C, P, Q)} (NCHW), got {gy.shape} and {idx.shape}")
    if not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"indices must be an integer array, got {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= H * W):
        raise ValueError(f"indices must lie in [0, {H * W}), got [{idx.min()}, {idx.max()}]")
    gx = np.zeros((N * C, H * W))
    rows = np.arange(N * C)[:, None]
    np.add.at(gx, (rows, idx.reshape(N * C, P * Q)), gy.reshape(N * C, P * Q))
    return _x_from_nchw(gx.reshape(N, C, H, W), layout)


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
    x = _x_to_nchw(_f64(x, "x"), layout)
    N, C, H, W = x.shape
    (kh, kw), stride, pads, (P, Q) = _pool_geometry((H, W), kernel_size, stride, padding)
    sums = _windows(_pad(x, pads), (kh, kw), stride, (1, 1), (P, Q)).sum(axis=(-2, -1))
    return _x_from_nchw(sums / _avg_counts((H, W), (kh, kw), stride, pads, (P, Q), count_include_pad), layout)


def _avg_counts(
    hw: Sequence[int],
    khw: Sequence[int],
    stride: Sequence[int],
    pads: Sequence[int],
    pq: Sequence[int],
    count_include_pad: bool,
) -> float | F64:
    if count_include_pad:
        return float(khw[0] * khw[1])
    ones = _pad(np.ones((1, 1, *hw)), pads)
    return _windows(ones, khw, stride, (1, 1), pq).sum(axis=(-2, -1))


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
    N, C, H, W = _nchw_shape(x_shape, layout)
    (kh, kw), (sh, sw), pads, (P, Q) = _pool_geometry((H, W), kernel_size, stride, padding)
    gy = _x_to_nchw(_f64(grad_y, "grad_y"), layout)
    if gy.shape != (N, C, P, Q):
        raise ValueError(f"grad_y must have shape {(N, C, P, Q)} (NCHW), got {gy.shape}")
    g = gy / _avg_counts((H, W), (kh, kw), (sh, sw), pads, (P, Q), count_include_pad)
    top, bottom, left, right = pads
    gxp = np.zeros((N, C, H + top + bottom, W + left + right))
    for r in range(kh):
        for s in range(kw):
            gxp[:, :, r : r + sh * (P - 1) + 1 : sh, s : s + sw * (Q - 1) + 1 : sw] += g
    return _x_from_nchw(gxp[:, :, top : top + H, left : left + W], layout)


def _nc(a: NDArray[Any], layout: str) -> NDArray[Any]:
    """(N, C, 1, 1) or (N, 1, 1, C) -> (N, C)."""
    return a.reshape(a.shape[0], -1)


def global_avg_pool2d(x: ArrayLike, *, layout: str = "NCHW") -> F64:
    """The mean over H and W of each (n, c): (N, C)."""
    layout = check_layout(layout)
    return _nc(avg_pool2d(x, _hw(x, layout), layout=layout), layout)


def global_avg_pool2d_backward(grad_y: ArrayLike, x_shape: Shape, *, layout: str = "NCHW") -> F64:
    N, C, H, W = _nchw_shape(x_shape, layout)
    gy = np.asarray(grad_y, dtype=np.float64)
    if gy.shape != (N, C):
        raise ValueError(f"grad_y must have shape {(N, C)}, got {gy.shape}")
    gx = np.broadcast_to((gy / (H * W))[:, :, None, None], (N, C, H, W))
    return _x_from_nchw(np.ascontiguousarray(gx), check_layout(layout))


def global_max_pool2d(x: ArrayLike, *, layout: str = "NCHW") -> tuple[F64, NDArray[np.int64]]:
    """(max over H and W of each (n, c), its flat index h * W + w): both (N, C)."""
    layout = check_layout(layout)
    y, idx = max_pool2d(x, _hw(x, layout), layout=layout)
    return _nc(y, layout), _nc(idx, layout)


def global_max_pool2d_backward(grad_y: ArrayLike, indices: ArrayLike, x_shape: Shape, *, layout: str = "NCHW") -> F64:
    layout = check_layout(layout)
    N, C, H, W = _nchw_shape(x_shape, layout)
    shape4 = (N, C, 1, 1) if layout == "NCHW" else (N, 1, 1, C)
    return max_pool2d_backward(
        np.asarray(grad_y).reshape(shape4), np.asarray(indices).reshape(shape4), x_shape, (H, W), layout=layout
    )


def _hw(x: ArrayLike, layout: str) -> Pairs:
    shape = np.shape(x)
    return (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])


# ----------------------------------------------------------------------------- relu


def relu(x: ArrayLike) -> F64:
    """max(x, 0) elementwise; NaN stays NaN."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 0, x, np.where(np.isnan(x), x, 0.0))


def relu_backward(grad_y: ArrayLike, y: ArrayLike) -> F64:
    """grad_y where y > 0, else 0 (NaN in y gives 0: NaN > 0 is False)."""
    grad_y, y = np.asarray(grad_y, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if grad_y.shape != y.shape:
        raise ValueError(f"grad_y shape {grad_y.shape} does not match y shape {y.shape}")
    return np.where(y > 0, grad_y, 0.0)


# ----------------------------------------------------------------------------- batch normalization


def _channels_last(x: ArrayLike, layout: str) -> tuple[F64, Shape]:
    """x as (M, C) float64: every channel's N*H*W elements in a column."""
    x = _x_to_nchw(_f64(x, "x"), layout)
    return x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1]), x.shape


def _from_channels_last(a: F64, nchw_shape: Shape, layout: str) -> F64:
    N, C, H, W = nchw_shape
    return _x_from_nchw(a.reshape(N, H, W, C).transpose(0, 3, 1, 2), layout)


def batch_norm(
    x: ArrayLike,
    gamma: ArrayLike | None,
    beta: ArrayLike | None,
    running_mean: ArrayLike | None,
    running_var: ArrayLike | None,
    *,
    training: bool,
    momentum: float = 0.1,
    eps: float = 1e-5,
    layout: str = "NCHW",
    activation: str | None = None,
) -> tuple[F64 | None, ...]:
    """-> (y, saved_mean, saved_inv_std), PyTorch's convention. Training: the batch statistics
    (biased variance) normalize x, and running_mean / running_var (when given) are returned
    updated as (1 - momentum) * running + momentum * batch (unbiased variance) in a 4th and 5th
    value; inference: the running statistics. activation="relu": y = max(y, 0). Arrays in, new
    float64 arrays out."""
    layout = check_layout(layout)
    a, shape = _channels_last(x, layout)
    C = a.shape[1]
    g = np.ones(C) if gamma is None else np.asarray(gamma, np.float64)
    b = np.zeros(C) if beta is None else np.asarray(beta, np.float64)
    if training:
        mean, var = a.mean(axis=0), a.var(axis=0)
    else:
        mean, var = np.asarray(running_mean, np.float64), np.asarray(running_var, np.float64)
    inv_std = 1.0 / np.sqrt(var + eps)
    y = _from_channels_last((a - mean) * inv_std * g + b, shape, layout)
    if activation is not None:
        y = _activate(y, activation, 0.0)
    if not training:
        return y, mean, inv_std
    M = a.shape[0]
    new_mean = new_var = None
    if running_mean is not None:
        new_mean = (1 - momentum) * np.asarray(running_mean, np.float64) + momentum * mean
        new_var = (1 - momentum) * np.asarray(running_var, np.float64) + momentum * var * M / max(M - 1, 1)
    return y, mean, inv_std, new_mean, new_var


def batch_norm_backward(
    grad_y: ArrayLike,
    x: ArrayLike,
    gamma: ArrayLike | None,
    saved_mean: ArrayLike,
    saved_inv_std: ArrayLike,
    *,
    training: bool = True,
    layout: str = "NCHW",
    activation: str | None = None,
    y: ArrayLike | None = None,
) -> tuple[F64, F64, F64]:
    """-> (grad_x, grad_gamma, grad_beta); training: through the batch statistics.
    activation="relu": grad_y is the gradient of the ReLU's output y, first taken through it."""
    layout = check_layout(layout)
    if activation == "relu":
        if y is None:
            raise TypeError("batch_norm_backward(activation='relu') needs y, the forward's output")
        grad_y = relu_backward(grad_y, y)
    a, shape = _channels_last(x, layout)
    g_, _ = _channels_last(grad_y, layout)
    C, M = a.shape[1], a.shape[0]
    g = np.ones(C) if gamma is None else np.asarray(gamma, np.float64)
    mean, inv_std = np.asarray(saved_mean, np.float64), np.asarray(saved_inv_std, np.float64)
    xhat = (a - mean) * inv_std
    dbeta, dgamma = g_.sum(axis=0), (g_ * xhat).sum(axis=0)
    if training:
        gx = g * inv_std / M * (M * g_ - dbeta - xhat * dgamma)
    else:
        gx = g_ * g * inv_std
    return _from_channels_last(gx, shape, layout), dgamma, dbeta


# ----------------------------------------------------------------------------- sigmoid, tanh, leaky_relu


def sigmoid(x: ArrayLike) -> F64:
    """1 / (1 + exp(-x)) in float64, from exp(-|x|) (no overflow)."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


def tanh(x: ArrayLike) -> F64:
    return np.tanh(np.asarray(x, dtype=np.float64))


def leaky_relu(x: ArrayLike, alpha: float = 0.01) -> F64:
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 0, x, alpha * x)


def _grad_and_output(grad_y: ArrayLike, y: ArrayLike) -> tuple[F64, F64]:
    grad_y, y = np.asarray(grad_y, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if grad_y.shape != y.shape:
        raise ValueError(f"grad_y shape {grad_y.shape} does not match y shape {y.shape}")
    return grad_y, y


def sigmoid_backward(grad_y: ArrayLike, y: ArrayLike) -> F64:
    """From the forward's output y: sigmoid'(x) = y (1 - y)."""
    grad_y, y = _grad_and_output(grad_y, y)
    return grad_y * y * (1.0 - y)


def tanh_backward(grad_y: ArrayLike, y: ArrayLike) -> F64:
    """From the forward's output y: tanh'(x) = 1 - y^2."""
    grad_y, y = _grad_and_output(grad_y, y)
    return grad_y * (1.0 - y * y)


def leaky_relu_backward(grad_y: ArrayLike, y: ArrayLike, alpha: float = 0.01) -> F64:
    """From the forward's output y (alpha >= 0: y > 0 exactly where x > 0)."""
    grad_y, y = _grad_and_output(grad_y, y)
    return np.where(y > 0, grad_y, alpha * grad_y)


_ACTIVATIONS: dict[str, Callable[[ArrayLike], F64]] = {
    "relu": relu,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "leaky_relu": leaky_relu,
}


def _activate(y: F64, activation: str | None, alpha: float) -> F64:
    """conv2d / linear's activation= (leaky_relu with slope alpha)."""
    if activation in (None, "linear"):
        return y
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be None, 'linear' or one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    return leaky_relu(y, alpha) if activation == "leaky_relu" else _ACTIVATIONS[activation](y)


# ----------------------------------------------------------------------------- linear


def _dot(a: F64, b: F64) -> F64:
    """a @ b in float64 with an explicit sum (not BLAS): the oracle must not share the kernel's
    blocking, and rows of products summed by NumPy are exact enough for these sizes."""
    return np.einsum("ik,kj->ij", a, b, optimize=False)


def linear(
    x: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    *,
    activation: str | None = None,
    alpha: float = 0.01,
) -> F64:
    """x (N, in), weight (out, in) -> x @ weight.T + bias (N, out), then activation."""
    y = _dot(_f64(x, "x", 2), _f64(weight, "weight", 2).T)
    if bias is not None:
        y = y + _f64(bias, "bias", 1)
    return _activate(y, activation, alpha)


def linear_backward_data(grad_y: ArrayLike, weight: ArrayLike) -> F64:
    return _dot(_f64(grad_y, "grad_y", 2), _f64(weight, "weight", 2))


def linear_backward_weight(grad_y: ArrayLike, x: ArrayLike, *, bias: bool = True) -> tuple[F64, F64 | None]:
    grad_y = _f64(grad_y, "grad_y", 2)
    return _dot(grad_y.T, _f64(x, "x", 2)), (grad_y.sum(axis=0) if bias else None)


def linear_backward(
    grad_y: ArrayLike, x: ArrayLike, weight: ArrayLike, *, bias: bool = True
) -> tuple[F64, F64, F64 | None]:
    return (linear_backward_data(grad_y, weight), *linear_backward_weight(grad_y, x, bias=bias))
