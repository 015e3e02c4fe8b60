"""Callbacks for `model.fit`, with Keras' names, arguments and behaviour.

A callback gets `set_model(model)` and then the hooks below with `logs`, a dict of the running
values ("loss", metric names, and at epoch end "val_..." and "learning_rate"). Setting
`model.stop_training = True` ends `fit` after the current epoch.
"""

from __future__ import annotations

import csv
import inspect
import math
import numbers
import os
import string
import sys
import time
from collections.abc import Callable
from typing import IO, Any

import numpy as np

from ..ops._checks import flag
from ..ops._shapes import non_negative_int
from .optimizers import Optimizer, finite_number

__all__ = [
    "Callback",
    "History",
    "ProgressBar",
    "EarlyStopping",
    "ModelCheckpoint",
    "LearningRateScheduler",
    "ReduceLROnPlateau",
    "CSVLogger",
]


# The running values a hook gets: "loss", metric names, "val_...", "learning_rate"
Logs = dict[str, float]


class Callback:
    model: Any = None  # the model fit trains (a fastconv.Sequential)
    params: dict[str, Any]  # {"epochs", "steps", "verbose"}, set by fit before on_train_begin

    def set_model(self, model: Any) -> None:
        self.model = model

    def on_train_begin(self, logs: Logs | None = None) -> None:
        pass

    def on_train_end(self, logs: Logs | None = None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        pass

    def on_train_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        pass

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        pass


class History(Callback):
    """Per-epoch values: `history["loss"]`, `history["val_accuracy"]`, ... and `epoch`."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)

    def plot(self, path: str | os.PathLike[str], title: str | None = None) -> str | os.PathLike[str]:
        """Write a PNG of the curves: loss (and val_loss) on the left, each metric (and its
        validation value) beside it. Needs matplotlib (`pip install fastconv[bench]`)."""
        try:
            import matplotlib  # noqa: PLC0415 - optional dependency

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt  # noqa: PLC0415
            from matplotlib.ticker import MaxNLocator  # noqa: PLC0415
        except ImportError as exc:
            raise ImportError("History.plot needs matplotlib: pip install matplotlib") from exc
        if not self.epoch:
            raise ValueError("History.plot: no epoch has been recorded")
        names = [k for k in self.history if not k.startswith("val_") and k != "learning_rate"]
        fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.6), squeeze=False)
        epochs = [e + 1 for e in self.epoch]
        for ax, name in zip(axes[0], names):
            ax.plot(epochs, self.history[name], "o-", label=f"train {name}")
            if f"val_{name}" in self.history:
                ax.plot(epochs, self.history[f"val_{name}"], "s--", label=f"validation {name}")
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(name)
            ax.grid(alpha=0.3)
            ax.legend()
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path


class ProgressBar(Callback):
    """Keras' progress output. verbose=1: a bar per epoch, redrawn as batches finish, with the
    running loss and metrics and the time per step; verbose=2: one line per epoch."""

    def __init__(self, verbose: int = 1, stream: IO[str] | None = None, width: int = 30) -> None:
        self.verbose, self.stream, self.width = verbose, stream or sys.stdout, width

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.epochs = self.params["epochs"]

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self.steps = self.params["steps"]
        self.start = time.perf_counter()
        if self.verbose:
            self.stream.write(f"Epoch {epoch + 1}/{self.epochs}\n")
            self.stream.flush()

    def _values(self, logs: Logs) -> str:
        return "".join(f" - {k}: {v:.4f}" for k, v in logs.items() if k != "learning_rate")

    def on_train_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        if self.verbose != 1:
            return
        done = batch + 1
        elapsed = time.perf_counter() - self.start
        filled = int(self.width * done / self.steps)
        bar = "=" * max(filled - 1, 0) + (">" if done < self.steps else "=") + "." * (self.width - filled)
        eta = elapsed / done * (self.steps - done)
        self.stream.write(f"\r{done}/{self.steps} [{bar}] - ETA: {eta:.0f}s{self._values(logs or {})}")
        self.stream.flush()

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if not self.verbose:
            return
        elapsed = time.perf_counter() - self.start
        per_step = elapsed / max(self.steps, 1) * 1e3
        head = (
            f"\r{self.steps}/{self.steps} [{'=' * self.width}]" if self.verbose == 1 else f"{self.steps}/{self.steps}"
        )
        self.stream.write(f"{head} - {elapsed:.0f}s {per_step:.0f}ms/step{self._values(logs or {})}\n")
        self.stream.flush()


def _monitor(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"monitor must be the name of a logged value (a str), got {type(value).__name__} {value!r}")
    return value


def _mode_better(mode: str, monitor: str, min_delta: float) -> tuple[str, Callable[[float, float], bool]]:
    """compare(current, best) for mode 'min' / 'max' / 'auto' (max for accuracy-like names)."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        mode = "max" if "acc" in monitor or monitor.endswith("auc") else "min"
    if mode == "min":
        return mode, lambda current, best: current < best - min_delta
    return mode, lambda current, best: current > best + min_delta


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by more than min_delta for `patience` epochs
    (counted from start_from_epoch). restore_best_weights: put back the weights of the best
    epoch when training stops (or ends after a later, worse epoch)."""

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ) -> None:
        self.monitor, self.patience = _monitor(monitor), non_negative_int(patience, "patience")
        self.verbose = non_negative_int(verbose, "verbose")
        self.min_delta = abs(finite_number(min_delta, "min_delta"))
        self.mode, self._better = _mode_better(mode, monitor, self.min_delta)
        self.baseline = None if baseline is None else finite_number(baseline, "baseline")
        self.restore_best_weights = flag("restore_best_weights", restore_best_weights)
        self.start_from_epoch = non_negative_int(start_from_epoch, "start_from_epoch")

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_weights: list[Any] | None = None

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        current = (logs or {}).get(self.monitor)
        if current is None:
            raise KeyError(
                f"EarlyStopping monitors {self.monitor!r}, which the logs do not have "
                f"(they have {sorted(logs or {})}); pass validation data for 'val_' values"
            )
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
        self.wait += 1
        if self._better(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._better(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self.stopped_epoch and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the weights (an .npz of save_weights) after every epoch, or only when `monitor`
    improved (save_best_only). The path may hold Keras-style fields: "ckpt-{epoch:02d}-
    {val_loss:.3f}.weights.npz"."""

    def __init__(
        self,
        filepath: str | os.PathLike[str],
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        mode: str = "auto",
    ) -> None:
        if not isinstance(filepath, (str, os.PathLike)):
            raise TypeError(f"filepath must be a str or os.PathLike, got {type(filepath).__name__}")
        self.filepath = os.fspath(filepath)
        _check_template(self.filepath)
        self.monitor, self.verbose = _monitor(monitor), non_negative_int(verbose, "verbose")
        self.save_best_only = flag("save_best_only", save_best_only)
        self.mode, self._better = _mode_better(mode, monitor, 0.0)
        self.best = math.inf if self.mode == "min" else -math.inf

    def _path(self, epoch: int, logs: Logs) -> str:
        """The filepath with its fields filled from this epoch's values (as Keras formats it)."""
        try:
            return self.filepath.format(epoch=epoch + 1, **logs)
        except KeyError as exc:
            raise ValueError(
                f"ModelCheckpoint filepath {self.filepath!r} names {exc.args[0]!r}, which the "
                f"logs of epoch {epoch + 1} do not have (they have 'epoch', "
                f"{', '.join(map(repr, sorted(logs)))}); 'val_' values need validation "
                "data"
            ) from None
        except (ValueError, TypeError, AttributeError, IndexError) as exc:
            raise ValueError(
                f"ModelCheckpoint filepath {self.filepath!r} cannot be filled in with the "
                f"values of epoch {epoch + 1} ({exc})"
            ) from None

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        logs = logs or {}
        path = self._path(epoch, logs)
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                raise KeyError(
                    f"ModelCheckpoint monitors {self.monitor!r}, which the logs do not have (they have {sorted(logs)})"
                )
            if not self._better(current, self.best):
                return
            if self.verbose:
                print(
                    f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to {current:.5f}, "
                    f"saving model to {path}"
                )
            self.best = current
        self.model.save_weights(path)


def _check_template(filepath: str) -> None:
    """A ModelCheckpoint path: named fields only ({epoch}, {val_loss:.3f}), braces balanced."""
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(filepath) if field is not None]
    except ValueError as exc:
        raise ValueError(
            f"ModelCheckpoint filepath {filepath!r} is not a valid template ({exc}); "
            "write a literal brace as {{ or }}"
        ) from None
    positional = [f for f in fields if f == "" or f.split(".")[0].split("[")[0].isdigit()]
    if positional:
        raise ValueError(
            f"ModelCheckpoint filepath {filepath!r} has a positional field "
            f"{{{positional[0]}}}; name the value, e.g. {{epoch:02d}} or {{val_loss:.3f}}"
        )


def _constant_rate_optimizer(model: Any, who: str) -> Optimizer:
    """The model's optimizer, whose learning rate a callback may set (not a schedule: Keras too
    refuses to overwrite one)."""
    opt = model.optimizer
    if opt.schedule is not None:
        raise TypeError(
            f"{who} sets the learning rate, but the optimizer's learning_rate is a schedule "
            f"({type(opt.schedule).__name__}); use one or the other"
        )
    return opt


class LearningRateScheduler(Callback):
    """Set the optimizer's learning rate at the start of each epoch to schedule(epoch, lr), or
    schedule(epoch) for a function of one argument (Keras takes both)."""

    def __init__(self, schedule: Callable[..., float], verbose: int = 0) -> None:
        if not callable(schedule):
            raise TypeError(
                f"schedule must be a function schedule(epoch, lr) or schedule(epoch), got "
                f"{type(schedule).__name__} {schedule!r}"
            )
        self.schedule, self.verbose = schedule, non_negative_int(verbose, "verbose")
        self._takes_lr = _accepts_two(schedule)

    def _call(self, epoch: int, lr: float) -> object:
        if self._takes_lr is None:  # no signature to read: Keras' try with (epoch, lr) first
            try:
                return self.schedule(epoch, lr)
            except TypeError:
                return self.schedule(epoch)
        return self.schedule(epoch, lr) if self._takes_lr else self.schedule(epoch)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        opt = _constant_rate_optimizer(self.model, "LearningRateScheduler")
        lr = self._call(epoch, opt.learning_rate)
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
            raise TypeError(
                f"LearningRateScheduler: the schedule must return a float (the learning rate), "
                f"got {type(lr).__name__} {lr!r} at epoch {epoch}"
            )
        lr = float(lr)
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"LearningRateScheduler: schedule({epoch}) gave {lr!r}; it must be a positive number")
        opt.learning_rate = lr
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")


def _accepts_two(fn: Callable[..., Any]) -> bool | None:
    """Whether fn takes (epoch, lr): True, or only (epoch): False; None when its signature
    cannot be read (some builtins)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    for args in ((0, 0.1), (0,)):
        try:
            sig.bind(*args)
        except TypeError:
            continue
        return len(args) == 2
    raise TypeError(f"schedule must take (epoch, lr) or (epoch), got a function with signature {sig}")


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by `factor` when `monitor` has not improved by min_delta for
    `patience` epochs, then wait `cooldown` epochs; never below min_lr."""

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ) -> None:
        factor = finite_number(factor, "factor")
        if not 0.0 < factor < 1.0:
            raise ValueError(f"factor must be in (0, 1), got {factor!r}")
        self.monitor, self.factor = _monitor(monitor), factor
        self.patience, self.verbose = non_negative_int(patience, "patience"), non_negative_int(verbose, "verbose")
        self.mode, self._better = _mode_better(mode, monitor, abs(finite_number(min_delta, "min_delta")))
        self.cooldown, self.min_lr = non_negative_int(cooldown, "cooldown"), finite_number(min_lr, "min_lr")
        if self.min_lr < 0:
            raise ValueError(f"min_lr must be >= 0, got {min_lr!r}")

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.wait = self.cooldown_counter = 0
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        current = (logs or {}).get(self.monitor)
        if current is None:
            raise KeyError(
                f"ReduceLROnPlateau monitors {self.monitor!r}, which the logs do not have "
                f"(they have {sorted(logs or {})})"
            )
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._better(current, self.best):
            self.best, self.wait = current, 0
            return
        if self.cooldown_counter > 0:
            return
        self.wait += 1
        if self.wait >= self.patience:
            opt = _constant_rate_optimizer(self.model, "ReduceLROnPlateau")
            old = opt.learning_rate
            if old > self.min_lr:
                opt.learning_rate = max(old * self.factor, self.min_lr)
                if self.verbose:
                    print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {opt.learning_rate}.")
                self.cooldown_counter, self.wait = self.cooldown, 0


class CSVLogger(Callback):
    """Append one row per epoch ("epoch" then the logs, sorted by name) to a CSV file."""

    def __init__(self, filename: str | os.PathLike[str], separator: str = ",", append: bool = False) -> None:
        if not isinstance(filename, (str, os.PathLike)):
            raise TypeError(f"filename must be a str or os.PathLike, got {type(filename).__name__}")
        if not (isinstance(separator, str) and len(separator) == 1):
            raise ValueError(f"separator must be a one-character string, got {separator!r}")
        self.filename, self.separator = os.fspath(filename), separator
        self.append = flag("append", append)
        self.keys: list[str] | None = None

    def on_train_begin(self, logs: Logs | None = None) -> None:
        exists = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="")  # noqa: SIM115
        self._writer: Any = None  # a csv writer once the first epoch's keys are known
        self._header_written = exists

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        logs = logs or {}
        if self._writer is None:
            self.keys = sorted(logs)
            self._writer = csv.writer(self._file, delimiter=self.separator)
            if not self._header_written:
                self._writer.writerow(["epoch", *self.keys])
        self._writer.writerow([epoch, *[_plain(logs.get(k, "NA")) for k in self.keys or ()]])
        self._file.flush()

    def on_train_end(self, logs: Logs | None = None) -> None:
        self._file.close()


def _plain(v: object) -> object:
    return float(v) if isinstance(v, (float, np.floating)) else v
