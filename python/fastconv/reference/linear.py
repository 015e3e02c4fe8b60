"""float64 oracles of the dense layer and its backward passes."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .common import F64, as_f64
from .eltwise import activate


def dot64(a: F64, b: F64) -> F64:
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
    y = dot64(as_f64(x, "x", 2), as_f64(weight, "weight", 2).T)
    if bias is not None:
        y = y + as_f64(bias, "bias", 1)
    return activate(y, activation, alpha)


def linear_backward_data(grad_y: ArrayLike, weight: ArrayLike) -> F64:
    return dot64(as_f64(grad_y, "grad_y", 2), as_f64(weight, "weight", 2))


def linear_backward_weight(grad_y: ArrayLike, x: ArrayLike, *, bias: bool = True) -> tuple[F64, F64 | None]:
    grad_y = as_f64(grad_y, "grad_y", 2)
    return dot64(grad_y.T, as_f64(x, "x", 2)), (grad_y.sum(axis=0) if bias else None)


def linear_backward(
    grad_y: ArrayLike, x: ArrayLike, weight: ArrayLike, *, bias: bool = True
) -> tuple[F64, F64, F64 | None]:
    return (linear_backward_data(grad_y, weight), *linear_backward_weight(grad_y, x, bias=bias))
