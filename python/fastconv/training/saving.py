"""Whole-model files: `model.save(path)` and `fastconv.load_model(path)` (the model description,
the registries of the classes a file may name, the optimizer state); the .npz reading and
writing they share with weight files is in npz.py.

One .npz archive (read without pickle, so a file from elsewhere cannot run code):
  "__fastconv_model__"   JSON: format version, model name and input shape, each layer's class
                         and get_config(); after compile, the loss, the metric names and the
                         optimizer's class, arguments and step count
  "<layer>/<param>"      the weights, in Keras' layout (the entries of save_weights)
  "__optimizer__/<layer>/<param>[@key|#i]"
                         the optimizer's state arrays (velocities, moments), when saved: a dict
                         item as "@key", a tuple item as "#i" (after the last "/", so any layer
                         name reads back)

Files are written to a temporary file in the target's folder and renamed over the target only
once complete, so a failed save (a full disk) leaves the previous file as it was. Loading trusts
nothing in the file: classes come from the registries below (never a module attribute named by
the file), every parameter shape is checked against the file's arrays before anything is
allocated, and any damage is a ValueError that names the file and the damaged part.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import layers as layers_lib
from .._typing import Shape
from ..backend.arrays import array_module, to_numpy
from ..ops._checks import flag
from . import losses
from . import optimizers as optim
from .npz import file_path, read_npz, write_npz

__all__ = ["save_model", "restore_model", "read_npz", "write_npz"]

FORMAT = "fastconv.Sequential/1"
_MODEL_KEY = "__fastconv_model__"
_OPT_PREFIX = "__optimizer__/"


def _registry(*classes: type) -> dict[str, type]:
    return {cls.__name__: cls for cls in classes}


# The only classes a model file may name.
_LAYERS = _registry(
    layers_lib.Conv2D,
    layers_lib.MaxPooling2D,
    layers_lib.ReLU,
    layers_lib.Flatten,
    layers_lib.Dense,
    layers_lib.Dropout,
    layers_lib.Softmax,
    layers_lib.LeakyReLU,
    layers_lib.Activation,
    layers_lib.AveragePooling2D,
    layers_lib.GlobalAveragePooling2D,
    layers_lib.GlobalMaxPooling2D,
    layers_lib.BatchNormalization,
)
_LOSSES = _registry(
    losses.SparseCategoricalCrossentropy,
    losses.CategoricalCrossentropy,
    losses.BinaryCrossentropy,
    losses.MeanSquaredError,
)
_OPTIMIZERS = _registry(optim.SGD, optim.RMSprop, optim.Adam, optim.AdamW)
_SCHEDULES = _registry(optim.StepDecay, optim.ExponentialDecay, optim.CosineDecay)
# Metrics saved by name; a custom metric function is not saved (compile the loaded model again
# to use it).
_BUILTIN_METRICS = ("accuracy", "sparse_categorical_accuracy", "categorical_accuracy", "binary_accuracy")

# What a constructor or a shape computation raises when a damaged description hands it a wrong
# value; each becomes a ValueError naming the part of the file.
_BAD_ARGUMENT = (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError)


# What zipfile and NumPy's .npy header parser raise on damaged bytes.
def _damaged(part: str, problem: str) -> ValueError:
    return ValueError(f"the model description is damaged: {part} {problem}")


def _field(obj: Any, key: str, kinds: tuple[type, ...], part: str, optional: bool = False) -> Any:
    """obj[key] of one of the JSON types `kinds` (a bool is not a number); None when optional
    and absent."""
    if not isinstance(obj, dict):
        raise _damaged(part, f"must be a JSON object, got {type(obj).__name__}")
    if key not in obj:
        if optional:
            return None
        raise _damaged(part, f"has no {key!r} entry")
    value = obj[key]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise _damaged(f"{part}[{key!r}]", f"must be {names}, got {type(value).__name__} {value!r:.80}")
    return value


def _json_ready(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_json_ready(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def _tuples(v: Any) -> Any:
    """JSON lists back to the tuples the constructors were given."""
    return tuple(_tuples(x) for x in v) if isinstance(v, list) else v


def _registered(registry: dict[str, type], name: str, part: str, what: str) -> type:
    """The class `name` of a registry, else a ValueError listing what a file may name."""
    if name not in registry:
        raise _damaged(part, f"names an unknown {what} {name!r} (a model file may name {', '.join(sorted(registry))})")
    return registry[name]


def _construct(cls: type, config: dict[str, Any], part: str) -> Any:
    """cls(**config) from the file, its errors as a ValueError naming the part."""
    try:
        return cls(**{k: _tuples(v) for k, v in config.items()})
    except _BAD_ARGUMENT as exc:
        raise _damaged(part, f"cannot rebuild a {cls.__name__}: {exc}") from None


def _description(entry: NDArray[Any]) -> dict[str, Any]:
    """The JSON description, its top-level structure checked."""
    if not (isinstance(entry, np.ndarray) and entry.dtype.kind == "U" and entry.ndim == 0):
        raise _damaged(repr(_MODEL_KEY), f"must be JSON text, got a {entry.dtype} array of shape {entry.shape}")
    try:
        desc = json.loads(str(entry))
    except (ValueError, RecursionError) as exc:
        raise _damaged(repr(_MODEL_KEY), f"is not JSON ({exc!r})") from None
    part = "the description"
    if _field(desc, "format", (str,), part) != FORMAT:
        raise _damaged("'format'", f"is {desc['format']!r}, expected {FORMAT!r}")
    _field(desc, "name", (str,), part)
    shape = _field(desc, "input_shape", (list,), part)
    if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape):
        raise _damaged("'input_shape'", f"must be a list of positive ints, got {shape!r:.80}")
    _field(desc, "input_grad", (bool,), part)
    if not _field(desc, "layers", (list,), part):
        raise _damaged("'layers'", "is empty")
    _field(desc, "compile", (dict,), part, optional=True)
    return desc


def _layer_from(entry: Any, i: int) -> Any:
    part = f"layers[{i}]"
    cls = _registered(_LAYERS, _field(entry, "class", (str,), part), part, "layer class")
    config = _field(entry, "config", (dict,), part)
    _field(config, "name", (str, type(None)), f"{part}['config']", optional=True)
    return _construct(cls, config, f"{part} ({cls.__name__})")


def _param_shapes(layer: Any, input_shape: Shape) -> dict[str, Shape]:
    """The shapes in the file (Keras' layout) of the parameters `layer` creates for inputs of
    `input_shape`, known before anything is allocated."""
    shapes: dict[str, Shape]
    if isinstance(layer, layers_lib.Conv2D):
        channels, _ = layer._channels_hw(input_shape)
        shapes, bias = {"kernel": (*layer.kernel_size, channels, layer.filters)}, layer.filters
    elif isinstance(layer, layers_lib.Dense):
        if len(input_shape) != 1:
            raise ValueError(f"Dense expects inputs of shape (N, features), got {(None, *input_shape)}")
        shapes, bias = {"kernel": (input_shape[0], layer.units)}, layer.units
    elif isinstance(layer, layers_lib.BatchNormalization):
        channels = layer._channels(input_shape)
        keys = ("gamma",) * layer.scale + ("beta",) * layer.center + ("moving_mean", "moving_variance")
        return {k: (channels,) for k in keys}
    else:
        return {}
    if layer.use_bias:
        shapes["bias"] = (bias,)
    return shapes


def _check_weight_shapes(model: Any, stored: dict[str, NDArray[Any]]) -> None:
    """Every parameter the description creates, checked against the file's array before the
    model is built, so a damaged size cannot allocate more than the file holds."""
    shape = tuple(model.input_shape)
    for i, layer in enumerate(model.layers):
        part = f"layers[{i}] ({type(layer).__name__} {layer.name!r})"
        try:
            planned = _param_shapes(layer, shape)
            shape = tuple(layer.output_shape(shape))
        except _BAD_ARGUMENT as exc:
            raise _damaged(part, f"does not fit its input shape {(None, *shape)}: {exc}") from None
        for k, want in planned.items():
            key = f"{layer.name}/{k}"
            if key not in stored:
                raise ValueError(f"layer {layer.name!r} parameter {k!r}: the file holds no {key!r} entry")
            if tuple(stored[key].shape) != want:
                raise ValueError(
                    f"layer {layer.name!r} parameter {k!r}: the file holds shape "
                    f"{tuple(stored[key].shape)} but the model expects {want}"
                )


# ----------------------------------------------------------------------------- optimizer


def _optimizer_config(opt: Any) -> dict[str, Any]:
    cls = type(opt).__name__
    if cls == "SGD":
        cfg: dict[str, Any] = {"momentum": opt.momentum, "nesterov": opt.nesterov, "weight_decay": opt.weight_decay}
    elif cls == "RMSprop":
        cfg = {"rho": opt.rho, "momentum": opt.momentum, "epsilon": opt.epsilon, "centered": opt.centered}
    elif cls in ("Adam", "AdamW"):
        cfg = {"beta_1": opt.betas[0], "beta_2": opt.betas[1], "epsilon": opt.eps}
        if cls == "AdamW":
            cfg["weight_decay"] = opt.weight_decay
    else:
        raise ValueError(f"cannot save the optimizer {cls}; pass include_optimizer=False")
    schedule = opt.schedule
    if schedule is None:
        cfg["learning_rate"] = opt.learning_rate
    elif type(schedule).__name__ in _SCHEDULES:
        cfg["learning_rate"] = {"schedule": type(schedule).__name__, "config": dict(vars(schedule))}
    else:
        raise ValueError(f"cannot save the learning-rate schedule {schedule!r}; pass include_optimizer=False")
    return {"class": cls, "config": cfg, "iterations": opt.iterations}


def _optimizer_from(desc: Any) -> optim.Optimizer:
    part = "compile['optimizer']"
    cls = _registered(_OPTIMIZERS, _field(desc, "class", (str,), part), part, "optimizer")
    cfg = dict(_field(desc, "config", (dict,), part))
    lr = _field(cfg, "learning_rate", (int, float, dict), f"{part}['config']")
    if isinstance(lr, dict):
        sched_part = f"{part}['config']['learning_rate']"
        schedule = _registered(_SCHEDULES, _field(lr, "schedule", (str,), sched_part), sched_part, "schedule")
        cfg["learning_rate"] = _construct(schedule, _field(lr, "config", (dict,), sched_part), sched_part)
    opt = _construct(cls, cfg, part)
    iterations = _field(desc, "iterations", (int,), part)
    if iterations < 0:
        raise _damaged(f"{part}['iterations']", f"must be >= 0, got {iterations}")
    opt.iterations = iterations
    return opt


def _state_arrays(opt: optim.Optimizer) -> dict[str, NDArray[Any]]:
    """Optimizer state as flat entries: name -> array, name#i -> tuple item, name@k -> dict item."""
    out = {}
    for name, st in opt.state.items():
        if isinstance(st, dict):
            out.update({f"{_OPT_PREFIX}{name}@{k}": to_numpy(v) for k, v in st.items() if v is not None})
        elif isinstance(st, tuple):
            out.update({f"{_OPT_PREFIX}{name}#{i}": to_numpy(v) for i, v in enumerate(st)})
        else:
            out[f"{_OPT_PREFIX}{name}"] = to_numpy(st)
    return out


def _state_layout(opt: optim.Optimizer) -> tuple[str, tuple[str, ...]] | None:
    """The per-parameter state `opt` keeps: (separator, item keys); ("", ()) for one array and
    None for no state."""
    if isinstance(opt, optim.Adam):  # Adam, AdamW: (m, v)
        return "#", ("0", "1")
    if isinstance(opt, optim.RMSprop):
        return "@", ("v",) + ("a",) * opt.centered + ("m",) * bool(opt.momentum)
    if isinstance(opt, optim.SGD) and opt.momentum:
        return "", ()
    return None


def _restore_state(opt: optim.Optimizer, stored: dict[str, NDArray[Any]], params: list[Any]) -> None:
    """Rebuild opt.state from the entries of _state_arrays, on the parameters' device and dtype.
    Parameter names end at the last "/" plus the parameter key (which holds no "@" or "#"), so a
    layer name with any character reads back."""
    by_name = {ref.name: ref.value for ref in params}
    layout = _state_layout(opt)
    groups: dict[str, dict[str, NDArray[Any]]] = {}
    for key, arr in stored.items():
        layer_name, slash, tail = key[len(_OPT_PREFIX) :].rpartition("/")
        cut = min((tail.index(s) for s in "@#" if s in tail), default=len(tail))
        name, sep, item = f"{layer_name}/{tail[:cut]}", tail[cut : cut + 1], tail[cut + 1 :]
        if not slash or name not in by_name:
            raise ValueError(f"the optimizer state entry {key!r} names no parameter of the model")
        if layout is None or sep != layout[0]:
            raise ValueError(
                f"the optimizer state entry {key!r} does not fit a {type(opt).__name__} with the saved arguments"
            )
        groups.setdefault(name, {})[item] = arr
    if layout is None:  # no state to keep, and no entry (each was refused above)
        return
    for name, items in groups.items():
        if sorted(items) != sorted(layout[1] or ("",)):
            raise ValueError(
                f"the optimizer state of {name!r} holds {sorted(items)}; a {type(opt).__name__} "
                f"with the saved arguments keeps {list(layout[1] or ('',))}"
            )
        p = by_name[name]
        xp = array_module(p)
        for a in items.values():
            if a.dtype.kind not in "fiu" or tuple(a.shape) != tuple(p.shape):
                raise ValueError(
                    f"the optimizer state of {name!r} is a {a.dtype} array of shape {a.shape}, "
                    f"the parameter a {p.dtype} array of shape {p.shape}"
                )
        state = {item: xp.asarray(a.astype(p.dtype)) for item, a in items.items()}
        if layout[0] == "@":
            opt.state[name] = {k: state.get(k) for k in ("v", "a", "m")}
        elif layout[0] == "#":
            opt.state[name] = tuple(state[k] for k in layout[1])
        else:
            opt.state[name] = state[""]


def _compile_from(model: Any, comp: Any, opt_entries: dict[str, NDArray[Any]]) -> None:
    part = "compile"
    loss_desc = _field(comp, "loss", (dict,), part)
    loss_cls = _registered(
        _LOSSES,
        _field(loss_desc, "class", (str,), f"{part}['loss']"),
        f"{part}['loss']",
        "loss (load_model(path, compile=False) reads the model without it)",
    )
    from_logits = _field(loss_desc, "from_logits", (bool,), f"{part}['loss']")
    loss = loss_cls() if loss_cls is losses.MeanSquaredError else loss_cls(from_logits=from_logits)
    metrics = _field(comp, "metrics", (list,), part)
    unknown = [m for m in metrics if m not in _BUILTIN_METRICS]
    if unknown:
        raise _damaged(f"{part}['metrics']", f"names {unknown!r:.80}; a model file may name {list(_BUILTIN_METRICS)}")
    opt_desc = _field(comp, "optimizer", (dict,), part, optional=True)
    opt = _optimizer_from(opt_desc) if opt_desc is not None else "rmsprop"
    model.compile(optimizer=opt, loss=loss, metrics=metrics)
    if opt_entries:  # frozen layers' state too: they may be unfrozen again (fine-tuning)
        _restore_state(model.optimizer, opt_entries, [r for layer in model.layers for r in layer._refs()])


# ----------------------------------------------------------------------------- model


def _storable(name: str) -> bool:
    """Whether an .npz entry can carry this name (a zip entry name ends at NUL and is UTF-8)."""
    try:
        return "\0" not in name and len(name.encode("utf-8")) < 65000
    except UnicodeEncodeError:
        return False


def save_model(model: Any, path: str | os.PathLike[str], include_optimizer: bool = True) -> None:
    path = file_path(path)
    include_optimizer = flag("include_optimizer", include_optimizer)
    if not isinstance(model.name, str):
        raise ValueError(f"cannot save a model whose name is not a str: {model.name!r}")
    if not model.built:
        model.build()
    for layer in model.layers:
        if type(layer).__name__ not in _LAYERS:
            raise ValueError(f"cannot save layer {layer.name!r} of class {type(layer).__name__}")
        if not isinstance(layer.name, str) or not _storable(layer.name):
            raise ValueError(
                f"cannot save layer {layer.name!r}: a layer name in a file must be a str "
                "without NUL characters or lone surrogates, under 65,000 bytes in UTF-8"
            )
    desc = {
        "format": FORMAT,
        "name": model.name,
        "input_shape": list(model.input_shape),
        "input_grad": model.input_grad,
        "layers": [
            {"class": type(layer).__name__, "config": {k: _json_ready(v) for k, v in layer.get_config().items()}}
            for layer in model.layers
        ],
    }
    arrays = {
        f"{layer.name}/{k}": to_numpy(layer._export(k, v)) for layer in model.layers for k, v in layer.params.items()
    }
    if model.loss is not None:
        desc["compile"] = {
            "loss": {"class": type(model.loss).__name__, "from_logits": model.loss.from_logits},
            "metrics": [name for name, _ in model.metrics if name in _BUILTIN_METRICS],
        }
        if include_optimizer and model.optimizer is not None:
            opt = getattr(model.optimizer, "wrapped", model.optimizer)  # a DistributedOptimizer's own
            desc["compile"]["optimizer"] = _optimizer_config(opt)
            arrays.update(_state_arrays(opt))
    arrays[_MODEL_KEY] = np.array(json.dumps(desc))
    write_npz(path, arrays)  # exactly this name (np.savez would add .npz)


def restore_model(path: str | os.PathLike[str], model_class: type, compile: bool = True) -> Any:
    """Rebuild a model written by Sequential.save as a `model_class` (fastconv.load_model passes
    Sequential): its layers, weights and (with compile=True) loss, metrics and optimizer state,
    so training continues where it stopped."""
    path = file_path(path)
    compile = flag("compile", compile)
    stored = read_npz(path)
    if _MODEL_KEY not in stored:
        raise ValueError(
            f"{path} is not a model file written by model.save (no {_MODEL_KEY!r} entry; "
            "a weights file goes to model.load_weights)"
        )
    try:
        desc = _description(stored.pop(_MODEL_KEY))
        model_layers = [_layer_from(entry, i) for i, entry in enumerate(desc["layers"])]
        try:
            model = model_class(model_layers, name=desc["name"], input_grad=desc["input_grad"])
        except _BAD_ARGUMENT as exc:
            raise _damaged("'layers'", f"cannot form a model: {exc}") from None
        model.input_shape = tuple(desc["input_shape"])
        _check_weight_shapes(model, stored)
        model.build()
        weight_keys = {f"{layer.name}/{k}" for layer in model.layers for k in layer.params}
        opt_entries = {k: stored.pop(k) for k in list(stored) if k.startswith(_OPT_PREFIX) and k not in weight_keys}
        model._assign_weights(stored, path)
        comp = desc.get("compile")
        if compile and comp is not None:
            _compile_from(model, comp, opt_entries)
        elif compile and opt_entries:
            raise _damaged("'compile'", "is missing, but the file holds optimizer state")
    except ValueError as exc:
        message = str(exc)
        raise ValueError(message if message.startswith(path) else f"{path}: {message}") from None
    return model
