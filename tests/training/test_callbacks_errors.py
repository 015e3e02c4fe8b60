"""Callbacks given wrong arguments, or a path or schedule that does not fit the epoch's values,
raise errors that name the argument (issue 26); Keras' one-argument schedule(epoch) works."""

from __future__ import annotations

import numpy as np
import pytest

import fastconv as fc
from fastconv import callbacks


class _Model:
    """A stand-in model: an optimizer with a constant rate and a record of saved paths."""

    def __init__(self):
        self.optimizer, self.stop_training, self.saved = fc.SGD(learning_rate=0.5), False, []

    def save_weights(self, path):
        self.saved.append(path)


def _epoch_end(callback, logs, epoch=0):
    model = _Model()
    callback.set_model(model)
    callback.on_train_begin()
    callback.on_epoch_end(epoch, logs)
    return model


def test_checkpoint_path_naming_a_value_the_logs_lack_says_which_and_what_there_is():
    cp = callbacks.ModelCheckpoint("ckpt-{epoch:02d}-{val_loss:.3f}.npz")
    with pytest.raises(
        ValueError,
        match=r"'ckpt-\{epoch:02d\}-\{val_loss:.3f\}.npz' names 'val_loss'.*"
        r"'epoch', 'accuracy', 'loss'.*validation data",
    ):
        _epoch_end(cp, {"loss": 0.5, "accuracy": 0.9})
    assert _epoch_end(cp, {"val_loss": 0.25}).saved == ["ckpt-01-0.250.npz"]


@pytest.mark.parametrize("filepath", ["ckpt-{}.npz", "ckpt-{0}.npz", "ckpt-{0.real}.npz"])
def test_checkpoint_path_with_a_positional_field_is_refused_at_construction(filepath):
    with pytest.raises(ValueError, match=r"positional field .*name the value, e.g. \{epoch:02d\}"):
        callbacks.ModelCheckpoint(filepath)


def test_checkpoint_path_that_is_no_template_or_does_not_format_is_a_value_error():
    with pytest.raises(ValueError, match=r"'ckpt-\{epoch.npz' is not a valid template"):
        callbacks.ModelCheckpoint("ckpt-{epoch.npz")
    cp = callbacks.ModelCheckpoint("ckpt-{loss:d}.npz")  # a float with an int format
    with pytest.raises(ValueError, match=r"'ckpt-\{loss:d\}.npz' cannot be filled in .* epoch 1"):
        _epoch_end(cp, {"loss": 0.5})
    with pytest.raises(TypeError, match="filepath must be a str or os.PathLike, got int"):
        callbacks.ModelCheckpoint(3)


@pytest.mark.parametrize(
    "schedule, want",
    [
        (lambda epoch: 0.1 * (epoch + 1), 0.3),  # Keras' one-argument form
        (lambda epoch, lr: lr * 0.5, 0.0625),
        (lambda epoch, lr=None: 0.01 * (epoch + 1), 0.03),
        (lambda *args: 0.2, 0.2),
    ],
)
def test_learning_rate_scheduler_takes_one_or_two_argument_schedules(schedule, want):
    sched = callbacks.LearningRateScheduler(schedule)
    model = _Model()
    sched.set_model(model)
    for epoch in range(3):
        sched.on_epoch_begin(epoch)
    assert model.optimizer.learning_rate == pytest.approx(want)


def test_learning_rate_scheduler_keeps_a_type_error_raised_inside_a_two_argument_schedule():
    def schedule(epoch, lr):
        return lr + "x"  # the user's bug stays visible

    sched = callbacks.LearningRateScheduler(schedule)
    sched.set_model(_Model())
    with pytest.raises(TypeError, match="unsupported operand"):
        sched.on_epoch_begin(0)


@pytest.mark.parametrize("returned", ["0.1", None, [0.1], np.array([0.1]), True])
def test_learning_rate_schedule_returning_no_number_says_it_must_return_a_float(returned):
    sched = callbacks.LearningRateScheduler(lambda epoch: returned)
    sched.set_model(_Model())
    with pytest.raises(TypeError, match="the schedule must return a float .* at epoch 0"):
        sched.on_epoch_begin(0)


def test_learning_rate_scheduler_accepts_numpy_scalars_and_refuses_what_is_no_schedule():
    sched = callbacks.LearningRateScheduler(lambda epoch: np.float32(0.25))
    model = _Model()
    sched.set_model(model)
    sched.on_epoch_begin(0)
    assert model.optimizer.learning_rate == 0.25
    with pytest.raises(TypeError, match="schedule must be a function schedule"):
        callbacks.LearningRateScheduler(0.1)
    with pytest.raises(TypeError, match=r"schedule must take \(epoch, lr\) or \(epoch\)"):
        callbacks.LearningRateScheduler(lambda: 0.1)
    with pytest.raises(TypeError, match=r"schedule must take \(epoch, lr\) or \(epoch\)"):
        callbacks.LearningRateScheduler(lambda a, b, c: 0.1)


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda v: callbacks.EarlyStopping(patience=v), "patience"),
        (lambda v: callbacks.EarlyStopping(start_from_epoch=v), "start_from_epoch"),
        (lambda v: callbacks.EarlyStopping(verbose=v), "verbose"),
        (lambda v: callbacks.ReduceLROnPlateau(patience=v), "patience"),
        (lambda v: callbacks.ReduceLROnPlateau(cooldown=v), "cooldown"),
        (lambda v: callbacks.ReduceLROnPlateau(verbose=v), "verbose"),
        (lambda v: callbacks.ModelCheckpoint("w.npz", verbose=v), "verbose"),
        (lambda v: callbacks.LearningRateScheduler(lambda e: 0.1, verbose=v), "verbose"),
    ],
)
@pytest.mark.parametrize("value", ["a", None, 2.5, True])
def test_count_arguments_name_themselves(make, name, value):
    with pytest.raises(TypeError, match=f"{name} must be an int >= 0, got"):
        make(value)


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda v: callbacks.EarlyStopping(patience=v), "patience"),
        (lambda v: callbacks.ReduceLROnPlateau(cooldown=v), "cooldown"),
    ],
)
def test_negative_counts_are_refused(make, name):
    with pytest.raises(ValueError, match=f"{name} must be an int >= 0, got -1"):
        make(-1)


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda v: callbacks.EarlyStopping(min_delta=v), "min_delta"),
        (lambda v: callbacks.EarlyStopping(baseline=v), "baseline"),
        (lambda v: callbacks.ReduceLROnPlateau(min_delta=v), "min_delta"),
        (lambda v: callbacks.ReduceLROnPlateau(factor=v), "factor"),
        (lambda v: callbacks.ReduceLROnPlateau(min_lr=v), "min_lr"),
    ],
)
@pytest.mark.parametrize("value", ["a", [0.1], True, float("nan")])
def test_real_number_arguments_name_themselves(make, name, value):
    with pytest.raises(ValueError, match=f"{name} must be a finite number"):
        make(value)


def test_flags_and_names_must_be_what_they_say():
    with pytest.raises(TypeError, match="restore_best_weights must be True or False"):
        callbacks.EarlyStopping(restore_best_weights="no")
    with pytest.raises(TypeError, match="save_best_only must be True or False"):
        callbacks.ModelCheckpoint("w.npz", save_best_only="no")
    with pytest.raises(TypeError, match="append must be True or False"):
        callbacks.CSVLogger("log.csv", append="no")
    with pytest.raises(ValueError, match="separator must be a one-character string"):
        callbacks.CSVLogger("log.csv", separator=";;")
    with pytest.raises(TypeError, match="monitor must be the name of a logged value"):
        callbacks.EarlyStopping(monitor=3)
    with pytest.raises(ValueError, match=r"min_lr must be >= 0"):
        callbacks.ReduceLROnPlateau(min_lr=-0.1)


def test_numpy_scalars_are_taken_wherever_numbers_are():
    es = callbacks.EarlyStopping(
        patience=np.int64(2),
        min_delta=np.float32(0.5),
        baseline=np.float64(1.0),
        restore_best_weights=np.bool_(True),
        start_from_epoch=np.int32(0),
    )
    assert (es.patience, es.min_delta, es.baseline, es.restore_best_weights) == (2, 0.5, 1.0, True)
    rl = callbacks.ReduceLROnPlateau(
        factor=np.float32(0.5),
        patience=np.int64(1),
        cooldown=np.int8(1),
        min_lr=np.float64(0.01),
        min_delta=np.float32(0.0),
    )
    assert (rl.factor, rl.patience, rl.cooldown, rl.min_lr) == (0.5, 1, 1, 0.01)
