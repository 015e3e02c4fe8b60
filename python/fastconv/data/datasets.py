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
import math
import os
import pickle
import zipfile
import zlib
from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "load_mnist",
    "load_fashion_mnist",
    "load_cifar10",
    "load_image_folder",
    "list_image_folder",
    "load_images",
    "load_digits",
    "IMAGE_EXTENSIONS",
]

# Keras' color_mode -> (Pillow mode, channels)
COLOR_MODES = {"rgb": ("RGB", 3), "grayscale": ("L", 1), "rgba": ("RGBA", 4)}
PathLike: TypeAlias = str | os.PathLike[str]
# ((x_train, y_train), (x_test, y_test)), as Keras' load_data() returns them
Splits: TypeAlias = tuple[tuple[NDArray[np.uint8], NDArray[np.uint8]], tuple[NDArray[np.uint8], NDArray[np.uint8]]]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".tif", ".tiff", ".webp")


def _exists(path: PathLike, what: str) -> str:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} not found at {path!r} (fastconv never downloads data)")
    return path


def load_mnist(path: PathLike) -> Splits:
    """Keras' mnist.npz (x_train (60000, 28, 28) uint8, y_train, x_test, y_test) ->
    ((x_train, y_train), (x_test, y_test)), as keras.datasets.mnist.load_data()."""
    path = _exists(path, "mnist.npz")
    keys = ("x_train", "y_train", "x_test", "y_test")
    try:
        with open(path, "rb") as fh:  # np.load leaves its own handle open when the zip is damaged
            start = fh.read(4)
            if not start.startswith(b"PK"):
                raise ValueError(f"it starts with {start!r}, not with an .npz archive's zip signature b'PK'")
            fh.seek(0)
            f = np.load(fh, allow_pickle=False)
            missing = set(keys) - set(f.files)
            if missing:
                raise ValueError(f"it lacks {sorted(missing)}: expected the Keras mnist.npz layout")
            arrays = {k: f[k] for k in keys}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ValueError(f"{path} is not a readable mnist.npz: {exc}") from exc
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(
                f"{path}: x_{split} must be images (N, H, W) and y_{split} N labels, got shapes {x.shape} and {y.shape}"
            )
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def _read_maybe_gzipped(path: str) -> bytes:
    if not path.endswith(".gz"):
        with open(path, "rb") as f:
            return f.read()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except gzip.BadGzipFile as exc:
        raise ValueError(f"{path} is not a valid gzip file: {exc}") from exc
    except EOFError as exc:
        raise ValueError(f"{path} is a truncated gzip file: {exc}") from exc
    except zlib.error as exc:
        raise ValueError(f"{path} holds corrupt gzip data: {exc}") from exc


def _idx(path: str) -> NDArray[np.uint8]:
    """An IDX file (optionally gzipped) of unsigned bytes: the format of MNIST's and Fashion-MNIST's
    original files. Header: 0, 0, type code 0x08, the number of dimensions, then each dimension as
    a big-endian uint32; the data follows."""
    raw = _read_maybe_gzipped(path)
    if len(raw) < 4:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, the magic number alone takes 4)")
    if raw[:2] == b"\x1f\x8b":
        raise ValueError(f"{path} is gzip-compressed: name it {os.path.basename(path)}.gz")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: bad magic number 0x{raw[:4].hex()}: an IDX file starts with two zero bytes")
    if raw[2] != 0x08:
        raise ValueError(
            f"{path}: IDX type code 0x{raw[2]:02x}, fastconv reads only 0x08 (unsigned bytes, as in MNIST)"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0:
        raise ValueError(f"{path}: the IDX header declares 0 dimensions")
    if len(raw) < header:
        raise ValueError(
            f"{path}: truncated IDX header: {ndim} dimensions need {header} bytes, the file holds {len(raw)}"
        )
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = math.prod(dims)  # Python ints: a product past int64 cannot wrap around
    if expected != len(raw) - header:
        raise ValueError(
            f"{path}: the header says {dims} ({expected} bytes of data) but the file holds "
            f"{len(raw) - header} bytes after the header"
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def load_fashion_mnist(directory: PathLike) -> Splits:
    """The four Fashion-MNIST files Keras caches (train-images-idx3-ubyte.gz,
    train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz; plain or
    gzipped) -> ((x_train, y_train), (x_test, y_test)), as keras.datasets.fashion_mnist."""
    directory = _exists(directory, "the Fashion-MNIST folder")

    def read(stem: str) -> NDArray[np.uint8]:
        for name in (stem + ".gz", stem):
            path = os.path.join(directory, name)
            if os.path.exists(path):
                return _idx(path)
        raise FileNotFoundError(f"{stem}(.gz) not found in {directory!r}")

    return (
        (read("train-images-idx3-ubyte"), read("train-labels-idx1-ubyte")),
        (read("t10k-images-idx3-ubyte"), read("t10k-labels-idx1-ubyte")),
    )


class _CifarUnpickler(pickle.Unpickler):
    """Builds only what a CIFAR-10 batch holds (dicts, lists, bytes, numbers and NumPy arrays):
    any other class or function named in the file is refused, so a crafted file cannot run code."""

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a CIFAR-10 batch never holds")
        return super().find_class(module, name)


def _cifar_batch(path: str) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """(x (N, 32, 32, 3) uint8, y (N, 1) uint8) of one CIFAR-10 python batch."""
    try:
        with open(path, "rb") as f:
            batch = _CifarUnpickler(f, encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001 - a damaged pickle can fail in any unpickling step
        raise ValueError(f"{path} is not a CIFAR-10 python batch: {type(exc).__name__}: {exc}") from exc
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(f"{path} is not a CIFAR-10 python batch: expected a dict with b'data' and b'labels'")
    data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"])
    if data.dtype.kind not in "ui" or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(
            f"{path}: b'data' must be integer rows of 3072 pixels (N, 3072), got {data.dtype} {data.shape}"
        )
    if data.size and (data.min() < 0 or data.max() > 255):
        raise ValueError(f"{path}: b'data' holds values outside [0, 255]")
    if labels.dtype.kind not in "ui" or labels.shape != (len(data),):
        raise ValueError(
            f"{path}: b'labels' must be {len(data)} integer labels (one per image), got {labels.dtype} {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{path}: b'labels' holds values outside CIFAR-10's classes 0..9")
    x = data.astype(np.uint8, copy=False).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x), labels.astype(np.uint8).reshape(-1, 1)


def load_cifar10(directory: PathLike) -> Splits:
    """The CIFAR-10 python batches (cifar-10-batches-py: data_batch_1..5, test_batch) ->
    ((x_train (50000, 32, 32, 3) uint8, y_train (50000, 1)), (x_test, y_test)), as
    keras.datasets.cifar10. The batches are Python pickles, read with an unpickler that builds
    only arrays, lists, bytes and numbers."""
    directory = _exists(directory, "the cifar-10-batches-py folder")

    def read(name: str) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
        return _cifar_batch(_exists(os.path.join(directory, name), f"CIFAR-10 batch {name}"))

    train = [read(f"data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = read("test_batch")
    return (np.concatenate([t[0] for t in train]), np.concatenate([t[1] for t in train])), (x_test, y_test)


def list_image_folder(directory: PathLike) -> tuple[list[str], NDArray[np.int64], list[str]]:
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


def load_images(paths: Sequence[PathLike], target_size: tuple[int, int], color_mode: str = "rgb") -> NDArray[np.uint8]:
    """Decode and resize (bilinear) image files -> uint8 (N, H, W, 3 | 1 | 4)."""
    try:
        from PIL import Image  # noqa: PLC0415 - optional dependency
    except ImportError as exc:
        raise ImportError("reading image files needs Pillow: pip install 'fastconv[images]'") from exc
    if not isinstance(color_mode, str) or color_mode not in COLOR_MODES:
        raise ValueError(f"color_mode must be one of {sorted(COLOR_MODES)}, got {color_mode!r}")
    mode, channels = COLOR_MODES[color_mode]
    h, w = target_size
    out = np.empty((len(paths), h, w, channels), np.uint8)
    for i, path in enumerate(paths):
        with Image.open(path) as img:
            img = img.convert(mode)
            if img.size != (w, h):
                img = img.resize((w, h), Image.BILINEAR)  # type: ignore[attr-defined]  # set at run time
            out[i] = np.asarray(img, np.uint8).reshape(h, w, channels)
    return out


def load_image_folder(
    directory: PathLike, target_size: tuple[int, int] = (256, 256), color_mode: str = "rgb"
) -> tuple[NDArray[np.uint8], NDArray[np.int64], list[str]]:
    """Every image of a class-per-folder tree, resized -> (x uint8 (N, H, W, C), y, class_names)."""
    paths, labels, class_names = list_image_folder(directory)
    return load_images(paths, target_size, color_mode), labels, class_names


def load_digits(
    test_fraction: float = 0.2, seed: int = 0
) -> tuple[tuple[NDArray[Any], NDArray[Any]], tuple[NDArray[Any], NDArray[Any]]]:
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
        test[idx[: int(round(len(idx) * test_fraction))]] = True
    return (x[~test], y[~test]), (x[test], y[test])
