"""Layout conversions and window geometry shared by the float64 oracles."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray

from .._typing import IntPair, Padding
from ..ops._shapes import pair, resolve_padding

F64: TypeAlias = NDArray[np.float64]
Pairs: TypeAlias = tuple[int, int]


def as_f64(a: ArrayLike, name: str, ndim: int = 4) -> F64:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    return a


def x_to_nchw(x: NDArray[Any], layout: str) -> NDArray[Any]:  # (N,H,W,C) -> (N,C,H,W)
    return x if layout == "NCHW" else x.transpose(0, 3, 1, 2)


def x_from_nchw(x: NDArray[Any], layout: str) -> NDArray[Any]:  # (N,C,H,W) -> (N,H,W,C)
    return np.ascontiguousarray(x if layout == "NCHW" else x.transpose(0, 2, 3, 1))


def w_to_kcrs(w: F64, layout: str) -> F64:  # (R,S,C,K) -> (K,C,R,S)
    return w if layout == "NCHW" else w.transpose(3, 2, 0, 1)


def w_from_kcrs(w: F64, layout: str) -> F64:  # (K,C,R,S) -> (R,S,C,K)
    return np.ascontiguousarray(w if layout == "NCHW" else w.transpose(2, 3, 1, 0))


def nchw_shape(shape: Sequence[int], layout: str) -> tuple[int, int, int, int]:
    dims = tuple(int(d) for d in shape)
    if len(dims) != 4:
        raise ValueError(f"x_shape must have 4 entries, got {dims}")
    return (dims[0], dims[1], dims[2], dims[3]) if layout == "NCHW" else (dims[0], dims[3], dims[1], dims[2])


def kcrs_shape(shape: Sequence[int], layout: str) -> tuple[int, int, int, int]:
    dims = tuple(int(d) for d in shape)
    if len(dims) != 4:
        raise ValueError(f"weight_shape must have 4 entries, got {dims}")
    return (dims[0], dims[1], dims[2], dims[3]) if layout == "NCHW" else (dims[3], dims[2], dims[0], dims[1])


def window_starts(size: int, pad_begin: int, pad_end: int, extent: int, stride: int) -> int:
    """Positions of a window of `extent` cells, `stride` apart, that fit in the padded size: the
    output size counted, not computed by the kernels' formula (the oracle keeps its own)."""
    return len(range(0, size + pad_begin + pad_end - extent + 1, stride))


def conv_geometry(
    hw: Sequence[int], rs: Sequence[int], stride: IntPair, padding: Padding, dilation: IntPair
) -> tuple[Pairs, Pairs, tuple[int, int, int, int], Pairs]:
    """-> (stride, dilation, (top, bottom, left, right), (P, Q)); ValueError when P or Q < 1."""
    sh_sw, dh_dw = pair(stride, "stride"), pair(dilation, "dilation")
    pads = resolve_padding(padding, hw, rs, sh_sw, dh_dw)
    P = window_starts(hw[0], pads[0], pads[1], dh_dw[0] * (rs[0] - 1) + 1, sh_sw[0])
    Q = window_starts(hw[1], pads[2], pads[3], dh_dw[1] * (rs[1] - 1) + 1, sh_sw[1])
    if P < 1 or Q < 1:
        raise ValueError(
            f"output size {P}x{Q} < 1 for input {hw}, kernel {rs}, stride {sh_sw}, padding {pads}, dilation {dh_dw}"
        )
    return sh_sw, dh_dw, pads, (P, Q)


def window_view(
    xp: NDArray[Any], rs: Sequence[int], stride: Sequence[int], dilation: Sequence[int], pq: Sequence[int]
) -> NDArray[Any]:
    """padded (N,C,Hp,Wp) -> view (N,C,P,Q,R,S): [n,c,p,q,r,s] = xp[n,c,p*sh+r*dh,q*sw+s*dw]."""
    (R, S), (sh, sw), (dh, dw), (P, Q) = rs, stride, dilation, pq
    win = sliding_window_view(xp, (dh * (R - 1) + 1, dw * (S - 1) + 1), axis=(2, 3))
    return win[:, :, ::sh, ::sw, ::dh, ::dw][:, :, :P, :Q]


def pad_nchw(x: NDArray[Any], pads: Sequence[int], value: float = 0.0) -> NDArray[Any]:
    top, bottom, left, right = pads
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)
