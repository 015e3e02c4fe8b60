"""Train the classic course CNN on handwritten digits with fastconv layers in a plain NumPy loop.

    pip install ".[examples]"                   # scikit-learn (the data) and matplotlib (the plot)
    python examples/train_cnn.py                # offline: scikit-learn's 8x8 digits (1,797 images)
    python examples/train_cnn.py --data mnist.npz --epochs 5     # the Keras MNIST file (28x28)
    python examples/train_cnn.py --data fashion-mnist/ --epochs 5  # a folder of Fashion-MNIST files
    mpiexec -n 2 python examples/train_cnn.py --distributed     # data-parallel (pip install ".[mpi]")

Model (Keras names): Conv2D 32 -> MaxPooling2D -> Conv2D 64 -> MaxPooling2D -> Conv2D 64 ->
Flatten -> Dense 64 -> Dense 10, 3x3 kernels with ReLU. On 28x28 MNIST the convolutions are
'valid' as in the Keras tutorial (93,322 parameters); the 8x8 digits are too small for that
(8 -> 6 -> 3 -> 1 -> pooled away), so there they use 'same' padding. `--batch-norm` puts a
BatchNormalization between each Conv2D and its ReLU. Measured on the digits (40 epochs, seeds 0-4,
first epoch with test accuracy >= 0.98): plain 15, 11, 12, 7, 11; with batch norm 6, 8, 9, 5, 4.

Default data: `sklearn.datasets.load_digits`, whose CSV ships inside the scikit-learn wheel
(sklearn/datasets/data/digits.csv.gz): nothing is downloaded. A fixed, stratified 80/20 split
gives 1,437 training and 360 test images.
`--data mnist.npz`: the standard Keras file (x_train (60000, 28, 28) uint8, y_train, x_test,
y_test), e.g. from keras.datasets.mnist.load_data(); this script never downloads it.
`--data FOLDER`: Fashion-MNIST as Keras caches it (~/.keras/datasets/fashion-mnist: the four
IDX files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz,
t10k-labels-idx1-ubyte.gz, gzipped or not); the same 28x28 model trains on it.

Training with Keras' workflow (model.compile / model.fit): Adam (lr 2e-3, cosine decay to 0),
batches of 32, on the digits ImageDataGenerator shifts of up to 1 pixel (augmentation) and 40
epochs; one CPU thread on the digits (see train()).

Prints Keras' progress bar per epoch (loss, accuracy, test loss and accuracy), the final test
accuracy and the time per epoch; writes a PNG of the training curves (History.plot) when
matplotlib is installed and, with --save, the whole model (fastconv.load_model reads it).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import fastconv as fc
from fastconv import distributed as dist
from fastconv.layers import BatchNormalization, Conv2D, Dense, Flatten, MaxPooling2D, ReLU

# ----------------------------------------------------------------------------- data


def load_digits_split(seed=0):
    """scikit-learn's 8x8 digits -> (x_train, y_train, x_test, y_test), x (N, 8, 8, 1) in [0, 1]."""
    try:
        (x_train, y_train), (x_test, y_test) = fc.data.load_digits(seed=seed)
    except ImportError:
        sys.exit("the default data set needs scikit-learn: pip install 'fastconv[examples]' (or pass --data mnist.npz)")
    return x_train, y_train, x_test, y_test


def load_28x28(path):
    """The Keras mnist.npz, or a Fashion-MNIST folder -> (x_train, y_train, x_test, y_test),
    x (N, 28, 28, 1) in [0, 1]."""
    loader = fc.data.load_fashion_mnist if os.path.isdir(path) else fc.data.load_mnist
    try:
        (x_train, y_train), (x_test, y_test) = loader(path)
    except (ValueError, FileNotFoundError) as exc:
        sys.exit(str(exc))
    xs = [(a.astype(np.float32) / 255.0)[..., None] for a in (x_train, x_test)]
    return xs[0], y_train.astype(np.int64), xs[1], y_test.astype(np.int64)


# ----------------------------------------------------------------------------- model


def course_model(input_shape, padding, seed, batch_norm=False):
    """The course CNN; batch_norm: each Conv2D without its ReLU, then BatchNormalization, then
    ReLU (the ResNet order), the same weights' seeds. The moving statistics use momentum 0.9, not
    Keras' 0.99: the digits give 45 steps per epoch, and statistics averaged over ~100 steps lag
    the weights for several epochs, so the test accuracy (which uses them) trails the training
    accuracy."""
    s = np.random.SeedSequence(seed).generate_state(6)

    def conv_block(filters, seed, **kw):
        if not batch_norm:
            return [Conv2D(filters, 3, padding=padding, activation="relu", seed=seed, **kw)]
        return [Conv2D(filters, 3, padding=padding, seed=seed, **kw), BatchNormalization(momentum=0.9), ReLU()]

    return fc.Sequential(
        [
            *conv_block(32, int(s[0]), input_shape=input_shape),
            MaxPooling2D(2),
            *conv_block(64, int(s[1])),
            MaxPooling2D(2),
            *conv_block(64, int(s[2])),
            Flatten(),
            Dense(64, activation="relu", seed=int(s[3])),
            Dense(10, seed=int(s[4])),
        ],
        name="course_cnn_bn" if batch_norm else "course_cnn",
    )


def first_epoch_reaching(accuracies, target):
    """1-based epoch whose test accuracy first reaches target, or None."""
    return next((i + 1 for i, a in enumerate(accuracies) if a >= target), None)


# ----------------------------------------------------------------------------- training


def train(args):
    if args.data:
        x_train, y_train, x_test, y_test = load_28x28(args.data)
        padding, source = "valid", args.data
    else:
        x_train, y_train, x_test, y_test = load_digits_split(args.seed)
        padding, source = "same", "scikit-learn load_digits (8x8, shipped in the wheel)"
    if args.limit:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]
    # Threads: the digits batches are tiny (32 x 8 x 8), where waking threads costs more than it
    # saves (on a busy 2-core machine, many times more): one thread by default.
    threads = args.threads or (fc.get_num_threads() if args.data else 1)
    fc.set_num_threads(threads)
    if args.distributed:  # under mpiexec: every rank runs this script
        dist.init()
    root = not args.distributed or dist.rank() == 0
    say = print if root else (lambda *a, **k: None)
    say(
        f"data: {source}: train {x_train.shape}, test {x_test.shape}; fastconv isa={fc.cpu_isa()} "
        f"threads={fc.get_num_threads()}" + (f" ranks={dist.size()}" if args.distributed else "")
    )

    model = course_model(x_train.shape[1:], padding, args.seed, batch_norm=args.batch_norm)
    model.summary(print_fn=say)
    steps = -(-len(x_train) // args.batch_size)
    # cosine learning-rate decay over all steps: large steps first, a quiet finish
    lr = fc.optim.CosineDecay(args.lr, decay_steps=args.epochs * steps)
    opt = (
        fc.Adam(learning_rate=lr) if args.optimizer == "adam" else fc.SGD(learning_rate=lr, momentum=0.9, nesterov=True)
    )
    if args.distributed:  # gradients averaged over the ranks; batch_size is the global batch
        opt = dist.DistributedOptimizer(opt)
    model.compile(optimizer=opt, loss=fc.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    if args.shift:  # augmentation: random shifts of up to args.shift pixels, zeros fill in
        gen = fc.data.ImageDataGenerator(
            width_shift_range=float(args.shift),
            height_shift_range=float(args.shift),
            fill_mode="constant",
            seed=args.seed,
        )
        train_data = dict(x=gen.flow(x_train, y_train, batch_size=args.batch_size, seed=args.seed))
    else:
        train_data = dict(x=x_train, y=y_train, batch_size=args.batch_size, seed=args.seed)
    t0 = time.perf_counter()
    history = model.fit(**train_data, epochs=args.epochs, validation_data=(x_test, y_test))
    seconds = time.perf_counter() - t0

    if not root:
        return history.history
    print(
        f"final test accuracy: {history.history['val_accuracy'][-1]:.4f} ({len(y_test)} images); "
        f"{seconds / args.epochs:.2f} s/epoch, {seconds:.1f} s training"
    )
    reached = first_epoch_reaching(history.history["val_accuracy"], args.target_accuracy)
    print(
        f"test accuracy first >= {args.target_accuracy}: "
        + (f"epoch {reached}" if reached else f"not within {args.epochs} epochs")
    )
    if args.save:
        model.save(args.save)
        print(f"model saved to {args.save} (fastconv.load_model reads it back)")
    if args.plot:
        try:
            os.makedirs(os.path.dirname(args.plot) or ".", exist_ok=True)
            history.plot(args.plot, title="fastconv: course CNN")
            print(f"training curves written to {args.plot}")
        except ImportError:
            print("matplotlib is not installed: no plot (pip install 'fastconv[examples]')")
    return history.history


def main(argv=None):
    ap = argparse.ArgumentParser(description="Train the course CNN with fastconv layers.")
    ap.add_argument(
        "--data", help="Keras mnist.npz or a Fashion-MNIST folder (default: scikit-learn's digits, offline)"
    )
    ap.add_argument("--epochs", type=int, default=None, help="default 40 (digits) / 5 (MNIST)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    ap.add_argument("--lr", type=float, default=None, help="default 2e-3 (adam) / 0.02 (sgd)")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training images")
    ap.add_argument(
        "--threads", type=int, default=0, help="CPU threads for fastconv and BLAS (default: 1 on digits, all on MNIST)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--shift", type=int, default=None, help="random-shift augmentation in pixels (default 1 on digits, 0 on MNIST)"
    )
    ap.add_argument(
        "--plot",
        default=os.path.join("runs", "train_cnn.png"),
        help="PNG of the curves (default runs/train_cnn.png; '' for none)",
    )
    ap.add_argument(
        "--batch-norm", action="store_true", help="BatchNormalization after each convolution (Conv2D -> BN -> ReLU)"
    )
    ap.add_argument(
        "--target-accuracy",
        type=float,
        default=0.97,
        help="report the first epoch whose test accuracy reaches this (default 0.97)",
    )
    ap.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel over MPI ranks: mpiexec -n 2 python examples/train_cnn.py --distributed",
    )
    ap.add_argument("--save", default="", help="write the trained model to this .npz (model.save)")
    args = ap.parse_args(argv)
    if args.epochs is None:
        args.epochs = 5 if args.data else 40
    if args.shift is None:
        args.shift = 0 if args.data else 1
    if args.lr is None:
        args.lr = 2e-3 if args.optimizer == "adam" else 0.02
    return train(args)


if __name__ == "__main__":
    main()
