"""The SIMD conv2d kernels (csrc/cpu/conv2d/*.inl via conv2d/*_avx512.cpp / *_avx2.cpp) against
the portable kernels (the `scalar` path) and the float64 reference.

Every case runs forward (bias + optional fused ReLU), backward-data and backward-weight (+ bias
gradient) in both layouts and both dtypes on every SIMD path this CPU has, forced through
fastconv.set_cpu_isa. The case list is an edge-case grid around the register tiles
(AVX-512: 14 pixels x 32 fp32 / 16 fp64 channels; AVX2: 6 pixels x 16 / 8), not a cartesian
product: channel counts 1, 15, 16, 17, 33, 64, 65; output widths tile-1, tile, tile+1; stride
1/2/3; padding 0/1/2 and asymmetric; 1x1, 3x3, 5x5, even kernels; dilation; batch 1/2/3.

- exact: values in -2..2 make every partial sum exact in float32, so any blocking order must
  give bit-identical results to the reference and to the scalar kernels;
- random: standard-normal data within the float tolerance of tests/helpers.py;
- outputs are poisoned with NaN before each kernel (FASTCONV_POISON), so an unwritten element
  fails; the bias gradient and weight gradient must not depend on the thread count.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from helpers import RTOL, assert_close

import fastconv as fc
from fastconv import reference as ref

SIMD_ISAS = [i for i in fc.available_cpu_isas() if i != "scalar"]

# (N, C, H, W, K, R, S, stride, padding, dilation, relu)
CASES = [
    (1, 3, 9, 16, 64, 3, 3, 1, 1, 1, True),  # first layer: C=3, Q=16
    (3, 1, 7, 14, 1, 3, 3, 1, 1, 1, False),  # C=K=1, Q=14 (one AVX-512 tile)
    (1, 15, 6, 13, 17, 3, 3, 1, 1, 1, True),  # Q=13, K=17 (one lane past a vector)
    (1, 16, 5, 15, 16, 3, 3, 1, 1, 1, False),  # Q=15
    (1, 17, 5, 29, 33, 3, 3, 2, 1, 1, True),  # stride 2, Q=15, K=33
    (3, 33, 4, 7, 15, 1, 1, 1, 0, 1, False),  # 1x1, Q=7 (AVX2 tile+1), in-place NHWC
    (1, 64, 4, 6, 64, 1, 1, 1, 0, 1, True),  # 1x1, Q=6 (AVX2 tile)
    (1, 5, 11, 17, 7, 5, 5, 1, 2, 1, False),  # 5x5 pad 2
    (1, 16, 10, 30, 16, 5, 5, 2, 2, 1, True),  # 5x5 stride 2
    (2, 7, 9, 12, 9, 3, 3, 1, ((0, 2), (1, 0)), (2, 1), True),  # asymmetric padding, dilation
    (1, 4, 12, 28, 5, 3, 3, 1, 0, (1, 2), False),  # dilation_w 2 (unfused weight-grad rows)
    (2, 8, 6, 50, 9, 3, 3, 2, 1, 1, False),  # C=8 (pixel-vector grad_x tiles), stride 2
    (1, 6, 8, 8, 6, 3, 3, 2, 0, 1, False),  # stride 2, no padding
    (1, 8, 6, 9, 8, 2, 2, (1, 2), 1, 1, True),  # even kernel, unequal strides
    (2, 33, 5, 5, 65, 3, 3, 1, 1, 1, False),  # K=65: a 1-lane last tile
    (1, 2, 3, 40, 3, 1, 3, 1, (0, 1), 1, True),  # wide row: 3 AVX-512 tiles
    (1, 9, 7, 7, 31, 3, 3, 3, 2, 1, False),  # stride 3
    (1, 15, 6, 5, 16, 3, 3, 1, 2, 1, True),  # padding 2 on a 3x3
    (1, 3, 4, 4, 4, 3, 3, 1, 3, 1, False),  # padding wider than the kernel
    (1, 64, 3, 14, 32, 3, 3, 1, 1, 1, False),  # C=64
    (1, 1900, 3, 4, 20, 3, 3, 1, 1, 1, True),  # several L2 reduction blocks (partial sums)
]
IDS = [
    f"N{c[0]}C{c[1]}H{c[2]}W{c[3]}K{c[4]}R{c[5]}S{c[6]}st{c[7]}p{c[8]}d{c[9]}{'relu' if c[10] else ''}".replace(" ", "")
    for c in CASES
]


pytestmark = pytest.mark.usefixtures("poison")


def make_data(case, layout, dtype, exact, seed):
    N, C, H, W, K, R, S, stride, padding, dilation, relu = case
    rng = np.random.default_rng(seed)
    draw = (
        (lambda shape: rng.integers(-2, 3, size=shape).astype(dtype))
        if exact
        else (lambda shape: rng.standard_normal(shape).astype(dtype))
    )
    x, w, b = draw((N, C, H, W)), draw((K, C, R, S)), draw((K,))
    kw = dict(stride=stride, padding=padding, dilation=dilation, layout=layout)
    if layout == "NHWC":
        x, w = np.ascontiguousarray(x.transpose(0, 2, 3, 1)), np.ascontiguousarray(w.transpose(2, 3, 1, 0))
    y_shape = ref.conv2d(x, w, **kw).shape
    gy = draw(y_shape)
    return x, w, b, gy, kw, relu


def run_fastconv(x, w, b, gy, kw, relu):
    y = fc.conv2d(x, w, b, activation="relu" if relu else None, **kw)
    gx = fc.conv2d_backward_data(gy, w, x.shape, **kw)
    gw, gb = fc.conv2d_backward_weight(gy, x, w.shape, **kw)
    return {"y": y, "grad_x": gx, "grad_weight": gw, "grad_bias": gb}


def run_reference(x, w, b, gy, kw, relu):
    y = ref.conv2d(x, w, b, activation="relu" if relu else None, **kw)
    gx = ref.conv2d_backward_data(gy, w, x.shape, **kw)
    gw, gb = ref.conv2d_backward_weight(gy, x, w.shape, **kw)
    return {"y": y, "grad_x": gx, "grad_weight": gw, "grad_bias": gb}


@pytest.mark.skipif(not SIMD_ISAS, reason="this CPU has no AVX2/AVX-512 path")
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_exact_small_integers(case, restore_cpu_state):
    """Bit-identical to the reference and to the portable kernels, every ISA, layout, dtype."""
    for layout in ("NCHW", "NHWC"):
        for dtype in (np.float32, np.float64):
            data = make_data(case, layout, dtype, exact=True, seed=1)
            want = run_reference(*data)
            fc.set_cpu_isa("scalar")
            portable = run_fastconv(*data)
            for isa in SIMD_ISAS:
                assert fc.set_cpu_isa(isa) == isa
                got = run_fastconv(*data)
                for name, g in got.items():
                    label = f"{isa} {layout} {np.dtype(dtype).name} {name}"
                    assert_close(g, want[name], dtype=dtype, name=label, exact=True)
                    assert np.array_equal(g, portable[name]), f"{label}: differs from the scalar kernel"


@pytest.mark.skipif(not SIMD_ISAS, reason="this CPU has no AVX2/AVX-512 path")
@pytest.mark.parametrize("case", CASES[::2], ids=IDS[::2])
def test_random_normal(case, restore_cpu_state):
    """Random data within tolerance of the float64 reference."""
    for layout in ("NCHW", "NHWC"):
        for dtype in (np.float32, np.float64):
            data = make_data(case, layout, dtype, exact=False, seed=2)
            want = run_reference(*data)
            for isa in SIMD_ISAS:
                fc.set_cpu_isa(isa)
                got = run_fastconv(*data)
                for name, g in got.items():
                    assert_close(g, want[name], dtype=dtype, name=f"{isa} {layout} {name}", rtol=RTOL[np.dtype(dtype)])


@pytest.mark.skipif(not SIMD_ISAS, reason="this CPU has no AVX2/AVX-512 path")
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_weight_gradient_is_deterministic_across_threads(layout, restore_cpu_state):
    """Fixed partitioning and summation order: 1 and 2 threads give the same bits."""
    case = (3, 24, 20, 21, 40, 3, 3, 1, 1, 1, False)
    x, w, b, gy, kw, _ = make_data(case, layout, np.float32, exact=False, seed=3)
    for isa in SIMD_ISAS:
        fc.set_cpu_isa(isa)
        results = []
        for threads in (1, 2, 3):
            fc.set_num_threads(threads)
            results.append(fc.conv2d_backward_weight(gy, x, w.shape, **kw))
        for gw, gb in results[1:]:
            assert np.array_equal(gw, results[0][0]), f"{isa}: grad_weight depends on the thread count"
            assert np.array_equal(gb, results[0][1]), f"{isa}: grad_bias depends on the thread count"


@pytest.mark.skipif(not SIMD_ISAS, reason="this CPU has no AVX2/AVX-512 path")
def test_vgg_like_layer_float32(restore_cpu_state):
    """A VGG-shaped layer (many channel blocks, several k-blocks) against the reference."""
    case = (1, 128, 10, 28, 96, 3, 3, 1, 1, 1, True)
    for layout in ("NCHW", "NHWC"):
        data = make_data(case, layout, np.float32, exact=False, seed=4)
        want = run_reference(*data)
        for isa in SIMD_ISAS:
            fc.set_cpu_isa(isa)
            got = run_fastconv(*data)
            for name, g in got.items():
                assert_close(g, want[name], dtype=np.float32, name=f"{isa} {layout} {name}")


@pytest.mark.skipif(not SIMD_ISAS, reason="this CPU has no AVX2/AVX-512 path")
def test_nan_propagates_through_fused_relu(restore_cpu_state):
    """ReLU keeps NaN like the reference (max(0, NaN) must not turn into 0)."""
    x = np.ones((1, 2, 5, 5), np.float32)
    x[0, 1, 2, 2] = np.nan
    w = np.ones((3, 2, 3, 3), np.float32)
    for isa in SIMD_ISAS:
        fc.set_cpu_isa(isa)
        y = fc.conv2d(x, w, padding=1, activation="relu")
        want = ref.conv2d(x, w, padding=1, activation="relu")
        assert np.array_equal(np.isnan(y), np.isnan(want)), isa


@pytest.mark.parametrize("isa", SIMD_ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_nhwc_output_written_with_streaming_stores(isa, dtype, monkeypatch):
    """NHWC outputs of 16 MiB or more (C = 3: the direct kernel) take the non-temporal store
    path of the register tile; with K = 144 the last AVX-512 float32 tile is one vector wide
    and keeps plain stores. Both against the float64 reference, outputs poisoned first."""
    old = fc.cpu_isa()
    fc.set_cpu_isa(isa)
    try:
        rng = np.random.default_rng(21)
        for K in (128, 144):
            x = rng.standard_normal((2, 3, 130, 128)).astype(dtype)
            w = rng.standard_normal((K, 3, 3, 3)).astype(dtype)
            b = rng.standard_normal(K).astype(dtype)
            y = fc.conv2d(
                np.ascontiguousarray(x.transpose(0, 2, 3, 1)),
                np.ascontiguousarray(w.transpose(2, 3, 1, 0)),
                b,
                padding=1,
                layout="NHWC",
                activation="relu",
            )
            assert y.nbytes >= 16 << 20
            want = ref.conv2d(
                x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), padding=1, activation="relu"
            ).transpose(0, 2, 3, 1)
            assert_close(y, want, dtype=np.dtype(dtype))
    finally:
        fc.set_cpu_isa(old)


# (pass, x shape (N, C, H, W), K, kwargs, algorithm on a SIMD path): the dispatch asks its rules
# in order (csrc/cpu/conv2d/algorithm.h): Winograd -> stride phase -> few channels -> direct.
DISPATCH = [
    ("fwd", (1, 64, 28, 28), 64, dict(padding=1), "winograd_f4x4_3x3"),
    ("fwd", (1, 64, 28, 28), 64, dict(padding=1, stride=2), "direct"),
    ("bwd_data", (1, 64, 28, 28), 64, dict(padding=1), "winograd_f4x4_3x3"),
    ("bwd_data", (1, 64, 28, 28), 64, dict(padding=1, stride=2), "stride_phase"),
    ("bwd_data", (1, 3, 28, 28), 64, dict(padding=1, stride=2), "stride_phase"),
    ("bwd_data", (1, 3, 28, 28), 64, dict(padding=1), "small_channels"),
    ("bwd_data", (1, 16, 12, 12), 16, dict(padding=1), "direct"),
    ("bwd_weight", (1, 64, 28, 28), 64, dict(padding=1), "winograd_f4x4_3x3"),
    ("bwd_weight", (1, 16, 12, 12), 16, dict(padding=1), "direct"),
]


def _run_pass(pass_, x_shape, k, kw):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal((k, x_shape[1], 3, 3)).astype(np.float32)
    y_shape = fc.conv2d(x, w, **kw).shape
    gy = rng.standard_normal(y_shape).astype(np.float32)
    if pass_ == "fwd":
        return fc.conv2d(x, w, **kw)
    if pass_ == "bwd_data":
        return fc.conv2d_backward_data(gy, w, x_shape, **kw)
    return fc.conv2d_backward_weight(gy, x, w.shape, **kw)


@pytest.mark.parametrize("isa", SIMD_ISAS)
@pytest.mark.parametrize("case", DISPATCH, ids=[f"{c[0]}-{c[4]}-C{c[1][1]}" for c in DISPATCH])
def test_dispatch_records_the_algorithm_it_ran(case, isa, restore_cpu_state):
    pass_, x_shape, k, kw, want = case
    fc.set_cpu_isa(isa)
    fc.set_winograd(True)
    _run_pass(pass_, x_shape, k, kw)
    assert fc._cpu.last_conv2d_algorithm(pass_) == want
    if want == "winograd_f4x4_3x3":  # switched off, the next rule answers
        fc.set_winograd(False)
        _run_pass(pass_, x_shape, k, kw)
        assert fc._cpu.last_conv2d_algorithm(pass_) == "direct"


def test_the_portable_path_records_the_reference_and_bad_pass_names_raise(restore_cpu_state):
    fc.set_cpu_isa("scalar")
    for pass_ in ("fwd", "bwd_data", "bwd_weight"):
        _run_pass(pass_, (1, 3, 6, 6), 4, dict(padding=1))
        assert fc._cpu.last_conv2d_algorithm(pass_) == "reference"
    with pytest.raises(ValueError, match="pass: expected 'fwd', 'bwd_data' or 'bwd_weight'"):
        fc._cpu.last_conv2d_algorithm("forward")


def test_verbose_output_names_the_algorithm():
    import subprocess
    import sys

    code = (
        "import numpy as np, fastconv as fc;"
        "fc.conv2d_backward_data(np.ones((1, 4, 5, 5), np.float32), np.ones((4, 3, 3, 3), np.float32),"
        " (1, 3, 10, 10), stride=2, padding=1)"
    )
    env = {**os.environ, "FASTCONV_VERBOSE": "1"}
    err = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stderr
    want = "stride_phase" if SIMD_ISAS else "reference"
    assert any(
        line.startswith("fastconv: conv2d_bwd_data f32 NCHW") and line.endswith(f"algorithm={want}")
        for line in err.splitlines()
    ), err
