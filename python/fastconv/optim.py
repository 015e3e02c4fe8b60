"""Optimizers that update layer parameters in place from their gradients.

    opt = fc.optim.SGD(lr=0.01, momentum=0.9)
    ...
    model.backward(loss.backward())
    opt.step(model.parameters())        # or opt.step(model)

`step` takes ParamRef objects (from `model.parameters()` / `layer.parameters()`) or anything with
a `.parameters()` method; parameters of frozen layers (`trainable = False`) are left as they are.
Arrays are updated in place (p -= ...), so references to them stay valid; optimizer state
(velocity, moments) is kept per parameter name and created on the first step with the
parameter's array module (NumPy or CuPy) and dtype. The update rules are PyTorch's (documented
on each class).
"""
from __future__ import annotations

import numpy as np

from . import _cpu
from .layers import array_module

__all__ = ["Optimizer", "SGD", "Adam"]


class Optimizer:
    def __init__(self, lr):
        if not lr > 0:
            raise ValueError(f"lr must be positive, got {lr!r}")
        self.lr = float(lr)
        self.state: dict = {}
        self.iterations = 0

    @staticmethod
    def _refs(params):
        if hasattr(params, "parameters"):
            params = params.parameters()
        return list(params)

    def step(self, params):
        """Apply one update to every trainable parameter that has a gradient."""
        self.iterations += 1
        for ref in self._refs(params):
            g = ref.grad
            if g is None or not ref.trainable:
                continue
            p = ref.value
            if tuple(g.shape) != tuple(p.shape):
                raise ValueError(f"{ref.name}: gradient shape {tuple(g.shape)} != parameter shape {tuple(p.shape)}")
            self._update(ref.name, p, g.astype(p.dtype, copy=False))

    def _update(self, name, p, g):
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay:

        g = grad + weight_decay * p
        v = momentum * v + g                      (v = 0 before the first step)
        p -= lr * (g + momentum * v)  if nesterov  else  lr * v
    (with momentum = 0: p -= lr * g). Equivalent to Keras' SGD for a constant learning rate.
    """

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(lr)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        if nesterov and momentum == 0.0:
            raise ValueError("nesterov=True needs momentum > 0")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        self.momentum, self.nesterov, self.weight_decay = float(momentum), bool(nesterov), float(weight_decay)

    def _update(self, name, p, g):
        if self.weight_decay:
            g = g + p.dtype.type(self.weight_decay) * p
        if self.momentum:
            v = self.state.get(name)
            if v is None:
                v = self.state[name] = g.copy()
            else:
                v *= p.dtype.type(self.momentum)
                v += g
            g = g + p.dtype.type(self.momentum) * v if self.nesterov else v
        p -= p.dtype.type(self.lr) * g


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction:

        m = b1 * m + (1 - b1) * g;   v = b2 * v + (1 - b2) * g^2
        p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
    """

    def __init__(self, lr=0.001, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(lr)
        b1, b2 = betas
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"betas must be in [0, 1), got {betas!r}")
        if eps <= 0:
            raise ValueError(f"eps must be positive, got {eps!r}")
        self.betas, self.eps = (float(b1), float(b2)), float(eps)

    def _update(self, name, p, g):
        b1, b2 = self.betas
        t = self.iterations
        if name not in self.state:
            xp = array_module(p)
            self.state[name] = (xp.zeros_like(p), xp.zeros_like(p))
        m, v = self.state[name]
        dt = p.dtype.type
        step, c2 = self.lr / (1 - b1 ** t), 1 - b2 ** t
        if (isinstance(p, np.ndarray) and isinstance(g, np.ndarray) and p.flags.c_contiguous
                and g.dtype == p.dtype and g.shape == p.shape):
            # One fused pass on the CPU (csrc/cpu/optim.cpp), the same operations as below.
            _cpu.adam_update(p, np.ascontiguousarray(g), m, v,
                             tuple(dt(c) for c in (b1, 1 - b1, b2, 1 - b2, c2, self.eps, step)))
            return
        m *= dt(b1)
        m += dt(1 - b1) * g
        v *= dt(b2)
        v += dt(1 - b2) * (g * g)
        denom = (v / dt(c2)) ** 0.5 + dt(self.eps)
        p -= dt(step) * (m / denom)
