"""Softmax, log-softmax, the cross-entropy sum and an overflow-free sigmoid on NumPy or CuPy arrays
(array operations of the input's module, no kernel): shared by the Softmax layer, Dense's softmax
activation and the losses (training/losses.py)."""

from __future__ import annotations

import warnings

from .._typing import Array
from ..backend.arrays import array_module


def softmax(z: Array, axis: int = -1) -> Array:
    xp = array_module(z)
    e = xp.exp(z - z.max(axis=axis, keepdims=True))  # shift by the max: no overflow
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(z: Array) -> Array:
    """log(softmax(z)) over the last axis, shifted by the row max: a -inf logit (a masked class)
    gives -inf there and leaves the other entries finite, as in PyTorch."""
    xp = array_module(z)
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


def cross_entropy_sum(target: Array, log_p: Array) -> Array:
    """-sum(target * log_p), where a zero target weight contributes 0 even against log_p = -inf
    (0 log 0 = 0: a masked class that is not the target costs nothing)."""
    xp = array_module(log_p)
    return -(xp.where(target != 0, log_p, 0) * target).sum()


def softmax_backward(grad_y: Array, s: Array, axis: int = -1) -> Array:
    return s * (grad_y - (grad_y * s).sum(axis=axis, keepdims=True))


def stable_sigmoid(z: Array) -> Array:
    """1 / (1 + exp(-z)) without overflow: only exp(-|z|) is taken."""
    xp = array_module(z)
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1, e) / (1 + e)


def warn_if_probabilities(logits: Array, who: str) -> None:
    """Warn (once per call site, as Keras does) when logits look like softmax output: every row in
    [0, 1] summing to 1. Softmax then applies twice and the gradients shrink, without an error."""
    if logits.ndim != 2 or logits.shape[1] < 2:
        return
    xp = array_module(logits)
    row_sums = logits.sum(axis=1)
    if bool((logits.min() >= 0) & (logits.max() <= 1) & (xp.abs(row_sums - 1).max() < 1e-3)):
        warnings.warn(
            f"{who} expects logits, but every row is a probability distribution (the output of a "
            "softmax?): the softmax would be applied twice. Drop the softmax activation of the "
            "last layer, or use a loss with from_logits=False.",
            UserWarning,
            stacklevel=3,
        )
