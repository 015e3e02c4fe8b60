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
import sys

import numpy as np

from . import callbacks as cb
from . import data, distributed, losses, optim
from . import metrics as metrics_lib
from .layers import Dense, Softmax

__all__ = ["TrainingMixin"]


def _ends_in(model, activation):
    last = model.layers[-1] if model.layers else None
    if activation == "softmax" and isinstance(last, Softmax):
        return True
    return isinstance(last, Dense) and last.activation == activation


class TrainingMixin:
    """compile / fit / evaluate / train_on_batch / test_on_batch for a model with forward,
    backward, parameters, get_weights and set_weights."""

    optimizer = None
    loss = None
    metrics = ()
    stop_training = False

    def compile(self, optimizer="rmsprop", loss=None, metrics=None):
        """optimizer: an Optimizer or a Keras name; loss: a fastconv.losses.Loss or a Keras
        name; metrics: names ("accuracy", ...) or functions fn(y_true, y_pred) -> float."""
        if loss is None:
            raise ValueError("compile needs a loss, e.g. loss='sparse_categorical_crossentropy'")
        self.optimizer = optim.get(optimizer)
        if isinstance(self.optimizer, distributed.DistributedOptimizer):   # averages inside backward
            self.optimizer.attach(self)
        self.loss = losses.get(loss)
        head = "softmax" if isinstance(self.loss, losses.CategoricalCrossentropy) else "sigmoid"
        if self.loss.from_logits and _ends_in(self, head):
            raise ValueError(f"{type(self.loss).__name__}(from_logits=True) expects logits, but the last "
                             f"layer applies {head}: apply it once, either drop the activation of the "
                             "last layer or use from_logits=False")
        self.metrics = [metrics_lib.get(m, self.loss) for m in metrics or []]
        self.stop_training = False
        return self

    def _require_compiled(self):
        if self.loss is None or self.optimizer is None:
            raise RuntimeError("call model.compile(optimizer, loss, metrics) before fit / evaluate / train_on_batch")

    def _log_keys(self):
        """The names train_on_batch and test_on_batch log, in their order."""
        return ["loss"] + [name for name, _ in self.metrics]

    def regularization_loss(self):
        """Sum of the layers' kernel penalties (kernel_regularizer)."""
        return float(sum(layer.regularization_loss() for layer in self.layers))

    # ------------------------------------------------------------------ one batch
    def train_on_batch(self, x, y):
        """One optimizer step on (x, y); returns {"loss": ..., metric: ...} of this batch."""
        self._require_compiled()
        pred = self.forward(x, training=True)
        value = self.loss(y, pred) + self.regularization_loss()
        self.backward(self.loss.backward())
        self.optimizer.step(self)
        logs = {"loss": value}
        for name, fn in self.metrics:
            logs[name] = fn(y, pred)
        return logs

    def test_on_batch(self, x, y):
        self._require_compiled()
        pred = self.forward(x, training=False)
        logs = {"loss": self.loss(y, pred) + self.regularization_loss()}
        for name, fn in self.metrics:
            logs[name] = fn(y, pred)
        return logs

    # ------------------------------------------------------------------ epochs
    def fit(self, x, y=None, batch_size=32, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, initial_epoch=0, seed=None):
        """Train for `epochs` passes over (x, y) in batches; returns a History. x may also be an
        iterable of (x, y) batches with a len() (ImageDataGenerator.flow). validation_split
        holds out the last fraction of the samples (before shuffling, as Keras);
        validation_data=(x_val, y_val) is evaluated after every epoch. verbose: 0 silent,
        1 progress bar, 2 one line per epoch, "auto" 1 on a terminal and 2 otherwise. shuffle:
        a new order every epoch (from `seed` when given)."""
        self._require_compiled()
        batches_given = not hasattr(x, "shape") and hasattr(x, "__iter__") and hasattr(x, "__len__")
        if batches_given and (y is not None or validation_split):
            raise ValueError("x is an iterable of (x, y) batches (e.g. ImageDataGenerator.flow): pass no y "
                             "and no validation_split (use validation_data)")
        if validation_split and validation_data is not None:
            raise ValueError("give validation_split or validation_data, not both")
        if validation_split:
            (x, y), validation_data = data.validation_split(x, y, validation_split)
        if validation_data is not None:
            try:
                x_val, y_val = validation_data
            except (TypeError, ValueError):
                raise ValueError("validation_data must be a pair (x_val, y_val)") from None
        if verbose == "auto":
            verbose = 1 if sys.stdout.isatty() else 2
        steps = len(x) if batches_given else -(-x.shape[0] // batch_size)
        if steps == 0:
            raise ValueError("fit: x has no samples")
        dist = distributed.fit_context(self.optimizer)
        with contextlib.nullcontext() if dist is None else dist.quiet():
            return self._fit(x, y, batch_size, epochs, verbose, callbacks, validation_data, shuffle,
                             initial_epoch, seed, batches_given, steps, dist)

    def _fit(self, x, y, batch_size, epochs, verbose, callbacks, validation_data, shuffle, initial_epoch,
             seed, batches_given, steps, dist):
        """fit's epochs; dist: the distributed.fit_context of a job of several ranks, or None."""
        if validation_data is not None:
            x_val, y_val = validation_data
        history = cb.History()
        hooks = ([cb.ProgressBar(verbose)] if verbose else []) + list(callbacks or []) + [history]
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
            sums, seen = {}, 0
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
            epoch_logs["learning_rate"] = self.optimizer.learning_rate
            for c in hooks:
                c.on_epoch_end(epoch, epoch_logs)
            if self.stop_training:
                break
        for c in hooks:
            c.on_train_end()
        return history

    def evaluate(self, x, y, batch_size=32, verbose="auto", return_dict=False):
        """Loss and metrics in inference mode over (x, y), averaged over samples; a list
        [loss, metric...] (just the loss without metrics) or a dict with return_dict."""
        self._require_compiled()
        sums, seen = {}, 0
        dist = distributed.fit_context(self.optimizer)
        if dist is not None:                   # each rank its part; the sums over all ranks below
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
        if verbose == "auto":
            verbose = 1 if sys.stdout.isatty() else 0
        if verbose and (dist is None or dist.is_root):
            print(" - ".join(f"{k}: {v:.4f}" for k, v in result.items()))
        if return_dict:
            return result
        values = list(result.values())
        return values[0] if len(values) == 1 else values
