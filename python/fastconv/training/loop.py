"""Keras' training workflow for fastconv.Sequential: compile, fit, evaluate, train_on_batch.

    model.compile(optimizer=fc.RMSprop(learning_rate=1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=64, epochs=5, validation_split=0.1,
                        callbacks=[fc.callbacks.EarlyStopping(patience=2)])
    history.plot("curves.png")
    model.evaluate(x_test, y_test)

One step is exactly the hand-written loop: forward(training=True), the loss and its gradient,
backward, optimizer.step; `fit` adds only the batch slicing, the metrics and the callbacks.
"""

from __future__ import annotations

import contextlib
import numbers
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from .. import data, distributed
from ..data.augment import rng_from_seed
from ..layers import Dense, Softmax
from ..ops._checks import flag, real
from ..ops._shapes import non_negative_int, positive_int
from . import callbacks as cb
from . import losses
from . import metrics as metrics_lib
from . import optimizers as optim

if TYPE_CHECKING:
    from .._typing import Array
    from ..distributed.fit import _FitContext
    from ..layers.base import Layer

__all__ = ["TrainingMixin"]

KERAS_BATCH_SIZE = 32  # what Keras' fit / evaluate / predict take for batch_size=None


def _batch_size(value: object) -> int:
    return KERAS_BATCH_SIZE if value is None else positive_int(value, "batch_size")


def _verbose(value: object, auto: int) -> int:
    """Keras' verbose: "auto" (then `auto`), 0 silent, 1 progress bar, 2 one line per epoch."""
    if isinstance(value, str) and value == "auto":
        return auto
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value not in (0, 1, 2):
        raise ValueError(f"verbose must be 'auto', 0, 1 or 2, got {value!r}")
    return int(value)


def _callback_list(callbacks: object) -> list[cb.Callback]:
    """None, one Callback or a list / tuple of them (Keras 3 flattens a single one into a list)."""
    if callbacks is None:
        return []
    if isinstance(callbacks, cb.Callback):
        return [callbacks]
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"callbacks must be a list of fastconv.callbacks.Callback, got {type(callbacks).__name__}")
    for i, c in enumerate(callbacks):
        if not isinstance(c, cb.Callback):
            raise TypeError(
                f"callbacks must be a list of fastconv.callbacks.Callback, got {type(c).__name__} {c!r} at index {i}"
            )
    return list(callbacks)


def _require_labels(x: Any, y: Any, who: str) -> None:
    """x an array with its labels y (an iterable of batches is handled by the caller)."""
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(
            f"{who}: x must be a NumPy or CuPy array (or, for fit, an iterable of (x, y) batches "
            f"with a len()), got {type(x).__name__}"
        )
    if y is None:
        raise ValueError(f"{who}: y (the targets of the loss) is required when x is an array")
    if not hasattr(y, "shape") or tuple(y.shape[:1]) != tuple(x.shape[:1]):
        raise ValueError(
            f"{who}: x has {x.shape[0]} samples but y has shape {getattr(y, 'shape', None)} (one target per sample)"
        )


def _ends_in(model: TrainingMixin, activation: str) -> bool:
    last = model.layers[-1] if model.layers else None
    if activation == "softmax" and isinstance(last, Softmax):
        return True
    return isinstance(last, Dense) and last.activation == activation


class TrainingMixin:
    """compile / fit / evaluate / train_on_batch / test_on_batch for a model with forward,
    backward, parameters, get_weights and set_weights."""

    optimizer: optim.Optimizer | None = None
    loss: losses.Loss | None = None
    metrics: Sequence[tuple[str, metrics_lib.Metric]] = ()
    stop_training = False

    if TYPE_CHECKING:  # what the model class (fastconv.Sequential) provides
        layers: list[Layer]

        def forward(self, x: Array, training: bool = True) -> Array: ...

        def backward(self, grad_y: Array) -> Array | None: ...

    def compile(
        self,
        optimizer: optim.Optimizer | str = "rmsprop",
        loss: losses.Loss | str | None = None,
        metrics: Sequence[str | metrics_lib.Metric] | None = None,
    ) -> TrainingMixin:
        """optimizer: an Optimizer or a Keras name; loss: a fastconv.losses.Loss or a Keras
        name; metrics: names ("accuracy", ...) or functions fn(y_true, y_pred) -> float."""
        if loss is None:
            raise ValueError("compile needs a loss, e.g. loss='sparse_categorical_crossentropy'")
        self.optimizer = opt = optim.get(optimizer)
        if isinstance(opt, distributed.DistributedOptimizer):  # averages inside backward
            opt.attach(self)
        self.loss = loss_fn = losses.get(loss)
        head = "softmax" if isinstance(loss_fn, losses.CategoricalCrossentropy) else "sigmoid"
        if loss_fn.from_logits and _ends_in(self, head):
            raise ValueError(
                f"{type(loss_fn).__name__}(from_logits=True) expects logits, but the last "
                f"layer applies {head}: apply it once, either drop the activation of the "
                "last layer or use from_logits=False"
            )
        if metrics is not None and not isinstance(metrics, (list, tuple)):
            raise TypeError(
                f"metrics must be a list of metric names or functions (e.g. ['accuracy']), "
                f"got {type(metrics).__name__} {metrics!r}"
            )
        self.metrics = [metrics_lib.get(m, loss_fn) for m in metrics or []]
        self.stop_training = False
        return self

    def _require_compiled(self) -> tuple[losses.Loss, optim.Optimizer]:
        """(loss, optimizer) of compile, else RuntimeError."""
        if self.loss is None or self.optimizer is None:
            raise RuntimeError("call model.compile(optimizer, loss, metrics) before fit / evaluate / train_on_batch")
        return self.loss, self.optimizer

    def _log_keys(self) -> list[str]:
        """The names train_on_batch and test_on_batch log, in their order."""
        return ["loss"] + [name for name, _ in self.metrics]

    def regularization_loss(self) -> float:
        """Sum of the layers' kernel penalties (kernel_regularizer)."""
        return float(sum(layer.regularization_loss() for layer in self.layers))

    # ------------------------------------------------------------------ one batch
    def train_on_batch(self, x: Array, y: ArrayLike) -> dict[str, float]:
        """One optimizer step on (x, y); returns {"loss": ..., metric: ...} of this batch."""
        loss, optimizer = self._require_compiled()
        pred = self.forward(x, training=True)
        value = loss(y, pred) + self.regularization_loss()
        self.backward(loss.backward())
        optimizer.step(self)
        logs = {"loss": value}
        for name, fn in self.metrics:
            logs[name] = fn(y, pred)
        return logs

    def test_on_batch(self, x: Array, y: ArrayLike) -> dict[str, float]:
        loss, _ = self._require_compiled()
        pred = self.forward(x, training=False)
        logs = {"loss": loss(y, pred) + self.regularization_loss()}
        for name, fn in self.metrics:
            logs[name] = fn(y, pred)
        return logs

    # ------------------------------------------------------------------ epochs
    def fit(
        self,
        x: Any,
        y: Any = None,
        batch_size: int | None = 32,
        epochs: int = 1,
        verbose: int | str = "auto",
        callbacks: cb.Callback | Sequence[cb.Callback] | None = None,
        validation_split: float = 0.0,
        validation_data: tuple[Any, Any] | None = None,
        shuffle: bool = True,
        initial_epoch: int = 0,
        seed: int | np.random.Generator | None = None,
    ) -> cb.History:
        """Train for `epochs` passes over (x, y) in batches (batch_size=None: Keras' 32); returns a
        History. x may also be an iterable of (x, y) batches with a len() (ImageDataGenerator.flow);
        callbacks: a list of fastconv.callbacks.Callback (or one, as Keras 3 takes). validation_split
        holds out the last fraction of the samples (before shuffling, as Keras);
        validation_data=(x_val, y_val) is evaluated after every epoch. verbose: 0 silent,
        1 progress bar, 2 one line per epoch, "auto" 1 on a terminal and 2 otherwise. shuffle:
        a new order every epoch (from `seed` when given)."""
        _, optimizer = self._require_compiled()
        batch_size = _batch_size(batch_size)
        epochs, initial_epoch = non_negative_int(epochs, "epochs"), non_negative_int(initial_epoch, "initial_epoch")
        verbose = _verbose(verbose, 1 if sys.stdout.isatty() else 2)
        callback_list = _callback_list(callbacks)
        shuffle = flag("shuffle", shuffle)
        validation_split = real("validation_split", validation_split, 0.0, 1.0)
        if seed is not None:
            rng_from_seed(seed)  # a TypeError / ValueError naming seed before any work
        batches_given = not hasattr(x, "shape") and hasattr(x, "__iter__") and hasattr(x, "__len__")
        if batches_given and (y is not None or validation_split):
            raise ValueError(
                "x is an iterable of (x, y) batches (e.g. ImageDataGenerator.flow): pass no y "
                "and no validation_split (use validation_data)"
            )
        if not batches_given:
            _require_labels(x, y, "fit")
        if validation_split and validation_data is not None:
            raise ValueError("give validation_split or validation_data, not both")
        if validation_split:
            (x, y), validation_data = data.validation_split(x, y, validation_split)
        if validation_data is not None:
            try:
                x_val, y_val = validation_data
            except (TypeError, ValueError):
                raise ValueError("validation_data must be a pair (x_val, y_val)") from None
            _require_labels(x_val, y_val, "fit: validation_data")
        steps = len(x) if batches_given else -(-x.shape[0] // batch_size)
        if steps == 0:
            raise ValueError("fit: x has no samples")
        dist = distributed.fit_context(optimizer)
        with contextlib.nullcontext() if dist is None else dist.quiet():
            return self._fit(
                x,
                y,
                batch_size,
                epochs,
                verbose,
                callback_list,
                validation_data,
                shuffle,
                initial_epoch,
                seed,
                batches_given,
                steps,
                dist,
            )

    def _fit(
        self,
        x: Any,
        y: Any,
        batch_size: int,
        epochs: int,
        verbose: int,
        callbacks: list[cb.Callback],
        validation_data: tuple[Any, Any] | None,
        shuffle: bool,
        initial_epoch: int,
        seed: int | np.random.Generator | None,
        batches_given: bool,
        steps: int,
        dist: _FitContext | None,
    ) -> cb.History:
        """fit's epochs; dist: the distributed.fit_context of a job of several ranks, or None."""
        _, optimizer = self._require_compiled()
        if validation_data is not None:
            x_val, y_val = validation_data
        history = cb.History()
        hooks: list[cb.Callback] = [cb.ProgressBar(verbose)] if verbose else []
        hooks += [*callbacks, history]
        if dist is not None:
            hooks = dist.callbacks(hooks)
            seed = dist.common_seed(seed)
            dist.begin(self)
        for c in hooks:
            c.set_model(self)
            c.params = {"epochs": epochs, "steps": steps, "verbose": verbose}
        rng = np.random.default_rng(seed)
        self.stop_training = False
        for c in hooks:
            c.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            for c in hooks:
                c.on_epoch_begin(epoch)
            sums: dict[str, float] = {}
            seen = 0
            if dist is not None:
                epoch_batches = dist.batches(x, y, batch_size, shuffle, rng, batches_given)
            else:
                epoch_batches = x if batches_given else data.batches(x, y, batch_size, shuffle=shuffle, seed=rng)
            for step, (xb, yb) in enumerate(epoch_batches):
                for c in hooks:
                    c.on_train_batch_begin(step)
                logs = self.train_on_batch(xb, yb)
                n = xb.shape[0]
                seen += n
                for k, v in logs.items():
                    sums[k] = sums.get(k, 0.0) + v * n
                running = {k: v / seen for k, v in sums.items()}
                for c in hooks:
                    c.on_train_batch_end(step, running)
            epoch_logs = dict(running) if dist is None else dist.reduce(self._log_keys(), sums, seen)
            if validation_data is not None:
                val = self.evaluate(x_val, y_val, batch_size=batch_size, verbose=0, return_dict=True)
                epoch_logs.update({f"val_{k}": v for k, v in val.items()})
            epoch_logs["learning_rate"] = optimizer.learning_rate
            for c in hooks:
                c.on_epoch_end(epoch, epoch_logs)
            if self.stop_training:
                break
        for c in hooks:
            c.on_train_end()
        return history

    def evaluate(
        self, x: Any, y: Any, batch_size: int | None = 32, verbose: int | str = "auto", return_dict: bool = False
    ) -> Any:
        """Loss and metrics in inference mode over (x, y), averaged over samples; a list
        [loss, metric...] (just the loss without metrics) or a dict with return_dict.
        batch_size=None: Keras' 32; verbose: "auto" (1 on a terminal, else 0), 0 or 1."""
        _, optimizer = self._require_compiled()
        batch_size = _batch_size(batch_size)
        verbose = _verbose(verbose, 1 if sys.stdout.isatty() else 0)
        return_dict = flag("return_dict", return_dict)
        _require_labels(x, y, "evaluate")
        sums: dict[str, float] = {}
        seen = 0
        dist = distributed.fit_context(optimizer)
        if dist is not None:  # each rank its part; the sums over all ranks below
            x, y = dist.evaluation_part(x, y)
        for xb, yb in data.batches(x, y, batch_size, shuffle=False):
            logs = self.test_on_batch(xb, yb)
            n = xb.shape[0]
            seen += n
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v * n
        if dist is not None:
            result = dist.reduce(self._log_keys(), sums, seen)
        elif seen == 0:
            raise ValueError("evaluate: x has no samples")
        else:
            result = {k: v / seen for k, v in sums.items()}
        if verbose and (dist is None or dist.is_root):
            print(" - ".join(f"{k}: {v:.4f}" for k, v in result.items()))
        if return_dict:
            return result
        values = list(result.values())
        return values[0] if len(values) == 1 else values
