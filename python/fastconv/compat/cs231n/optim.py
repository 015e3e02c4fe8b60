"""The course's optim.py update rules; the state lives in config, as the course's Solver expects."""

from __future__ import annotations

import numbers

import numpy as np

from ...backend.arrays import array_module

__all__ = ["sgd", "sgd_momentum", "rmsprop", "adam"]


def _config(config, defaults):
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict or None, got {type(config).__name__}")
    for k, v in defaults.items():
        config.setdefault(k, v)
        value = config[k]
        scalar = isinstance(value, numbers.Real) or (isinstance(value, np.ndarray) and value.ndim == 0)
        if isinstance(value, bool) or not scalar or np.asarray(value).dtype.kind not in "iuf":
            raise TypeError(f"config['{k}'] must be a number, got {type(value).__name__} {value!r}")
    return config


def sgd(w, dw, config=None):
    """Vanilla SGD (the course's optim.sgd): w - learning_rate * dw. Returns (next_w, config)."""
    config = _config(config, {"learning_rate": 1e-2})
    return w - config["learning_rate"] * dw, config


def sgd_momentum(w, dw, config=None):
    """SGD with momentum: v = momentum * v - learning_rate * dw; next_w = w + v."""
    config = _config(config, {"learning_rate": 1e-2, "momentum": 0.9})
    v = config.get("velocity")
    v = (0 if v is None else config["momentum"] * v) - config["learning_rate"] * dw
    config["velocity"] = v
    return w + v, config


def rmsprop(w, dw, config=None):
    """RMSProp: cache = decay_rate * cache + (1 - decay_rate) * dw^2;
    next_w = w - learning_rate * dw / (sqrt(cache) + epsilon)."""
    config = _config(config, {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8})
    cache = config.get("cache")
    cache = (1 - config["decay_rate"]) * dw * dw + (0 if cache is None else config["decay_rate"] * cache)
    config["cache"] = cache
    return w - config["learning_rate"] * dw / (array_module(w).sqrt(cache) + config["epsilon"]), config


def adam(w, dw, config=None):
    """Adam with bias correction, as the course's optim.adam: t += 1; m, v moving averages;
    next_w = w - learning_rate * m_hat / (sqrt(v_hat) + epsilon)."""
    config = _config(config, {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "t": 0})
    xp = array_module(w)
    m = config.get("m")
    v = config.get("v")
    m = xp.zeros_like(w) if m is None else m
    v = xp.zeros_like(w) if v is None else v
    t = config["t"] + 1
    b1, b2 = config["beta1"], config["beta2"]
    m = b1 * m + (1 - b1) * dw
    v = b2 * v + (1 - b2) * dw * dw
    config.update(m=m, v=v, t=t)
    m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
    return w - config["learning_rate"] * m_hat / (xp.sqrt(v_hat) + config["epsilon"]), config
