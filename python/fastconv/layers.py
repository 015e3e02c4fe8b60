"""Keras-style layers for NumPy (or CuPy) training loops, built on the functional API.

Every layer has
    forward(x, training=True) -> y       keeps only what backward needs
    backward(grad_y) -> grad_x           fills .grads; returns None when .needs_input_grad is False
    params / grads                       dicts name -> array (grads filled by backward)
    trainable                            False freezes the layer (Keras): backward computes no
                                         weight gradient and parameters() leaves it out
    build(input_shape)                   input_shape without the batch axis; called on the first
                                         forward when not given (input channels are inferred)

    conv = Conv2D(32, 3, padding="same", activation="relu")      # NHWC, kernel (R, S, C, K)
    y = conv.forward(x)                                          # x (N, H, W, C) float32
    gx = conv.backward(gy)                                       # conv.grads["kernel"], ["bias"]

Weights follow the array layout the kernels use: `data_format="channels_last"` (default, NHWC)
holds the kernel as (R, S, C, K) like Keras, `"channels_first"` (NCHW) as (K, C, R, S) like
PyTorch. Files written by `Sequential.save_weights` always hold the Keras order (see models.py).

`layer(x)` is the inference call (`training=False`: Dropout off), as in Keras; `forward(x)` trains.

Layers work unchanged on CuPy arrays: array operations go through the module of the input
(NumPy or CuPy, found without importing CuPy unless the input is a CuPy array) and parameters
created at the first call live where that input lives (`Layer.to("cupy")` moves them).
"""
from __future__ import annotations

import math
import re
import warnings

import numpy as np

from . import functional as F
from . import regularizers
from ._arrays import array_module, module_named, to_numpy
from ._shapes import pair, window_output

__all__ = [
    "Layer", "Conv2D", "MaxPooling2D", "ReLU", "Flatten", "Dense", "Dropout", "Softmax",
    "SoftmaxCrossEntropy", "array_module",
]


# ----------------------------------------------------------------------------- helpers

def _snake(name):
    """Keras' automatic names: Conv2D -> conv2d, MaxPooling2D -> max_pooling2d, ReLU -> re_lu."""
    return re.sub(r"(?<=[a-z])([A-Z])", r"_\1", name).lower()


_FORMATS = {"channels_last": "NHWC", "channels_first": "NCHW"}


def _layout(data_format):
    if data_format not in _FORMATS:
        raise ValueError(f"data_format must be 'channels_last' or 'channels_first', got {data_format!r}")
    return _FORMATS[data_format]


def _keras_padding(padding, name="padding"):
    """'valid'/'same' (any case) as in Keras; ints and pairs are passed to the functional API."""
    if isinstance(padding, str):
        if padding.lower() not in ("valid", "same"):
            raise ValueError(f"{name} must be 'valid' or 'same', got {padding!r}")
        return padding.lower()
    return padding


def _check_backward(layer, grad_y, y_shape):
    """backward needs a forward(training=True) first and grad_y of the output's shape."""
    name = layer.name or type(layer).__name__
    if y_shape is None:
        raise RuntimeError(f"{name}.backward called before forward(training=True)")
    if tuple(getattr(grad_y, "shape", ())) != tuple(y_shape):
        raise ValueError(f"{name}.backward: grad_y must have the output's shape {tuple(y_shape)}, got "
                         f"{tuple(getattr(grad_y, 'shape', ())) if hasattr(grad_y, 'shape') else type(grad_y).__name__}")


def _float_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


class ParamRef:
    """One array of a layer as optimizers see it: .value (updated in place), .grad, .trainable."""

    __slots__ = ("name", "layer", "key")

    def __init__(self, name, layer, key):
        self.name, self.layer, self.key = name, layer, key

    @property
    def value(self):
        return self.layer.params[self.key]

    @property
    def grad(self):
        return self.layer.grads.get(self.key)

    @property
    def trainable(self):
        return self.layer.trainable

    def __repr__(self):
        return f"ParamRef({self.name!r}, shape={tuple(self.value.shape)})"


# ----------------------------------------------------------------------------- base class

class Layer:
    """Base class: parameters, naming, device/dtype moves. Subclasses implement _build (create
    params from the input shape), output_shape, forward and backward."""

    def __init__(self, *, name=None, input_shape=None, dtype="float32", trainable=True):
        self.name = name
        self.params: dict = {}
        self.grads: dict = {}
        self.needs_input_grad = True       # Sequential clears it up to the first trainable layer
        self.trainable = trainable
        self.built = False
        self.input_shape = None if input_shape is None else tuple(int(d) for d in input_shape)
        self.dtype = _float_dtype(dtype)

    @property
    def trainable(self):
        """Keras' flag. A frozen layer (False) computes no weight gradient (its .grads stay
        empty), is left out of parameters() so optimizers skip it, and counts as non-trainable
        in summary(); it still passes the input gradient on when a layer below it trains."""
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"trainable must be True or False, got {value!r}")
        self._trainable = bool(value)
        if not self._trainable:
            self.grads = {}

    def _keeps_for_backward(self, training):
        """Whether forward keeps what backward needs: in training, for the input gradient or for
        the weight gradient of a trainable layer."""
        return training and (self.needs_input_grad or (self.trainable and bool(self.params)))

    # -- naming and shapes
    @property
    def default_name(self):
        return _snake(type(self).__name__)

    def build(self, input_shape):
        """Create the parameters for inputs of shape (batch axis excluded) `input_shape`."""
        input_shape = tuple(int(d) for d in input_shape)
        if any(d < 1 for d in input_shape):
            raise ValueError(f"{self.name or type(self).__name__}: input_shape {input_shape} (batch axis "
                             "excluded) has an empty or negative dimension")
        self._build(input_shape)
        self.input_shape = input_shape
        self.built = True
        return self

    def _build(self, input_shape):
        pass

    def output_shape(self, input_shape):
        """Output shape (batch axis excluded) for an input of shape `input_shape`."""
        return tuple(input_shape)

    def _ensure_built(self, x):
        """Build at the first call; keep the parameters where x lives (NumPy or CuPy) and give x
        the parameters' dtype (like Keras, which casts inputs to the layer's dtype). Returns x."""
        if x.dtype.kind not in "fiub":
            raise TypeError(f"{self.name or type(self).__name__}: x has dtype {x.dtype}; layers take real "
                            "numbers (float32/float64, or integers and booleans, cast to the layer's dtype)")
        if not self.built:
            self.build(x.shape[1:])
        if self.params:
            xp = array_module(x)
            if array_module(next(iter(self.params.values()))) is not xp:
                self.to(xp)
            if x.dtype != self.dtype:
                x = x.astype(self.dtype)
        return x

    # -- parameters
    def count_params(self):
        return int(sum(int(np.prod(p.shape)) for p in self.params.values()))

    def parameters(self, prefix=None):
        """ParamRefs of the parameters optimizers update: all of them, none when frozen."""
        return self._refs(prefix) if self.trainable else []

    @property
    def trainable_weights(self):
        return self.parameters()

    @property
    def non_trainable_weights(self):
        return [] if self.trainable else self._refs()

    def _refs(self, prefix=None):
        prefix = self.name or self.default_name if prefix is None else prefix
        return [ParamRef(f"{prefix}/{k}", self, k) for k in self.params]

    def to(self, device):
        """Move the parameters to 'numpy'/'cpu' or 'cupy'/'gpu' (new arrays: rebuild optimizers'
        state afterwards). Returns self."""
        xp = module_named(device)
        for k, p in self.params.items():
            self.params[k] = xp.asarray(to_numpy(p) if xp is np else p)
        self.grads = {}
        return self

    def astype(self, dtype):
        """Cast the parameters (and future initializations) to float32 or float64. Returns self."""
        self.dtype = _float_dtype(dtype)
        for k, p in self.params.items():
            self.params[k] = p.astype(self.dtype)
        self.grads = {}
        return self

    # -- weight penalty (Conv2D, Dense: kernel_regularizer)
    kernel_regularizer = None

    def regularization_loss(self):
        """The kernel penalty (0.0 without a regularizer or when frozen)."""
        r = self.kernel_regularizer
        return r(self.params["kernel"]) if r is not None and self.trainable and self.params else 0.0

    def _regularized(self, kernel_grad):
        r = self.kernel_regularizer
        return kernel_grad + r.gradient(self.params["kernel"]) if r is not None else kernel_grad

    # Conversions to/from the file format of save_weights (Keras order); identity by default.
    def _export(self, key, array):
        return array

    def _import(self, key, array):
        return array

    def __call__(self, x, training=False):
        """layer(x) is inference, as in Keras (Dropout off); forward(x) is the training call."""
        return self.forward(x, training=training)

    def get_config(self):
        """The constructor arguments that rebuild this layer (JSON types; Keras' get_config).
        Weights are not part of it; initializers and seeds are not kept."""
        return {"name": self.name, **self._config()}

    def _config(self):
        return {}

    def _common_config(self):
        return {"dtype": self.dtype.name, "trainable": self.trainable}

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"


# ----------------------------------------------------------------------------- initializers

def _init_kernel(kind, shape, fan_in, fan_out, rng, dtype):
    if callable(kind):
        return np.asarray(kind(shape), dtype=dtype)
    if kind == "glorot_uniform":
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=shape).astype(dtype)
    if kind == "glorot_normal":
        return _truncated_normal(rng, shape, math.sqrt(2.0 / (fan_in + fan_out))).astype(dtype)
    if kind == "he_normal":
        return _truncated_normal(rng, shape, math.sqrt(2.0 / fan_in)).astype(dtype)
    if kind == "he_uniform":
        limit = math.sqrt(6.0 / fan_in)
        return rng.uniform(-limit, limit, size=shape).astype(dtype)
    raise ValueError("kernel_initializer must be 'glorot_uniform', 'glorot_normal', 'he_normal', "
                     f"'he_uniform' or a callable(shape), got {kind!r}")


def _truncated_normal(rng, shape, stddev):
    """Keras' truncated normal: draws beyond 2 std are redrawn; the std is corrected for the cut."""
    std = stddev / 0.87962566103423978
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2.0
    return out * std


# ----------------------------------------------------------------------------- Conv2D

class Conv2D(Layer):
    """2-D convolution with Keras arguments; `activation="relu"` runs fused in the kernel.

    channels_last: x (N, H, W, C), kernel (R, S, C, K) -> y (N, P, Q, K)
    channels_first: x (N, C, H, W), kernel (K, C, R, S) -> y (N, K, P, Q)
    bias (K,). Keeps x (for the weight gradient) and, with ReLU, y (for the ReLU gradient).
    When needs_input_grad is False (the first layer of a Sequential) backward computes only the
    weight and bias gradients; when trainable is False, only the input gradient.
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", dilation_rate=1,
                 activation=None, use_bias=True, data_format="channels_last", input_shape=None,
                 kernel_initializer="glorot_uniform", seed=None, *, kernel_regularizer=None, name=None,
                 dtype="float32", trainable=True):
        super().__init__(name=name, input_shape=input_shape, dtype=dtype, trainable=trainable)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or filters < 1:
            raise ValueError(f"filters must be a positive int, got {filters!r}")
        if activation not in (None, "linear", "relu"):
            raise ValueError(f"Conv2D activation must be None, 'linear' or 'relu', got {activation!r}")
        self.filters = int(filters)
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.strides = pair(strides, "strides")
        self.dilation_rate = pair(dilation_rate, "dilation_rate")
        self.padding = _keras_padding(padding)
        self.activation = "relu" if activation == "relu" else None
        self.use_bias = bool(use_bias)
        self.data_format = data_format
        self.layout = _layout(data_format)
        self.kernel_initializer = kernel_initializer
        self.seed = seed
        self._x = self._y = None
        self.relu_applied_once = False
        if self.input_shape is not None:
            self.build(self.input_shape)

    def _channels_hw(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"Conv2D expects inputs of rank 4 (batch + 3 axes), got input shape "
                             f"{(None, *input_shape)}")
        if self.layout == "NHWC":
            return input_shape[2], input_shape[:2]
        return input_shape[0], input_shape[1:]

    def _build(self, input_shape):
        C, _ = self._channels_hw(input_shape)
        R, S = self.kernel_size
        K = self.filters
        rng = np.random.default_rng(self.seed)
        kernel = _init_kernel(self.kernel_initializer, (R, S, C, K), R * S * C, R * S * K, rng, self.dtype)
        self.params = {"kernel": self._import("kernel", kernel)}
        if self.use_bias:
            self.params["bias"] = np.zeros(K, self.dtype)

    def output_shape(self, input_shape):
        _, (H, W) = self._channels_hw(tuple(input_shape))
        (R, S), (sh, sw), (dh, dw) = self.kernel_size, self.strides, self.dilation_rate
        (P, Q), _ = window_output((H, W), (R, S), (sh, sw), self.padding, (dh, dw))
        if P < 1 or Q < 1:
            raise ValueError(f"{self.name or 'Conv2D'}: output size {P}x{Q} < 1 for input shape "
                             f"{(None, *input_shape)} with kernel {(R, S)}, strides {(sh, sw)}, "
                             f"padding {self.padding!r}, dilation {(dh, dw)}")
        return (P, Q, self.filters) if self.layout == "NHWC" else (self.filters, P, Q)

    def _export(self, key, array):            # (K, C, R, S) -> Keras (R, S, C, K)
        return array.transpose(2, 3, 1, 0) if key == "kernel" and self.layout == "NCHW" else array

    def _import(self, key, array):            # Keras (R, S, C, K) -> (K, C, R, S)
        if key == "kernel" and self.layout == "NCHW":
            return np.ascontiguousarray(array.transpose(3, 2, 0, 1))
        return array

    def _kw(self):
        return dict(stride=self.strides, padding=self.padding, dilation=self.dilation_rate,
                    layout=self.layout)

    def _config(self):
        return {"filters": self.filters, "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "dilation_rate": self.dilation_rate, "activation": self.activation,
                "use_bias": self.use_bias, "data_format": self.data_format,
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer), **self._common_config()}

    def forward(self, x, training=True):
        x = self._ensure_built(x)
        y = F.conv2d(x, self.params["kernel"], self.params.get("bias"), activation=self.activation,
                     **self._kw())
        if self._keeps_for_backward(training):
            self._x = x
            self._y = y if self.activation == "relu" else None
        return y

    def backward(self, grad_y):
        if self._x is None:
            raise RuntimeError(f"{self.name or 'Conv2D'}.backward called before forward(training=True)")
        # Sequential sets relu_applied_once when the pool above already applied the ReLU mask
        # (MaxPooling2D.backward); it holds for this one call.
        relu_applied, self.relu_applied_once = self.relu_applied_once, False
        if self._y is not None and not relu_applied:
            grad_y = F.relu_backward(grad_y, self._y)
        kernel = self.params["kernel"]
        self.grads = {}
        if self.trainable:
            gw, gb = F.conv2d_backward_weight(grad_y, self._x, kernel.shape, bias=self.use_bias, **self._kw())
            self.grads["kernel"] = self._regularized(gw)
            if self.use_bias:
                self.grads["bias"] = gb
        gx = None
        if self.needs_input_grad:
            gx = F.conv2d_backward_data(grad_y, kernel, self._x.shape, **self._kw())
        self._x = self._y = None
        return gx


# ----------------------------------------------------------------------------- MaxPooling2D

class MaxPooling2D(Layer):
    """Max pooling; keeps the winners' indices and the input shape (not the input)."""

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format="channels_last",
                 *, name=None, input_shape=None):
        super().__init__(name=name, input_shape=input_shape)
        self.pool_size = pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else pair(strides, "strides")
        self.padding = _keras_padding(padding)
        self.data_format = data_format
        self.layout = _layout(data_format)
        self._indices = self._x_shape = self._y = None
        self.keep_output = False           # set by Sequential when it fuses a ReLU mask (backward)
        self.relu_mask_once = False

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"MaxPooling2D expects inputs of rank 4, got input shape {(None, *input_shape)}")
        H, W = input_shape[:2] if self.layout == "NHWC" else input_shape[1:]
        C = input_shape[2] if self.layout == "NHWC" else input_shape[0]
        (R, S), (sh, sw) = self.pool_size, self.strides
        (P, Q), _ = window_output((H, W), (R, S), (sh, sw), self.padding)
        if P < 1 or Q < 1:
            raise ValueError(f"{self.name or 'MaxPooling2D'}: pooled size {P}x{Q} < 1 for input shape "
                             f"{(None, *input_shape)}, pool_size {(R, S)}, strides {(sh, sw)}")
        return (P, Q, C) if self.layout == "NHWC" else (C, P, Q)

    def _config(self):
        return {"pool_size": self.pool_size, "strides": self.strides, "padding": self.padding,
                "data_format": self.data_format}

    def _kw(self):
        return dict(stride=self.strides, padding=self.padding, layout=self.layout)

    def forward(self, x, training=True):
        x = self._ensure_built(x)
        y, indices = F.max_pool2d(x, self.pool_size, **self._kw())
        if self._keeps_for_backward(training):
            self._indices, self._x_shape = indices, tuple(x.shape)
            self._y = y if self.keep_output else None
        return y

    def backward(self, grad_y):
        """With relu_mask_once set (by Sequential, for this one call; needs keep_output): the layer
        below ends in ReLU, and its gradient mask is applied here, on the pooled output, where it
        is 4x smaller for 2x2 pooling and gives the same values (every window's winner holds the
        pooled value), so that layer skips its own."""
        relu_mask, self.relu_mask_once = self.relu_mask_once, False
        if not self.needs_input_grad:
            return None
        if self._indices is None:
            raise RuntimeError(f"{self.name or 'MaxPooling2D'}.backward called before forward(training=True)")
        if relu_mask:
            if self._y is None:
                raise RuntimeError(f"{self.name or 'MaxPooling2D'}: relu_mask needs keep_output = True")
            grad_y = F.relu_backward(grad_y, self._y)
        gx = F.max_pool2d_backward(grad_y, self._indices, self._x_shape, self.pool_size, **self._kw())
        self._indices = self._x_shape = self._y = None
        return gx


# ----------------------------------------------------------------------------- ReLU, Flatten

class ReLU(Layer):
    """max(x, 0); keeps the output (the gradient is grad_y where y > 0)."""

    def __init__(self, *, name=None, input_shape=None):
        super().__init__(name=name, input_shape=input_shape)
        self._y = None

    def forward(self, x, training=True):
        x = self._ensure_built(x)
        y = F.relu(x)
        if self._keeps_for_backward(training):
            self._y = y
        return y

    def backward(self, grad_y):
        if not self.needs_input_grad:
            return None
        if self._y is None:
            raise RuntimeError(f"{self.name or 'ReLU'}.backward called before forward(training=True)")
        gx = F.relu_backward(grad_y, self._y)
        self._y = None
        return gx


class Flatten(Layer):
    """(N, ...) -> (N, prod(...)) in the array's own order (channels_last: H, W, C like Keras)."""

    def __init__(self, *, name=None, input_shape=None):
        super().__init__(name=name, input_shape=input_shape)
        self._x_shape = None

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x, training=True):
        x = self._ensure_built(x)
        self._x_shape = tuple(x.shape)
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_y):
        if self._x_shape is None:
            raise RuntimeError(f"{self.name or 'Flatten'}.backward called before forward")
        _check_backward(self, grad_y, (self._x_shape[0], int(np.prod(self._x_shape[1:]))))
        return grad_y.reshape(self._x_shape) if self.needs_input_grad else None


# ----------------------------------------------------------------------------- Dense

def _softmax(z, axis=-1):
    xp = array_module(z)
    e = xp.exp(z - z.max(axis=axis, keepdims=True))      # shift by the max: no overflow
    return e / e.sum(axis=axis, keepdims=True)


def _softmax_backward(grad_y, s, axis=-1):
    return s * (grad_y - (grad_y * s).sum(axis=axis, keepdims=True))


def _sigmoid(z):
    """1 / (1 + exp(-z)) without overflow: only exp(-|z|) is taken."""
    xp = array_module(z)
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1, e) / (1 + e)


class Dense(Layer):
    """y = x @ kernel + bias, kernel (in, units) like Keras; activation None, 'relu', 'sigmoid'
    or 'softmax'. All three passes run on fastconv's GEMM kernel (fc.linear), never NumPy's BLAS.

    x (N, in) -> y (N, units). Keeps x (for the kernel gradient) and the activated output.
    """

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 seed=None, *, kernel_regularizer=None, name=None, input_shape=None, dtype="float32",
                 trainable=True):
        super().__init__(name=name, input_shape=input_shape, dtype=dtype, trainable=trainable)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
            raise ValueError(f"units must be a positive int, got {units!r}")
        if activation not in (None, "linear", "relu", "sigmoid", "softmax"):
            raise ValueError("Dense activation must be None, 'linear', 'relu', 'sigmoid' or 'softmax', "
                             f"got {activation!r}")
        self.units = int(units)
        self.activation = None if activation == "linear" else activation
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.seed = seed
        self._x = self._y = None
        if self.input_shape is not None:
            self.build(self.input_shape)

    def _config(self):
        return {"units": self.units, "activation": self.activation, "use_bias": self.use_bias,
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer), **self._common_config()}

    def _build(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(f"Dense expects inputs of shape (N, features), got {(None, *input_shape)}; "
                             "put a Flatten layer before it")
        fan_in = input_shape[0]
        rng = np.random.default_rng(self.seed)
        self.params = {"kernel": _init_kernel(self.kernel_initializer, (fan_in, self.units), fan_in,
                                              self.units, rng, self.dtype)}
        if self.use_bias:
            self.params["bias"] = np.zeros(self.units, self.dtype)

    def output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(f"Dense expects inputs of shape (N, features), got {(None, *input_shape)}; "
                             "put a Flatten layer before it")
        return (self.units,)

    def forward(self, x, training=True):
        x = self._ensure_built(x)
        if x.ndim != 2 or x.shape[1] != self.params["kernel"].shape[0]:
            raise ValueError(f"{self.name or 'Dense'} expects x of shape (N, {self.params['kernel'].shape[0]}), "
                             f"got {tuple(x.shape)}")
        # the kernel (in, units) is the transposed PyTorch weight: read in place, no copy
        y = F.linear(x, self.params["kernel"].T, self.params["bias"] if self.use_bias else None,
                     activation="relu" if self.activation == "relu" else None)
        if self.activation == "sigmoid":
            y = _sigmoid(y)
        elif self.activation == "softmax":
            y = _softmax(y)
        if self._keeps_for_backward(training):
            self._x = x
            self._y = y if self.activation else None
        return y

    def backward(self, grad_y):
        if self._x is None:
            raise RuntimeError(f"{self.name or 'Dense'}.backward called before forward(training=True)")
        if self.activation == "relu":
            grad_y = F.relu_backward(grad_y, self._y)
        elif self.activation == "sigmoid":
            grad_y = grad_y * self._y * (1 - self._y)
        elif self.activation == "softmax":
            grad_y = _softmax_backward(grad_y, self._y)
        self.grads = {}
        if self.trainable:
            self.grads["kernel"] = self._regularized(F._dense_kernel_grad(grad_y, self._x))
            if self.use_bias:
                self.grads["bias"] = F._column_sums(grad_y)
        gx = F.linear_backward_data(grad_y, self.params["kernel"].T) if self.needs_input_grad else None
        self._x = self._y = None
        return gx


# ----------------------------------------------------------------------------- Dropout

class Dropout(Layer):
    """Inverted dropout: in training zeroes each element with probability `rate` and scales the
    rest by 1/(1-rate), so inference (training=False) is the identity. Keeps the scaled mask."""

    def __init__(self, rate, seed=None, *, name=None, input_shape=None):
        super().__init__(name=name, input_shape=input_shape)
        if (isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating))
                or not 0.0 <= float(rate) < 1.0):
            raise ValueError(f"Dropout rate must be a number in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._mask = None
        self._y_shape = None      # the shape of the last training output (backward checks grad_y)

    def _config(self):
        seed = int(self.seed) if isinstance(self.seed, (int, np.integer)) else None   # a Generator is not kept
        return {"rate": self.rate, "seed": seed}

    def forward(self, x, training=True):
        x = self._ensure_built(x)
        if training:
            self._y_shape = tuple(x.shape)
        if not training or self.rate == 0.0:
            self._mask = None
            return x
        xp = array_module(x)
        if xp is np:
            keep = self._rng.random(x.shape) >= self.rate
        else:
            keep = xp.random.random(x.shape) >= self.rate
        self._mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.rate))
        return x * self._mask

    def backward(self, grad_y):
        _check_backward(self, grad_y, self._y_shape)
        if not self.needs_input_grad:
            return None
        return grad_y if self._mask is None else grad_y * self._mask


# ----------------------------------------------------------------------------- softmax and loss

class Softmax(Layer):
    """Softmax over the last axis (numerically stable); keeps the output."""

    def __init__(self, *, name=None, input_shape=None):
        super().__init__(name=name, input_shape=input_shape)
        self._s = None

    def forward(self, x, training=True):
        x = self._ensure_built(x)
        s = _softmax(x)
        if training:
            self._s = s
        return s

    def backward(self, grad_y):
        _check_backward(self, grad_y, None if self._s is None else tuple(self._s.shape))
        return _softmax_backward(grad_y, self._s) if self.needs_input_grad else None


def warn_if_probabilities(logits, who):
    """Warn (once per call site, as Keras does) when logits look like softmax output: every row in
    [0, 1] summing to 1. Softmax then applies twice and the gradients shrink, without an error."""
    if logits.ndim != 2 or logits.shape[1] < 2:
        return
    xp = array_module(logits)
    row_sums = logits.sum(axis=1)
    if bool((logits.min() >= 0) & (logits.max() <= 1) & (xp.abs(row_sums - 1).max() < 1e-3)):
        warnings.warn(f"{who} expects logits, but every row is a probability distribution (the output of a "
                      "softmax?): the softmax would be applied twice. Drop the softmax activation of the "
                      "last layer, or use a loss with from_logits=False.", UserWarning, stacklevel=3)


class SoftmaxCrossEntropy:
    """Mean cross-entropy of softmax(logits) against integer labels (or one-hot/probability rows),
    computed from the logits with log-sum-exp (no overflow, no log(0)).

        loss = SoftmaxCrossEntropy()
        value = loss.forward(logits, labels)      # logits (N, classes), labels (N,) ints -> float
        grad_logits = loss.backward()             # (softmax(logits) - onehot(labels)) / N
    """

    def __init__(self):
        self._probs = self._target = None

    def forward(self, logits, labels):
        xp = array_module(logits)
        if logits.ndim != 2:
            raise ValueError(f"logits must be (N, classes), got shape {tuple(logits.shape)}")
        N, classes = logits.shape
        if N == 0 or classes == 0:
            raise ValueError(f"logits must have at least one row and one class, got shape {tuple(logits.shape)}")
        warn_if_probabilities(logits, "SoftmaxCrossEntropy")
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_z = xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        log_probs = shifted - log_z
        labels = xp.asarray(labels)
        if labels.ndim == 1:
            if labels.shape[0] != N:
                raise ValueError(f"labels has {labels.shape[0]} entries for {N} rows of logits")
            if labels.dtype.kind not in "iu":
                raise TypeError(f"integer labels expected, got dtype {labels.dtype}")
            if N and (int(labels.min()) < 0 or int(labels.max()) >= classes):
                raise ValueError(f"labels must lie in [0, {classes}), got [{int(labels.min())}, {int(labels.max())}]")
            target = xp.zeros_like(logits)
            target[xp.arange(N), labels] = 1
        elif tuple(labels.shape) == tuple(logits.shape):
            target = labels.astype(logits.dtype)
        else:
            raise ValueError(f"labels must be (N,) class indices or {tuple(logits.shape)} rows, "
                             f"got shape {tuple(labels.shape)}")
        self._probs, self._target = xp.exp(log_probs), target
        return float(-(target * log_probs).sum() / N)

    __call__ = forward

    def backward(self, grad=1.0):
        """Gradient of the mean loss with respect to the logits (times `grad`)."""
        if self._probs is None:
            raise RuntimeError("SoftmaxCrossEntropy.backward called before forward")
        N = self._probs.shape[0]
        g = (self._probs - self._target) * self._probs.dtype.type(grad / N)
        return g
