"""Loaders for data sets the user already has on disk (nothing is downloaded), in the layouts
Keras' loaders return: uint8 images channels_last, integer labels.

    (x_train, y_train), (x_test, y_test) = fc.data.load_mnist("mnist.npz")
    (x_train, y_train), (x_test, y_test) = fc.data.load_fashion_mnist("fashion-mnist/")
    (x_train, y_train), (x_test, y_test) = fc.data.load_cifar10("cifar-10-batches-py/")
    x, y, class_names = fc.data.load_image_folder("cats_and_dogs/train", target_size=(150, 150))
    (x_train, y_train), (x_test, y_test) = fc.data.load_digits()      # scikit-learn's 8x8 digits

Image folders follow Keras' flow_from_directory layout: one sub-folder per class, classes in
alphabetical order; decoding needs Pillow (`pip install fastconv[images]`).
"""
from __future__ import annotations

import gzip
import os
import pickle

import numpy as np

__all__ = ["load_mnist", "load_fashion_mnist", "load_cifar10", "load_image_folder", "list_image_folder",
           "load_images", "load_digits", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".tif", ".tiff", ".webp")


def _exists(path, what):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} not found at {path!r} (fastconv never downloads data)")
    return path


def load_mnist(path):
    """Keras' mnist.npz (x_train (60000, 28, 28) uint8, y_train, x_test, y_test) ->
    ((x_train, y_train), (x_test, y_test)), as keras.datasets.mnist.load_data()."""
    path = _exists(path, "mnist.npz")
    with np.load(path, allow_pickle=False) as f:
        missing = {"x_train", "y_train", "x_test", "y_test"} - set(f.files)
        if missing:
            raise ValueError(f"{path} lacks {sorted(missing)}: expected the Keras mnist.npz layout")
        return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])


def _idx(path):
    """An IDX file (optionally gzipped): the format of MNIST's and Fashion-MNIST's original files."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: the header says {dims} but the file holds {data.size} bytes")
    return data.reshape(dims)


def load_fashion_mnist(directory):
    """The four Fashion-MNIST files Keras caches (train-images-idx3-ubyte.gz,
    train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz; plain or
    gzipped) -> ((x_train, y_train), (x_test, y_test)), as keras.datasets.fashion_mnist."""
    directory = _exists(directory, "the Fashion-MNIST folder")

    def read(stem):
        for name in (stem + ".gz", stem):
            path = os.path.join(directory, name)
            if os.path.exists(path):
                return _idx(path)
        raise FileNotFoundError(f"{stem}(.gz) not found in {directory!r}")

    return ((read("train-images-idx3-ubyte"), read("train-labels-idx1-ubyte")),
            (read("t10k-images-idx3-ubyte"), read("t10k-labels-idx1-ubyte")))


def load_cifar10(directory):
    """The CIFAR-10 python batches (cifar-10-batches-py: data_batch_1..5, test_batch) ->
    ((x_train (50000, 32, 32, 3) uint8, y_train (50000, 1)), (x_test, y_test)), as
    keras.datasets.cifar10. The batches are Python pickles: load only files you trust."""
    directory = _exists(directory, "the cifar-10-batches-py folder")

    def read(name):
        path = _exists(os.path.join(directory, name), f"CIFAR-10 batch {name}")
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")  # noqa: S301 - the CIFAR-10 format is a pickle
        x = np.asarray(d[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return np.ascontiguousarray(x), np.asarray(d[b"labels"], np.uint8).reshape(-1, 1)

    train = [read(f"data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = read("test_batch")
    return (np.concatenate([t[0] for t in train]), np.concatenate([t[1] for t in train])), (x_test, y_test)


def list_image_folder(directory):
    """(paths, labels, class_names) of an image folder: one sub-folder per class (alphabetical)."""
    directory = _exists(directory, "the image folder")
    class_names = sorted(d for d in os.listdir(directory) if os.path.isdir(os.path.join(directory, d)))
    if not class_names:
        raise ValueError(f"{directory!r} has no class sub-folders (expected e.g. cats/ and dogs/)")
    paths, labels = [], []
    for label, name in enumerate(class_names):
        folder = os.path.join(directory, name)
        for fname in sorted(os.listdir(folder)):
            if fname.lower().endswith(IMAGE_EXTENSIONS):
                paths.append(os.path.join(folder, fname))
                labels.append(label)
    if not paths:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in the class folders of {directory!r}")
    return paths, np.asarray(labels, np.int64), class_names


def load_images(paths, target_size, color_mode="rgb"):
    """Decode and resize (bilinear) image files -> uint8 (N, H, W, 3 | 1 | 4)."""
    try:
        from PIL import Image  # noqa: PLC0415 - optional dependency
    except ImportError as exc:
        raise ImportError("reading image files needs Pillow: pip install 'fastconv[images]'") from exc
    modes = {"rgb": ("RGB", 3), "grayscale": ("L", 1), "rgba": ("RGBA", 4)}
    if color_mode not in modes:
        raise ValueError(f"color_mode must be one of {sorted(modes)}, got {color_mode!r}")
    mode, channels = modes[color_mode]
    h, w = target_size
    out = np.empty((len(paths), h, w, channels), np.uint8)
    for i, path in enumerate(paths):
        with Image.open(path) as img:
            img = img.convert(mode)
            if img.size != (w, h):
                img = img.resize((w, h), Image.BILINEAR)
            out[i] = np.asarray(img, np.uint8).reshape(h, w, channels)
    return out


def load_image_folder(directory, target_size=(256, 256), color_mode="rgb"):
    """Every image of a class-per-folder tree, resized -> (x uint8 (N, H, W, C), y, class_names)."""
    paths, labels, class_names = list_image_folder(directory)
    return load_images(paths, target_size, color_mode), labels, class_names


def load_digits(test_fraction=0.2, seed=0):
    """scikit-learn's 8x8 digits (shipped inside its wheel: nothing downloaded), a stratified split
    -> ((x_train (N, 8, 8, 1) float32 in [0, 1], y_train), (x_test, y_test))."""
    try:
        from sklearn.datasets import load_digits as sk_digits  # noqa: PLC0415 - optional
    except ImportError as exc:
        raise ImportError("load_digits needs scikit-learn: pip install 'fastconv[examples]'") from exc
    d = sk_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), bool)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        test[idx[:int(round(len(idx) * test_fraction))]] = True
    return (x[~test], y[~test]), (x[test], y[test])
