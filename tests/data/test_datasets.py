"""Loaders of data sets already on disk (written here in their original formats) and
ImageDataGenerator.flow_from_directory."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest

import fastconv as fc
from fastconv import data
from fastconv.data import datasets


def test_load_mnist_reads_the_keras_file(tmp_path):
    rng = np.random.default_rng(0)
    arrays = dict(
        x_train=rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        y_train=np.arange(5, dtype=np.uint8),
        x_test=rng.integers(0, 256, (2, 28, 28), dtype=np.uint8),
        y_test=np.arange(2, dtype=np.uint8),
    )
    np.savez(tmp_path / "mnist.npz", **arrays)
    (xtr, ytr), (xte, yte) = data.load_mnist(tmp_path / "mnist.npz")
    assert np.array_equal(xtr, arrays["x_train"]) and np.array_equal(yte, arrays["y_test"])
    np.savez(tmp_path / "other.npz", x=np.ones(3))
    with pytest.raises(ValueError, match="Keras mnist.npz layout"):
        data.load_mnist(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError, match="never downloads"):
        data.load_mnist(tmp_path / "missing.npz")


def _idx_bytes(a):
    header = bytes([0, 0, 0x08, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
    return header + a.astype(np.uint8).tobytes()


def test_load_fashion_mnist_reads_idx_files_plain_or_gzipped(tmp_path):
    rng = np.random.default_rng(1)
    parts = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (4, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, 4),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 3),
    }
    for i, (name, a) in enumerate(parts.items()):
        if i % 2:
            (tmp_path / name).write_bytes(_idx_bytes(a))
        else:
            with gzip.open(tmp_path / f"{name}.gz", "wb") as f:
                f.write(_idx_bytes(a))
    (xtr, ytr), (xte, yte) = data.load_fashion_mnist(tmp_path)
    assert xtr.shape == (4, 28, 28) and xtr.dtype == np.uint8
    assert np.array_equal(xtr, parts["train-images-idx3-ubyte"]) and np.array_equal(
        yte, parts["t10k-labels-idx1-ubyte"]
    )
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(parts["t10k-labels-idx1-ubyte"])[:-1])
    with pytest.raises(ValueError, match="the header says"):
        data.load_fashion_mnist(tmp_path)


def test_load_cifar10_reads_the_python_batches_channels_last(tmp_path):
    rng = np.random.default_rng(2)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batches[name] = (rng.integers(0, 256, (2, 3072), dtype=np.uint8), list(rng.integers(0, 10, 2)))
        with open(tmp_path / name, "wb") as f:
            pickle.dump({b"data": batches[name][0], b"labels": batches[name][1]}, f)
    (xtr, ytr), (xte, yte) = data.load_cifar10(tmp_path)
    assert xtr.shape == (10, 32, 32, 3) and ytr.shape == (10, 1) and xte.shape == (2, 32, 32, 3)
    first = batches["data_batch_1"][0][0]
    assert np.array_equal(xtr[0, :, :, 0].ravel(), first[:1024])  # red plane
    assert np.array_equal(xtr[0, :, :, 2].ravel(), first[2048:])  # blue plane
    assert list(yte[:, 0]) == batches["test_batch"][1]


@pytest.fixture
def image_tree(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(3)
    for cls, count in (("cats", 3), ("dogs", 2)):
        (tmp_path / cls).mkdir()
        for i in range(count):
            pixels = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "cats" / "notes.txt").write_text("not an image")
    return tmp_path


def test_load_image_folder_resizes_and_labels_alphabetically(image_tree):
    x, y, names = data.load_image_folder(image_tree, target_size=(12, 10))
    assert names == ["cats", "dogs"] and list(y) == [0, 0, 0, 1, 1]
    from PIL import Image

    assert np.array_equal(x[3], np.asarray(Image.open(image_tree / "dogs" / "0.png")))
    small, _, _ = data.load_image_folder(image_tree, target_size=(6, 5), color_mode="grayscale")
    assert small.shape == (5, 6, 5, 1)
    with pytest.raises(ValueError, match="color_mode"):
        data.load_image_folder(image_tree, color_mode="cmyk")
    with pytest.raises(ValueError, match="no class sub-folders"):
        data.load_image_folder(image_tree / "cats")


def test_flow_from_directory_batches_labels_and_trains(image_tree):
    gen = data.ImageDataGenerator(rescale=1 / 255, horizontal_flip=True, seed=0)
    flow = gen.flow_from_directory(image_tree, target_size=(8, 8), class_mode="binary", batch_size=2, seed=0)
    assert flow.class_indices == {"cats": 0, "dogs": 1} and flow.samples == 5 and len(flow) == 3
    seen = [(xb, yb) for xb, yb in flow]
    assert sum(len(yb) for _, yb in seen) == 5 and sorted(np.concatenate([yb for _, yb in seen])) == [0, 0, 0, 1, 1]
    assert all(xb.dtype == np.float32 and xb.shape[1:] == (8, 8, 3) and xb.max() <= 1.0 for xb, _ in seen)
    xb, yb = next(gen.flow_from_directory(image_tree, target_size=(8, 8), batch_size=5, shuffle=False))
    assert np.array_equal(yb, np.eye(2, dtype=np.float32)[[0, 0, 0, 1, 1]])
    model = fc.Sequential(
        [
            fc.layers.Conv2D(2, 3, activation="relu", input_shape=(8, 8, 3), seed=0),
            fc.layers.Flatten(),
            fc.layers.Dense(1, activation="sigmoid", seed=1),
        ]
    )
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(flow, epochs=2, verbose=0)
    assert len(history.history["accuracy"]) == 2
    with pytest.raises(ValueError, match="class_mode"):
        gen.flow_from_directory(image_tree, class_mode="multi")


def test_load_digits_is_a_stratified_split():
    pytest.importorskip("sklearn")
    (xtr, ytr), (xte, yte) = data.load_digits()
    assert xtr.shape[1:] == (8, 8, 1) and xtr.dtype == np.float32 and 0 <= xtr.min() and xtr.max() <= 1
    assert len(xtr) + len(xte) == 1797 and set(np.unique(yte)) == set(range(10))


def _idx_header(dims, type_code=0x08, magic=b"\0\0"):
    return magic + bytes([type_code, len(dims)]) + b"".join(int(d).to_bytes(4, "big") for d in dims)


_DAMAGED_IDX = [
    ("short", b"\0\0\x08", r"truncated IDX header \(3 bytes"),
    ("magic", _idx_header((2,), magic=b"\x01\x02") + b"ab", "bad magic number 0x01020801"),
    ("type", _idx_header((2,), type_code=0x0C) + b"ab", "IDX type code 0x0c, fastconv reads only 0x08"),
    (
        "dims",
        b"\0\0\x08\x03" + (5).to_bytes(4, "big"),
        "truncated IDX header: 3 dimensions need 16 bytes, the file holds 8",
    ),
    (
        "overflow",
        _idx_header((2**32 - 1,) * 3) + bytes(10),
        r"the header says \(4294967295, 4294967295, 4294967295\) \(79228162458924105385300197375 bytes of data\) but "
        "the file holds 10 bytes",
    ),
    ("int64wrap", _idx_header((2**32 - 1,) * 4) + bytes(1), rf"\({(2**32 - 1) ** 4} bytes of data\)"),
    ("larger", _idx_header((1000, 28, 28)) + bytes(100), r"\(784000 bytes of data\) but the file holds 100 bytes"),
    ("gzipped", gzip.compress(_idx_header((2,)) + b"ab"), "is gzip-compressed: name it gzipped.gz"),
    ("plain.gz", _idx_header((2,)) + b"ab", "plain.gz is not a valid gzip file"),
    ("cut.gz", gzip.compress(_idx_header((300,)) + bytes(300))[:-12], "cut.gz is a truncated gzip file"),
]


@pytest.mark.parametrize("name, content, match", _DAMAGED_IDX, ids=[case[0] for case in _DAMAGED_IDX])
def test_damaged_idx_files_are_named_with_what_is_wrong(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match) as info:
        datasets._idx(str(path))
    assert str(path) in str(info.value)


def test_fashion_mnist_names_the_damaged_file(tmp_path):
    labels = np.arange(3)
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
        (tmp_path / stem).write_bytes(_idx_bytes(labels))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(_idx_bytes(labels))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte\.gz is not a valid gzip file"):
        data.load_fashion_mnist(tmp_path)


def test_junk_mnist_files_are_named_with_what_is_wrong(tmp_path):
    arrays = dict(
        x_train=np.zeros((3, 4, 4), np.uint8),
        y_train=np.zeros(3, np.uint8),
        x_test=np.zeros((2, 4, 4), np.uint8),
        y_test=np.zeros(2, np.uint8),
    )
    np.savez(tmp_path / "good.npz", **arrays)
    whole = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "text.npz").write_bytes(b"not an archive")
    np.save(tmp_path / "one.npy", arrays["x_train"])
    np.savez(tmp_path / "short.npz", **{**arrays, "y_train": np.zeros(2, np.uint8)})
    np.savez(tmp_path / "objects.npz", **{**arrays, "x_test": np.array([None, 1], dtype=object)})
    for name, match in (
        ("cut.npz", "is not a readable mnist.npz"),
        ("text.npz", r"is not a readable mnist.npz: it starts with b'not ', not with an .npz"),
        ("one.npy", r"it starts with b'\\x93NUM'"),
        (
            "short.npz",
            r"x_train must be images \(N, H, W\) and y_train N labels, "
            r"got shapes \(3, 4, 4\) and \(2,\)",
        ),
        ("objects.npz", "is not a readable mnist.npz: Object arrays cannot be loaded"),
    ):
        with pytest.raises(ValueError, match=match) as info:
            data.load_mnist(tmp_path / name)
        assert str(tmp_path / name) in str(info.value)


class _RunsCode:
    def __reduce__(self):
        return (print, ("unpickling ran code",))


@pytest.mark.parametrize(
    "name, content, match",
    [
        (
            "code",
            {b"data": _RunsCode(), b"labels": []},
            r"not a CIFAR-10 python batch: UnpicklingError: it names builtins.print",
        ),
        ("list", [1, 2], r"expected a dict with b'data' and b'labels'"),
        (
            "pixels",
            {b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]},
            r"b'data' must be integer rows of 3072 pixels \(N, 3072\), got uint8 \(2, 10\)",
        ),
        ("range", {b"data": np.full((2, 3072), 300), b"labels": [0, 1]}, r"b'data' holds values outside \[0, 255\]"),
        (
            "count",
            {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]},
            r"b'labels' must be 2 integer labels \(one per image\), got int64 \(1,\)",
        ),
        ("class", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 42]}, "outside CIFAR-10's classes 0..9"),
    ],
)
def test_junk_cifar_batches_are_refused_without_running_code(tmp_path, capfd, name, content, match):
    for batch in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(tmp_path / batch, "wb") as f:
            pickle.dump({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0]}, f)
    with open(tmp_path / "data_batch_3", "wb") as f:
        pickle.dump(content, f)
    with pytest.raises(ValueError, match=match) as info:
        data.load_cifar10(tmp_path)
    assert str(tmp_path / "data_batch_3") in str(info.value)
    assert "unpickling ran code" not in capfd.readouterr().out


def test_truncated_and_garbage_cifar_batches_name_the_file(tmp_path):
    with open(tmp_path / "whole", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 2]}, f, protocol=2)
    whole = (tmp_path / "whole").read_bytes()
    (tmp_path / "cut").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "garbage").write_bytes(b"\x80\x04junk junk junk")
    for name in ("cut", "garbage"):
        with pytest.raises(ValueError, match=f"{tmp_path / name} is not a CIFAR-10 python batch"):
            datasets._cifar_batch(str(tmp_path / name))
    x, y = datasets._cifar_batch(str(tmp_path / "whole"))
    assert x.shape == (2, 32, 32, 3) and list(y[:, 0]) == [1, 2]


def test_flow_from_directory_checks_its_arguments_before_reading(image_tree):
    gen = data.ImageDataGenerator()
    with pytest.raises(ValueError, match="color_mode must be one of .*got 'cmyk'"):
        gen.flow_from_directory(image_tree, color_mode="cmyk")
    with pytest.raises(ValueError, match=r"target_size must be positive, got \(0, 5\)"):
        gen.flow_from_directory(image_tree, target_size=(0, 5))
    with pytest.raises(TypeError, match="target_size must be an int or a pair of ints"):
        gen.flow_from_directory(image_tree, target_size="8x8")
