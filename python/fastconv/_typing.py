"""The aliases the public API's annotations use. Array is a NumPy or a CuPy array: every op takes
either and answers on the same device. CuPy ships no type information, so a CuPy array checks as
Any; NumPy arrays are checked against NumPy's stubs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import cupy

    Array: TypeAlias = NDArray[Any] | cupy.ndarray
else:
    Array: TypeAlias = NDArray[Any]

Shape: TypeAlias = tuple[int, ...]
# An int for both sides, or one value per axis (height, width)
IntPair: TypeAlias = int | Sequence[int]
# Padding as ops/_shapes.resolve_padding reads it: "valid", "same", an int, (ph, pw) or
# ((top, bottom), (left, right))
Padding: TypeAlias = str | int | Sequence[int] | Sequence[Sequence[int]]
DType: TypeAlias = np.dtype[Any]

__all__ = ["Array", "DType", "IntPair", "Padding", "Shape"]
