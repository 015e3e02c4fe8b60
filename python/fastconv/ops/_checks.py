"""The argument checks the functional API shares (ops/*.py), and the few value checks the layers,
training and data code reuse: every public function checks its arguments before any pointer
reaches C++, raising TypeError/ValueError that names the argument and the shapes."""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from .._typing import Array, DType, Shape
from ..backend import cpu as backend_cpu
from ..backend.arrays import is_cupy
from ..backend.base import Backend

SpecFn = TypeVar("SpecFn", bound=Callable[..., Any])

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
INDEX_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))


# ----------------------------------------------------------------------------- array checks

OPTIONAL_ARRAYS = ("bias", "out", "gamma", "beta", "running_mean", "running_var")


def backend_for(**arrays: Array | None) -> Backend:
    """The backend of a call's arrays (all NumPy or all CuPy), else TypeError/ValueError naming
    the argument. Only the optional arrays (OPTIONAL_ARRAYS) may be None."""
    kinds: dict[str, str] = {}
    for name, a in arrays.items():
        if a is None:
            if name in OPTIONAL_ARRAYS:
                continue
            raise TypeError(f"{name} must be a NumPy or CuPy array, got None")
        if isinstance(a, np.ndarray):
            kinds[name] = "numpy"
        elif is_cupy(a):
            kinds[name] = "cupy"
        else:
            raise TypeError(f"{name} must be a NumPy or CuPy array, got {type(a).__name__}")
    if len(set(kinds.values())) > 1:
        where = ", ".join(f"{n} on {'the GPU (CuPy)' if k == 'cupy' else 'the CPU (NumPy)'}" for n, k in kinds.items())
        raise ValueError(f"all arrays of one call must live on the same device: {where}")
    if "cupy" in kinds.values():
        # Imported here so CuPy loads only for its users; the CPU path imports nothing at call
        # time (an import takes the import lock, which a forked child may find held).
        from ..backend import cuda as backend_cuda  # noqa: PLC0415

        return backend_cuda.backend()
    return backend_cpu.CPU


def float_dtype(name: str, a: Array) -> DType:
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} has dtype {a.dtype}; fastconv supports float32 and float64")
    return a.dtype


def same_dtype(**arrays: Array | None) -> DType:
    """All arrays share one float dtype; returns it."""
    dtypes = {name: float_dtype(name, a) for name, a in arrays.items() if a is not None}
    if len(set(dtypes.values())) > 1:
        listing = ", ".join(f"{n} is {d}" for n, d in dtypes.items())
        raise TypeError(f"mixed dtypes in one call ({listing}); cast them to one of float32/float64")
    return next(iter(dtypes.values()))


def check_ndim(name: str, a: Array, ndim: int, layout_axes: str) -> None:
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D {layout_axes}, got shape {tuple(a.shape)}")
    if 0 in a.shape:
        raise ValueError(f"{name} {layout_axes} has an empty dimension: shape {tuple(a.shape)}")


def shape4(name: str, shape: object) -> tuple[int, int, int, int]:
    if (
        not isinstance(shape, (tuple, list))
        or len(shape) != 4
        or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and int(v) >= 1 for v in shape)
    ):
        raise ValueError(f"{name} must be a tuple of 4 positive ints, got {shape!r}")
    n, c, h, w = (int(v) for v in shape)
    return n, c, h, w


def axes(layout: str, what: str) -> str:
    if what == "x":
        return "(N, C, H, W)" if layout == "NCHW" else "(N, H, W, C)"
    if what == "w":
        return "(K, C, R, S)" if layout == "NCHW" else "(R, S, C, K)"
    if what == "pool_y":
        return "(N, C, P, Q)" if layout == "NCHW" else "(N, P, Q, C)"
    return "(N, K, P, Q)" if layout == "NCHW" else "(N, P, Q, K)"


# ----------------------------------------------------------------------------- activations


# `activation=` of conv2d / linear (and of the layers) besides None and "linear" (= None).
ACTIVATIONS = ("relu", "sigmoid", "tanh", "leaky_relu")
LEAKY_RELU_SLOPE = 0.01  # PyTorch's default; the layers use Keras' slopes (ops/eltwise.py)


def check_activation(activation: object, where: str = "activation") -> str | None:
    """None for None / "linear", else the name when it is one of ACTIVATIONS (else ValueError)."""
    if activation is None or activation == "linear":
        return None
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"{where} must be None, 'linear' or one of {', '.join(map(repr, ACTIVATIONS))}, got {activation!r}"
        )
    return activation


def check_alpha(alpha: object) -> float:
    """alpha (leaky_relu's negative slope) as a float when it is a finite number >= 0 (else
    ValueError): then y > 0 exactly where x > 0, so the gradient can be read from y."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not math.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha (leaky_relu's negative slope) must be a finite number >= 0, got {alpha!r}")
    return float(alpha)


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_alpha_fits(alpha: float, dtype: npt.DTypeLike) -> None:
    """alpha (check_alpha's float) must stay finite in the arrays' dtype: 1e300 becomes inf in
    float32, and 0 * inf would make leaky_relu(0) NaN."""
    if alpha <= _FLOAT32_MAX:  # every usual slope: no NumPy call on the elementwise ops' hot path
        return
    dtype = np.dtype(dtype)
    with np.errstate(over="ignore"):
        finite = np.isfinite(np.asarray(alpha, dtype=dtype))
    if not finite:
        raise ValueError(
            f"alpha (leaky_relu's negative slope) {alpha!r} overflows {dtype.name} "
            f"(at most {float(np.finfo(dtype).max):.7g})"
        )


# ----------------------------------------------------------------------------- specs


def plain(v: object) -> bool:
    """Exactly an int, str or None, or a tuple of those: values whose equality means the same
    hyper-parameter (True == 1 and 1.0 == 1 must not share a cached spec: they are errors)."""
    return type(v) in (int, str) or v is None or (type(v) is tuple and all(map(plain, v)))


def cached(spec_fn: SpecFn) -> SpecFn:
    """spec_fn memoized on its arguments: a training loop asks for the same few specs every step,
    and working one out (padding rules, output sizes, checks) costs more than a small kernel.
    Other argument types take the uncached path; errors are never cached."""
    cached = functools.lru_cache(maxsize=512, typed=True)(spec_fn)

    @functools.wraps(spec_fn)
    def spec(*args: object) -> Any:
        if all(plain(a) or type(a) in (bool, float) for a in args):
            return cached(*args)
        return spec_fn(*args)

    return spec  # type: ignore[return-value]


# Padded inputs and dilated kernels beyond this many rows or columns are rejected: no real
# layer comes near, and every index product in the kernels then stays far from 64-bit overflow.
MAX_EXTENT = 2**31 - 1


def check_extents(*extents: tuple[str, str, int]) -> None:
    """(argument, what it sizes, rows or columns) triples, each at most MAX_EXTENT."""
    for name, what, extent in extents:
        if extent > MAX_EXTENT:
            raise ValueError(f"{name} too large: the {what} would span {extent} rows or columns (at most {MAX_EXTENT})")


def canonical(size: int, step: int) -> int:
    """A stride of an output axis with one position, or a dilation of a one-tap kernel axis, has
    no effect: it becomes 1, so no kernel sizes a buffer by it (stride=50000 on an 8x8 image)."""
    return 1 if size == 1 else step


def flag(name: str, value: object) -> bool:
    """A yes/no argument: True/False (or NumPy's bool), never an array or other object."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
    return bool(value)


def check_grad_y(grad_y: Array, expected_shape: Shape, axes: str) -> None:
    if tuple(grad_y.shape) != tuple(expected_shape):
        raise ValueError(
            f"grad_y has shape {tuple(grad_y.shape)} but the forward output is {tuple(expected_shape)} {axes}"
        )


def real(name: str, v: object, low: float, high: float, low_open: bool = False) -> float:
    """v as a float when it is a finite real number in [low, high] ((low, high] with low_open)."""
    value = float(v) if isinstance(v, numbers.Real) and not isinstance(v, bool) else math.nan
    if not math.isfinite(value) or value < low or value > high or (low_open and value == low):
        raise ValueError(f"{name} must be a finite number in {'(' if low_open else '['}{low}, {high}], got {v!r}")
    return value
