"""Batches with a seeded shuffle and Keras' validation split, for training loops (hand-written or
`fit`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .._typing import Array
from ..backend.arrays import array_module
from ..ops._checks import flag
from ..ops._shapes import positive_int
from .augment import real_number, rng_from_seed

__all__ = ["batches", "validation_split"]


def _check_pair(x: Any, y: Any) -> None:
    if not hasattr(x, "shape") or x.ndim < 1:
        raise TypeError(f"x must be an array with a batch axis, got {type(x).__name__}")
    if y is not None and (not hasattr(y, "shape") or y.shape[:1] != x.shape[:1]):
        raise ValueError(f"x has {x.shape[0]} samples but y has shape {getattr(y, 'shape', None)}")


def batches(
    x: Array,
    y: Array | None = None,
    batch_size: int = 32,
    shuffle: bool = True,
    seed: int | np.random.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[Any]:
    """Yield (x_batch, y_batch) (or x_batch when y is None) over one epoch: in a random order
    from `seed` when shuffle (a new order per call with seed=None, a Generator also works), the
    last batch smaller unless drop_last. Works for NumPy and CuPy arrays (indices on x's device)."""
    _check_pair(x, y)
    batch_size = positive_int(batch_size, "batch_size")
    shuffle, drop_last = flag("shuffle", shuffle), flag("drop_last", drop_last)
    n = x.shape[0]
    order = None
    if shuffle:
        rng = rng_from_seed(seed)
        order = array_module(x).asarray(rng.permutation(n))
    stop = n - n % batch_size if drop_last else n
    for i in range(0, stop, batch_size):
        idx = slice(i, min(i + batch_size, n)) if order is None else order[i : i + batch_size]
        xb = x[idx]
        yield xb if y is None else (xb, y[idx])


def validation_split(x: Array, y: Array, fraction: float) -> tuple[tuple[Array, Array], tuple[Array, Array]]:
    """(x_train, y_train), (x_val, y_val) with the last `fraction` of the samples held out,
    before any shuffling, as Keras' fit(validation_split=...) does."""
    _check_pair(x, y)
    if not 0.0 < real_number(fraction, "validation_split") < 1.0:
        raise ValueError(f"validation_split must be in (0, 1), got {fraction!r}")
    cut = int(x.shape[0] * (1.0 - float(fraction)))  # Keras: floor of the training part
    if cut < 1 or cut >= x.shape[0]:
        raise ValueError(f"validation_split={fraction} of {x.shape[0]} samples leaves an empty part")
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])
