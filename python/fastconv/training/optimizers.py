"""Optimizers that update layer parameters in place from their gradients.

    opt = fc.optim.SGD(lr=0.01, momentum=0.9)
    ...
    model.backward(loss.backward())
    opt.step(model.parameters())        # or opt.step(model)

`step` takes ParamRef objects (from `model.parameters()` / `layer.parameters()`) or anything with
a `.parameters()` method; parameters of frozen layers (`trainable = False`) are left as they are.
Arrays are updated in place (p -= ...), so references to them stay valid; optimizer state
(velocity, moments) is kept per parameter name and created on the first step with the
parameter's array module (NumPy or CuPy) and dtype. Each class documents its update rule.

Keras' argument names are accepted beside PyTorch's: `learning_rate` (= `lr`), `beta_1`/`beta_2`
(= `betas`), `epsilon` (= `eps`). The learning rate may be a schedule (`StepDecay`,
`ExponentialDecay`, `CosineDecay`, or any callable of the step count): it is evaluated at every
step with the number of steps taken before it (0 at the first), as Keras does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _cpu
from .._typing import Array
from ..backend.arrays import array_module
from ..ops._shapes import positive_int

__all__ = ["Optimizer", "SGD", "RMSprop", "Adam", "AdamW", "StepDecay", "ExponentialDecay", "CosineDecay", "get"]


# ----------------------------------------------------------------------------- schedules


class Schedule:
    """A learning rate as a function of the step count (steps taken before this one)."""

    def __call__(self, step: int) -> float:
        raise NotImplementedError


class StepDecay(Schedule):
    """initial_learning_rate * gamma ** (step // step_size)  (PyTorch's StepLR, counted in steps)."""

    def __init__(self, initial_learning_rate: float, step_size: int, gamma: float = 0.1) -> None:
        self.initial_learning_rate = _positive(initial_learning_rate, "initial_learning_rate")
        self.step_size = positive_int(step_size, "step_size")
        self.gamma = _in_range(gamma, "gamma", 0.0, 1.0, high_open=False)

    def __call__(self, step: int) -> float:
        return self.initial_learning_rate * self.gamma ** (step // self.step_size)


class ExponentialDecay(Schedule):
    """initial_learning_rate * decay_rate ** (step / decay_steps), the exponent floored when
    staircase (Keras' ExponentialDecay)."""

    def __init__(
        self, initial_learning_rate: float, decay_steps: int, decay_rate: float, staircase: bool = False
    ) -> None:
        self.initial_learning_rate = _positive(initial_learning_rate, "initial_learning_rate")
        self.decay_steps = positive_int(decay_steps, "decay_steps")
        self.decay_rate = _positive(decay_rate, "decay_rate")
        self.staircase = bool(staircase)

    def __call__(self, step: int) -> float:
        e = step / self.decay_steps
        return self.initial_learning_rate * self.decay_rate ** (math.floor(e) if self.staircase else e)


class CosineDecay(Schedule):
    """Keras' CosineDecay: initial_learning_rate * ((1 - alpha) * c + alpha) with
    c = (1 + cos(pi * min(step, decay_steps) / decay_steps)) / 2."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, alpha: float = 0.0) -> None:
        self.initial_learning_rate = _positive(initial_learning_rate, "initial_learning_rate")
        self.decay_steps = positive_int(decay_steps, "decay_steps")
        self.alpha = _in_range(alpha, "alpha", 0.0, 1.0, high_open=False)

    def __call__(self, step: int) -> float:
        c = 0.5 * (1 + math.cos(math.pi * min(step, self.decay_steps) / self.decay_steps))
        return self.initial_learning_rate * ((1 - self.alpha) * c + self.alpha)


def finite_number(v: object, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {v!r}")
    return float(v)


def _positive(v: object, name: str) -> float:
    number = finite_number(v, name)
    if not number > 0:
        raise ValueError(f"{name} must be positive, got {number!r}")
    return number


def _in_range(v: object, name: str, low: float, high: float, high_open: bool = True) -> float:
    number = finite_number(v, name)
    if not (low <= number < high if high_open else low <= number <= high):
        raise ValueError(f"{name} must be in [{low}, {high}{')' if high_open else ']'}, got {number!r}")
    return number


def _either(name_a: str, a: Any, name_b: str, b: Any, default: Any) -> Any:
    """One value given under either of two names (Keras' and PyTorch's)."""
    if a is not None and b is not None:
        raise TypeError(f"give {name_a} or {name_b}, not both")
    return default if a is None and b is None else (a if a is not None else b)


# ----------------------------------------------------------------------------- optimizers


LearningRate = float | Callable[[int], float]


class Optimizer:
    _schedule: Callable[[int], float] | None
    _lr: float | None
    _step_lr: float

    def __init__(self, learning_rate: LearningRate) -> None:
        self.learning_rate = learning_rate
        self.state: dict[str, Any] = {}
        self.iterations = 0

    @property
    def learning_rate(self) -> float:
        """The learning rate of the next step (a schedule evaluated at `iterations`)."""
        s = self._schedule
        if s is not None:
            return float(s(self.iterations))
        assert self._lr is not None  # the setter sets one of the two
        return self._lr

    @learning_rate.setter
    def learning_rate(self, value: LearningRate) -> None:
        if callable(value):
            self._schedule, self._lr = value, None
        else:
            self._schedule, self._lr = None, _positive(value, "learning_rate (lr)")

    lr = learning_rate  # PyTorch's name

    @property
    def schedule(self) -> Callable[[int], float] | None:
        """The learning-rate schedule, or None for a constant rate."""
        return self._schedule

    @staticmethod
    def _refs(params: Any) -> list[Any]:
        if hasattr(params, "parameters"):
            params = params.parameters()
        try:
            refs = list(params)
        except TypeError:
            raise TypeError(
                f"params must be a model, a layer or model.parameters(), got {type(params).__name__}"
            ) from None
        for r in refs:
            if not hasattr(r, "grad") or not hasattr(r, "value"):
                raise TypeError(
                    "params must be a model, a layer or model.parameters() (ParamRefs), "
                    f"got an item of type {type(r).__name__}"
                )
        return refs

    def step(self, params: Any) -> None:
        """Apply one update to every trainable parameter that has a gradient."""
        self._step_lr = self.learning_rate
        if not (math.isfinite(self._step_lr) and self._step_lr >= 0):
            raise ValueError(f"the learning-rate schedule gave {self._step_lr!r} at step {self.iterations}")
        self.iterations += 1
        for ref in self._refs(params):
            g = ref.grad
            if g is None or not ref.trainable:
                continue
            p = ref.value
            if tuple(g.shape) != tuple(p.shape):
                raise ValueError(f"{ref.name}: gradient shape {tuple(g.shape)} != parameter shape {tuple(p.shape)}")
            self._update(ref.name, p, g.astype(p.dtype, copy=False))

    def _update(self, name: str, p: Array, g: Array) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay:

        g = grad + weight_decay * p
        v = momentum * v + g                      (v = 0 before the first step)
        p -= lr * (g + momentum * v)  if nesterov  else  lr * v
    (with momentum = 0: p -= lr * g). Equivalent to Keras' SGD for a constant learning rate.
    """

    def __init__(
        self,
        lr: LearningRate | None = None,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        *,
        learning_rate: LearningRate | None = None,
    ) -> None:
        super().__init__(_either("learning_rate", learning_rate, "lr", lr, 0.01))
        momentum = _in_range(momentum, "momentum", 0.0, 1.0)
        if nesterov and momentum == 0.0:
            raise ValueError("nesterov=True needs momentum > 0")
        weight_decay = finite_number(weight_decay, "weight_decay")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        self.momentum, self.nesterov, self.weight_decay = momentum, bool(nesterov), weight_decay

    def _update(self, name: str, p: Array, g: Array) -> None:
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
        p -= p.dtype.type(self._step_lr) * g


class RMSprop(Optimizer):
    """RMSprop as Keras defines it (defaults too: rho=0.9, epsilon=1e-7 inside the square root):

        v = rho * v + (1 - rho) * g^2                        (v = 0 before the first step)
        d = v - a^2 + epsilon, a = rho * a + (1 - rho) * g   if centered  else  v + epsilon
        u = lr * g / sqrt(d)
        p -= u,  or with momentum:  m = momentum * m + u;  p -= m
    (PyTorch's RMSprop has alpha=0.99, eps=1e-8 outside the root: pass rho=0.99 for its decay.)
    """

    def __init__(
        self,
        learning_rate: LearningRate | None = None,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        *,
        lr: LearningRate | None = None,
    ) -> None:
        super().__init__(_either("learning_rate", learning_rate, "lr", lr, 0.001))
        self.rho = _in_range(rho, "rho", 0.0, 1.0)
        self.momentum = _in_range(momentum, "momentum", 0.0, 1.0)
        self.epsilon = _positive(epsilon, "epsilon")
        self.centered = bool(centered)

    def _update(self, name: str, p: Array, g: Array) -> None:
        dt = p.dtype.type
        if name not in self.state:
            xp = array_module(p)
            self.state[name] = {
                "v": xp.zeros_like(p),
                "a": xp.zeros_like(p) if self.centered else None,
                "m": xp.zeros_like(p) if self.momentum else None,
            }
        st = self.state[name]
        v = st["v"]
        v *= dt(self.rho)
        v += dt(1 - self.rho) * (g * g)
        if self.centered:
            a = st["a"]
            a *= dt(self.rho)
            a += dt(1 - self.rho) * g
            denom = v - a * a + dt(self.epsilon)
        else:
            denom = v + dt(self.epsilon)
        u = dt(self._step_lr) * g / denom**0.5
        if self.momentum:
            m = st["m"]
            m *= dt(self.momentum)
            m += u
            u = m
        p -= u


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction:

        m = b1 * m + (1 - b1) * g;   v = b2 * v + (1 - b2) * g^2
        p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
    PyTorch's form and default (eps 1e-8). Keras adds its epsilon (default 1e-7) to sqrt(v) before
    the bias correction, i.e. its epsilon is this eps times sqrt(1 - b2^t): the two agree once
    the moments have warmed up; `epsilon=` is accepted as a name for eps.
    """

    def __init__(
        self,
        lr: LearningRate | None = None,
        betas: tuple[float, float] | None = None,
        eps: float | None = None,
        *,
        learning_rate: LearningRate | None = None,
        beta_1: float | None = None,
        beta_2: float | None = None,
        epsilon: float | None = None,
    ) -> None:
        super().__init__(_either("learning_rate", learning_rate, "lr", lr, 0.001))
        if betas is not None and (beta_1 is not None or beta_2 is not None):
            raise TypeError("give betas or beta_1/beta_2, not both")
        keras_names = betas is None
        if betas is None:
            betas = (0.9 if beta_1 is None else beta_1, 0.999 if beta_2 is None else beta_2)
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise ValueError(f"betas must be a pair of numbers in [0, 1), got {betas!r}") from None
        if keras_names:
            _in_range(b1, "beta_1", 0.0, 1.0)
            _in_range(b2, "beta_2", 0.0, 1.0)
        elif not all(isinstance(b, (int, float, np.floating)) and 0.0 <= b < 1.0 for b in (b1, b2)):
            raise ValueError(f"betas must be in [0, 1), got {betas!r}")
        self.betas = (float(b1), float(b2))
        self.eps = _positive(_either("epsilon", epsilon, "eps", eps, 1e-8), "eps")

    def _update(self, name: str, p: Array, g: Array) -> None:
        b1, b2 = self.betas
        t = self.iterations
        if name not in self.state:
            xp = array_module(p)
            self.state[name] = (xp.zeros_like(p), xp.zeros_like(p))
        m, v = self.state[name]
        dt = p.dtype.type
        step, c2 = self._step_lr / (1 - b1**t), 1 - b2**t
        if (
            isinstance(p, np.ndarray)
            and isinstance(g, np.ndarray)
            and p.flags.c_contiguous
            and g.dtype == p.dtype
            and g.shape == p.shape
        ):
            # One fused pass on the CPU (csrc/cpu/optim/), the same operations as below.
            _cpu.adam_update(
                p, np.ascontiguousarray(g), m, v, tuple(dt(c) for c in (b1, 1 - b1, b2, 1 - b2, c2, self.eps, step))
            )
            return
        m *= dt(b1)
        m += dt(1 - b1) * g
        v *= dt(b2)
        v += dt(1 - b2) * (g * g)
        denom = (v / dt(c2)) ** 0.5 + dt(self.eps)
        p -= dt(step) * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter; PyTorch's and Keras' AdamW): before
    the Adam update of the step, p -= lr * weight_decay * p. Defaults as PyTorch (weight_decay
    0.01; Keras uses 0.004)."""

    def __init__(
        self,
        lr: LearningRate | None = None,
        betas: tuple[float, float] | None = None,
        eps: float | None = None,
        weight_decay: float = 0.01,
        *,
        learning_rate: LearningRate | None = None,
        beta_1: float | None = None,
        beta_2: float | None = None,
        epsilon: float | None = None,
    ) -> None:
        super().__init__(lr, betas, eps, learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
        self.weight_decay = finite_number(weight_decay, "weight_decay")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")

    def _update(self, name: str, p: Array, g: Array) -> None:
        if self.weight_decay:
            p *= p.dtype.type(1 - self._step_lr * self.weight_decay)
        super()._update(name, p, g)


_BY_NAME: dict[str, Callable[[], Optimizer]] = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW}


def get(identifier: Optimizer | str) -> Optimizer:
    """An optimizer from a Keras name ("sgd", "rmsprop", "adam", "adamw": default arguments) or
    the optimizer itself."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(f"optimizer must be an Optimizer or one of {sorted(_BY_NAME)}, got {identifier!r}")
