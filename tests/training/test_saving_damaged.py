"""fastconv.load_model on damaged files: every damaged description, entry, header, byte flip and
truncation gives the saved model or a ValueError naming the damaged part (the round trips:
test_saving.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from npz_files import rewrite_npz

import fastconv as fc
from fastconv import layers as L
from fastconv import losses


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((48, 7, 7, 2)).astype(np.float32), rng.integers(0, 3, 48)


def _compiled_file(tmp_path):
    x, y = _data()
    model = fc.Sequential(
        [
            L.Conv2D(3, 3, input_shape=(7, 7, 2), seed=1),
            L.BatchNormalization(),
            L.Flatten(),
            L.Dense(4, seed=2, kernel_regularizer=fc.regularizers.l2(1e-3)),
            L.Dense(3, seed=3),
        ]
    )
    model.compile(
        optimizer=fc.Adam(learning_rate=fc.optim.StepDecay(0.01, 2)),
        loss=losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, seed=0)
    path = tmp_path / "m.npz"
    model.save(path)
    return model, path


def _set(*keys, value):
    def change(d):
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value

    return change


def _delete(*keys):
    def change(d):
        for k in keys[:-1]:
            d = d[k]
        del d[keys[-1]]

    return change


# (change to the description, what the error must say): each crashed with AttributeError,
# KeyError, TypeError, IndexError or MemoryError, or imported an arbitrary module attribute.
_DAMAGED_DESCRIPTIONS = [
    (_set("format", value=3), r"\['format'\] must be str"),
    (_set("layers", value={"a": 1}), r"\['layers'\] must be list"),
    (_set("layers", value=[]), r"'layers' is empty"),
    (_set("layers", 0, value=7), r"layers\[0\] must be a JSON object, got int"),
    (_delete("layers", 1, "class"), r"layers\[1\] has no 'class' entry"),
    (_set("layers", 1, "class", value="os.system"), r"layers\[1\] names an unknown layer class 'os.system'"),
    (_set("layers", 1, "class", value="Layer"), r"unknown layer class 'Layer'.*BatchNormalization, Conv2D"),
    (_set("layers", 1, "class", value="__class__"), r"unknown layer class '__class__'"),
    (_set("layers", 0, "config", value=[1, 2]), r"layers\[0\]\['config'\] must be dict, got list"),
    (_set("layers", 0, "config", "bogus", value=1), r"layers\[0\] \(Conv2D\) cannot rebuild a Conv2D: .*bogus"),
    (_set("layers", 0, "config", "filters", value="3"), r"layers\[0\] \(Conv2D\) cannot rebuild a Conv2D"),
    (_set("layers", 0, "config", "padding", value=[["a"]]), r"layers\[0\] \(Conv2D 'conv2d'\) .*padding"),
    (_set("layers", 0, "config", "activation", value="os.system"), r"layers\[0\] \(Conv2D\) cannot rebuild"),
    (_set("layers", 0, "config", "dtype", value="object"), r"layers\[0\] \(Conv2D\) cannot rebuild"),
    (_set("layers", 0, "config", "trainable", value="yes"), r"layers\[0\] \(Conv2D\) cannot rebuild"),
    (_set("layers", 0, "config", "name", value=[1]), r"layers\[0\]\['config'\]\['name'\] must be str"),
    (_set("layers", 1, "config", "name", value="conv2d"), r"'layers' cannot form a model: two layers"),
    (_set("layers", 3, "config", "kernel_regularizer", value={"l2": "x"}), r"layers\[3\] \(Dense\) cannot"),
    (_set("layers", 3, "config", "kernel_regularizer", value="eval"), r"layers\[3\] \(Dense\) cannot"),
    (_set("layers", 3, "config", "units", value=10**12), r"'dense'.*'kernel'.*shape \(75, 4\).*\(75, 1000000000000\)"),
    (_set("layers", 0, "config", "filters", value=2**40), r"'conv2d'.*'kernel'.*\(3, 3, 2, 1099511627776\)"),
    (_set("layers", 0, "config", "kernel_size", value=[10**6, 10**6]), r"layers\[0\].*does not fit its input"),
    (_set("input_shape", value=[10**9, 10**9, 2]), r"'dense'.*'kernel'.*file holds shape \(75, 4\)"),
    (_set("input_shape", value=[7, 7, 10**12]), r"'conv2d'.*'kernel'.*\(3, 3, 1000000000000, 3\)"),
    (_set("input_shape", value=[7, 7]), r"layers\[0\] \(Conv2D 'conv2d'\) does not fit its input shape"),
    (_set("input_shape", value=[7, 0, 2]), r"'input_shape' must be a list of positive ints"),
    (_set("input_shape", value=[7, True, 2]), r"'input_shape' must be a list of positive ints"),
    (_set("input_shape", value="77"), r"\['input_shape'\] must be list"),
    (_set("input_grad", value="no"), r"\['input_grad'\] must be bool"),
    (_set("name", value=None), r"\['name'\] must be str"),
    (_set("compile", value=[]), r"\['compile'\] must be dict"),
    (_set("compile", "loss", "class", value="os.system"), r"names an unknown loss .*compile=False.* 'os.system'"),
    (_set("compile", "loss", "class", value="Loss"), r"names an unknown loss .* 'Loss'"),
    (_set("compile", "loss", "from_logits", value="no"), r"\['from_logits'\] must be bool"),
    (_delete("compile", "loss"), r"compile has no 'loss' entry"),
    (_set("compile", "metrics", value="accuracy"), r"\['metrics'\] must be list"),
    (_set("compile", "metrics", value=["accuracy", "os.system"]), r"names \['os.system'\]"),
    (_set("compile", "metrics", value=[["accuracy"]]), r"compile\['metrics'\] names \[\['accuracy'\]\]"),
    (_set("compile", "optimizer", "class", value="Optimizer"), r"unknown optimizer 'Optimizer'"),
    (_set("compile", "optimizer", "class", value="get"), r"unknown optimizer 'get'.*Adam, AdamW, RMSprop, SGD"),
    (_delete("compile", "optimizer", "config", "learning_rate"), r"\['config'\] has no 'learning_rate'"),
    (_set("compile", "optimizer", "config", "learning_rate", value="0.1"), r"\['learning_rate'\] must be int or"),
    (_set("compile", "optimizer", "config", "learning_rate", "schedule", value="eval"), r"unknown schedule 'eval'"),
    (
        _set("compile", "optimizer", "config", "learning_rate", "config", "bogus", value=1),
        r"\['learning_rate'\] cannot rebuild a StepDecay",
    ),
    (
        _set("compile", "optimizer", "config", "learning_rate", "config", value=None),
        r"\['learning_rate'\]\['config'\] must be dict",
    ),
    (_set("compile", "optimizer", "config", "beta_1", value=2.0), r"compile\['optimizer'\] cannot rebuild an? Adam"),
    (_set("compile", "optimizer", "config", "momentum", value=0.5), r"cannot rebuild an? Adam: .*momentum"),
    (_set("compile", "optimizer", "iterations", value=-1), r"\['iterations'\] must be >= 0"),
    (_set("compile", "optimizer", "iterations", value=1.5), r"\['iterations'\] must be int"),
    (_set("compile", "optimizer", "iterations", value=True), r"\['iterations'\] must be int"),
    (
        _set("compile", "optimizer", value={"class": "SGD", "config": {"learning_rate": 0.1}, "iterations": 3}),
        r"'__optimizer__/.*#0' does not fit a SGD with the saved arguments",
    ),
    (
        _set("compile", "optimizer", value={"class": "RMSprop", "config": {"learning_rate": 0.1}, "iterations": 3}),
        r"'__optimizer__/.*#0' does not fit a RMSprop with the saved arguments",
    ),
    (_delete("compile"), r"'compile' is missing, but the file holds optimizer state"),
]


@pytest.mark.parametrize("change, message", _DAMAGED_DESCRIPTIONS)
def test_each_damaged_description_is_a_value_error_naming_the_part(tmp_path, change, message):
    _, path = _compiled_file(tmp_path)

    def damage(entries):
        desc = json.loads(str(entries["__fastconv_model__"]))
        change(desc)
        entries["__fastconv_model__"] = np.array(json.dumps(desc))

    rewrite_npz(path, damage)
    with pytest.raises(ValueError, match=message) as info:
        fc.load_model(path)
    assert str(info.value).startswith(str(path))


def _replace_entry(key, value):
    return lambda e: e.__setitem__(key, value)


_DAMAGED_ENTRIES = [
    (_replace_entry("__fastconv_model__", np.arange(3)), r"'__fastconv_model__' must be JSON text, got a int64"),
    (_replace_entry("__fastconv_model__", np.array("[" * 100_000)), r"'__fastconv_model__' is not JSON"),
    (_replace_entry("__fastconv_model__", np.array("[1, 2]")), r"the description must be a JSON object"),
    (
        _replace_entry("__optimizer__/dense/kernel#0", np.zeros((4, 75), np.float32)),
        r"optimizer state of 'dense/kernel' is a float32 array of shape \(4, 75\), the parameter .*\(75, 4\)",
    ),
    (
        _replace_entry("__optimizer__/dense/kernel#0", np.array(["a"] * 4)),
        r"optimizer state of 'dense/kernel' is a <U1",
    ),
    (
        _replace_entry("__optimizer__/nothing/kernel#0", np.zeros(3)),
        r"'__optimizer__/nothing/kernel#0' names no parameter",
    ),
    (
        _replace_entry("__optimizer__/dense/kernel@v", np.zeros((75, 4))),
        r"'__optimizer__/dense/kernel@v' does not fit an? Adam",
    ),
    (
        _replace_entry("__optimizer__/dense/kernel#2", np.zeros((75, 4))),
        r"state of 'dense/kernel' holds \['0', '1', '2'\]",
    ),
    (lambda e: e.pop("__optimizer__/dense/kernel#1"), r"state of 'dense/kernel' holds \['0'\].*keeps \['0', '1'\]"),
    (_replace_entry("dense/kernel", np.zeros((75, 4), np.complex64)), r"'dense' parameter 'kernel'.*complex64"),
    (lambda e: e.pop("conv2d/bias"), r"'conv2d' parameter 'bias': the file holds no 'conv2d/bias' entry"),
]


@pytest.mark.parametrize("change, message", _DAMAGED_ENTRIES)
def test_each_damaged_entry_is_a_value_error_naming_it(tmp_path, change, message):
    _, path = _compiled_file(tmp_path)
    rewrite_npz(path, change)
    with pytest.raises(ValueError, match=message):
        fc.load_model(path)


def test_huge_sizes_in_a_description_are_refused_before_allocating(tmp_path):

    _, path = _compiled_file(tmp_path)

    def damage(entries):
        desc = json.loads(str(entries["__fastconv_model__"]))
        desc["layers"][3]["config"]["units"] = 10**9  # a 300 GB float32 kernel
        entries["__fastconv_model__"] = np.array(json.dumps(desc))

    rewrite_npz(path, damage)
    # A 4 GiB address-space limit makes an attempt to allocate the kernel fail at once. Under
    # AddressSanitizer (the CI sanitizer job preloads it) the limit would starve its shadow memory;
    # there the sanitizer's allocator_may_return_null makes such an attempt a MemoryError instead.
    limit = (
        ""
        if "libasan" in os.environ.get("LD_PRELOAD", "")
        else "resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))\n"
    )
    code = (
        "import resource, sys, fastconv as fc\n"
        + limit
        + "try:\n    fc.load_model(sys.argv[1])\nexcept ValueError as exc:\n    print('ValueError', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("ValueError") and "(75, 1000000000)" in out.stdout, out


def test_damaged_npy_headers_are_value_errors_naming_the_entry(tmp_path):
    import io
    import zipfile

    _, path = _compiled_file(tmp_path)
    with zipfile.ZipFile(path) as z:
        entries = {i.filename: z.read(i) for i in z.infolist()}
    data = np.zeros((75, 4), np.float32).tobytes()
    cases = [
        ({"descr": "<f4", "shape": (75_000_000_000_000, 4)}, r"needs 1200000000000000 bytes, the entry holds 1200"),
        ({"descr": "|O", "shape": (75, 4)}, r"dtype object cannot be read without pickle"),
        ({"descr": "<f5", "shape": (75, 4)}, r"not a valid dtype descriptor"),
    ]
    for header, message in cases:
        npy = io.BytesIO()
        np.lib.format.write_array_header_1_0(npy, {**header, "fortran_order": False})
        with zipfile.ZipFile(path, "w") as z:
            for name, content in entries.items():
                z.writestr(name, npy.getvalue() + data if name == "dense/kernel.npy" else content)
        with pytest.raises(ValueError, match=r"m.npz: the entry 'dense/kernel' is damaged \(.*" + message):
            fc.load_model(path)


def test_byte_flips_and_truncations_give_the_saved_model_or_a_value_error(tmp_path):
    model, path = _compiled_file(tmp_path)
    data = path.read_bytes()
    x, _ = _data(2)
    want = model.predict(x)
    rng = np.random.default_rng(26)
    flips = [(int(i), int(b)) for i, b in zip(rng.integers(0, len(data), 1000), rng.integers(1, 256, 1000))]
    # every byte of the archive's directory at the end too
    flips += [(i, 0xFF) for i in range(len(data) - 400, len(data))]
    damaged = path.with_name("d.npz")
    outcomes = {"same": 0, "ValueError": 0}
    for i, bits in flips:
        b = bytearray(data)
        b[i] ^= bits
        damaged.write_bytes(b)
        try:
            loaded = fc.load_model(damaged)
        except ValueError:
            outcomes["ValueError"] += 1
            continue
        assert np.array_equal(loaded.predict(x), want), (i, bits)
        assert loaded.optimizer.iterations == model.optimizer.iterations
        outcomes["same"] += 1
    for n in range(0, len(data), 97):
        damaged.write_bytes(data[:n])
        with pytest.raises(ValueError):
            fc.load_model(damaged)
    assert outcomes["ValueError"] > 700 and outcomes["same"] > 10
