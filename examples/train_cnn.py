"""Train the classic course CNN on handwritten digits with fastconv layers in a plain NumPy loop.

    pip install ".[examples]"                   # scikit-learn (the data) and matplotlib (the plot)
    python examples/train_cnn.py                # offline: scikit-learn's 8x8 digits (1,797 images)
    python examples/train_cnn.py --data mnist.npz --epochs 5     # the Keras MNIST file (28x28)

Model (Keras names): Conv2D 32 -> MaxPooling2D -> Conv2D 64 -> MaxPooling2D -> Conv2D 64 ->
Flatten -> Dense 64 -> Dense 10, 3x3 kernels with ReLU. On 28x28 MNIST the convolutions are
'valid' as in the Keras tutorial (93,322 parameters); the 8x8 digits are too small for that
(8 -> 6 -> 3 -> 1 -> pooled away), so there they use 'same' padding.

Default data: `sklearn.datasets.load_digits`, whose CSV ships inside the scikit-learn wheel
(sklearn/datasets/data/digits.csv.gz): nothing is downloaded. A fixed, stratified 80/20 split
gives 1,437 training and 360 test images.
`--data mnist.npz`: the standard Keras file (x_train (60000, 28, 28) uint8, y_train, x_test,
y_test), e.g. from keras.datasets.mnist.load_data(); this script never downloads it.

Training: Adam (lr 2e-3, cosine decay to 0), batches of 32, on the digits a random shift of up
to 1 pixel per image (augmentation) and 40 epochs; one CPU thread on the digits (see train()).

Prints a progress bar per epoch (stderr), loss/accuracy per epoch, seconds per epoch and the
final test accuracy; writes a PNG of the training curves when matplotlib is installed.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import fastconv as fc
from fastconv.layers import Conv2D, Dense, Flatten, MaxPooling2D, SoftmaxCrossEntropy


# ----------------------------------------------------------------------------- data

def load_digits_split(seed=0, test_fraction=0.2):
    """scikit-learn's 8x8 digits -> (x_train, y_train, x_test, y_test), x (N, 8, 8, 1) in [0, 1]."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        sys.exit("the default data set needs scikit-learn: pip install 'fastconv[examples]' "
                 "(or pass --data mnist.npz)")
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    y = digits.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), bool)
    for c in range(10):                         # stratified: the same share of every class
        idx = rng.permutation(np.flatnonzero(y == c))
        test[idx[: int(round(test_fraction * len(idx)))]] = True
    return x[~test], y[~test], x[test], y[test]


def load_mnist_npz(path):
    """The Keras mnist.npz -> (x_train, y_train, x_test, y_test), x (N, 28, 28, 1) in [0, 1]."""
    with np.load(path) as f:
        missing = {"x_train", "y_train", "x_test", "y_test"} - set(f.files)
        if missing:
            sys.exit(f"{path} lacks {sorted(missing)}: expected the Keras mnist.npz layout")
        parts = [f[k] for k in ("x_train", "y_train", "x_test", "y_test")]
    xs = [(a.astype(np.float32) / 255.0)[..., None] for a in (parts[0], parts[2])]
    return xs[0], parts[1].astype(np.int64), xs[1], parts[3].astype(np.int64)


# ----------------------------------------------------------------------------- model

def course_model(input_shape, padding, seed):
    s = np.random.SeedSequence(seed).generate_state(6)
    return fc.Sequential([
        Conv2D(32, 3, padding=padding, activation="relu", input_shape=input_shape, seed=int(s[0])),
        MaxPooling2D(2),
        Conv2D(64, 3, padding=padding, activation="relu", seed=int(s[1])),
        MaxPooling2D(2),
        Conv2D(64, 3, padding=padding, activation="relu", seed=int(s[2])),
        Flatten(),
        Dense(64, activation="relu", seed=int(s[3])),
        Dense(10, seed=int(s[4])),
    ], name="course_cnn")


# ----------------------------------------------------------------------------- progress bar

class Progress:
    """A one-line progress bar on stderr: 'epoch 3/15 [#######.....] 30/45 loss 0.1234'."""

    def __init__(self, total, prefix, width=30, stream=sys.stderr):
        self.total, self.prefix, self.width, self.stream = total, prefix, width, stream
        self.tty = stream.isatty()

    def update(self, done, loss):
        if not self.tty and done < self.total:
            return                              # a log file gets the finished bar only
        filled = int(self.width * done / self.total)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r{self.prefix} [{bar}] {done}/{self.total} loss {loss:.4f}")
        if done == self.total:
            self.stream.write("\n")
        self.stream.flush()


# ----------------------------------------------------------------------------- training

def random_shift(x, max_shift, rng):
    """Augmentation: move each image by up to max_shift pixels in H and W (zeros fill in)."""
    n, H, W, _ = x.shape
    padded = np.pad(x, ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0)))
    dy, dx = rng.integers(0, 2 * max_shift + 1, size=(2, n))
    return np.stack([padded[i, dy[i]:dy[i] + H, dx[i]:dx[i] + W] for i in range(n)])


def accuracy(model, x, y, batch_size=500):
    return float((model.predict(x, batch_size).argmax(axis=1) == y).mean())


def train(args):
    if args.data:
        x_train, y_train, x_test, y_test = load_mnist_npz(args.data)
        padding, source = "valid", args.data
    else:
        x_train, y_train, x_test, y_test = load_digits_split(args.seed)
        padding, source = "same", "scikit-learn load_digits (8x8, shipped in the wheel)"
    if args.limit:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]
    # Threads: the digits batches are tiny (32 x 8 x 8), where fork/join and BLAS threads cost
    # more than they save (on a busy 2-core machine, many times more): one thread by default.
    threads = args.threads or (fc.get_num_threads() if args.data else 1)
    fc.set_num_threads(threads)
    try:                                        # NumPy's BLAS (the Dense layers) likewise
        from threadpoolctl import threadpool_limits
        threadpool_limits(threads, user_api="blas")
    except ImportError:
        pass
    print(f"data: {source}: train {x_train.shape}, test {x_test.shape}; fastconv isa={fc.cpu_isa()} "
          f"threads={fc.get_num_threads()}")

    model = course_model(x_train.shape[1:], padding, args.seed)
    model.summary()
    loss_fn = SoftmaxCrossEntropy()
    opt = (fc.optim.Adam(lr=args.lr) if args.optimizer == "adam"
           else fc.optim.SGD(lr=args.lr, momentum=0.9, nesterov=True))
    rng = np.random.default_rng(args.seed)
    n = len(x_train)
    steps = -(-n // args.batch_size)
    history = {"loss": [], "acc": [], "test_acc": [], "seconds": []}

    for epoch in range(1, args.epochs + 1):
        # cosine learning-rate decay over the epochs: large steps first, a quiet finish
        opt.lr = args.lr * 0.5 * (1 + np.cos(np.pi * (epoch - 1) / args.epochs))
        order = rng.permutation(n)
        bar = Progress(steps, f"epoch {epoch:>2}/{args.epochs}")
        t0 = time.perf_counter()
        total_loss = correct = 0.0
        for step in range(steps):
            idx = order[step * args.batch_size:(step + 1) * args.batch_size]
            xb, yb = x_train[idx], y_train[idx]
            if args.shift:
                xb = random_shift(xb, args.shift, rng)
            logits = model.forward(xb, training=True)
            loss = loss_fn.forward(logits, yb)
            model.backward(loss_fn.backward())
            opt.step(model.parameters())
            total_loss += loss * len(idx)
            correct += float((logits.argmax(axis=1) == yb).sum())
            bar.update(step + 1, total_loss / min(n, (step + 1) * args.batch_size))
        seconds = time.perf_counter() - t0
        test_acc = accuracy(model, x_test, y_test)
        for k, v in zip(history, (total_loss / n, correct / n, test_acc, seconds)):
            history[k].append(v)
        print(f"epoch {epoch:>2}/{args.epochs}  loss {total_loss / n:.4f}  acc {correct / n:.4f}  "
              f"test_acc {test_acc:.4f}  {seconds:.2f} s/epoch", flush=True)

    print(f"final test accuracy: {history['test_acc'][-1]:.4f} ({len(y_test)} images); "
          f"mean {np.mean(history['seconds']):.2f} s/epoch, {sum(history['seconds']):.1f} s training")
    if args.save:
        model.save_weights(args.save)
        print(f"weights saved to {args.save}")
    if args.plot:
        plot_curves(history, args.plot)
    return history


def plot_curves(history, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install 'fastconv[examples]')")
        return
    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(epochs, history["loss"], "o-", label="train loss")
    a1.set_xlabel("epoch"), a1.set_ylabel("cross-entropy"), a1.legend(), a1.grid(alpha=0.3)
    a2.plot(epochs, history["acc"], "o-", label="train accuracy")
    a2.plot(epochs, history["test_acc"], "s-", label="test accuracy")
    a2.set_xlabel("epoch"), a2.set_ylabel("accuracy"), a2.legend(), a2.grid(alpha=0.3)
    fig.suptitle("fastconv: course CNN")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"training curves written to {path}")


def main(argv=None):
    ap = argparse.ArgumentParser(description="Train the course CNN with fastconv layers.")
    ap.add_argument("--data", help="Keras mnist.npz (default: scikit-learn's digits, offline)")
    ap.add_argument("--epochs", type=int, default=None, help="default 40 (digits) / 5 (MNIST)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    ap.add_argument("--lr", type=float, default=None, help="default 2e-3 (adam) / 0.02 (sgd)")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training images")
    ap.add_argument("--threads", type=int, default=0,
                    help="CPU threads for fastconv and BLAS (default: 1 on digits, all on MNIST)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shift", type=int, default=None,
                    help="random-shift augmentation in pixels (default 1 on digits, 0 on MNIST)")
    ap.add_argument("--plot", default="train_cnn.png", help="PNG of the curves ('' for none)")
    ap.add_argument("--save", default="", help="write the trained weights to this .npz")
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
