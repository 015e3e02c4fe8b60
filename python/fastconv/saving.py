"""Whole-model files: `model.save(path)` and `fastconv.load_model(path)`.

One .npz archive (read without pickle, so a file from elsewhere cannot run code):
  "__fastconv_model__"   JSON: format version, model name and input shape, each layer's class
                         and get_config(); after compile, the loss, the metric names and the
                         optimizer's class, arguments and step count
  "<layer>/<param>"      the weights, in Keras' layout (the entries of save_weights)
  "__optimizer__/..."    the optimizer's state arrays (velocities, moments), when saved
"""
from __future__ import annotations

import json
import os

import numpy as np

from . import layers as layers_lib
from . import losses, optim
from ._arrays import array_module, to_numpy

__all__ = ["save_model", "load_model"]

FORMAT = "fastconv.Sequential/1"
_MODEL_KEY = "__fastconv_model__"
_OPT_PREFIX = "__optimizer__/"
_LAYERS = {cls.__name__: cls for cls in (layers_lib.Conv2D, layers_lib.MaxPooling2D, layers_lib.ReLU,
                                         layers_lib.Flatten, layers_lib.Dense, layers_lib.Dropout,
                                         layers_lib.Softmax, layers_lib.LeakyReLU, layers_lib.Activation,
                                         layers_lib.AveragePooling2D, layers_lib.GlobalAveragePooling2D,
                                         layers_lib.GlobalMaxPooling2D, layers_lib.BatchNormalization)}
# Metrics saved by name; a custom metric function is not saved (compile the loaded model again
# to use it).
_BUILTIN_METRICS = ("accuracy", "sparse_categorical_accuracy", "categorical_accuracy", "binary_accuracy")
_SCHEDULES = {cls.__name__: cls for cls in (optim.StepDecay, optim.ExponentialDecay, optim.CosineDecay)}


def _json_ready(v):
    if isinstance(v, tuple):
        return [_json_ready(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def _tuples(v):
    """JSON lists back to the tuples the constructors were given."""
    return tuple(_tuples(x) for x in v) if isinstance(v, list) else v


# ----------------------------------------------------------------------------- optimizer

def _optimizer_config(opt):
    opt = getattr(opt, "wrapped", opt)      # a DistributedOptimizer saves the optimizer it wraps
    cls = type(opt).__name__
    if cls == "SGD":
        cfg = {"momentum": opt.momentum, "nesterov": opt.nesterov, "weight_decay": opt.weight_decay}
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


def _optimizer_from(desc):
    cls = getattr(optim, desc["class"], None)
    if not (isinstance(cls, type) and issubclass(cls, optim.Optimizer)):
        raise ValueError(f"unknown optimizer {desc['class']!r} in the model file")
    cfg = dict(desc["config"])
    lr = cfg.pop("learning_rate")
    if isinstance(lr, dict):
        lr = _SCHEDULES[lr["schedule"]](**lr["config"])
    opt = cls(learning_rate=lr, **cfg)
    opt.iterations = int(desc["iterations"])
    return opt


def _state_arrays(opt):
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


def _restore_state(opt, stored, params):
    """Rebuild opt.state from the entries of _state_arrays, on the parameters' device and dtype."""
    by_name = {ref.name: ref.value for ref in params}
    groups: dict = {}
    for key, arr in stored.items():
        rest = key[len(_OPT_PREFIX):]
        for sep in ("@", "#"):
            if sep in rest:
                name, sub = rest.rsplit(sep, 1)
                groups.setdefault(name, [sep, {}])[1][sub] = arr
                break
        else:
            groups[rest] = [None, arr]
    for name, (kind, value) in groups.items():
        if name not in by_name:
            raise ValueError(f"the optimizer state names parameter {name!r}, which the model does not have")
        p = by_name[name]
        xp = array_module(p)

        def dev(a, p=p, xp=xp):
            if tuple(a.shape) != tuple(p.shape):
                raise ValueError(f"optimizer state for {name!r} has shape {a.shape}, the parameter {p.shape}")
            return xp.asarray(a.astype(p.dtype))
        if kind == "@":
            full = {"v": None, "a": None, "m": None}
            full.update({k: dev(a) for k, a in value.items()})
            opt.state[name] = full
        elif kind == "#":
            opt.state[name] = tuple(dev(value[str(i)]) for i in range(len(value)))
        else:
            opt.state[name] = dev(value)


# ----------------------------------------------------------------------------- model

def save_model(model, path, include_optimizer=True):
    if not model.built:
        model.build()
    desc = {"format": FORMAT, "name": model.name, "input_shape": list(model.input_shape),
            "input_grad": model.input_grad,
            "layers": [{"class": type(layer).__name__, "config": {k: _json_ready(v) for k, v in layer.get_config().items()}}
                       for layer in model.layers]}
    for layer in model.layers:
        if type(layer).__name__ not in _LAYERS:
            raise ValueError(f"cannot save layer {layer.name!r} of class {type(layer).__name__}")
    arrays = {f"{layer.name}/{k}": to_numpy(layer._export(k, v))
              for layer in model.layers for k, v in layer.params.items()}
    if model.loss is not None:
        desc["compile"] = {"loss": {"class": type(model.loss).__name__, "from_logits": model.loss.from_logits},
                           "metrics": [name for name, _ in model.metrics if name in _BUILTIN_METRICS]}
        if include_optimizer and model.optimizer is not None:
            desc["compile"]["optimizer"] = _optimizer_config(model.optimizer)
            arrays.update(_state_arrays(model.optimizer))
    arrays[_MODEL_KEY] = np.array(json.dumps(desc))
    with open(os.fspath(path), "wb") as f:       # exactly this name (np.savez would add .npz)
        np.savez(f, **arrays)


def load_model(path, compile=True):
    """Rebuild a model written by Sequential.save: its layers, weights and (with compile=True)
    loss, metrics and optimizer state, so training continues where it stopped."""
    from .models import Sequential, _read_npz  # noqa: PLC0415 - models imports this module lazily

    path = os.fspath(path)
    stored = _read_npz(path)
    if _MODEL_KEY not in stored:
        raise ValueError(f"{path} is not a model file written by model.save (no {_MODEL_KEY!r} entry; "
                         "a weights file goes to model.load_weights)")
    try:
        desc = json.loads(str(stored.pop(_MODEL_KEY)))
        if desc.get("format") != FORMAT:
            raise ValueError(f"format {desc.get('format')!r}, expected {FORMAT!r}")
        model_layers = []
        for entry in desc["layers"]:
            if entry["class"] not in _LAYERS:
                raise ValueError(f"unknown layer class {entry['class']!r}")
            model_layers.append(_LAYERS[entry["class"]](**{k: _tuples(v) for k, v in entry["config"].items()}))
        model = Sequential(model_layers, input_shape=desc["input_shape"], name=desc["name"],
                           input_grad=desc["input_grad"])
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: the model description is damaged ({exc!r})") from None
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    opt_entries = {k: stored.pop(k) for k in list(stored) if k.startswith(_OPT_PREFIX)}
    model._assign_weights(stored, path)
    comp = desc.get("compile")
    if compile and comp is not None:
        loss_cls = getattr(losses, comp["loss"]["class"])
        loss = loss_cls(from_logits=comp["loss"]["from_logits"]) if comp["loss"]["class"] != "MeanSquaredError" else loss_cls()
        opt = _optimizer_from(comp["optimizer"]) if "optimizer" in comp else "rmsprop"
        model.compile(optimizer=opt, loss=loss, metrics=comp["metrics"])
        if opt_entries:     # frozen layers' state too: they may be unfrozen again (fine-tuning)
            _restore_state(model.optimizer, opt_entries, [r for layer in model.layers for r in layer._refs()])
    return model
