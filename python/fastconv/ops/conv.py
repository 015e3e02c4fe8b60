"""2-D convolution and its backward passes (docs/api.md): the arguments checked and turned into a
cached Conv2dSpec, then the backend of the arrays (CPU kernels for NumPy, CUDA for CuPy) runs it.
"""

from __future__ import annotations

from .._typing import Array, IntPair, Padding, Shape
from ._checks import (
    LEAKY_RELU_SLOPE,
    axes,
    backend_for,
    cached,
    canonical,
    check_activation,
    check_alpha,
    check_alpha_fits,
    check_extents,
    check_grad_y,
    check_ndim,
    flag,
    same_dtype,
    shape4,
)
from ._shapes import check_layout, pair, window_output
from ._spec import Conv2dSpec

__all__ = ["conv2d", "conv2d_backward", "conv2d_backward_data", "conv2d_backward_weight"]


@cached
def conv_spec(
    x_shape: Shape,
    w_shape: Shape,
    stride: IntPair,
    padding: Padding,
    dilation: IntPair,
    layout: str,
    activation: str | None = None,
    alpha: float = 0.0,
) -> Conv2dSpec:
    """Shapes as given (in `layout`) + hyper-parameters -> a validated Conv2dSpec. activation
    (check_activation's result) and alpha (check_alpha's) are the epilogue of the forward pass."""
    if layout == "NCHW":
        N, C, H, W = x_shape
        K, Cw, R, S = w_shape
    else:
        N, H, W, C = x_shape
        R, S, Cw, K = w_shape
    if C != Cw:
        raise ValueError(
            f"x has {C} input channels but weight expects {Cw}: x {tuple(x_shape)} {axes(layout, 'x')}, "
            f"weight {tuple(w_shape)} {axes(layout, 'w')}"
        )
    sh, sw = pair(stride, "stride")
    dh, dw = pair(dilation, "dilation")
    (P, Q), (pt, pb, pl, pr) = window_output((H, W), (R, S), (sh, sw), padding, (dh, dw))
    if P < 1 or Q < 1:
        raise ValueError(
            f"output size {P}x{Q} < 1: x {tuple(x_shape)}, weight {tuple(w_shape)}, stride {(sh, sw)}, "
            f"padding {(pt, pb, pl, pr)}, dilation {(dh, dw)} (the dilated kernel is larger than the padded input)"
        )
    check_extents(
        ("padding", "padded input", H + pt + pb),
        ("padding", "padded input", W + pl + pr),
        ("dilation", "dilated kernel", dh * (R - 1) + 1),
        ("dilation", "dilated kernel", dw * (S - 1) + 1),
    )
    sh, sw, dh, dw = canonical(P, sh), canonical(Q, sw), canonical(R, dh), canonical(S, dw)
    return Conv2dSpec(
        N,
        C,
        H,
        W,
        K,
        R,
        S,
        P,
        Q,
        (sh, sw),
        (pt, pb, pl, pr),
        (dh, dw),
        layout,
        activation,
        alpha if activation == "leaky_relu" else 0.0,
    )


# ----------------------------------------------------------------------------- convolution


def conv2d(
    x: Array,
    weight: Array,
    bias: Array | None = None,
    *,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    layout: str = "NCHW",
    activation: str | None = None,
    alpha: float = LEAKY_RELU_SLOPE,
) -> Array:
    """2-D convolution (cross-correlation, like PyTorch and Keras).

    NCHW: x (N, C, H, W), weight (K, C, R, S) -> y (N, K, P, Q).
    NHWC: x (N, H, W, C), weight (R, S, C, K) -> y (N, P, Q, K).
    `activation` ("relu", "sigmoid", "tanh", "leaky_relu" with slope `alpha`) is applied in the
    kernel's epilogue, fused with the bias: y is written once.
    """
    layout = check_layout(layout)
    be = backend_for(x=x, weight=weight, bias=bias)
    same_dtype(x=x, weight=weight, bias=bias)
    check_ndim("x", x, 4, axes(layout, "x"))
    check_ndim("weight", weight, 4, axes(layout, "w"))
    activation = check_activation(activation)
    spec = conv_spec(x.shape, weight.shape, stride, padding, dilation, layout, activation, check_alpha(alpha))
    check_alpha_fits(spec.alpha, x.dtype)
    if bias is not None and tuple(bias.shape) != (spec.K,):
        raise ValueError(f"bias must have shape ({spec.K},) (one per output channel), got {tuple(bias.shape)}")
    return be.conv2d_forward(
        spec, be.contiguous(x), be.contiguous(weight), None if bias is None else be.contiguous(bias)
    )


def conv2d_backward_data(
    grad_y: Array,
    weight: Array,
    x_shape: Shape,
    *,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    layout: str = "NCHW",
) -> Array:
    """Gradient of conv2d with respect to its input: grad_y, weight -> grad_x of shape x_shape."""
    layout = check_layout(layout)
    be = backend_for(grad_y=grad_y, weight=weight)
    same_dtype(grad_y=grad_y, weight=weight)
    check_ndim("grad_y", grad_y, 4, axes(layout, "y"))
    check_ndim("weight", weight, 4, axes(layout, "w"))
    spec = conv_spec(shape4("x_shape", x_shape), weight.shape, stride, padding, dilation, layout)
    check_grad_y(grad_y, spec.y_shape, axes(layout, "y"))
    return be.conv2d_backward_data(spec, be.contiguous(grad_y), be.contiguous(weight))


def conv2d_backward_weight(
    grad_y: Array,
    x: Array,
    weight_shape: Shape,
    *,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    layout: str = "NCHW",
    bias: bool = True,
) -> tuple[Array, Array | None]:
    """Gradient of conv2d with respect to weight (and bias): -> (grad_weight, grad_bias or None)."""
    layout = check_layout(layout)
    be = backend_for(grad_y=grad_y, x=x)
    same_dtype(grad_y=grad_y, x=x)
    check_ndim("grad_y", grad_y, 4, axes(layout, "y"))
    check_ndim("x", x, 4, axes(layout, "x"))
    spec = conv_spec(x.shape, shape4("weight_shape", weight_shape), stride, padding, dilation, layout)
    check_grad_y(grad_y, spec.y_shape, axes(layout, "y"))
    return be.conv2d_backward_weight(spec, be.contiguous(grad_y), be.contiguous(x), flag("bias", bias))


def conv2d_backward(
    grad_y: Array,
    x: Array,
    weight: Array,
    *,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    layout: str = "NCHW",
    bias: bool = True,
) -> tuple[Array, Array, Array | None]:
    """All gradients of conv2d: -> (grad_x, grad_weight, grad_bias or None)."""
    layout = check_layout(layout)
    be = backend_for(grad_y=grad_y, x=x, weight=weight)
    same_dtype(grad_y=grad_y, x=x, weight=weight)
    check_ndim("grad_y", grad_y, 4, axes(layout, "y"))
    check_ndim("x", x, 4, axes(layout, "x"))
    check_ndim("weight", weight, 4, axes(layout, "w"))
    spec = conv_spec(x.shape, weight.shape, stride, padding, dilation, layout)
    check_grad_y(grad_y, spec.y_shape, axes(layout, "y"))
    with_bias = flag("bias", bias)
    gy = be.contiguous(grad_y)
    gx = be.conv2d_backward_data(spec, gy, be.contiguous(weight))
    gw, gb = be.conv2d_backward_weight(spec, gy, be.contiguous(x), with_bias)
    return gx, gw, gb
