"""The Layer base class, ParamRef and the weight initializers shared by every layer."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backend.arrays import array_module, module_named, to_numpy

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from types import ModuleType

    from numpy.typing import DTypeLike

    from .._typing import Array, Padding, Shape
    from ..training.regularizers import Regularizer

# ----------------------------------------------------------------------------- helpers


def _snake(name):
    """Keras' automatic names: Conv2D -> conv2d, MaxPooling2D -> max_pooling2d, ReLU -> re_lu."""
    return re.sub(r"(?<=[a-z])([A-Z])", r"_\1", name).lower()


_FORMATS = {"channels_last": "NHWC", "channels_first": "NCHW"}


def layout_for(data_format: str) -> str:
    if data_format not in _FORMATS:
        raise ValueError(f"data_format must be 'channels_last' or 'channels_first', got {data_format!r}")
    return _FORMATS[data_format]


def keras_padding(padding: Padding, name: str = "padding") -> Padding:
    """'valid'/'same' (any case) as in Keras; ints and pairs are passed to the functional API."""
    if isinstance(padding, str):
        if padding.lower() not in ("valid", "same"):
            raise ValueError(f"{name} must be 'valid' or 'same', got {padding!r}")
        return padding.lower()
    return padding


def check_backward(layer: Layer, grad_y: Array, y_shape: Shape | None) -> None:
    """backward needs a forward(training=True) first and grad_y of the output's shape."""
    name = layer.name or type(layer).__name__
    if y_shape is None:
        raise RuntimeError(f"{name}.backward called before forward(training=True)")
    if tuple(getattr(grad_y, "shape", ())) != tuple(y_shape):
        raise ValueError(
            f"{name}.backward: grad_y must have the output's shape {tuple(y_shape)}, got "
            f"{tuple(getattr(grad_y, 'shape', ())) if hasattr(grad_y, 'shape') else type(grad_y).__name__}"
        )


def _float_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


class ParamRef:
    """One array of a layer as optimizers see it: .value (updated in place), .grad, .trainable."""

    __slots__ = ("name", "layer", "key")

    def __init__(self, name: str, layer: Layer, key: str) -> None:
        self.name, self.layer, self.key = name, layer, key

    @property
    def value(self) -> Array:
        return self.layer.params[self.key]

    @property
    def grad(self) -> Array | None:
        return self.layer.grads.get(self.key)

    @property
    def trainable(self) -> bool:
        return self.layer.trainable

    def __repr__(self) -> str:
        return f"ParamRef({self.name!r}, shape={tuple(self.value.shape)})"


# ----------------------------------------------------------------------------- base class


class Layer:
    """Base class: parameters, naming, device/dtype moves. Subclasses implement _build (create
    params from the input shape), output_shape, forward and backward."""

    def __init__(
        self,
        *,
        name: str | None = None,
        input_shape: Sequence[int] | None = None,
        dtype: DTypeLike = "float32",
        trainable: bool = True,
    ) -> None:
        self.name = name
        self.params: dict[str, Array] = {}
        self.grads: dict[str, Array] = {}
        self.needs_input_grad = True  # Sequential clears it up to the first trainable layer
        self.trainable = trainable
        self.built = False
        self.input_shape = None if input_shape is None else tuple(int(d) for d in input_shape)
        self.dtype = _float_dtype(dtype)

    @property
    def trainable(self) -> bool:
        """Keras' flag. A frozen layer (False) computes no weight gradient (its .grads stay
        empty), is left out of parameters() so optimizers skip it, and counts as non-trainable
        in summary(); it still passes the input gradient on when a layer below it trains."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
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
    def default_name(self) -> str:
        return _snake(type(self).__name__)

    def build(self, input_shape: Sequence[int]) -> Layer:
        """Create the parameters for inputs of shape (batch axis excluded) `input_shape`."""
        input_shape = tuple(int(d) for d in input_shape)
        if any(d < 1 for d in input_shape):
            raise ValueError(
                f"{self.name or type(self).__name__}: input_shape {input_shape} (batch axis "
                "excluded) has an empty or negative dimension"
            )
        self._build(input_shape)
        self.input_shape = input_shape
        self.built = True
        return self

    def _build(self, input_shape):
        pass

    def output_shape(self, input_shape: Shape) -> Shape:
        """Output shape (batch axis excluded) for an input of shape `input_shape`."""
        return tuple(input_shape)

    def _ensure_built(self, x):
        """Build at the first call; keep the parameters where x lives (NumPy or CuPy) and give x
        the parameters' dtype (like Keras, which casts inputs to the layer's dtype). Returns x."""
        if x.dtype.kind not in "fiub":
            raise TypeError(
                f"{self.name or type(self).__name__}: x has dtype {x.dtype}; layers take real "
                "numbers (float32/float64, or integers and booleans, cast to the layer's dtype)"
            )
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
    # Keys of params that no optimizer updates even when the layer trains (BatchNormalization's
    # moving statistics): saved with the weights, counted as non-trainable like Keras does.
    non_trainable_keys: tuple[str, ...] = ()

    def count_params(self, trainable: bool | None = None) -> int:
        """All parameters, or only the (non-)trainable ones."""
        keys: Iterable[str]
        if trainable is None:
            keys = self.params
        else:
            keys = [r.key for r in (self.parameters() if trainable else self.non_trainable_weights)]
        return int(sum(int(np.prod(self.params[k].shape)) for k in keys))

    def parameters(self, prefix: str | None = None) -> list[ParamRef]:
        """ParamRefs of the parameters optimizers update: all but non_trainable_keys, none when frozen."""
        if not self.trainable:
            return []
        return [r for r in self._refs(prefix) if r.key not in self.non_trainable_keys]

    @property
    def trainable_weights(self) -> list[ParamRef]:
        return self.parameters()

    @property
    def non_trainable_weights(self) -> list[ParamRef]:
        return [r for r in self._refs() if not self.trainable or r.key in self.non_trainable_keys]

    def _refs(self, prefix=None):
        prefix = self.name or self.default_name if prefix is None else prefix
        return [ParamRef(f"{prefix}/{k}", self, k) for k in self.params]

    def to(self, device: str | ModuleType) -> Layer:
        """Move the parameters to 'numpy'/'cpu' or 'cupy'/'gpu' (new arrays: rebuild optimizers'
        state afterwards). Returns self."""
        xp = module_named(device)
        for k, p in self.params.items():
            self.params[k] = xp.asarray(to_numpy(p) if xp is np else p)
        self.grads = {}
        return self

    def astype(self, dtype: DTypeLike) -> Layer:
        """Cast the parameters (and future initializations) to float32 or float64. Returns self."""
        self.dtype = _float_dtype(dtype)
        for k, p in self.params.items():
            self.params[k] = p.astype(self.dtype)
        self.grads = {}
        return self

    # -- weight penalty (Conv2D, Dense: kernel_regularizer)
    kernel_regularizer: Regularizer | None = None

    def regularization_loss(self) -> float:
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

    def __call__(self, x: Array, training: bool = False) -> Array:
        """layer(x) is inference, as in Keras (Dropout off); forward(x) is the training call."""
        return self.forward(x, training=training)

    def forward(self, x: Array, training: bool = True) -> Array:
        """The output for x; training=True is the training call (Dropout on), which keeps what
        backward needs. Every layer implements it."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, grad_y: Array) -> Array | None:
        """dL/dx for grad_y = dL/d(output) of the last forward(training=True), None when
        needs_input_grad is False; fills .grads. Every layer implements it."""
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this layer (JSON types; Keras' get_config).
        Weights are not part of it; initializers and seeds are not kept."""
        return {"name": self.name, **self._config()}

    def _config(self):
        return {}

    def _common_config(self):
        return {"dtype": self.dtype.name, "trainable": self.trainable}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


# ----------------------------------------------------------------------------- initializers


def init_kernel(
    kind: str | Callable[[tuple[int, ...]], Any],
    shape: tuple[int, ...],
    fan_in: int,
    fan_out: int,
    rng: np.random.Generator,
    dtype: DTypeLike,
) -> np.ndarray:
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
    raise ValueError(
        "kernel_initializer must be 'glorot_uniform', 'glorot_normal', 'he_normal', "
        f"'he_uniform' or a callable(shape), got {kind!r}"
    )


def _truncated_normal(rng, shape, stddev):
    """Keras' truncated normal: draws beyond 2 std are redrawn; the std is corrected for the cut."""
    std = stddev / 0.87962566103423978
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2.0
    return out * std
