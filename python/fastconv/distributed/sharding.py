"""Each rank's part of the data: shard_range and shard_batches (the same shuffle on every rank,
cut into contiguous parts)."""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from typing import Any

import numpy as np

from .. import data
from .._typing import Array
from ..ops._shapes import positive_int
from .world import current_world, rank_of


def shard_range(n: int, rank_: int | None = None, size_: int | None = None) -> tuple[int, int]:
    """(begin, end) of this rank's contiguous part of n items: the parts differ by at most one.
    rank_ / size_ (default: this process's) ask for another rank's part or another job size."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    w = current_world()
    p = w.size if size_ is None else positive_int(size_, "size_")
    r = rank_of("rank_", w.rank if rank_ is None else rank_, p, "the job size" if size_ is None else "size_")
    return r * int(n) // p, (r + 1) * int(n) // p


def shard_batches(
    x: Array,
    y: Array | None = None,
    batch_size: int = 32,
    shuffle: bool = True,
    seed: int | np.random.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[Any]:
    """This rank's part of every global batch that data.batches(x, y, batch_size, shuffle, seed,
    drop_last) gives: every rank shuffles alike (`seed` must be the same on all ranks; None takes
    rank 0's random seed) and takes its contiguous slice of each batch. A final batch with fewer
    samples than ranks is skipped (some rank would get none)."""
    if shuffle and not isinstance(seed, np.random.Generator):
        seed = common_seed(seed)
    for batch in data.batches(x, y, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last):
        part = my_part(batch if y is None else batch[0], None if y is None else batch[1])
        if part is not None:
            yield part[0] if y is None else part


def my_part(xb: Array, yb: Array | None) -> tuple[Array, Array | None] | None:
    """(xb, yb) cut to this rank's contiguous slice, or None when the batch has fewer samples than
    there are ranks (some rank would get none)."""
    n = xb.shape[0]
    if n < current_world().size:
        return None
    b, e = shard_range(n)
    return xb[b:e], None if yb is None else yb[b:e]


def common_seed(seed: int | np.random.Generator | None) -> int | np.random.Generator | None:
    """seed, or (None) a random seed drawn on rank 0 and sent to all."""
    w = current_world()
    if seed is not None or w.size == 1:
        return seed
    return w.comm.bcast(int(np.random.SeedSequence().generate_state(1)[0]) if w.rank == 0 else None, root=0)
