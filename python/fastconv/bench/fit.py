"""What Keras' workflow adds to a training loop: model.fit against the hand-written loop, and
ImageDataGenerator's cost against the training step it feeds (the MNIST course CNN, batch 64).

    python -m fastconv.bench fit [--rounds 7]

1. One epoch of 60 steps (3,840 random 28x28x1 images): the hand-written loop (forward, loss,
   backward, Adam step) and model.fit (same optimizer and loss, the accuracy metric, verbose=0),
   interleaved, medians.
2. ImageDataGenerator(rotation 10, shifts 0.1, shear 10, zoom 0.1, horizontal flip) on a batch of
   64, and the training step on that batch, alternating 60 times: medians.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import fastconv as fc
from fastconv import data, losses

from .loops import mnist_cnn


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    x = rng.random((3840, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, 3840)

    def hand_loop(model, opt, loss):
        for xb, yb in data.batches(x, y, 64, seed=1):
            loss(yb, model.forward(xb))
            model.backward(loss.backward())
            opt.step(model)

    def keras_fit(model, opt, loss):
        model.compile(optimizer=opt, loss=loss, metrics=["accuracy"])
        model.fit(x, y, batch_size=64, epochs=1, verbose=0, seed=1)

    times = {"hand-written loop": [], "model.fit": []}
    for r in range(args.rounds):
        order = list(times.items()) if r % 2 else list(reversed(times.items()))
        for name, samples in order:
            model = mnist_cnn((28, 28, 1), "same")
            model.predict(x[:64])  # built, pages touched
            fn = hand_loop if name == "hand-written loop" else keras_fit
            t = time.perf_counter()
            fn(model, fc.Adam(learning_rate=1e-3), losses.SparseCategoricalCrossentropy(from_logits=True))
            samples.append(time.perf_counter() - t)
    a, b = (statistics.median(v) for v in times.values())
    print(
        f"epoch of 60 steps, medians of {args.rounds}: hand-written loop {a:.3f} s, model.fit {b:.3f} s "
        f"({100 * (b / a - 1):+.1f}%)"
    )

    gen = data.ImageDataGenerator(
        rotation_range=10,
        width_shift_range=0.1,
        height_shift_range=0.1,
        shear_range=10,
        zoom_range=0.1,
        horizontal_flip=True,
        seed=0,
    )
    model = mnist_cnn((28, 28, 1), "same")
    model.compile(optimizer=fc.Adam(learning_rate=1e-3), loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    aug, step = [], []
    for _ in range(70):
        t = time.perf_counter()
        xb = gen.random_transform_batch(x[:64])
        aug.append(time.perf_counter() - t)
        t = time.perf_counter()
        model.train_on_batch(xb, y[:64])
        step.append(time.perf_counter() - t)
    a, s = statistics.median(aug[10:]), statistics.median(step[10:])
    print(
        f"ImageDataGenerator batch of 64: {a * 1e3:.2f} ms; the training step it feeds {s * 1e3:.2f} ms "
        f"({100 * a / s:.0f}% of the step)"
    )
