"""One rank of the tests in test_distributed.py: `mpiexec -n 2 python distributed_worker.py
SCENARIO OUT_DIR`, or run alone (one process) for the reference.

fit       a small CNN trained with fit() and a DistributedOptimizer; writes OUT_DIR/rank<r>.npz
          (the parameters, the history and the per-step statistics)
loop      the same with a hand-written loop over shard_batches
cupy      the loop on CuPy arrays (NCCL, or host memory when ranks share a GPU)
fail      rank 1 raises in its third step
stuck     rank 1 stops calling MPI in its third step; the others time out
late      rank 0 (the root) never reaches broadcast_parameters; rank 1 times out there
mismatch  fit on batches that differ between ranks (must raise)
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

import fastconv as fc
from fastconv import distributed as dist
from fastconv.layers import Conv2D, Dense, Flatten, MaxPooling2D

GLOBAL_BATCH = 15  # 64 samples: batches of 15 (ranks get 7 and 8) and a last one of 4


def dataset():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((64, 8, 8, 1)).astype(np.float32)
    y = (x[:, :4].sum(axis=(1, 2, 3)) > x[:, 4:].sum(axis=(1, 2, 3))).astype(np.int64)
    return x, y


def model():
    return fc.Sequential(
        [
            Conv2D(4, 3, padding="same", activation="relu", input_shape=(8, 8, 1), seed=1),
            MaxPooling2D(2),
            Conv2D(6, 3, padding="same", activation="relu", seed=2),
            Flatten(),
            Dense(8, activation="relu", seed=3),
            Dense(2, seed=4),
        ]
    )


def save(out_dir, m, **extra):
    weights = {f"w{i}": w for i, w in enumerate(m.get_weights())}  # NumPy copies
    np.savez(os.path.join(out_dir, f"rank{dist.rank()}.npz"), size=dist.size(), **weights, **extra)


class FailAt(fc.callbacks.Callback):
    def __init__(self, step, action):
        self.step, self.action = step, action
        self.count = 0

    def on_train_batch_begin(self, batch, logs=None):
        self.count += 1
        if dist.rank() == 1 and self.count == self.step:
            self.action()


def stop_forever():
    while True:
        time.sleep(1)


def fail():
    raise RuntimeError("rank 1 failed on purpose")


def main(scenario, out_dir):
    dist.init()
    threads_at_init = fc.get_num_threads()
    fc.set_num_threads(1)
    x, y = dataset()
    m = model()
    if dist.rank() == 1:  # broadcast_parameters must replace these
        for layer in m.layers:
            for v in layer.params.values():
                v += 1.0
    opt = dist.DistributedOptimizer(
        fc.SGD(0.05, momentum=0.9), bucket_mib=0.0005, timeout=5.0 if scenario == "stuck" else 600.0
    )
    m.compile(optimizer=opt, loss=fc.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    if scenario == "late":  # the root: its small sends complete without a receiver
        if dist.rank() == 0:
            stop_forever()
        dist.broadcast_parameters(m, timeout=3.0)
        return
    if scenario == "cupy":  # the loop below on CuPy arrays
        import cupy

        m.build()
        m.to("cupy")
        x, y = cupy.asarray(x), cupy.asarray(y)
        opt = dist.DistributedOptimizer(fc.SGD(0.05, momentum=0.9), m, bucket_mib=0.0005)
    if scenario in ("loop", "cupy"):
        dist.broadcast_parameters(m)
        loss_fn = fc.losses.SparseCategoricalCrossentropy(from_logits=True)
        overlapped, grad_sums = [], []
        for epoch in range(2):
            for xb, yb in dist.shard_batches(x, y, GLOBAL_BATCH, seed=epoch):
                loss_fn(yb, m.forward(xb))
                m.backward(loss_fn.backward())
                # averaged when backward returns: the same on every rank (the test compares them)
                grad_sums.append(sum(float(r.grad.astype(np.float64).sum()) for r in m.parameters()))
                if scenario == "cupy":
                    assert type(m.parameters()[0].grad).__module__.startswith("cupy")
                opt.step(r for r in m.parameters())  # a generator of ParamRefs works too
                overlapped.append(opt.last_step.get("overlapped", 0))
        save(out_dir, m, overlapped=np.array(overlapped), grad_sums=np.array(grad_sums))
        return
    if scenario == "mismatch":  # each rank its own batches: fit must refuse
        rng = np.random.default_rng(dist.rank())
        batches = [
            (x[i : i + 16] + rng.standard_normal((1, 8, 8, 1), dtype=np.float32), y[i : i + 16])
            for i in range(0, 64, 16)
        ]
        m.fit(batches, epochs=1, verbose=0)
        return
    callbacks = []
    if scenario in ("fail", "stuck"):
        callbacks = [FailAt(3, fail if scenario == "fail" else stop_forever)]
    history = m.fit(
        x,
        y,
        batch_size=GLOBAL_BATCH,
        epochs=2,
        seed=7,
        verbose=2,
        callbacks=callbacks,
        validation_data=(x[:21], y[:21]),
    )
    # fine-tuning's second compile: the new DistributedOptimizer replaces the old one's hook
    m.compile(
        optimizer=dist.DistributedOptimizer(fc.SGD(0.02)),
        loss=fc.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    m.fit(x, y, batch_size=GLOBAL_BATCH, epochs=1, seed=8, verbose=0)
    save(
        out_dir,
        m,
        threads=threads_at_init,
        loss=np.array(history.history["loss"]),
        val_loss=np.array(history.history["val_loss"]),
        accuracy=np.array(history.history["accuracy"]),
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
