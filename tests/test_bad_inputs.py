"""Inputs a hostile or careless user can pass: each must work or raise a clear exception (the
crash cases run in a subprocess, so a regression fails the test instead of killing pytest)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import fastconv as fc
from fastconv.compat import cs231n


def _misaligned(shape, dtype, offset=1):
    """An array of `shape` at `offset` bytes into a uint8 buffer: not element-aligned."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape))
    buf = np.zeros(n * dtype.itemsize + offset + 64, np.uint8)
    a = buf[offset : offset + n * dtype.itemsize].view(dtype).reshape(shape)
    assert not a.flags.aligned
    return a


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_into_a_misaligned_out_of_streaming_size(dtype):
    """>= 16 MiB outputs use streaming stores, which need aligned addresses (was a segfault)."""
    code = f"""
import numpy as np, fastconv as fc, sys
sys.path.insert(0, {repr(str(__import__("pathlib").Path(__file__).parent))})
from test_bad_inputs import _misaligned
n = (17 << 20) // np.dtype(np.{np.dtype(dtype).name}).itemsize
x = _misaligned((n,), np.{np.dtype(dtype).name})
x[:] = np.linspace(-1, 1, n)
want = np.maximum(x, 0)
assert fc.relu(x, out=x) is x
assert np.array_equal(x, want)
y = _misaligned((n,), np.{np.dtype(dtype).name}, offset=3)
fc.relu(want - 0.5, out=y)
assert np.array_equal(y, np.maximum(want - 0.5, 0))
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-2000:]


def test_misaligned_inputs_are_copied_for_every_kernel():
    rng = np.random.default_rng(0)
    x = _misaligned((2, 3, 9, 9), np.float32)
    x[...] = rng.standard_normal(x.shape)
    w = _misaligned((4, 3, 3, 3), np.float32, offset=2)
    w[...] = rng.standard_normal(w.shape)
    want = fc.conv2d(np.ascontiguousarray(x), np.ascontiguousarray(w), padding=1)
    assert np.array_equal(fc.conv2d(x, w, padding=1), want)
    assert np.array_equal(fc.max_pool2d(x)[0], fc.max_pool2d(np.ascontiguousarray(x))[0])


def test_relu_out_partially_overlapping_x_matches_numpy():
    base = np.linspace(-1, 1, 4000).astype(np.float32)
    x, out = base[:3000], base[1000:4000]
    want = np.maximum(x.copy(), 0)
    fc.relu(x, out=out)
    assert np.array_equal(out, want)


def test_relu_of_a_0d_array_is_0d():
    y = fc.relu(np.array(-2.5, np.float32))
    assert y.shape == () and y == 0
    assert fc.relu(np.array(3.0)).shape == ()


def test_relu_read_only_out_is_named():
    x = np.ones(4, np.float32)
    out = np.empty(4, np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        fc.relu(x, out=out)


def test_complex_inputs_raise_everywhere():
    x = (np.ones((2, 8, 8, 3)) * 1j).astype(np.complex64)
    with pytest.raises(TypeError, match="complex64"):
        fc.layers.Conv2D(4, 3).forward(x)
    w, b = np.ones((4, 3, 3, 3)), np.zeros(4)
    with pytest.raises(TypeError, match="complex"):
        cs231n.conv_forward_fast(x.transpose(0, 3, 1, 2), w, b, {"stride": 1, "pad": 1})
    with pytest.raises(TypeError):
        fc.conv2d(x, np.ones((3, 3, 3, 4), np.complex64), layout="NHWC")


@pytest.mark.parametrize(
    "call",
    [
        lambda gy, x, w: fc.conv2d_backward(gy, x, w, bias=np.ones(4)),
        lambda gy, x, w: fc.conv2d_backward_weight(gy, x, w.shape, bias="yes"),
    ],
)
def test_bias_flag_must_be_a_bool(call):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((1, 3, 6, 6)).astype(np.float32), rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    gy = np.ones((1, 4, 4, 4), np.float32)
    with pytest.raises(TypeError, match="bias must be True or False"):
        call(gy, x, w)
    with pytest.raises(TypeError, match="bias must be True or False"):
        fc.linear_backward_weight(np.ones((2, 3), np.float32), np.ones((2, 5), np.float32), bias=[1])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 2**60, -1])
def test_output_cache_limit_rejects_absurd_values(bad):
    before = fc.output_cache_info()["limit_mib"]
    with pytest.raises(ValueError, match=r"megabytes must be a number in \[0, "):
        fc.set_output_cache_limit(bad)
    assert fc.output_cache_info()["limit_mib"] == before


def test_layer_input_shape_with_an_empty_dimension():
    with pytest.raises(ValueError, match="empty or negative dimension"):
        fc.layers.Conv2D(4, 3, input_shape=(8, 8, 0))


def test_flatten_backward_before_forward():
    with pytest.raises(RuntimeError, match="backward called before forward"):
        fc.layers.Flatten().backward(np.ones((2, 3), np.float32))


def test_load_weights_changes_nothing_when_an_entry_is_unusable(tmp_path):
    """An entry of the right shape but an unusable dtype (strings) must not leave the model
    half-loaded: every entry is converted before any parameter is written."""
    model = fc.Sequential([fc.layers.Dense(3, input_shape=(4,), seed=0), fc.layers.Dense(2, seed=1)])
    model.build()
    before = {r.name: r.value.copy() for r in model.parameters()}
    path = tmp_path / "w.npz"
    model.save_weights(path)
    with np.load(path) as data:
        entries = {k: data[k] for k in data.files}
    first, last = sorted(entries)[0], sorted(entries)[-1]
    entries[first] = entries[first] + 1.0
    entries[last] = np.full(entries[last].shape, "x")
    np.savez(path, **entries)
    with pytest.raises(ValueError, match="cannot be used"):
        model.load_weights(path)
    for r in model.parameters():
        assert np.array_equal(r.value, before[r.name])


@pytest.mark.parametrize(
    "env, warned, check",
    [
        ({"FASTCONV_ISA": "AVX2"}, False, "fc.cpu_isa() in ('avx2', 'scalar')"),
        ({"FASTCONV_ISA": "bogus"}, True, "True"),
        ({"FASTCONV_WINOGRAD": "off"}, False, "fc.get_winograd() is False"),
        ({"FASTCONV_WINOGRAD": "OFF"}, False, "fc.get_winograd() is False"),
        ({"FASTCONV_WINOGRAD": "maybe"}, True, "fc.get_winograd() is True"),
        ({"FASTCONV_OUTPUT_CACHE_MB": "-1"}, True, "fc.output_cache_info()['limit_mib'] == 1024"),
        ({"FASTCONV_OUTPUT_CACHE_MB": "64"}, False, "fc.output_cache_info()['limit_mib'] == 64"),
        ({"FASTCONV_SPIN_US": "fast"}, True, "fc.get_worker_spin_us() == 100"),
        ({"FASTCONV_SPIN_US": "0"}, False, "fc.get_worker_spin_us() == 0"),
        ({"FASTCONV_PARK_BLAS": "no"}, False, "fc.get_blas_parking() is False"),
    ],
)
def test_environment_variables_accept_obvious_spellings_and_warn_once_on_others(env, warned, check):
    import os

    code = (
        "import warnings; warnings.simplefilter('always')\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    import fastconv as fc\n"
        "print(sum('is ignored' in str(x.message) for x in w))\n"
        f"assert {check}, 'setting not applied'\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FASTCONV_")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={**clean, **env})
    assert r.returncode == 0, r.stderr[-2000:]
    assert int(r.stdout.split()[-1]) == (1 if warned else 0), r.stdout


@pytest.mark.parametrize(
    "kw", [dict(stride=50000), dict(stride=2**40), dict(stride=2**63), dict(stride=(1, 2**40), padding=1)]
)
def test_huge_strides_on_valid_input_work(kw):
    """An output axis of one position ignores its stride: the result is stride 1's first row or
    column (was an abort from std::bad_alloc inside a parallel region, or a MemoryError)."""
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 3, 8, 8)).astype(np.float32), rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    unit = dict(kw, stride=1)
    y, y1 = fc.conv2d(x, w, **kw), fc.conv2d(x, w, **unit)
    P, Q = y.shape[2:]
    assert np.array_equal(y, y1[:, :, :P, :Q])
    gy = rng.standard_normal(y.shape).astype(np.float32)
    gy1 = np.zeros_like(y1)
    gy1[:, :, :P, :Q] = gy
    for got, want in zip(fc.conv2d_backward(gy, x, w, **kw), fc.conv2d_backward(gy1, x, w, **unit)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    p, _ = fc.max_pool2d(x, 2, stride=kw["stride"])
    assert np.array_equal(p, fc.max_pool2d(x, 2, stride=1)[0][:, :, : p.shape[2], : p.shape[3]])


def test_dilation_of_a_one_tap_kernel_is_ignored():
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((1, 3, 5, 5)).astype(np.float32), rng.standard_normal((4, 3, 1, 1)).astype(np.float32)
    assert np.array_equal(fc.conv2d(x, w, dilation=2**31), fc.conv2d(x, w))


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(padding=2**62), "padding too large"),
        (dict(padding=(2**40, 1)), "padding too large"),
        (dict(padding=2**62, dilation=2**62), "padding too large|output size"),
    ],
)
def test_absurd_padding_is_a_clear_error(kw, match):
    x, w = np.ones((1, 3, 8, 8), np.float32), np.ones((4, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match=match):
        fc.conv2d(x, w, **kw)


def test_misaligned_linear_operands_are_copied():
    rng = np.random.default_rng(4)
    x = _misaligned((5, 40), np.float32)
    x[...] = rng.standard_normal(x.shape)
    w = _misaligned((40, 7), np.float32, offset=2).T  # a misaligned transposed view
    w[...] = rng.standard_normal(w.shape)
    want = fc.linear(np.ascontiguousarray(x), np.ascontiguousarray(w))
    assert np.array_equal(fc.linear(x, w), want)


def test_load_weights_names_a_file_that_is_not_an_npz_archive(tmp_path):
    model = fc.Sequential([fc.layers.Dense(3, input_shape=(4,), seed=0)])
    np.save(tmp_path / "w.npy", np.ones(3))
    with pytest.raises(ValueError, match=r"single float64 array of shape \(3,\) \(.npy\)"):
        model.load_weights(tmp_path / "w.npy")
    (tmp_path / "w.txt").write_text("not weights")
    with pytest.raises(ValueError, match="not an .npz weight archive"):
        model.load_weights(tmp_path / "w.txt")


def test_cs231n_names_the_missing_or_wrong_argument():
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    conv_param = {"stride": 1, "pad": 1}
    with pytest.raises(TypeError, match="b must be an array, got None"):
        cs231n.conv_forward_fast(x, w, None, conv_param)
    with pytest.raises(TypeError, match="cache must be the cache returned by conv_forward_fast"):
        cs231n.conv_backward_fast(np.ones((2, 4, 6, 6)), None)
    with pytest.raises(TypeError, match="cache must be the cache returned by max_pool_forward_fast"):
        cs231n.max_pool_backward_fast(np.ones((2, 4, 3, 3)), (x,))
    with pytest.raises(TypeError, match="x must be real-valued"):
        cs231n.relu_forward(["a", "b"])


def test_cs231n_relu_takes_a_list_like_the_course_code():
    out, cache = cs231n.relu_forward([1.5, -2.0, 0.0])
    assert out.dtype == np.float64 and np.array_equal(out, [1.5, 0.0, 0.0])
    assert np.array_equal(cs231n.relu_backward([1.0, 1.0, 1.0], cache), [1.0, 0.0, 0.0])


@pytest.mark.parametrize(
    "params, match",
    [
        ((2**40, 2**40, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, False), "input size overflows"),
        ((1, 2**31, 1, 1, 2**31, 2**2, 1, 1, 1, 1, 1, 0, 0, 1, 1, False), "weight size overflows"),
        ((1, 1, 1, 1, 1, 3, 1, 2**61, 1, 8, 1, 0, 0, 1, 1, False), "row extent exceeds"),
        ((1, 1, 1, 1, 1, 1, 3, 1, 1, 1, 1, 0, 2**62, 1, 2**62, False), "column extent exceeds"),
        # a stride whose padded input wraps to 2**62 rows (its buffer size product wrapped to 0: a segfault)
        ((1, 1, 1, 1, 1, 1, 1, 4, 4, 1537228672809129301, 1, 0, 0, 1, 1, False), "row extent exceeds"),
        ((1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2**63 - 1, 0, 1, 1, False), "row extent exceeds"),
        ((2**30, 2**12, 1, 1, 1, 1, 1, 2**15, 2**15, 1, 1, 0, 0, 1, 1, False), "multiply-add count"),
    ],
)
def test_the_cpp_side_rejects_parameters_whose_sizes_overflow(params, match):
    """Python validates first; the bound parameter structs check every size product again on
    their own (a struct that would overflow is never built, so no kernel sees it)."""
    conv_fields = (
        "N",
        "C",
        "H",
        "W",
        "K",
        "R",
        "S",
        "P",
        "Q",
        "stride_h",
        "stride_w",
        "pad_top",
        "pad_left",
        "dil_h",
        "dil_w",
        "nhwc",
    )
    with pytest.raises(ValueError, match=match):
        fc._cpu.Conv2dParams(**dict(zip(conv_fields, params)))
    pool_fields = ("N", "C", "H", "W", "R", "S", "P", "Q", "stride_h", "stride_w", "pad_top", "pad_left", "nhwc")
    pool = (2**40, 2**40, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, False)
    with pytest.raises(ValueError, match="input size overflows"):
        fc._cpu.Pool2dParams(**dict(zip(pool_fields, pool)))
    with pytest.raises(TypeError):
        fc._cpu.conv2d_forward(tuple(params), *[np.ones(1, np.float32)] * 2, None, np.ones(1, np.float32))


def test_the_cpp_side_rejects_unknown_epilogues_and_bad_slopes():
    """The bound Conv2dParams and gemm check the activation name and leaky_relu's slope themselves."""
    shape = dict(
        N=1,
        C=1,
        H=3,
        W=3,
        K=1,
        R=1,
        S=1,
        P=3,
        Q=3,
        stride_h=1,
        stride_w=1,
        pad_top=0,
        pad_left=0,
        dil_h=1,
        dil_w=1,
        nhwc=False,
    )
    with pytest.raises(ValueError, match="activation must be"):
        fc._cpu.Conv2dParams(**shape, activation="softmax")
    for alpha in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="alpha"):
            fc._cpu.Conv2dParams(**shape, activation="leaky_relu", alpha=alpha)
    a = np.ones((2, 3), np.float32)
    c = np.empty((2, 3), np.float32)
    with pytest.raises(ValueError, match="activation must be"):
        fc._cpu.gemm(a, False, np.ones((3, 3), np.float32), False, 2, 3, 3, None, "elu", 0.0, c)
    with pytest.raises(ValueError, match="alpha"):
        fc._cpu.gemm(a, False, np.ones((3, 3), np.float32), False, 2, 3, 3, None, "leaky_relu", -1.0, c)


# ----------------------------------------------------------------------------- second campaign
# (557 hostile cases, 0 crashes; these were its silent acceptances and unclear messages)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda x, w: fc.conv2d(None, w), "x"),
        (lambda x, w: fc.conv2d(x, None), "weight"),
        (lambda x, w: fc.conv2d_backward(x, None, w), "x"),
        (lambda x, w: fc.conv2d_backward_data(None, w, x.shape), "grad_y"),
        (lambda x, w: fc.max_pool2d(None), "x"),
        (lambda x, w: fc.max_pool2d_backward(x, None, x.shape, 2), "indices"),
        (lambda x, w: fc.relu(None), "x"),
        (lambda x, w: fc.relu_backward(x, None), "y"),
        (lambda x, w: fc.linear(x[0, 0], None), "weight"),
        (lambda x, w: fc.linear_backward_data(None, x[0, 0]), "grad_y"),
    ],
)
def test_none_for_a_required_array_is_named(call, name):
    x, w = np.ones((1, 2, 4, 4), np.float32), np.ones((3, 2, 3, 3), np.float32)
    with pytest.raises(TypeError, match=f"^{name} must be a NumPy or CuPy array, got None"):
        call(x, w)


@pytest.mark.parametrize("bad", ["no", None, 2])
def test_blas_parking_takes_only_a_bool(bad):
    with pytest.raises(ValueError, match="enabled must be a bool"):
        fc.set_blas_parking(bad)


def test_damaged_and_complex_weight_files_are_named(tmp_path):
    model = fc.Sequential([fc.layers.Dense(2, input_shape=(3,), seed=0)])
    good = tmp_path / "good.npz"
    model.save_weights(good)
    before = model.get_weights()
    with np.load(good) as f:
        np.savez(tmp_path / "complex.npz", **{k: f[k].astype(np.complex64) + 5j for k in f.files})
    with pytest.raises(ValueError, match="complex64 entry cannot be used"):
        model.load_weights(tmp_path / "complex.npz")
    raw = good.read_bytes()
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "cut.npz").write_bytes(raw[:200])
    middle = bytearray(raw)
    middle[len(raw) // 3] ^= 0xFF
    (tmp_path / "flipped.npz").write_bytes(bytes(middle))
    np.savez(tmp_path / "objects.npz", **{"dense/kernel": np.array([{}, 1], dtype=object)})
    for name in ("empty", "cut", "flipped", "objects"):
        with pytest.raises(ValueError, match=f"{name}.npz"):
            model.load_weights(tmp_path / f"{name}.npz")
    for bad in (None, 123):
        with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
            model.load_weights(bad)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_layers_check_backward_order_shapes_and_flags():
    g = np.ones((2, 3), np.float32)
    for layer in (fc.layers.Dropout(0.5), fc.layers.Softmax()):
        with pytest.raises(RuntimeError, match="backward called before forward"):
            layer.backward(g)
    x = np.ones((2, 4, 4, 3), np.float32)
    for layer in (fc.layers.Flatten(), fc.layers.Dropout(0.5, seed=0), fc.layers.Softmax()):
        layer.forward(x if not isinstance(layer, fc.layers.Softmax) else g)
        with pytest.raises(ValueError, match="grad_y must have the output's shape"):
            layer.backward(np.ones((2, 5), np.float32))
    model = fc.Sequential([fc.layers.Conv2D(4, 3), fc.layers.Flatten(), fc.layers.Dense(2)])
    with pytest.raises(RuntimeError, match="backward called before forward"):
        model.backward(np.ones((2, 2), np.float32))
    with pytest.raises(TypeError, match="trainable must be True or False"):
        fc.layers.Dense(2).trainable = "no"
    with pytest.raises(ValueError, match="Dropout rate must be a number"):
        fc.layers.Dropout("half")
    with pytest.raises(ValueError, match="at least one row"):
        fc.layers.SoftmaxCrossEntropy().forward(np.zeros((0, 3), np.float32), np.zeros(0, np.int64))


def test_predict_and_optimizers_name_bad_arguments():
    model = fc.Sequential([fc.layers.Dense(2, input_shape=(3,), seed=0)])
    x = np.ones((4, 3), np.float32)
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="batch_size must be a positive int"):
            model.predict(x, batch_size=bad)
    with pytest.raises(ValueError, match="at least one sample"):
        model.predict(np.ones((0, 3), np.float32))
    assert np.array_equal(model.predict(x.tolist()), model.predict(x))
    with pytest.raises(ValueError, match=r"learning_rate \(lr\) must be a finite number"):
        fc.Adam(lr="0.1")
    with pytest.raises(TypeError, match="params must be a model, a layer or model.parameters"):
        fc.Adam(lr=0.1).step([np.ones(3)])
    with pytest.raises(TypeError, match="params must be a model"):
        fc.SGD(lr=0.1).step(None)


def test_cs231n_cache_of_the_wrong_items_and_huge_outputs_are_named():
    with pytest.raises(TypeError, match="cache must be the cache returned by conv_forward_fast"):
        cs231n.conv_backward_fast(np.ones((1, 1, 2, 2)), (1, 2, 3, 4))
    with pytest.raises(MemoryError, match=r"cannot allocate the float32 output of shape \(1, 1, 1073741832"):
        fc.conv2d(np.ones((1, 1, 8, 8), np.float32), np.ones((1, 1, 1, 1), np.float32), padding=2**29)
