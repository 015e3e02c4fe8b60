"""What Sequential.fit does differently under a DistributedOptimizer (fit_context): weights from
rank 0, each rank's part of every batch, metrics and validation reduced over all ranks."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._typing import Array
from ..backend.arrays import array_module
from .collectives import broadcast_parameters, sum_host
from .optimizer import DistributedOptimizer
from .sharding import common_seed, my_part, shard_batches, shard_range
from .world import World

if TYPE_CHECKING:
    from ..training.callbacks import Callback


class _FitContext:
    """What TrainingMixin.fit and evaluate do differently under a DistributedOptimizer."""

    def __init__(self, world: World, timeout: float | None) -> None:
        self.world, self.timeout = world, timeout
        self.is_root = world.rank == 0

    def begin(self, model: Any) -> None:
        broadcast_parameters(model, timeout=self.timeout)

    def batches(
        self, x: Any, y: Any, batch_size: int, shuffle: bool, rng: np.random.Generator, batches_given: bool
    ) -> Iterator[Any]:
        if batches_given:  # every rank iterates the same batches; each keeps its part
            return self._parts(x)
        return shard_batches(x, y, batch_size, shuffle=shuffle, seed=rng)

    def _parts(self, batches: Iterable[tuple[Array, Array]]) -> Iterator[tuple[Array, Array | None]]:
        for i, (xb, yb) in enumerate(batches):
            if i == 0:
                self._check_same_batches(xb)
            part = my_part(xb, yb)
            if part is not None:
                yield part

    def _check_same_batches(self, xb: Array) -> None:
        """Each rank iterates its own copy of the batches (e.g. ImageDataGenerator.flow): they must
        be the same on every rank, or each rank would train on parts of different batches."""
        mine = (tuple(int(d) for d in xb.shape), float(array_module(xb).asarray(xb, dtype=np.float64).sum()))
        everyone = self.world.comm.allgather(mine)
        if any(other != everyone[0] for other in everyone):
            raise ValueError(
                "the batches of x differ between ranks (first batch: shape and sum per rank "
                f"{everyone}); give the generator a seed, e.g. gen.flow(x, y, seed=0)"
            )

    def common_seed(self, seed: int | np.random.Generator | None) -> int | np.random.Generator | None:
        return common_seed(seed)

    def callbacks(self, hooks: list[Callback]) -> list[Callback]:
        from ..training.callbacks import CSVLogger, ModelCheckpoint  # noqa: PLC0415

        return hooks if self.is_root else [c for c in hooks if not isinstance(c, (ModelCheckpoint, CSVLogger))]

    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """Only rank 0 prints."""
        if self.is_root:
            yield
            return
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            yield

    def reduce(self, keys: Sequence[str], sums: dict[str, float], seen: int) -> dict[str, float]:
        """{name: sum over ranks of value * samples / all samples} for every name in keys (the
        same on every rank, also on one that saw no samples)."""
        vec = np.array([float(sums.get(k, 0.0)) for k in keys] + [float(seen)], dtype=np.float64)
        sum_host(self.world, vec, self.timeout)
        if vec[-1] == 0:
            raise ValueError("no rank had a sample to evaluate")
        return {k: v / vec[-1] for k, v in zip(keys, vec[:-1])}

    def evaluation_part(self, x: Array, y: Array) -> tuple[Array, Array]:
        b, e = shard_range(x.shape[0])
        return x[b:e], y[b:e]


def fit_context(optimizer: object) -> _FitContext | None:
    """A _FitContext when `optimizer` is a DistributedOptimizer in a job of several ranks, else None."""
    if isinstance(optimizer, DistributedOptimizer) and optimizer.world.size > 1:
        return _FitContext(optimizer.world, optimizer.timeout)
    return None
