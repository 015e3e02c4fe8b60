"""float64 oracles of conv2d and its backward passes."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._typing import IntPair, Padding, Shape
from ..ops._shapes import check_layout
from .common import (
    F64,
    as_f64,
    conv_geometry,
    kcrs_shape,
    nchw_shape,
    pad_nchw,
    w_from_kcrs,
    w_to_kcrs,
    window_view,
    x_from_nchw,
    x_to_nchw,
)
from .eltwise import activate


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
    activate(np.zeros(1), activation, alpha)  # validates the name before the work
    x = x_to_nchw(as_f64(x, "x"), layout)
    w = w_to_kcrs(as_f64(weight, "weight"), layout)
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x has {x.shape[1]} channels but weight expects {w.shape[1]}")
    stride, dilation, pads, pq = conv_geometry(x.shape[2:], w.shape[2:], stride, padding, dilation)
    y = np.einsum("ncpqrs,kcrs->nkpq", window_view(pad_nchw(x, pads), w.shape[2:], stride, dilation, pq), w)
    if bias is not None:
        b = np.asarray(bias, dtype=np.float64)
        if b.shape != (w.shape[0],):
            raise ValueError(f"bias must have shape ({w.shape[0]},), got {b.shape}")
        y = y + b[None, :, None, None]
    return x_from_nchw(activate(y, activation, alpha), layout)


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
    N, C, H, W = nchw_shape(x_shape, layout)
    w = w_to_kcrs(as_f64(weight, "weight"), layout)
    gy = x_to_nchw(as_f64(grad_y, "grad_y"), layout)
    K, _, R, S = w.shape
    (sh, sw), (dh, dw), pads, (P, Q) = conv_geometry((H, W), (R, S), stride, padding, dilation)
    if gy.shape != (N, K, P, Q):
        raise ValueError(f"grad_y must have shape {(N, K, P, Q)} (NCHW), got {gy.shape}")
    top, bottom, left, right = pads
    gxp = np.zeros((N, C, H + top + bottom, W + left + right))
    for r in range(R):
        for s in range(S):
            rows = slice(r * dh, r * dh + sh * (P - 1) + 1, sh)  # p*sh + r*dh, p < P
            cols = slice(s * dw, s * dw + sw * (Q - 1) + 1, sw)  # q*sw + s*dw, q < Q
            gxp[:, :, rows, cols] += np.einsum("nkpq,kc->ncpq", gy, w[:, :, r, s])
    return x_from_nchw(gxp[:, :, top : top + H, left : left + W], layout)


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
    K, C, R, S = kcrs_shape(weight_shape, layout)
    x = x_to_nchw(as_f64(x, "x"), layout)
    gy = x_to_nchw(as_f64(grad_y, "grad_y"), layout)
    if x.shape[1] != C:
        raise ValueError(f"x has {x.shape[1]} channels but weight_shape expects {C}")
    stride, dilation, pads, (P, Q) = conv_geometry(x.shape[2:], (R, S), stride, padding, dilation)
    if gy.shape != (x.shape[0], K, P, Q):
        raise ValueError(f"grad_y must have shape {(x.shape[0], K, P, Q)} (NCHW), got {gy.shape}")
    win = window_view(pad_nchw(x, pads), (R, S), stride, dilation, (P, Q))
    gw = w_from_kcrs(np.einsum("nkpq,ncpqrs->kcrs", gy, win), layout)
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
