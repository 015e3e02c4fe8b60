"""Weight penalties with Keras' names and formulas, for `kernel_regularizer=` on Conv2D and Dense:

    fc.layers.Dense(64, kernel_regularizer=fc.regularizers.l2(1e-4))

l2(λ): λ * sum(w^2), gradient 2 λ w;  l1(λ): λ * sum(|w|), gradient λ sign(w);  l1_l2(l1, l2).
The layer adds the gradient to its kernel gradient in backward (as Keras' tape does for
`model.losses`), and `model.regularization_loss()` gives the penalty that `fit` and `evaluate` add
to the reported loss; a hand-written loop adds it itself to report the same number.
"""

from __future__ import annotations

import math
from typing import Any

from .._typing import Array
from ..ops._checks import real

__all__ = ["Regularizer", "L1L2", "l1", "l2", "l1_l2", "get", "serialize"]


class Regularizer:
    def __call__(self, w: Array) -> float:
        raise NotImplementedError

    def gradient(self, w: Array) -> Array:
        raise NotImplementedError


class L1L2(Regularizer):
    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        self.l1, self.l2 = real("l1", l1, 0.0, math.inf), real("l2", l2, 0.0, math.inf)

    def __call__(self, w: Array) -> float:
        value = 0.0
        if self.l1:
            value += self.l1 * float(abs(w).sum())
        if self.l2:
            value += self.l2 * float((w * w).sum())
        return value

    def gradient(self, w: Array) -> Array:
        dt = w.dtype.type
        g = dt(2 * self.l2) * w if self.l2 else 0
        if self.l1:
            g = g + dt(self.l1) * (w > 0) - dt(self.l1) * (w < 0)
        return g

    def __repr__(self) -> str:
        return f"L1L2(l1={self.l1}, l2={self.l2})"


def l1(l1: float = 0.01) -> L1L2:
    return L1L2(l1=l1)


def l2(l2: float = 0.01) -> L1L2:
    return L1L2(l2=l2)


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:
    return L1L2(l1=l1, l2=l2)


def serialize(regularizer: Regularizer | None) -> dict[str, float] | None:
    """JSON form of a regularizer ({"l1": .., "l2": ..}) or None."""
    if regularizer is None:
        return None
    if not isinstance(regularizer, L1L2):
        raise ValueError(f"cannot save the custom regularizer {regularizer!r}; only l1 / l2 / l1_l2")
    return {"l1": regularizer.l1, "l2": regularizer.l2}


def get(identifier: Regularizer | str | dict[str, Any] | None) -> Regularizer | None:
    """None, a Regularizer, or "l1" / "l2" / "l1_l2" (Keras' default factors 0.01)."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, dict) and set(identifier) <= {"l1", "l2"}:
        return L1L2(**identifier)
    factories = {"l1": l1, "l2": l2, "l1_l2": l1_l2}
    if isinstance(identifier, str) and identifier in factories:
        return factories[identifier]()
    raise ValueError(
        f"kernel_regularizer must be None, a fastconv.regularizers.Regularizer or one of "
        f"{sorted(factories)}, got {identifier!r}"
    )
