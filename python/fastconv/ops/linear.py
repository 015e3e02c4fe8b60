"""Dense (fully connected) layers, PyTorch's convention, and their backward passes (docs/api.md):
the product runs in the backend's matmul (CPU GEMM kernels for NumPy, cuBLAS for CuPy).
"""

from __future__ import annotations

from .._typing import Array
from ._checks import (
    LEAKY_RELU_SLOPE,
    backend_for,
    check_activation,
    check_alpha,
    check_alpha_fits,
    check_grad_y,
    check_ndim,
    flag,
    same_dtype,
)

__all__ = ["linear", "linear_backward", "linear_backward_data", "linear_backward_weight"]


_X2, _W2, _Y2 = "(N, in_features)", "(out_features, in_features)", "(N, out_features)"


def _check_linear(x: Array, weight: Array) -> None:
    check_ndim("x", x, 2, _X2)
    check_ndim("weight", weight, 2, _W2)
    if x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"x has {x.shape[1]} features but weight expects {weight.shape[1]}: "
            f"x {tuple(x.shape)} {_X2}, weight {tuple(weight.shape)} {_W2}"
        )


def linear(
    x: Array,
    weight: Array,
    bias: Array | None = None,
    *,
    activation: str | None = None,
    alpha: float = LEAKY_RELU_SLOPE,
) -> Array:
    """Dense layer, PyTorch's convention: x (N, in), weight (out, in), bias (out,) ->
    y = x @ weight.T + bias, (N, out). `activation` ("relu", "sigmoid", "tanh", "leaky_relu" with
    slope `alpha`) is fused into the CPU kernel's epilogue (on CuPy arrays it runs in place on y
    after cuBLAS). A transposed weight view (e.g. a Keras kernel (in, out) passed as kernel.T) is
    read in place."""
    be = backend_for(x=x, weight=weight, bias=bias)
    same_dtype(x=x, weight=weight, bias=bias)
    _check_linear(x, weight)
    activation = check_activation(activation)
    alpha = check_alpha(alpha)
    if activation == "leaky_relu":
        check_alpha_fits(alpha, x.dtype)
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"bias must have shape ({weight.shape[0]},) (one per output feature), got {tuple(bias.shape)}")
    return be.matmul(x, weight.T, None if bias is None else be.contiguous(bias), activation, alpha)


def linear_backward_data(grad_y: Array, weight: Array) -> Array:
    """Gradient of linear with respect to x: grad_y (N, out), weight (out, in) -> grad_x (N, in)."""
    be = backend_for(grad_y=grad_y, weight=weight)
    same_dtype(grad_y=grad_y, weight=weight)
    check_ndim("weight", weight, 2, _W2)
    check_ndim("grad_y", grad_y, 2, _Y2)
    check_grad_y(grad_y, (grad_y.shape[0], weight.shape[0]), _Y2)
    return be.matmul(grad_y, weight)


def linear_backward_weight(grad_y: Array, x: Array, *, bias: bool = True) -> tuple[Array, Array | None]:
    """Gradient of linear with respect to weight (and bias): grad_y (N, out), x (N, in) ->
    (grad_weight (out, in), grad_bias (out,) or None)."""
    be = backend_for(grad_y=grad_y, x=x)
    same_dtype(grad_y=grad_y, x=x)
    check_ndim("x", x, 2, _X2)
    check_ndim("grad_y", grad_y, 2, _Y2)
    check_grad_y(grad_y, (x.shape[0], grad_y.shape[1]), _Y2)
    return be.matmul(grad_y.T, x), (be.column_sums(grad_y) if flag("bias", bias) else None)


def linear_backward(grad_y: Array, x: Array, weight: Array, *, bias: bool = True) -> tuple[Array, Array, Array | None]:
    """All gradients of linear: -> (grad_x, grad_weight, grad_bias or None)."""
    be = backend_for(grad_y=grad_y, x=x, weight=weight)
    same_dtype(grad_y=grad_y, x=x, weight=weight)
    _check_linear(x, weight)
    check_ndim("grad_y", grad_y, 2, _Y2)
    check_grad_y(grad_y, (x.shape[0], weight.shape[0]), _Y2)
    return (be.matmul(grad_y, weight), be.matmul(grad_y.T, x), be.column_sums(grad_y) if flag("bias", bias) else None)


def dense_kernel_grad(grad_y: Array, x: Array) -> Array:
    """x.T @ grad_y: the gradient of a Keras Dense kernel (in, out), in that layout (layers.Dense)."""
    return backend_for(grad_y=grad_y, x=x).matmul(x.T, grad_y)


def column_sums(g: Array) -> Array:
    return backend_for(g=g).column_sums(g)
