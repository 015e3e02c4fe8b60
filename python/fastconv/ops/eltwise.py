"""ReLU, sigmoid, tanh and leaky ReLU with their backward passes (docs/api.md), on fastconv's kernels:
csrc/cpu/eltwise/ for NumPy arrays, csrc/cuda/eltwise/ for CuPy arrays.

    y = fc.sigmoid(x)                    # or out=x: in place
    gx = fc.sigmoid_backward(gy, y)      # every backward takes the forward's OUTPUT y

leaky_relu's slope `alpha` defaults to PyTorch's 0.01 (Keras' LeakyReLU layer uses 0.3, its
"leaky_relu" activation string 0.2: the layers follow Keras). alpha must be finite and >= 0,
as in Keras, so y > 0 exactly where x > 0 and the gradient can be read from y.
"""

from __future__ import annotations

from .._typing import Array
from ..backend.base import Backend
from ._checks import backend_for, check_alpha, check_alpha_fits, float_dtype, same_dtype

__all__ = [
    "relu",
    "relu_backward",
    "sigmoid",
    "sigmoid_backward",
    "tanh",
    "tanh_backward",
    "leaky_relu",
    "leaky_relu_backward",
]


def elementwise_args(x: Array, out: Array | None) -> Backend:
    """The backend of an elementwise forward call, after checking x and out (None, or an array of
    x's shape and dtype, C-contiguous and writeable; out=x computes in place)."""
    be = backend_for(x=x, out=out)
    float_dtype("x", x)
    if out is not None:
        if out.shape != x.shape or out.dtype != x.dtype:
            raise ValueError(f"out must match x: x {tuple(x.shape)} {x.dtype}, out {tuple(out.shape)} {out.dtype}")
        if not out.flags.c_contiguous:
            raise ValueError("out must be C-contiguous")
        if not out.flags.writeable:
            raise ValueError("out is read-only")
    return be


def elementwise_grad_args(grad_y: Array, y: Array) -> Backend:
    """The backend of an elementwise backward call, after checking that grad_y and y match."""
    be = backend_for(grad_y=grad_y, y=y)
    same_dtype(grad_y=grad_y, y=y)
    if tuple(grad_y.shape) != tuple(y.shape):
        raise ValueError(f"grad_y has shape {tuple(grad_y.shape)} but y has {tuple(y.shape)}")
    return be


def relu(x: Array, *, out: Array | None = None) -> Array:
    """max(x, 0) elementwise (NaN propagates). `out=x` computes in place."""
    be = elementwise_args(x, out)
    return be.relu_forward(be.contiguous(x), out)


def relu_backward(grad_y: Array, y: Array) -> Array:
    """grad_y where y > 0, else 0."""
    be = elementwise_grad_args(grad_y, y)
    return be.relu_backward(be.contiguous(grad_y), be.contiguous(y))


# Keras' slope for activation="leaky_relu" of Conv2D / Dense (keras.activations.leaky_relu).
KERAS_LEAKY_RELU_SLOPE = 0.2


def _forward(name: str, alpha: float, x: Array, out: Array | None) -> Array:
    be = elementwise_args(x, out)
    check_alpha_fits(alpha, x.dtype)
    return be.activation_forward(name, alpha, be.contiguous(x), out)


def _backward(name: str, alpha: float, grad_y: Array, y: Array) -> Array:
    be = elementwise_grad_args(grad_y, y)
    check_alpha_fits(alpha, grad_y.dtype)
    return be.activation_backward(name, alpha, be.contiguous(grad_y), be.contiguous(y))


def sigmoid(x: Array, *, out: Array | None = None) -> Array:
    """1 / (1 + exp(-x)) elementwise, without overflow (NaN propagates). `out=x`: in place."""
    return _forward("sigmoid", 0.0, x, out)


def sigmoid_backward(grad_y: Array, y: Array) -> Array:
    """grad_y * y * (1 - y), y = sigmoid(x)."""
    return _backward("sigmoid", 0.0, grad_y, y)


def tanh(x: Array, *, out: Array | None = None) -> Array:
    """tanh(x) elementwise (NaN propagates). `out=x`: in place."""
    return _forward("tanh", 0.0, x, out)


def tanh_backward(grad_y: Array, y: Array) -> Array:
    """grad_y * (1 - y^2), y = tanh(x)."""
    return _backward("tanh", 0.0, grad_y, y)


def leaky_relu(x: Array, alpha: float = 0.01, *, out: Array | None = None) -> Array:
    """x where x > 0, else alpha * x (NaN propagates). `out=x`: in place."""
    return _forward("leaky_relu", check_alpha(alpha), x, out)


def leaky_relu_backward(grad_y: Array, y: Array, alpha: float = 0.01) -> Array:
    """grad_y where y > 0, else alpha * grad_y, y = leaky_relu(x, alpha)."""
    return _backward("leaky_relu", check_alpha(alpha), grad_y, y)


def activate(name: str | None, x: Array, alpha: float, *, out: Array | None = None) -> Array:
    """activation `name` (functional.check_activation's names; None is the identity) of x, into
    `out` when given (out=x: in place)."""
    if name is None:
        return x
    if name == "relu":
        return relu(x, out=out)
    return _forward(name, alpha, x, out)


def gradient(name: str | None, grad_y: Array, y: Array, alpha: float) -> Array:
    """grad_y through activation `name` whose output was y."""
    if name == "relu":
        return relu_backward(grad_y, y)
    if name is not None:
        return _backward(name, alpha, grad_y, y)
    return grad_y
