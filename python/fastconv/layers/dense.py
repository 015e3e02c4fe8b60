"""Dense, Dropout, Softmax and the softmax cross-entropy loss layer."""
from __future__ import annotations

import warnings

import numpy as np

from .. import activations as A
from .. import functional as F
from .. import regularizers
from .._arrays import array_module
from .base import Layer, _check_backward, _init_kernel


# ----------------------------------------------------------------------------- Dense

def _softmax(z, axis=-1):
    xp = array_module(z)
    e = xp.exp(z - z.max(axis=axis, keepdims=True))      # shift by the max: no overflow
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(z):
    """log(softmax(z)) over the last axis, shifted by the row max: a -inf logit (a masked class)
    gives -inf there and leaves the other entries finite, as in PyTorch."""
    xp = array_module(z)
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


def _cross_entropy_sum(target, log_p):
    """-sum(target * log_p), where a zero target weight contributes 0 even against log_p = -inf
    (0 log 0 = 0: a masked class that is not the target costs nothing)."""
    xp = array_module(log_p)
    return -(xp.where(target != 0, log_p, 0) * target).sum()


def _softmax_backward(grad_y, s, axis=-1):
    return s * (grad_y - (grad_y * s).sum(axis=axis, keepdims=True))


def _sigmoid(z):
    """1 / (1 + exp(-z)) without overflow: only exp(-|z|) is taken."""
    xp = array_module(z)
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1, e) / (1 + e)


class Dense(Layer):
    """y = x @ kernel + bias, kernel (in, units) like Keras; activation None, 'relu' (fused in the
    GEMM), 'sigmoid', 'tanh', 'leaky_relu' (Keras' slope 0.2; fastconv's kernels in place on y) or
    'softmax'. All three passes run on fastconv's GEMM kernel (fc.linear), never NumPy's BLAS.

    x (N, in) -> y (N, units). Keeps x (for the kernel gradient) and the activated output.
    """

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 seed=None, *, kernel_regularizer=None, name=None, input_shape=None, dtype="float32",
                 trainable=True):
        super().__init__(name=name, input_shape=input_shape, dtype=dtype, trainable=trainable)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
            raise ValueError(f"units must be a positive int, got {units!r}")
        if activation != "softmax":
            activation = F.check_activation(activation, "Dense activation (or 'softmax')")
        self.units = int(units)
        self.activation = activation
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
        fused = None if self.activation == "softmax" else self.activation
        y = F.linear(x, self.params["kernel"].T, self.params["bias"] if self.use_bias else None,
                     activation=fused, alpha=A.KERAS_LEAKY_RELU_SLOPE)
        if self.activation == "softmax":
            y = _softmax(y)
        if self._keeps_for_backward(training):
            self._x = x
            self._y = y if self.activation else None
        return y

    def backward(self, grad_y):
        if self._x is None:
            raise RuntimeError(f"{self.name or 'Dense'}.backward called before forward(training=True)")
        if self.activation == "softmax":
            grad_y = _softmax_backward(grad_y, self._y)
        else:
            grad_y = A.gradient(self.activation, grad_y, self._y, A.KERAS_LEAKY_RELU_SLOPE)
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
    computed from the logits with log-sum-exp (no overflow, no log(0); a -inf logit of a
    non-target class adds nothing, as in PyTorch).

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
        log_probs = _log_softmax(logits)
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
        return float(_cross_entropy_sum(target, log_probs) / N)

    __call__ = forward

    def backward(self, grad=1.0):
        """Gradient of the mean loss with respect to the logits (times `grad`)."""
        if self._probs is None:
            raise RuntimeError("SoftmaxCrossEntropy.backward called before forward")
        N = self._probs.shape[0]
        g = (self._probs - self._target) * self._probs.dtype.type(grad / N)
        return g
