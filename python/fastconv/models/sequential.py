"""Sequential: a stack of fastconv.layers, with Keras' compile / fit / evaluate (training/loop.py).

    model = fc.Sequential([
        fc.layers.Conv2D(32, 3, activation="relu", input_shape=(28, 28, 1)),
        fc.layers.MaxPooling2D(),
        fc.layers.Flatten(),
        fc.layers.Dense(10),
    ])
    model.summary()
    logits = model.forward(x)                  # x (N, 28, 28, 1) float32
    model.backward(loss_fn.backward())         # fills every trainable layer's .grads
    opt.step(model.parameters())               # the trainable parameters
    probs = model(x_test)                      # inference: Dropout off (model.predict batches it)

Freezing (Keras): `layer.trainable = False`, `model.trainable = False` (every layer) or
`vgg16_base(..., trainable=False)`. Frozen layers compute no weight gradient, parameters() and
trainable_weights leave them out, summary() counts them as non-trainable, and backward stops at
the lowest trainable layer (layers below it get no backward call and keep nothing in forward).
A Sequential passed to Sequential/add contributes its layers (shared, not copied):
    model = fc.Sequential([vgg16_base((150, 150, 3), trainable=False), Flatten(), Dense(1, "sigmoid")])

Weight files (`save_weights` / `load_weights`, and the VGG16 `weights=` argument) are NumPy
`.npz` archives with one entry per parameter named "<layer name>/<parameter>", e.g.
"block1_conv1/kernel", always in the Keras order whatever the model's data_format:
    Conv2D kernel (R, S, C, K), Conv2D bias (K,), Dense kernel (in, units), Dense bias (units,).
So a file written by a channels_first model loads into a channels_last one and vice versa
(Dense layers after a Flatten excepted: the flattened order differs between the two formats).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backend.arrays import array_module, to_numpy
from ..layers import Layer, ParamRef
from ..ops._shapes import positive_int
from ..training.loop import KERAS_BATCH_SIZE, TrainingMixin
from ..training.npz import read_npz, write_npz
from ..training.saving import restore_model, save_model
from .converters import torch_state_dict_to_keras
from .fusion import FusionPlan, chain, fold_batch_norm, plan_fusion

if TYPE_CHECKING:
    from types import ModuleType

    from numpy.typing import DTypeLike

    from .._typing import Array, Shape

__all__ = ["Sequential", "load_model"]


class Sequential(TrainingMixin):
    """A linear stack of layers with forward/backward, parameters(), summary() and weight files,
    and Keras' compile / fit / evaluate (training/loop.py).

    input_shape (batch axis excluded) may be given here or by the first layer; otherwise the
    model is built at the first forward. The input gradient of the model is not computed (the
    lowest trainable layer skips its data gradient, the layers below it get no backward call)
    unless `input_grad=True`. Changes of `trainable` take effect at the next forward(training=True)
    and backward (a layer unfrozen between a forward and its backward has kept nothing and raises).
    """

    def __init__(self, layers=None, *, input_shape=None, name="sequential", input_grad=False):
        self.name = name
        self.layers: list[Layer] = []
        self.input_grad = bool(input_grad)
        self.input_shape = None if input_shape is None else tuple(int(d) for d in input_shape)
        self.built = False
        self._marked, self._first = None, 0
        self._plan = FusionPlan()
        self._planned_layers: tuple[Layer, ...] = ()
        # fn(model, layer, is_top, is_bottom) after each layer's backward (top: the first one
        # called, bottom: the last); the layer's .grads are final then
        self.grad_hooks: list = []
        self.last_batch_size = None
        for layer in layers or []:
            self.add(layer)
        if self.input_shape is not None:
            self.build()

    # ------------------------------------------------------------------ construction
    def add(self, layer: Layer | Sequential) -> Sequential:
        """Append a layer, or the layers of a Sequential (shared: its `trainable` still reaches them)."""
        if isinstance(layer, Sequential):
            if not self.layers and self.input_shape is None:
                self.input_shape = layer.input_shape
            for inner in layer.layers:
                self.add(inner)
            return self
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential takes fastconv.layers.Layer or Sequential objects, got {type(layer).__name__}")
        names = {lyr.name for lyr in self.layers}
        if layer.name is None:
            base = layer.default_name
            layer.name, i = base, 0
            while layer.name in names:
                i += 1
                layer.name = f"{base}_{i}"
        elif layer.name in names:
            raise ValueError(f"two layers are named {layer.name!r}; layer names must be unique")
        if not self.layers and self.input_shape is None and layer.input_shape is not None:
            self.input_shape = layer.input_shape
        self.layers.append(layer)
        self.built = False
        return self

    def build(self, input_shape: Sequence[int] | None = None) -> Sequential:
        """Build every layer for inputs of shape `input_shape` (batch axis excluded)."""
        shape = self.input_shape if input_shape is None else tuple(int(d) for d in input_shape)
        if shape is None:
            raise ValueError(
                f"model {self.name!r} has no input shape: pass input_shape to the first "
                "layer or to Sequential, call build(input_shape), or call forward once"
            )
        self.input_shape = shape
        self._shapes = []
        for layer in self.layers:
            if not layer.built:  # a built layer keeps its parameters (a conv takes any H, W)
                layer.build(shape)
            shape = tuple(layer.output_shape(shape))
            self._shapes.append(shape)
        self._mark_input_grads()
        self.built = True
        return self

    @property
    def trainable(self) -> bool:
        """True when any layer is trainable; setting it sets every layer's flag (Keras)."""
        return any(layer.trainable for layer in self.layers)

    @trainable.setter
    def trainable(self, value: bool) -> None:
        for layer in self.layers:
            layer.trainable = value

    def _marks_key(self):
        return self.input_grad, tuple(layer.trainable for layer in self.layers)

    def _mark_input_grads(self):
        """Layers up to and including the lowest trainable one with parameters need no input
        gradient, and backward starts no layer below it (self._first)."""
        first = next((i for i, lyr in enumerate(self.layers) if lyr.trainable and lyr.count_params()), len(self.layers))
        for i, layer in enumerate(self.layers):
            layer.needs_input_grad = self.input_grad or i > first
        self._first = 0 if self.input_grad else first
        self._marked = self._marks_key()

    def _fusion_plan(self):
        """The fusion pass's plan for this stack (fusion.plan_fusion over chain(layers)), made
        again only when the list of layers changed: it depends on nothing else."""
        if len(self._planned_layers) != len(self.layers) or any(
            a is not b for a, b in zip(self._planned_layers, self.layers)
        ):
            self._plan, self._planned_layers = plan_fusion(chain(self.layers)), tuple(self.layers)
        return self._plan

    def _refresh_marks(self):
        """Re-mark when a trainable flag or input_grad changed since the last marks."""
        if self._marked != self._marks_key():
            self._mark_input_grads()

    def _ensure_built(self, x):
        if not self.built or tuple(x.shape[1:]) != self.input_shape:
            self.build(x.shape[1:])  # layers move their parameters to x's device themselves

    # ------------------------------------------------------------------ compute
    def forward(self, x: Array, training: bool = True) -> Array:
        """The training call by default (Dropout on, layers keep what backward needs)."""
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            raise TypeError(f"x must be a NumPy or CuPy array, got {type(x).__name__}")
        self._ensure_built(x)
        self._refresh_marks()
        if training:
            self.last_batch_size = int(x.shape[0])  # distributed training weights by it
        plan = self._fusion_plan()
        for i, layer in enumerate(self.layers):
            x = plan.forward(i, layer, x, training)
        if training:
            self._trained_forward = True
        return x

    def __call__(self, x: Array, training: bool = False) -> Array:
        """model(x) is inference, as in Keras (Dropout off); forward(x) is the training call."""
        return self.forward(x, training=training)

    def backward(self, grad_y: Array) -> Array | None:
        """Back-propagate dL/d(output) down to the lowest trainable layer; fills each trainable
        layer's .grads. Returns dL/dx when input_grad=True, else None."""
        if not getattr(self, "_trained_forward", False):
            raise RuntimeError(f"model {self.name!r}: backward called before forward(x, training=True)")
        self._refresh_marks()
        plan = self._fusion_plan()
        g = grad_y
        top = len(self.layers) - 1
        for i in range(top, self._first - 1, -1):
            layer = self.layers[i]
            g = plan.backward(i, layer, g)
            for hook in self.grad_hooks:  # e.g. DistributedOptimizer starts an allreduce
                hook(self, layer, i == top, i == self._first)
        return g if self.input_grad else None

    def predict(self, x: Any, batch_size: int | None = 256) -> Array:
        """forward(training=False) in batches; returns the concatenated outputs (batch_size=None:
        Keras' 32)."""
        if not hasattr(x, "shape"):
            x = np.asarray(x)
        batch_size = KERAS_BATCH_SIZE if batch_size is None else positive_int(batch_size, "batch_size")
        if x.ndim < 1 or x.shape[0] == 0:
            raise ValueError(f"x must hold at least one sample, got shape {tuple(x.shape)}")
        xp = array_module(x)
        outs = [self.forward(x[i : i + batch_size], training=False) for i in range(0, x.shape[0], batch_size)]
        return xp.concatenate(outs, axis=0)

    # ------------------------------------------------------------------ parameters
    def parameters(self) -> list[ParamRef]:
        """ParamRefs (name "<layer>/<param>", .value, .grad) of the trainable layers: what the
        optimizers update (Keras' trainable_weights)."""
        return [ref for layer in self._built_layers() for ref in layer.parameters()]

    @property
    def trainable_weights(self) -> list[ParamRef]:
        return self.parameters()

    @property
    def non_trainable_weights(self) -> list[ParamRef]:
        return [ref for layer in self._built_layers() for ref in layer.non_trainable_weights]

    def _built_layers(self):
        if not self.built and self.input_shape is not None:
            self.build()
        return self.layers

    def count_params(self, trainable: bool | None = None) -> int:
        """Number of parameters: all, or only the (non-)trainable ones (Keras' summary counts)."""
        return sum(layer.count_params(trainable) for layer in self.layers)

    def output_shape(self) -> Shape:
        if not self.built:
            self.build()
        return self._shapes[-1]

    def to(self, device: str | ModuleType) -> Sequential:
        for layer in self.layers:
            layer.to(device)
        return self

    def astype(self, dtype: DTypeLike) -> Sequential:
        for layer in self.layers:
            layer.astype(dtype)
        return self

    def fold_batch_norm(self) -> Sequential:
        """An inference model in which every Conv2D (without activation) followed by a
        BatchNormalization over its channel axis is one Conv2D with the normalization folded into
        its kernel and bias (fc.fold_batch_norm): the pair then costs one convolution. A batch
        norm over another axis (axis=-1 after a channels_first conv normalizes W) stays a layer.
        Other layers are shared with this model; the result is for layer(x) / predict, not for
        training (fusion.fold_batch_norm)."""
        return Sequential(fold_batch_norm(self), input_shape=self.input_shape, name=f"{self.name}_folded")

    # ------------------------------------------------------------------ summary
    def summary(self, print_fn: Callable[[str], Any] | None = print, line_length: int = 65) -> str:
        """Print a Keras-style table (layer (type), output shape, param #, totals); returns it."""
        if not self.built:
            self.build()
        names = [f"{layer.name} ({type(layer).__name__})" for layer in self.layers]
        cols = (max([29] + [len(n) + 2 for n in names]), 26, 12)
        line_length = max(line_length, sum(cols))
        sep = "_" * line_length

        def row(a, b, c):
            return f" {a:<{cols[0] - 1}}{b:<{cols[1]}}{c:<{cols[2]}}".rstrip()

        lines = [f'Model: "{self.name}"', sep, row("Layer (type)", "Output Shape", "Param #"), "=" * line_length]
        for i, (layer, shape) in enumerate(zip(self.layers, self._shapes)):
            lines.append(row(names[i], str((None, *shape)), f"{layer.count_params():,}"))
            lines.append("" if i + 1 < len(self.layers) else "=" * line_length)
        lines += [
            f"Total params: {self.count_params():,}",
            f"Trainable params: {self.count_params(trainable=True):,}",
            f"Non-trainable params: {self.count_params(trainable=False):,}",
            sep,
        ]
        text = "\n".join(lines)
        if print_fn is not None:
            print_fn(text)
        return text

    # ------------------------------------------------------------------ weights
    def get_weights(self) -> list[np.ndarray]:
        """Every parameter as a NumPy copy, layer by layer in Keras' order and layout (a Conv2D
        kernel (R, S, C, K), a Dense kernel (in, out)), frozen layers included."""
        return [to_numpy(layer._export(k, v)).copy() for layer in self._built_layers() for k, v in layer.params.items()]

    def set_weights(self, weights: Iterable[Any]) -> None:
        """Set every parameter from a list in get_weights' order (e.g. a Keras model's
        get_weights()). The count and every shape are checked before anything changes."""
        slots = [(layer, k) for layer in self._built_layers() for k in layer.params]
        weights = list(weights)
        if len(weights) != len(slots):
            raise ValueError(f"set_weights: model {self.name!r} has {len(slots)} weight arrays, got {len(weights)}")
        converted = []
        for (layer, k), w in zip(slots, weights):
            w = np.asarray(to_numpy(w) if not isinstance(w, np.ndarray) else w)
            want = tuple(layer._export(k, layer.params[k]).shape)
            if tuple(w.shape) != want:
                raise ValueError(
                    f"set_weights: layer {layer.name!r} parameter {k!r} expects shape {want}, got {tuple(w.shape)}"
                )
            if w.dtype.kind not in "fiu":
                raise TypeError(f"set_weights: layer {layer.name!r} parameter {k!r}: dtype {w.dtype} is not numeric")
            converted.append(layer._import(k, w).astype(layer.params[k].dtype))
        for (layer, k), w in zip(slots, converted):
            p = layer.params[k]
            p[...] = array_module(p).asarray(w)

    def load_torch_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Set every parameter from a PyTorch model's state_dict, matched by order: the i-th
        weight / bias tensors of the state_dict go to the i-th Conv2D / Dense layer (nn.Conv2d
        (K, C, R, S), nn.Linear (out, in) are converted to this model's layouts; BatchNorm
        running statistics and other buffers are not accepted). A Dense layer after a Flatten of
        a channels_last feature map gets its input columns reordered from PyTorch's (C, H, W)
        flattening to this model's (H, W, C). Shapes are checked before anything changes."""
        self.set_weights(torch_state_dict_to_keras(self, state_dict))

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike[str], include_optimizer: bool = True) -> None:
        """Write the architecture, the weights and (after compile) the loss, metrics and
        optimizer with its state to one .npz file; fastconv.load_model(path) rebuilds the model."""
        save_model(self, path, include_optimizer=include_optimizer)

    def save_weights(self, path: str | os.PathLike[str]) -> None:
        """Write every parameter to an .npz ("<layer>/<param>", Keras order; see module doc)."""
        if not self.built:
            self.build()
        arrays = {
            f"{layer.name}/{k}": to_numpy(layer._export(k, v)) for layer in self.layers for k, v in layer.params.items()
        }
        write_npz(path, arrays, add_suffix=True)

    def load_weights(self, path: str | os.PathLike[str]) -> Sequential:
        """Load an .npz written by save_weights (or the converters) into the parameters, in place.

        Every entry is checked before any is copied: a missing or unexpected entry, or a shape
        that differs, raises ValueError naming the layer, the parameter and both shapes."""
        return self._assign_weights(read_npz(path), os.fspath(path))

    def _assign_weights(self, stored, source):
        """Copy entries "<layer>/<param>" (Keras layout) into the parameters, all checked first."""
        if not self.built:
            self.build()
        expected = {f"{layer.name}/{k}": (layer, k) for layer in self.layers for k in layer.params}
        missing = [k for k in expected if k not in stored]
        extra = [k for k in stored if k not in expected]
        if missing or extra:
            raise ValueError(
                f"{source} does not match model {self.name!r}: "
                f"missing {missing or 'none'}, unexpected {extra or 'none'}"
            )
        for key, (layer, k) in expected.items():
            want = tuple(layer._export(k, layer.params[k]).shape)
            if tuple(stored[key].shape) != want:
                raise ValueError(
                    f"{source}: layer {layer.name!r} parameter {k!r}: the file holds shape "
                    f"{tuple(stored[key].shape)} but the model expects {want}"
                )
        converted = {}  # every entry converted before any parameter changes
        for key, (layer, k) in expected.items():
            if stored[key].dtype.kind not in "fiu":
                raise ValueError(
                    f"layer {layer.name!r} parameter {k!r}: the file's {stored[key].dtype} "
                    "entry cannot be used (real numbers expected)"
                )
            try:
                converted[key] = layer._import(k, stored[key]).astype(layer.params[k].dtype)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"layer {layer.name!r} parameter {k!r}: the file's {stored[key].dtype} entry cannot be used ({exc})"
                ) from None
        for key, (layer, k) in expected.items():
            p = layer.params[k]
            p[...] = array_module(p).asarray(converted[key])
        return self


def load_model(path: str | os.PathLike[str], compile: bool = True) -> Sequential:
    """Rebuild a model written by Sequential.save: its layers, weights and (with compile=True)
    loss, metrics and optimizer state, so training continues where it stopped."""
    return restore_model(path, Sequential, compile=compile)
