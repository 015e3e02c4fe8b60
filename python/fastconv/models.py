"""Models: `Sequential` (a stack of fastconv.layers) and the VGG16 convolutional base.

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

import numpy as np

from ._shapes import positive_int
from ._arrays import array_module, to_numpy
from .layers import Activation, BatchNormalization, Conv2D, Flatten, Layer, MaxPooling2D, ReLU
from .training import KERAS_BATCH_SIZE, TrainingMixin

__all__ = [
    "Sequential", "vgg16_base", "VGG16_LAYERS", "vgg16_weights_from_torch",
    "vgg16_weights_from_keras",
]


class Sequential(TrainingMixin):
    """A linear stack of layers with forward/backward, parameters(), summary() and weight files,
    and Keras' compile / fit / evaluate (fastconv.training).

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
        # fn(model, layer, is_top, is_bottom) after each layer's backward (top: the first one
        # called, bottom: the last); the layer's .grads are final then
        self.grad_hooks: list = []
        self.last_batch_size = None
        for layer in layers or []:
            self.add(layer)
        if self.input_shape is not None:
            self.build()

    # ------------------------------------------------------------------ construction
    def add(self, layer):
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

    def build(self, input_shape=None):
        """Build every layer for inputs of shape `input_shape` (batch axis excluded)."""
        shape = self.input_shape if input_shape is None else tuple(int(d) for d in input_shape)
        if shape is None:
            raise ValueError(f"model {self.name!r} has no input shape: pass input_shape to the first "
                             "layer or to Sequential, call build(input_shape), or call forward once")
        self.input_shape = shape
        self._shapes = []
        for layer in self.layers:
            if not layer.built:        # a built layer keeps its parameters (a conv takes any H, W)
                layer.build(shape)
            shape = tuple(layer.output_shape(shape))
            self._shapes.append(shape)
        self._mark_input_grads()
        self.built = True
        return self

    @property
    def trainable(self):
        """True when any layer is trainable; setting it sets every layer's flag (Keras)."""
        return any(layer.trainable for layer in self.layers)

    @trainable.setter
    def trainable(self, value):
        for layer in self.layers:
            layer.trainable = value

    def _marks_key(self):
        return self.input_grad, tuple(layer.trainable for layer in self.layers)

    def _mark_input_grads(self):
        """Layers up to and including the lowest trainable one with parameters need no input
        gradient, and backward starts no layer below it (self._first)."""
        first = next((i for i, lyr in enumerate(self.layers) if lyr.trainable and lyr.count_params()),
                     len(self.layers))
        for i, layer in enumerate(self.layers):
            layer.needs_input_grad = self.input_grad or i > first
        self._first = 0 if self.input_grad else first
        self._fuse_relus()
        self._marked = self._marks_key()

    def _fuse_relus(self):
        """Indices of BatchNormalization layers right below a ReLU (or Activation("relu")): in
        forward, Sequential asks such a layer to apply the ReLU in its own passes for that one
        call (relu_once) and the ReLU layer to pass its output through (passed_once), so neither
        direction runs a separate ReLU pass. One call at a time, so that a layer shared with
        another model, or called on its own, computes what it computes there.
        Indices of MaxPooling2D layers directly above a Conv2D(activation="relu") of the same
        layout: backward applies the conv's ReLU gradient mask in the pool, on its small output,
        and the conv skips its own pass over the large one (MNIST CNN step: -1.5 ms of ~19; VGG16
        at batch 8: no ReLU backward over conv1_2's 103 MB output)."""
        self._relu_pools, self._bn_relus = set(), set()
        for i, layer in enumerate(self.layers):
            above = self.layers[i + 1] if i + 1 < len(self.layers) else None
            if isinstance(layer, BatchNormalization) and (
                    isinstance(above, ReLU) or (isinstance(above, Activation) and above.activation == "relu")):
                self._bn_relus.add(i)
            if isinstance(layer, MaxPooling2D):
                below = self.layers[i - 1] if i > 0 else None
                fused = (isinstance(below, Conv2D) and below.activation == "relu"
                         and below.layout == layer.layout and i - 1 >= self._first)
                layer.keep_output = fused
                if fused:
                    self._relu_pools.add(i)

    def _refresh_marks(self):
        """Re-mark when a trainable flag or input_grad changed since the last marks."""
        if self._marked != self._marks_key():
            self._mark_input_grads()

    def _ensure_built(self, x):
        if not self.built or tuple(x.shape[1:]) != self.input_shape:
            self.build(x.shape[1:])       # layers move their parameters to x's device themselves

    # ------------------------------------------------------------------ compute
    def forward(self, x, training=True):
        """The training call by default (Dropout on, layers keep what backward needs)."""
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            raise TypeError(f"x must be a NumPy or CuPy array, got {type(x).__name__}")
        self._ensure_built(x)
        self._refresh_marks()
        if training:
            self.last_batch_size = int(x.shape[0])     # distributed training weights by it
        for i, layer in enumerate(self.layers):
            if i in self._bn_relus:
                layer.relu_once = True
            elif i - 1 in self._bn_relus:
                layer.passed_once = True
            x = layer.forward(x, training=training)
        if training:
            self._trained_forward = True
        return x

    def __call__(self, x, training=False):
        """model(x) is inference, as in Keras (Dropout off); forward(x) is the training call."""
        return self.forward(x, training=training)

    def backward(self, grad_y):
        """Back-propagate dL/d(output) down to the lowest trainable layer; fills each trainable
        layer's .grads. Returns dL/dx when input_grad=True, else None."""
        if not getattr(self, "_trained_forward", False):
            raise RuntimeError(f"model {self.name!r}: backward called before forward(x, training=True)")
        self._refresh_marks()
        g = grad_y
        top = len(self.layers) - 1
        for i in range(top, self._first - 1, -1):
            layer = self.layers[i]
            if i in self._relu_pools:
                layer.relu_mask_once = True
            elif i + 1 in self._relu_pools:
                layer.relu_applied_once = True
            g = layer.backward(g)
            for hook in self.grad_hooks:       # e.g. DistributedOptimizer starts an allreduce
                hook(self, layer, i == top, i == self._first)
        return g if self.input_grad else None

    def predict(self, x, batch_size=256):
        """forward(training=False) in batches; returns the concatenated outputs (batch_size=None:
        Keras' 32)."""
        if not hasattr(x, "shape"):
            x = np.asarray(x)
        batch_size = KERAS_BATCH_SIZE if batch_size is None else positive_int(batch_size, "batch_size")
        if x.ndim < 1 or x.shape[0] == 0:
            raise ValueError(f"x must hold at least one sample, got shape {tuple(x.shape)}")
        xp = array_module(x)
        outs = [self.forward(x[i:i + batch_size], training=False) for i in range(0, x.shape[0], batch_size)]
        return xp.concatenate(outs, axis=0)

    # ------------------------------------------------------------------ parameters
    def parameters(self):
        """ParamRefs (name "<layer>/<param>", .value, .grad) of the trainable layers: what the
        optimizers update (Keras' trainable_weights)."""
        return [ref for layer in self._built_layers() for ref in layer.parameters()]

    @property
    def trainable_weights(self):
        return self.parameters()

    @property
    def non_trainable_weights(self):
        return [ref for layer in self._built_layers() for ref in layer.non_trainable_weights]

    def _built_layers(self):
        if not self.built and self.input_shape is not None:
            self.build()
        return self.layers

    def count_params(self, trainable=None):
        """Number of parameters: all, or only the (non-)trainable ones (Keras' summary counts)."""
        return sum(layer.count_params(trainable) for layer in self.layers)

    def output_shape(self):
        if not self.built:
            self.build()
        return self._shapes[-1]

    def to(self, device):
        for layer in self.layers:
            layer.to(device)
        return self

    def astype(self, dtype):
        for layer in self.layers:
            layer.astype(dtype)
        return self

    def fold_batch_norm(self):
        """An inference model in which every Conv2D (without activation) followed by a
        BatchNormalization over its channel axis is one Conv2D with the normalization folded into
        its kernel and bias (fc.fold_batch_norm): the pair then costs one convolution. A batch
        norm over another axis (axis=-1 after a channels_first conv normalizes W) stays a layer.
        Other layers are shared with this model; the result is for layer(x) / predict, not for
        training."""
        self._built_layers()
        folded, i = [], 0
        while i < len(self.layers):
            layer = self.layers[i]
            above = self.layers[i + 1] if i + 1 < len(self.layers) else None
            if (isinstance(layer, Conv2D) and layer.activation is None and layer.built
                    and _normalizes_channels(above, layer)):
                w2, b2 = self.layers[i + 1].folded_into(layer)
                config = {**layer.get_config(), "use_bias": True, "name": layer.name}
                conv = Conv2D(**config)
                conv.build(layer.input_shape)
                conv.to(array_module(w2))
                conv.params["kernel"][...] = w2
                conv.params["bias"][...] = b2
                folded.append(conv)
                i += 2
                continue
            folded.append(layer)
            i += 1
        return Sequential(folded, input_shape=self.input_shape, name=f"{self.name}_folded")

    # ------------------------------------------------------------------ summary
    def summary(self, print_fn=print, line_length=65):
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
        lines += [f"Total params: {self.count_params():,}",
                  f"Trainable params: {self.count_params(trainable=True):,}",
                  f"Non-trainable params: {self.count_params(trainable=False):,}", sep]
        text = "\n".join(lines)
        if print_fn is not None:
            print_fn(text)
        return text

    # ------------------------------------------------------------------ weights
    def get_weights(self):
        """Every parameter as a NumPy copy, layer by layer in Keras' order and layout (a Conv2D
        kernel (R, S, C, K), a Dense kernel (in, out)), frozen layers included."""
        return [to_numpy(layer._export(k, v)).copy() for layer in self._built_layers()
                for k, v in layer.params.items()]

    def set_weights(self, weights):
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
                raise ValueError(f"set_weights: layer {layer.name!r} parameter {k!r} expects shape {want}, "
                                 f"got {tuple(w.shape)}")
            if w.dtype.kind not in "fiu":
                raise TypeError(f"set_weights: layer {layer.name!r} parameter {k!r}: dtype {w.dtype} is not numeric")
            converted.append(layer._import(k, w).astype(layer.params[k].dtype))
        for (layer, k), w in zip(slots, converted):
            p = layer.params[k]
            p[...] = array_module(p).asarray(w)

    def load_torch_state_dict(self, state_dict):
        """Set every parameter from a PyTorch model's state_dict, matched by order: the i-th
        weight / bias tensors of the state_dict go to the i-th Conv2D / Dense layer (nn.Conv2d
        (K, C, R, S), nn.Linear (out, in) are converted to this model's layouts; BatchNorm
        running statistics and other buffers are not accepted). A Dense layer after a Flatten of
        a channels_last feature map gets its input columns reordered from PyTorch's (C, H, W)
        flattening to this model's (H, W, C). Shapes are checked before anything changes."""
        tensors = [(k, _as_array(v)) for k, v in state_dict.items()]
        stray = [k for k, _ in tensors if not (k.endswith(".weight") or k.endswith(".bias"))]
        if stray:
            raise ValueError(f"state_dict entries other than weights and biases: {stray[:4]} "
                             "(BatchNorm and other layers have no counterpart here)")
        slots = [(layer, k) for layer in self._built_layers() for k in layer.params]
        if len(tensors) != len(slots):
            raise ValueError(f"the state_dict has {len(tensors)} tensors, model {self.name!r} has "
                             f"{len(slots)} parameters (layer by layer: "
                             f"{[f'{layer.name}/{k}' for layer, k in slots]})")
        keras_order = []
        for (layer, key), (name, t) in zip(slots, tensors):
            if key == "kernel" and isinstance(layer, Conv2D) and t.ndim == 4:
                t = t.transpose(2, 3, 1, 0)                       # (K, C, R, S) -> (R, S, C, K)
            elif key == "kernel" and t.ndim == 2:
                t = self._torch_dense_columns(layer, t).T        # (out, in) -> (in, out)
            want = tuple(layer._export(key, layer.params[key]).shape)
            if tuple(t.shape) != want:
                raise ValueError(f"state_dict entry {name!r} (shape {tuple(_as_array(state_dict[name]).shape)}) "
                                 f"does not fit layer {layer.name!r} parameter {key!r} of shape {want}")
            keras_order.append(t)
        self.set_weights(keras_order)

    def _torch_dense_columns(self, layer, w):
        """w (out, in) with its columns in this model's flattening order."""
        i = self.layers.index(layer)
        below = self.layers[i - 1] if i > 0 else None
        if not isinstance(below, Flatten) or i < 2:
            return w
        shape = self._shapes[i - 2]                               # the flattened feature map
        source = next((lyr for lyr in reversed(self.layers[:i - 1]) if hasattr(lyr, "layout")), None)
        if len(shape) != 3 or source is None or source.layout != "NHWC" or w.shape[1] != int(np.prod(shape)):
            return w
        h, wd, c = shape
        return w.reshape(w.shape[0], c, h, wd).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)

    # ------------------------------------------------------------------ files
    def save(self, path, include_optimizer=True):
        """Write the architecture, the weights and (after compile) the loss, metrics and
        optimizer with its state to one .npz file; fastconv.load_model(path) rebuilds the model."""
        from .saving import save_model  # noqa: PLC0415 - saving imports this module

        save_model(self, path, include_optimizer=include_optimizer)

    def save_weights(self, path):
        """Write every parameter to an .npz ("<layer>/<param>", Keras order; see module doc)."""
        if not self.built:
            self.build()
        arrays = {f"{layer.name}/{k}": to_numpy(layer._export(k, v))
                  for layer in self.layers for k, v in layer.params.items()}
        from .saving import write_npz  # noqa: PLC0415 - saving imports this module

        write_npz(path, arrays, add_suffix=True)

    def load_weights(self, path):
        """Load an .npz written by save_weights (or the converters) into the parameters, in place.

        Every entry is checked before any is copied: a missing or unexpected entry, or a shape
        that differs, raises ValueError naming the layer, the parameter and both shapes."""
        return self._assign_weights(_read_npz(path), os.fspath(path))

    def _assign_weights(self, stored, source):
        """Copy entries "<layer>/<param>" (Keras layout) into the parameters, all checked first."""
        if not self.built:
            self.build()
        expected = {f"{layer.name}/{k}": (layer, k) for layer in self.layers for k in layer.params}
        missing = [k for k in expected if k not in stored]
        extra = [k for k in stored if k not in expected]
        if missing or extra:
            raise ValueError(f"{source} does not match model {self.name!r}: "
                             f"missing {missing or 'none'}, unexpected {extra or 'none'}")
        for key, (layer, k) in expected.items():
            want = tuple(layer._export(k, layer.params[k]).shape)
            if tuple(stored[key].shape) != want:
                raise ValueError(f"layer {layer.name!r} parameter {k!r}: the file holds shape "
                                 f"{tuple(stored[key].shape)} but the model expects {want}")
        converted = {}                  # every entry converted before any parameter changes
        for key, (layer, k) in expected.items():
            if stored[key].dtype.kind not in "fiu":
                raise ValueError(f"layer {layer.name!r} parameter {k!r}: the file's {stored[key].dtype} "
                                 "entry cannot be used (real numbers expected)")
            try:
                converted[key] = layer._import(k, stored[key]).astype(layer.params[k].dtype)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"layer {layer.name!r} parameter {k!r}: the file's {stored[key].dtype} "
                                 f"entry cannot be used ({exc})") from None
        for key, (layer, k) in expected.items():
            p = layer.params[k]
            p[...] = array_module(p).asarray(converted[key])
        return self


def _normalizes_channels(bn, conv):
    """Whether `bn` is a BatchNormalization over the channel axis of `conv`'s 4-D output
    (N, C, H, W) or (N, H, W, C): axis 1 / -3 or 3 / -1 by the conv's data_format."""
    if not isinstance(bn, BatchNormalization):
        return False
    return bn.axis % 4 == (1 if conv.layout == "NCHW" else 3)


def _read_npz(path):
    """The arrays of an .npz archive by name; ValueError when the file is anything else."""
    from .saving import read_npz  # noqa: PLC0415 - saving imports this module

    return read_npz(path)


# ----------------------------------------------------------------------------- VGG16

# (block name, filters, number of 3x3 convolutions) of the VGG16 convolutional base.
VGG16_LAYERS = ((1, 64, 2), (2, 128, 2), (3, 256, 3), (4, 512, 3), (5, 512, 3))


def vgg16_base(input_shape=(224, 224, 3), data_format="channels_last", weights=None, seed=None,
               dtype="float32", trainable=True):
    """The VGG16 convolutional base (Keras `VGG16(include_top=False)`): 13 conv 3x3 'same' + ReLU
    layers in 5 blocks, each block closed by a 2x2 max pooling; 14,714,688 parameters.

    input_shape excludes the batch axis: (H, W, C) for channels_last, (C, H, W) for channels_first.
    weights: None (Glorot-uniform init, `seed`) or the path of an .npz with entries
    "block{b}_conv{i}/kernel" (3, 3, C, K) and "block{b}_conv{i}/bias" (K,), float32, as written
    by examples/convert_vgg16_weights.py (from a torchvision state_dict or a Keras weight list).
    Pretrained weights expect the preprocessing of their source (torchvision: RGB in [0, 1]
    normalized by the ImageNet mean/std; Keras: BGR minus the ImageNet pixel mean).
    trainable=False freezes every layer (the transfer-learning base: forward-pass cost only).
    """
    layers = []
    rng = np.random.default_rng(seed)
    for block, filters, convs in VGG16_LAYERS:
        for i in range(1, convs + 1):
            layers.append(Conv2D(filters, 3, padding="same", activation="relu", data_format=data_format,
                                 seed=int(rng.integers(2**31)), name=f"block{block}_conv{i}", dtype=dtype))
        layers.append(MaxPooling2D(2, data_format=data_format, name=f"block{block}_pool"))
    model = Sequential(layers, input_shape=input_shape, name="vgg16")
    model.build()
    model.trainable = trainable
    if weights is not None:
        model.load_weights(weights)
    return model


def _vgg16_conv_names():
    return [f"block{b}_conv{i}" for b, _, n in VGG16_LAYERS for i in range(1, n + 1)]


# torchvision vgg16().features indices of the 13 Conv2d modules (ReLU/MaxPool in between).
_TORCH_FEATURE_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)


def vgg16_weights_from_torch(state_dict):
    """torchvision vgg16 state_dict ("features.{i}.weight" (K, C, 3, 3), "features.{i}.bias")
    -> {"block1_conv1/kernel": (3, 3, C, K) float32, ...}. Tensors or arrays; classifier.* is ignored."""
    out = {}
    for name, idx in zip(_vgg16_conv_names(), _TORCH_FEATURE_INDICES):
        try:
            w, b = state_dict[f"features.{idx}.weight"], state_dict[f"features.{idx}.bias"]
        except KeyError as exc:
            raise ValueError(f"state_dict has no {exc.args[0]!r}: expected torchvision vgg16 naming "
                             "(features.0.weight, features.2.weight, ..., features.28.bias)") from None
        w, b = _as_array(w), _as_array(b)
        if w.ndim != 4 or w.shape[2:] != (3, 3):
            raise ValueError(f"features.{idx}.weight has shape {w.shape}, expected (K, C, 3, 3)")
        out[f"{name}/kernel"] = np.ascontiguousarray(w.transpose(2, 3, 1, 0), dtype=np.float32)
        out[f"{name}/bias"] = b.astype(np.float32)
    return out


def vgg16_weights_from_keras(weight_list):
    """Keras `VGG16(include_top=False).get_weights()` (26 arrays: kernel (3, 3, C, K), bias (K,)
    per conv layer, in order) -> {"block1_conv1/kernel": ..., "block1_conv1/bias": ..., ...}."""
    weight_list = [_as_array(a) for a in weight_list]
    names = _vgg16_conv_names()
    if len(weight_list) != 2 * len(names):
        raise ValueError(f"expected {2 * len(names)} arrays (kernel, bias for 13 conv layers), got {len(weight_list)}")
    out = {}
    for i, name in enumerate(names):
        w, b = weight_list[2 * i], weight_list[2 * i + 1]
        if w.ndim != 4 or w.shape[:2] != (3, 3) or b.shape != (w.shape[3],):
            raise ValueError(f"array {2 * i} / {2 * i + 1} ({name}) have shapes {w.shape} / {b.shape}, "
                             "expected (3, 3, C, K) / (K,)")
        out[f"{name}/kernel"] = w.astype(np.float32)
        out[f"{name}/bias"] = b.astype(np.float32)
    return out


def _as_array(t):
    if hasattr(t, "detach"):                     # torch.Tensor
        t = t.detach().cpu().numpy()
    return np.asarray(t)
