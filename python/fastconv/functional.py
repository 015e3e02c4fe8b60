"""The functional API (see docs/api.md): validation in one place, then routing to a backend.

Every public function checks its arguments before any pointer reaches C++: wrong types,
dtypes, ranks, shapes, channel counts, devices and hyper-parameters raise TypeError/ValueError
naming the argument and the shapes. Non-contiguous inputs are copied to contiguous ones.
NumPy arrays run on the CPU kernels (fastconv._cpu), CuPy arrays on the CUDA kernels.
"""
from __future__ import annotations

import functools
import math
import numbers

import numpy as np

from . import _backend_cpu
from ._arrays import is_cupy
from ._backend import Backend
from ._shapes import check_layout, pair, window_output
from ._spec import Conv2dSpec, Pool2dSpec

__all__ = [
    "conv2d", "conv2d_backward", "conv2d_backward_data", "conv2d_backward_weight",
    "max_pool2d", "max_pool2d_backward", "relu", "relu_backward",
    "linear", "linear_backward", "linear_backward_data", "linear_backward_weight",
]

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_INDEX_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))


# ----------------------------------------------------------------------------- array checks

_OPTIONAL_ARRAYS = ("bias", "out", "gamma", "beta", "running_mean", "running_var")


def _backend(**arrays) -> Backend:
    """The backend of a call's arrays (all NumPy or all CuPy), else TypeError/ValueError naming
    the argument. Only the optional arrays (_OPTIONAL_ARRAYS) may be None."""
    kinds = {}
    for name, a in arrays.items():
        if a is None:
            if name in _OPTIONAL_ARRAYS:
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
        from . import _backend_cuda  # noqa: PLC0415

        return _backend_cuda.backend()
    return _backend_cpu.CPU


def _float_dtype(name, a):
    if a.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{name} has dtype {a.dtype}; fastconv supports float32 and float64")
    return a.dtype


def _same_dtype(**arrays):
    """All arrays share one float dtype; returns it."""
    dtypes = {name: _float_dtype(name, a) for name, a in arrays.items() if a is not None}
    if len(set(dtypes.values())) > 1:
        listing = ", ".join(f"{n} is {d}" for n, d in dtypes.items())
        raise TypeError(f"mixed dtypes in one call ({listing}); cast them to one of float32/float64")
    return next(iter(dtypes.values()))


def _check_ndim(name, a, ndim, layout_axes):
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D {layout_axes}, got shape {tuple(a.shape)}")
    if 0 in a.shape:
        raise ValueError(f"{name} {layout_axes} has an empty dimension: shape {tuple(a.shape)}")


def _shape4(name, shape):
    if (not isinstance(shape, (tuple, list)) or len(shape) != 4
            or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in shape)):
        raise ValueError(f"{name} must be a tuple of 4 positive ints, got {shape!r}")
    return tuple(int(v) for v in shape)


def _axes(layout, what):
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
LEAKY_RELU_SLOPE = 0.01   # PyTorch's default; the layers use Keras' slopes (activations.py)


def check_activation(activation, where="activation"):
    """None for None / "linear", else the name when it is one of ACTIVATIONS (else ValueError)."""
    if activation is None or activation == "linear":
        return None
    if activation not in ACTIVATIONS:
        raise ValueError(f"{where} must be None, 'linear' or one of {', '.join(map(repr, ACTIVATIONS))}, "
                         f"got {activation!r}")
    return activation


def check_alpha(alpha):
    """alpha (leaky_relu's negative slope) as a float when it is a finite number >= 0 (else
    ValueError): then y > 0 exactly where x > 0, so the gradient can be read from y."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not math.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha (leaky_relu's negative slope) must be a finite number >= 0, got {alpha!r}")
    return float(alpha)


def check_alpha_fits(alpha, dtype):
    """alpha (check_alpha's float) must stay finite in the arrays' dtype: 1e300 becomes inf in
    float32, and 0 * inf would make leaky_relu(0) NaN."""
    dtype = np.dtype(dtype)
    with np.errstate(over="ignore"):
        finite = np.isfinite(dtype.type(alpha))
    if not finite:
        raise ValueError(f"alpha (leaky_relu's negative slope) {alpha!r} overflows {dtype.name} "
                         f"(at most {float(np.finfo(dtype).max):.7g})")


# ----------------------------------------------------------------------------- specs

def _plain(v):
    """Exactly an int, str or None, or a tuple of those: values whose equality means the same
    hyper-parameter (True == 1 and 1.0 == 1 must not share a cached spec: they are errors)."""
    return type(v) in (int, str) or v is None or (type(v) is tuple and all(map(_plain, v)))


def _cached(spec_fn):
    """spec_fn memoized on its arguments: a training loop asks for the same few specs every step,
    and working one out (padding rules, output sizes, checks) costs more than a small kernel.
    Other argument types take the uncached path; errors are never cached."""
    cached = functools.lru_cache(maxsize=512, typed=True)(spec_fn)

    @functools.wraps(spec_fn)
    def spec(*args):
        if all(_plain(a) or type(a) in (bool, float) for a in args):
            return cached(*args)
        return spec_fn(*args)
    return spec


@_cached
def _conv_spec(x_shape, w_shape, stride, padding, dilation, layout, activation=None, alpha=0.0) -> Conv2dSpec:
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
            f"x has {C} input channels but weight expects {Cw}: x {tuple(x_shape)} {_axes(layout, 'x')}, "
            f"weight {tuple(w_shape)} {_axes(layout, 'w')}")
    sh, sw = pair(stride, "stride")
    dh, dw = pair(dilation, "dilation")
    (P, Q), (pt, pb, pl, pr) = window_output((H, W), (R, S), (sh, sw), padding, (dh, dw))
    if P < 1 or Q < 1:
        raise ValueError(
            f"output size {P}x{Q} < 1: x {tuple(x_shape)}, weight {tuple(w_shape)}, stride {(sh, sw)}, "
            f"padding {(pt, pb, pl, pr)}, dilation {(dh, dw)} (the dilated kernel is larger than the padded input)")
    _check_extents(("padding", "padded input", H + pt + pb), ("padding", "padded input", W + pl + pr),
                   ("dilation", "dilated kernel", dh * (R - 1) + 1), ("dilation", "dilated kernel", dw * (S - 1) + 1))
    sh, sw, dh, dw = _canonical(P, sh), _canonical(Q, sw), _canonical(R, dh), _canonical(S, dw)
    return Conv2dSpec(N, C, H, W, K, R, S, P, Q, (sh, sw), (pt, pb, pl, pr), (dh, dw), layout, activation,
                      alpha if activation == "leaky_relu" else 0.0)


# Padded inputs and dilated kernels beyond this many rows or columns are rejected: no real
# layer comes near, and every index product in the kernels then stays far from 64-bit overflow.
_MAX_EXTENT = 2**31 - 1


def _check_extents(*extents):
    """(argument, what it sizes, rows or columns) triples, each at most _MAX_EXTENT."""
    for name, what, extent in extents:
        if extent > _MAX_EXTENT:
            raise ValueError(f"{name} too large: the {what} would span {extent} rows or columns "
                             f"(at most {_MAX_EXTENT})")


def _canonical(size, step):
    """A stride of an output axis with one position, or a dilation of a one-tap kernel axis, has
    no effect: it becomes 1, so no kernel sizes a buffer by it (stride=50000 on an 8x8 image)."""
    return 1 if size == 1 else step


@_cached
def _pool_spec(x_shape, kernel_size, stride, padding, layout) -> Pool2dSpec:
    if layout == "NCHW":
        N, C, H, W = x_shape
    else:
        N, H, W, C = x_shape
    R, S = pair(kernel_size, "kernel_size")
    sh, sw = (R, S) if stride is None else pair(stride, "stride")
    (P, Q), (pt, pb, pl, pr) = window_output((H, W), (R, S), (sh, sw), padding)
    if max(pt, pb) >= R or max(pl, pr) >= S:
        raise ValueError(
            f"padding {(pt, pb, pl, pr)} must be smaller than kernel_size {(R, S)} on every side "
            f"(a window made only of padding has no input cell)")
    _check_extents(("padding", "padded input", H + pt + pb), ("padding", "padded input", W + pl + pr),
                   ("kernel_size", "kernel", R), ("kernel_size", "kernel", S))
    if P < 1 or Q < 1:
        raise ValueError(
            f"output size {P}x{Q} < 1: x {tuple(x_shape)}, kernel_size {(R, S)}, stride {(sh, sw)}, "
            f"padding {(pt, pb, pl, pr)}")
    sh, sw = _canonical(P, sh), _canonical(Q, sw)
    return Pool2dSpec(N, C, H, W, R, S, P, Q, (sh, sw), (pt, pb, pl, pr), layout)


def _flag(name, value):
    """A yes/no argument: True/False (or NumPy's bool), never an array or other object."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
    return bool(value)


def _check_grad_y(grad_y, expected_shape, axes):
    if tuple(grad_y.shape) != tuple(expected_shape):
        raise ValueError(
            f"grad_y has shape {tuple(grad_y.shape)} but the forward output is {tuple(expected_shape)} {axes}")


# ----------------------------------------------------------------------------- convolution

def conv2d(x, weight, bias=None, *, stride=1, padding=0, dilation=1, layout="NCHW", activation=None,
           alpha=LEAKY_RELU_SLOPE):
    """2-D convolution (cross-correlation, like PyTorch and Keras).

    NCHW: x (N, C, H, W), weight (K, C, R, S) -> y (N, K, P, Q).
    NHWC: x (N, H, W, C), weight (R, S, C, K) -> y (N, P, Q, K).
    `activation` ("relu", "sigmoid", "tanh", "leaky_relu" with slope `alpha`) is applied in the
    kernel's epilogue, fused with the bias: y is written once.
    """
    layout = check_layout(layout)
    be = _backend(x=x, weight=weight, bias=bias)
    _same_dtype(x=x, weight=weight, bias=bias)
    _check_ndim("x", x, 4, _axes(layout, "x"))
    _check_ndim("weight", weight, 4, _axes(layout, "w"))
    activation = check_activation(activation)
    spec = _conv_spec(x.shape, weight.shape, stride, padding, dilation, layout, activation, check_alpha(alpha))
    check_alpha_fits(spec.alpha, x.dtype)
    if bias is not None and tuple(bias.shape) != (spec.K,):
        raise ValueError(f"bias must have shape ({spec.K},) (one per output channel), got {tuple(bias.shape)}")
    return be.conv2d_forward(spec, be.contiguous(x), be.contiguous(weight),
                             None if bias is None else be.contiguous(bias))


def conv2d_backward_data(grad_y, weight, x_shape, *, stride=1, padding=0, dilation=1, layout="NCHW"):
    """Gradient of conv2d with respect to its input: grad_y, weight -> grad_x of shape x_shape."""
    layout = check_layout(layout)
    be = _backend(grad_y=grad_y, weight=weight)
    _same_dtype(grad_y=grad_y, weight=weight)
    _check_ndim("grad_y", grad_y, 4, _axes(layout, "y"))
    _check_ndim("weight", weight, 4, _axes(layout, "w"))
    spec = _conv_spec(_shape4("x_shape", x_shape), weight.shape, stride, padding, dilation, layout)
    _check_grad_y(grad_y, spec.y_shape, _axes(layout, "y"))
    return be.conv2d_backward_data(spec, be.contiguous(grad_y), be.contiguous(weight))


def conv2d_backward_weight(grad_y, x, weight_shape, *, stride=1, padding=0, dilation=1, layout="NCHW",
                           bias=True):
    """Gradient of conv2d with respect to weight (and bias): -> (grad_weight, grad_bias or None)."""
    layout = check_layout(layout)
    be = _backend(grad_y=grad_y, x=x)
    _same_dtype(grad_y=grad_y, x=x)
    _check_ndim("grad_y", grad_y, 4, _axes(layout, "y"))
    _check_ndim("x", x, 4, _axes(layout, "x"))
    spec = _conv_spec(x.shape, _shape4("weight_shape", weight_shape), stride, padding, dilation, layout)
    _check_grad_y(grad_y, spec.y_shape, _axes(layout, "y"))
    return be.conv2d_backward_weight(spec, be.contiguous(grad_y), be.contiguous(x), _flag("bias", bias))


def conv2d_backward(grad_y, x, weight, *, stride=1, padding=0, dilation=1, layout="NCHW", bias=True):
    """All gradients of conv2d: -> (grad_x, grad_weight, grad_bias or None)."""
    layout = check_layout(layout)
    be = _backend(grad_y=grad_y, x=x, weight=weight)
    _same_dtype(grad_y=grad_y, x=x, weight=weight)
    _check_ndim("grad_y", grad_y, 4, _axes(layout, "y"))
    _check_ndim("x", x, 4, _axes(layout, "x"))
    _check_ndim("weight", weight, 4, _axes(layout, "w"))
    spec = _conv_spec(x.shape, weight.shape, stride, padding, dilation, layout)
    _check_grad_y(grad_y, spec.y_shape, _axes(layout, "y"))
    with_bias = _flag("bias", bias)
    gy = be.contiguous(grad_y)
    gx = be.conv2d_backward_data(spec, gy, be.contiguous(weight))
    gw, gb = be.conv2d_backward_weight(spec, gy, be.contiguous(x), with_bias)
    return gx, gw, gb


# ----------------------------------------------------------------------------- pooling

def max_pool2d(x, kernel_size=2, *, stride=None, padding=0, layout="NCHW"):
    """Max pooling -> (y, indices). indices (int64, y's shape) holds the flat h*W+w of each
    winner inside its (n, c) plane; ties go to the first element, padded cells never win."""
    layout = check_layout(layout)
    be = _backend(x=x)
    _float_dtype("x", x)
    _check_ndim("x", x, 4, _axes(layout, "x"))
    spec = _pool_spec(x.shape, kernel_size, stride, padding, layout)
    return be.max_pool2d_forward(spec, be.contiguous(x))


def max_pool2d_backward(grad_y, indices, x_shape, kernel_size=2, *, stride=None, padding=0, layout="NCHW"):
    """Gradient of max_pool2d: scatters grad_y to the winners recorded in indices."""
    layout = check_layout(layout)
    be = _backend(grad_y=grad_y, indices=indices)
    _float_dtype("grad_y", grad_y)
    if indices.dtype not in _INDEX_DTYPES:
        raise TypeError(f"indices has dtype {indices.dtype}; expected int32 or int64 (from max_pool2d)")
    spec = _pool_spec(_shape4("x_shape", x_shape), kernel_size, stride, padding, layout)
    _check_grad_y(grad_y, spec.y_shape, _axes(layout, "pool_y"))
    if tuple(indices.shape) != spec.y_shape:
        raise ValueError(f"indices has shape {tuple(indices.shape)} but grad_y has {tuple(grad_y.shape)}")
    idx = be.contiguous(indices)
    if idx.dtype != np.int64:
        idx = idx.astype(np.int64)
    return be.max_pool2d_backward(spec, be.contiguous(grad_y), idx)


# ----------------------------------------------------------------------------- relu

def _elementwise_args(x, out):
    """The backend of an elementwise forward call, after checking x and out (None, or an array of
    x's shape and dtype, C-contiguous and writeable; out=x computes in place)."""
    be = _backend(x=x, out=out)
    _float_dtype("x", x)
    if out is not None:
        if out.shape != x.shape or out.dtype != x.dtype:
            raise ValueError(f"out must match x: x {tuple(x.shape)} {x.dtype}, out {tuple(out.shape)} {out.dtype}")
        if not out.flags.c_contiguous:
            raise ValueError("out must be C-contiguous")
        if not out.flags.writeable:
            raise ValueError("out is read-only")
    return be


def _elementwise_grad_args(grad_y, y):
    """The backend of an elementwise backward call, after checking that grad_y and y match."""
    be = _backend(grad_y=grad_y, y=y)
    _same_dtype(grad_y=grad_y, y=y)
    if tuple(grad_y.shape) != tuple(y.shape):
        raise ValueError(f"grad_y has shape {tuple(grad_y.shape)} but y has {tuple(y.shape)}")
    return be


def relu(x, *, out=None):
    """max(x, 0) elementwise (NaN propagates). `out=x` computes in place."""
    be = _elementwise_args(x, out)
    return be.relu_forward(be.contiguous(x), out)


def relu_backward(grad_y, y):
    """grad_y where y > 0, else 0."""
    be = _elementwise_grad_args(grad_y, y)
    return be.relu_backward(be.contiguous(grad_y), be.contiguous(y))


# ----------------------------------------------------------------------------- linear (dense)

_X2, _W2, _Y2 = "(N, in_features)", "(out_features, in_features)", "(N, out_features)"


def _check_linear(x, weight):
    _check_ndim("x", x, 2, _X2)
    _check_ndim("weight", weight, 2, _W2)
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"x has {x.shape[1]} features but weight expects {weight.shape[1]}: "
                         f"x {tuple(x.shape)} {_X2}, weight {tuple(weight.shape)} {_W2}")


def linear(x, weight, bias=None, *, activation=None, alpha=LEAKY_RELU_SLOPE):
    """Dense layer, PyTorch's convention: x (N, in), weight (out, in), bias (out,) ->
    y = x @ weight.T + bias, (N, out). `activation` ("relu", "sigmoid", "tanh", "leaky_relu" with
    slope `alpha`) is fused into the CPU kernel's epilogue (on CuPy arrays it runs in place on y
    after cuBLAS). A transposed weight view (e.g. a Keras kernel (in, out) passed as kernel.T) is
    read in place."""
    be = _backend(x=x, weight=weight, bias=bias)
    _same_dtype(x=x, weight=weight, bias=bias)
    _check_linear(x, weight)
    activation = check_activation(activation)
    alpha = check_alpha(alpha)
    if activation == "leaky_relu":
        check_alpha_fits(alpha, x.dtype)
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"bias must have shape ({weight.shape[0]},) (one per output feature), "
                         f"got {tuple(bias.shape)}")
    return be.matmul(x, weight.T, None if bias is None else be.contiguous(bias), activation, alpha)


def linear_backward_data(grad_y, weight):
    """Gradient of linear with respect to x: grad_y (N, out), weight (out, in) -> grad_x (N, in)."""
    be = _backend(grad_y=grad_y, weight=weight)
    _same_dtype(grad_y=grad_y, weight=weight)
    _check_ndim("weight", weight, 2, _W2)
    _check_ndim("grad_y", grad_y, 2, _Y2)
    _check_grad_y(grad_y, (grad_y.shape[0], weight.shape[0]), _Y2)
    return be.matmul(grad_y, weight)


def linear_backward_weight(grad_y, x, *, bias=True):
    """Gradient of linear with respect to weight (and bias): grad_y (N, out), x (N, in) ->
    (grad_weight (out, in), grad_bias (out,) or None)."""
    be = _backend(grad_y=grad_y, x=x)
    _same_dtype(grad_y=grad_y, x=x)
    _check_ndim("x", x, 2, _X2)
    _check_ndim("grad_y", grad_y, 2, _Y2)
    _check_grad_y(grad_y, (x.shape[0], grad_y.shape[1]), _Y2)
    return be.matmul(grad_y.T, x), (be.column_sums(grad_y) if _flag("bias", bias) else None)


def linear_backward(grad_y, x, weight, *, bias=True):
    """All gradients of linear: -> (grad_x, grad_weight, grad_bias or None)."""
    be = _backend(grad_y=grad_y, x=x, weight=weight)
    _same_dtype(grad_y=grad_y, x=x, weight=weight)
    _check_linear(x, weight)
    _check_ndim("grad_y", grad_y, 2, _Y2)
    _check_grad_y(grad_y, (x.shape[0], weight.shape[0]), _Y2)
    return (be.matmul(grad_y, weight), be.matmul(grad_y.T, x),
            be.column_sums(grad_y) if _flag("bias", bias) else None)


def _dense_kernel_grad(grad_y, x):
    """x.T @ grad_y: the gradient of a Keras Dense kernel (in, out), in that layout (layers.Dense)."""
    return _backend(grad_y=grad_y, x=x).matmul(x.T, grad_y)


def _column_sums(g):
    return _backend(g=g).column_sums(g)
