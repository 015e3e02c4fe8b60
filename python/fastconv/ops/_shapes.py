"""Argument normalization and output-size arithmetic shared by every backend and the reference.

All functions raise ValueError/TypeError whose message names the offending argument.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

from .._typing import Padding

LAYOUTS = ("NCHW", "NHWC")


def positive_int(value: object, name: str) -> int:
    """value as an int >= 1 (bools and non-integers rejected), else ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def non_negative_int(value: object, name: str) -> int:
    """value as an int >= 0 (a NumPy integer too; bools and non-integers rejected), else an
    error naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= 0, got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return int(value)


def pair(value: object, name: str) -> tuple[int, int]:
    """int or (h, w) pair of positive ints -> (h, w)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if isinstance(value, numbers.Integral):
        h = w = int(value)
    elif (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)
    ):
        h, w = int(value[0]), int(value[1])
    else:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if h < 1 or w < 1:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return h, w


def check_layout(layout: object) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be 'NCHW' or 'NHWC', got {layout!r}")
    return layout


def _same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """Keras 'same': output ceil(size/stride); an odd total puts the extra cell at the end."""
    effective = dilation * (kernel - 1) + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def resolve_padding(
    padding: Padding,
    in_hw: Sequence[int],
    kernel_hw: Sequence[int],
    stride_hw: Sequence[int],
    dilation_hw: Sequence[int] = (1, 1),
) -> tuple[int, int, int, int]:
    """Any padding form of the API -> (top, bottom, left, right) of non-negative ints.

    Accepts int, (ph, pw), ((top, bottom), (left, right)), "valid" or "same".
    """
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return 0, 0, 0, 0
        if mode == "same":
            top, bottom = _same_padding(in_hw[0], kernel_hw[0], stride_hw[0], dilation_hw[0])
            left, right = _same_padding(in_hw[1], kernel_hw[1], stride_hw[1], dilation_hw[1])
            return top, bottom, left, right
        raise ValueError(f"padding must be 'valid', 'same', an int or pairs, got {padding!r}")

    def _int(v: object) -> int:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"padding must be 'valid', 'same', an int or pairs of ints, got {padding!r}")
        if v < 0:
            raise ValueError(f"padding must be non-negative, got {padding!r}")
        return int(v)

    if isinstance(padding, (tuple, list)) and len(padding) == 2:
        first, second = padding
        if isinstance(first, (tuple, list)) and isinstance(second, (tuple, list)):
            if len(first) != 2 or len(second) != 2:
                raise ValueError(f"padding pairs must be ((top, bottom), (left, right)), got {padding!r}")
            return _int(first[0]), _int(first[1]), _int(second[0]), _int(second[1])
        ph, pw = _int(first), _int(second)
        return ph, ph, pw, pw
    p = _int(padding)
    return p, p, p, p


def conv_output_size(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int, dilation: int = 1) -> int:
    """floor((size + pads - dilation*(kernel-1) - 1) / stride) + 1 (may be < 1: caller checks)."""
    return (size + pad_begin + pad_end - dilation * (kernel - 1) - 1) // stride + 1


def window_output(
    in_hw: Sequence[int],
    kernel_hw: Sequence[int],
    stride_hw: Sequence[int],
    padding: Padding,
    dilation_hw: Sequence[int] = (1, 1),
) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """The geometry of a sliding window (convolution or pooling) over an (H, W) input:
    ((P, Q), (top, bottom, left, right)) for any padding form. P or Q may be < 1: callers name
    the arguments in their error."""
    pads = resolve_padding(padding, in_hw, kernel_hw, stride_hw, dilation_hw)
    P = conv_output_size(in_hw[0], kernel_hw[0], stride_hw[0], pads[0], pads[1], dilation_hw[0])
    Q = conv_output_size(in_hw[1], kernel_hw[1], stride_hw[1], pads[2], pads[3], dilation_hw[1])
    return (P, Q), pads
