"""The Winograd F(4x4,3x3) forward and backward-data paths (csrc/cpu/conv2d/winograd.inl, AVX-512
and AVX2) in float32 and float64 against the float64 reference, the on/off switch, and the shapes it
must leave to the direct kernel (backward-weight: test_winograd_bwd_weight.py; the error bounds:
winograd_helpers.py).

Both drivers are covered: channels-outer (tiles <= K rounded up to 16) and tiles-outer.
The size rule (winograd_eligible, csrc/cpu/conv2d/algorithm.cpp) sends only large layers to
Winograd; the small shapes here run it through the private forcing switch, and every test checks
which algorithm ran through fastconv._cpu.last_conv2d_algorithm("fwd") (or "bwd_data",
"bwd_weight").
"""

from __future__ import annotations

import os
import zlib

import numpy as np
import pytest
from winograd_helpers import (
    FROB_TOL,
    SIMD_ISAS,
    WINO,
    winograd_forced,
)
from winograd_helpers import (
    backward_weight_nchw as _bwd_weight,
)
from winograd_helpers import (
    check_winograd as _check,
)

import fastconv as fc
from fastconv import reference as ref

pytestmark = pytest.mark.skipif(not SIMD_ISAS, reason="the Winograd path needs AVX2 or AVX-512")
FROB_TOL_F64 = 1e-13  # measured <= 1e-14 on these shapes

# (N, C, H, W, K, padding, layout, relu, bias)
CASES = [
    (1, 17, 9, 11, 33, 1, "NCHW", False, True),  # odd H/W, C/K not multiples of 16
    (1, 70, 9, 11, 100, 1, "NHWC", True, True),  # channels-outer: 2 c-chunks, 2 k-groups
    (1, 17, 9, 11, 33, 1, "NHWC", True, True),
    (3, 33, 10, 7, 17, 0, "NHWC", False, True),  # batch 3, no padding: P=8, Q=5 (ragged)
    (3, 33, 10, 7, 17, 0, "NCHW", True, False),
    (1, 64, 13, 13, 64, 2, "NHWC", True, True),  # padding 2: P=Q=15
    (1, 64, 13, 13, 64, 2, "NCHW", False, True),
    (2, 20, 8, 9, 40, ((0, 2), (1, 0)), "NHWC", False, True),  # asymmetric padding
    (2, 20, 8, 9, 40, ((2, 1), (0, 2)), "NCHW", True, True),
    (1, 3, 6, 6, 5, 1, "NCHW", False, False),  # tiny: one tile row, K < 16
    (1, 48, 30, 31, 70, 1, "NHWC", True, True),  # 64 tiles <= 80: channels-outer, K tail
    (3, 16, 17, 15, 16, (1, 0), "NCHW", False, True),  # tile blocks spanning images
    (1, 8, 5, 40, 96, 3, "NHWC", False, True),  # padding wider than the kernel
    # tiles > K: the tiles-outer driver (blocks of 112 tiles, weights transformed up front)
    (3, 20, 40, 39, 40, 1, "NHWC", True, True),  # 3*10*10 = 300 tiles
    (1, 17, 70, 65, 33, (0, 1), "NCHW", False, True),  # 17*16 = 272 tiles, ragged right edge
]
IDS = [
    f"N{c[0]}C{c[1]}H{c[2]}W{c[3]}K{c[4]}p{c[5]}{c[6]}{'relu' if c[7] else ''}{'b' if c[8] else ''}".replace(" ", "")
    for c in CASES
]


@pytest.fixture(autouse=True, params=SIMD_ISAS)
def simd_isa_forced_winograd(request, poison):
    """Each SIMD ISA, Winograd on and forced for every eligible shape, NaN-poisoned outputs."""
    with winograd_forced(request.param):
        yield


def _data(N, C, H, W, K, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((K, C, 3, 3)).astype(np.float32)
    b = rng.standard_normal(K).astype(np.float32)
    return x, w, b


def _to_layout(x, w, layout):
    if layout == "NCHW":
        return x, w
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)), np.ascontiguousarray(w.transpose(2, 3, 1, 0))


def _conv(x, w, b, layout, **kw):
    xl, wl = _to_layout(x, w, layout)
    y = fc.conv2d(xl, wl, b, layout=layout, **kw)
    return y if layout == "NCHW" else y.transpose(0, 3, 1, 2)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_winograd_against_reference(case):
    N, C, H, W, K, pad, layout, relu, with_bias = case
    x, w, b = _data(N, C, H, W, K)
    b = b if with_bias else None
    act = "relu" if relu else None
    y = _conv(x, w, b, layout, padding=pad, activation=act)
    assert fc._cpu.last_conv2d_algorithm("fwd") == WINO
    y_ref = ref.conv2d(
        x.astype(np.float64),
        w.astype(np.float64),
        None if b is None else b.astype(np.float64),
        padding=pad,
        activation=act,
    )
    _check(y, y_ref)


def test_winograd_vgg_like_layer():
    """A VGG16-shaped layer (C = K = 64, 'same' padding) under the default size rule (not
    forced) takes Winograd and stays within the bound."""
    fc._cpu._set_winograd_forced(False)
    x, w, b = _data(1, 64, 56, 56, 64, seed=1)
    for layout in ("NCHW", "NHWC"):
        y = _conv(x, w, b, layout, padding="same")
        assert fc._cpu.last_conv2d_algorithm("fwd") == WINO, layout
        _check(y, ref.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), padding=1))


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_switch_off_is_the_direct_kernel(layout):
    """Off -> the direct kernel, bit for bit (compared with the direct kernel on a shape that
    Winograd never takes: the same data, split so the direct kernel runs either way)."""
    x, w, b = _data(2, 31, 11, 13, 40, seed=2)
    fc.set_winograd(False)
    assert fc.get_winograd() is False
    y_off = _conv(x, w, b, layout, padding=1, activation="relu")
    assert fc._cpu.last_conv2d_algorithm("fwd") == "direct"
    fc.set_winograd(True)
    y_on = _conv(x, w, b, layout, padding=1, activation="relu")
    assert fc._cpu.last_conv2d_algorithm("fwd") == WINO
    assert not np.array_equal(y_on, y_off), "Winograd rounds differently; equal means it did not run"
    # Switch on, but the size rule excludes C = 31 when not forced: the direct kernel again.
    fc._cpu._set_winograd_forced(False)
    y_direct = _conv(x, w, b, layout, padding=1, activation="relu")  # C=31: below the rule
    assert fc._cpu.last_conv2d_algorithm("fwd") == "direct"
    assert np.array_equal(y_off, y_direct)


def test_set_winograd_validates():
    with pytest.raises(ValueError):
        fc.set_winograd(1)
    fc.set_winograd(False)
    assert fc.get_winograd() is False
    fc.set_winograd(True)
    assert fc.get_winograd() is True


@pytest.mark.parametrize(
    "kw",
    [dict(stride=2, padding=1), dict(dilation=2, padding=2), dict(padding=2, ksize=5), dict(stride=(1, 2), padding=1)],
    ids=["stride2", "dilation2", "5x5", "stride1x2"],
)
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_ineligible_shapes_take_the_direct_kernel(kw, layout):
    kw = dict(kw)
    ksize = kw.pop("ksize", 3)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 64, 12, 13)).astype(np.float32)
    w = rng.standard_normal((64, 64, ksize, ksize)).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    y = _conv(x, w, b, layout, **kw)
    assert fc._cpu.last_conv2d_algorithm("fwd") == "direct"
    fc.set_winograd(False)
    y_off = _conv(x, w, b, layout, **kw)
    assert np.array_equal(y, y_off)
    y_ref = ref.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), **kw)
    assert np.linalg.norm(y - y_ref) / np.linalg.norm(y_ref) <= 1e-6


def test_float64_takes_winograd_within_float64_rounding():
    """float64 runs the same transforms in double: error ~1e-15, far below what a gradient
    check in float64 can see; switched off, the direct kernel."""
    x, w, b = (a.astype(np.float64) for a in _data(1, 64, 12, 12, 64, seed=4))
    y64 = fc.conv2d(x, w, b, padding=1)
    assert fc._cpu.last_conv2d_algorithm("fwd") == WINO
    y_ref = ref.conv2d(x, w, b, padding=1)
    assert np.linalg.norm(y64 - y_ref) / np.linalg.norm(y_ref) <= FROB_TOL_F64
    fc.set_winograd(False)
    y_direct = fc.conv2d(x, w, b, padding=1)
    assert fc._cpu.last_conv2d_algorithm("fwd") == "direct"
    assert np.abs(y_direct - y_ref).max() <= 1e-12 * np.abs(y_ref).max()


def test_scalar_isa_never_takes_winograd():
    x, w, b = _data(1, 64, 12, 12, 64, seed=4)
    fc.set_cpu_isa("scalar")
    y_on = fc.conv2d(x, w, b, padding=1)
    fc.set_winograd(False)
    y_off = fc.conv2d(x, w, b, padding=1)
    assert np.array_equal(y_on, y_off)  # the portable table has no Winograd entry


def test_threads_do_not_change_the_result():
    """Work items own whole output tiles and channel blocks: same result for 1 and 2 threads."""
    x, w, b = _data(1, 40, 33, 29, 72, seed=5)
    n = fc.get_num_threads()
    try:
        fc.set_num_threads(1)
        y1 = _conv(x, w, b, "NHWC", padding=1)
        fc.set_num_threads(2)
        y2 = _conv(x, w, b, "NHWC", padding=1)
    finally:
        fc.set_num_threads(n)
    assert np.array_equal(y1, y2)


def test_environment_switch_is_read_at_import():
    import subprocess
    import sys

    code = "import fastconv as fc; print(fc.get_winograd(), fc._cpu._get_winograd_forced())"
    for value, want in (("0", "False False"), ("1", "True False"), ("force", "True True")):
        env = dict(os.environ, FASTCONV_WINOGRAD=value)
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout.strip()
        assert out == want, (value, out)


def test_verbose_names_the_winograd_kernel():
    import subprocess
    import sys

    code = (
        "import numpy as np, fastconv as fc; fc.set_cpu_isa('" + fc.cpu_isa() + "');"
        "x = np.random.default_rng(0).standard_normal((1, 64, 20, 20)).astype(np.float32);"
        "w = np.random.default_rng(1).standard_normal((64, 64, 3, 3)).astype(np.float32);"
        "fc.conv2d(x, w, padding=1); fc.set_winograd(False); fc.conv2d(x, w, padding=1)"
    )
    env = dict(os.environ, FASTCONV_VERBOSE="1")
    err = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stderr
    kernels = [line for line in err.splitlines() if "kernel" in line]
    assert len(kernels) == 2, err
    assert "winograd F(4x4,3x3)" in kernels[0] and "winograd" not in kernels[1], err


# ---------------------------------------------------------------------------- backward-data
# grad_x of a 3x3 stride-1 layer is the forward convolution of grad_y with the flipped,
# transposed filter and padding 2 - pad; the same Winograd kernel runs it, reading the weights
# in place through strides (conv2d/winograd.inl: backward_data_weights).

# (N, C, H, W, K, padding): C is grad_x's channel count (the Winograd output), K grad_y's.
BWD_CASES = [
    (1, 17, 9, 11, 33, 1),  # C, K not multiples of 16, odd H, W
    (2, 20, 8, 9, 40, ((0, 2), (1, 0))),  # asymmetric padding -> equivalent padding (2,0),(1,2)
    (3, 33, 10, 7, 17, 0),  # no padding: grad_y 8x5 padded by 2
    (1, 70, 30, 31, 100, 2),  # padding 2: equivalent padding 0
    (1, 100, 9, 11, 70, 1),  # channels-outer driver (few tiles), C tail
    (3, 20, 40, 39, 40, 1),  # tiles-outer driver
]
BWD_IDS = [f"N{c[0]}C{c[1]}H{c[2]}W{c[3]}K{c[4]}p{c[5]}".replace(" ", "") for c in BWD_CASES]


def _bwd_data(gy, w, x_shape, layout, **kw):
    """grad_x through fastconv in `layout`, returned as NCHW (inputs given as NCHW)."""
    if layout == "NCHW":
        return fc.conv2d_backward_data(gy, w, x_shape, layout=layout, **kw)
    N, C, H, W = x_shape
    gx = fc.conv2d_backward_data(
        np.ascontiguousarray(gy.transpose(0, 2, 3, 1)),
        np.ascontiguousarray(w.transpose(2, 3, 1, 0)),
        (N, H, W, C),
        layout=layout,
        **kw,
    )
    return gx.transpose(0, 3, 1, 2)


def _bwd_data_case(N, C, H, W, K, pad, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((K, C, 3, 3)).astype(np.float32)
    P, Q = ref.conv2d(np.zeros((1, C, H, W)), np.zeros((K, C, 3, 3)), padding=pad).shape[2:]
    gy = rng.standard_normal((N, K, P, Q)).astype(np.float32)
    return gy, w


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("case", BWD_CASES, ids=BWD_IDS)
def test_winograd_backward_data_against_reference(case, layout):
    N, C, H, W, K, pad = case
    gy, w = _bwd_data_case(N, C, H, W, K, pad)
    gx = _bwd_data(gy, w, (N, C, H, W), layout, padding=pad)
    assert fc._cpu.last_conv2d_algorithm("bwd_data") == WINO
    _check(gx, ref.conv2d_backward_data(gy.astype(np.float64), w.astype(np.float64), (N, C, H, W), padding=pad))


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_winograd_backward_data_vgg_like_layer(layout):
    """Under the default size rule a VGG16-shaped layer takes Winograd for grad_x too."""
    fc._cpu._set_winograd_forced(False)
    gy, w = _bwd_data_case(1, 64, 28, 28, 128, 1, seed=6)
    gx = _bwd_data(gy, w, (1, 64, 28, 28), layout, padding="same")
    assert fc._cpu.last_conv2d_algorithm("bwd_data") == WINO
    _check(gx, ref.conv2d_backward_data(gy.astype(np.float64), w.astype(np.float64), (1, 64, 28, 28), padding=1))
    fc.set_winograd(False)
    gx_direct = _bwd_data(gy, w, (1, 64, 28, 28), layout, padding="same")
    assert fc._cpu.last_conv2d_algorithm("bwd_data") == "direct"
    assert not np.array_equal(gx, gx_direct), "Winograd rounds differently; equal means it did not run"


@pytest.mark.parametrize(
    "kw",
    [dict(stride=2, padding=1), dict(dilation=2, padding=2), dict(padding=3), dict(padding=2, ksize=5)],
    ids=["stride2", "dilation2", "pad3", "5x5"],
)
def test_winograd_backward_data_ineligible_shapes(kw):
    """Stride, dilation, a padding wider than 2 (a negative equivalent padding) and other filter
    sizes keep the direct (stride: the stride-phase) kernel, even when forced."""
    kw = dict(kw)
    ksize = kw.pop("ksize", 3)
    rng = np.random.default_rng(7)
    x_shape = (1, 64, 12, 13)
    w = rng.standard_normal((64, 64, ksize, ksize)).astype(np.float32)
    y_shape = ref.conv2d(np.zeros(x_shape), w.astype(np.float64), **kw).shape
    gy = rng.standard_normal(y_shape).astype(np.float32)
    gx = fc.conv2d_backward_data(gy, w, x_shape, **kw)
    assert fc._cpu.last_conv2d_algorithm("bwd_data") == ("stride_phase" if "stride" in kw else "direct")
    gx_ref = ref.conv2d_backward_data(gy.astype(np.float64), w.astype(np.float64), x_shape, **kw)
    assert np.linalg.norm(gx - gx_ref) / np.linalg.norm(gx_ref) <= 1e-6


def test_winograd_backward_data_threads_do_not_change_the_result():
    gy, w = _bwd_data_case(2, 48, 21, 19, 72, 1, seed=8)
    n = fc.get_num_threads()
    try:
        fc.set_num_threads(1)
        g1 = _bwd_data(gy, w, (2, 48, 21, 19), "NHWC", padding=1)
        fc.set_num_threads(2)
        g2 = _bwd_data(gy, w, (2, 48, 21, 19), "NHWC", padding=1)
    finally:
        fc.set_num_threads(n)
    assert np.array_equal(g1, g2)


# ----------------------------------------------------------------------------------- float64
# The same kernels compiled for double (VecF64): cs231n-style float64 users get the 4x smaller
# multiply count too. Bound: relative Frobenius error <= 1e-13 against the float64 reference.
F64_CASES = [
    (1, 17, 9, 11, 33, 1),
    (2, 20, 8, 9, 40, ((0, 2), (1, 0))),
    (3, 20, 40, 39, 40, 1),
    (1, 70, 30, 31, 100, 2),
]
F64_IDS = [f"N{c[0]}C{c[1]}H{c[2]}W{c[3]}K{c[4]}p{c[5]}".replace(" ", "") for c in F64_CASES]


def _check64(got, want):
    assert got.dtype == np.float64 and got.shape == want.shape
    assert np.isfinite(got).all()
    err = np.linalg.norm(got - want) / np.linalg.norm(want)
    assert err <= FROB_TOL_F64, f"relative Frobenius error {err:.3g}"


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("case", F64_CASES, ids=F64_IDS)
def test_winograd_float64_all_passes(case, layout):
    N, C, H, W, K, pad = case
    rng = np.random.default_rng(13)
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((K, C, 3, 3))
    b = rng.standard_normal(K)
    y = _conv(x, w, b, layout, padding=pad, activation="relu")
    assert fc._cpu.last_conv2d_algorithm("fwd") == WINO
    _check64(y, ref.conv2d(x, w, b, padding=pad, activation="relu"))
    gy = rng.standard_normal(y.shape)
    gx = _bwd_data(gy, w, x.shape, layout, padding=pad)
    assert fc._cpu.last_conv2d_algorithm("bwd_data") == WINO
    _check64(gx, ref.conv2d_backward_data(gy, w, x.shape, padding=pad))
    gw, gb = _bwd_weight(gy, x, w.shape, layout, padding=pad)
    assert fc._cpu.last_conv2d_algorithm("bwd_weight") == WINO
    gw_ref, gb_ref = ref.conv2d_backward_weight(gy, x, w.shape, padding=pad)
    _check64(gw, gw_ref)
    np.testing.assert_allclose(gb, gb_ref, rtol=1e-12, atol=1e-12 * np.abs(gb_ref).max())


def test_size_rule_wants_mostly_real_tile_outputs():
    """Not forced: MNIST's conv3 (64 -> 64, 5x5 -> 3x3, batch 64) takes Winograd for its 3x3
    output and weight gradient (9 of 16 tile outputs real), the direct kernel for its 5x5
    grad_x (25 of 64)."""
    fc._cpu._set_winograd_forced(False)
    rng = np.random.default_rng(14)
    x = rng.standard_normal((64, 64, 5, 5)).astype(np.float32)
    w = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
    fc.conv2d(x, w)
    assert fc._cpu.last_conv2d_algorithm("fwd") == WINO
    fc.conv2d_backward_weight(gy, x, w.shape)
    assert fc._cpu.last_conv2d_algorithm("bwd_weight") == WINO
    gx = fc.conv2d_backward_data(gy, w, x.shape)
    assert fc._cpu.last_conv2d_algorithm("bwd_data") == "direct"
    _check(gx, ref.conv2d_backward_data(gy.astype(np.float64), w.astype(np.float64), x.shape))


# Non-finite and huge operands: Winograd's transforms would spread one NaN or Inf over whole
# 4x4 tiles and overflow on values the direct sum handles, so such operands take the direct
# kernel, whose non-finite outputs are exactly the reference's. One exception (docs/api.md):
# backward-data multiplies a non-finite weight by the zero padding of grad_y (0 * Inf = NaN),
# so at the borders it can report NaN where the reference, which has no such products, does not.
def _special(dtype, kind):
    return {"nan": np.nan, "inf": -np.inf, "huge": np.finfo(dtype).max / 10}[kind]


def _same_non_finite(got, want, border_nan=False):
    if border_nan:  # a superset of the reference's; elsewhere the same values
        assert not np.any(np.isfinite(got) & ~np.isfinite(want))
        want = np.where(np.isfinite(got), want, got)
    assert np.array_equal(np.isnan(got), np.isnan(want)), (np.isnan(got).sum(), np.isnan(want).sum())
    assert np.array_equal(np.isposinf(got), np.isposinf(want))
    assert np.array_equal(np.isneginf(got), np.isneginf(want))
    finite = np.isfinite(want)
    np.testing.assert_allclose(
        got[finite], want[finite], rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(want[finite]).max(initial=0)))
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("kind", ["nan", "inf", "huge"])
@pytest.mark.parametrize("operand", ["x", "w", "gy"])
def test_non_finite_and_huge_operands_propagate_like_the_reference(operand, kind, layout, dtype):
    rng = np.random.default_rng(zlib.crc32(f"{operand}{kind}{layout}".encode()))
    N, C, K, H = 2, 20, 24, 10
    x = rng.standard_normal((N, C, H, H) if layout == "NCHW" else (N, H, H, C)).astype(dtype)
    w = (0.2 * rng.standard_normal((K, C, 3, 3) if layout == "NCHW" else (3, 3, C, K))).astype(dtype)
    kw = dict(padding=1, layout=layout)
    gy = rng.standard_normal(ref.conv2d(x, w, **kw).shape).astype(dtype)
    fc.conv2d(x, w, **kw)
    assert fc._cpu.last_conv2d_algorithm("fwd") == WINO  # the clean operands
    special = _special(dtype, kind)
    {"x": x, "w": w, "gy": gy}[operand].flat[137] = special
    if operand != "gy":
        _same_non_finite(fc.conv2d(x, w, **kw), ref.conv2d(x, w, **kw))
        assert fc._cpu.last_conv2d_algorithm("fwd") == "direct"
    if operand != "x":
        _same_non_finite(
            fc.conv2d_backward_data(gy, w, x.shape, **kw),
            ref.conv2d_backward_data(gy, w, x.shape, **kw),
            border_nan=operand == "w" and kind != "huge",
        )
        assert fc._cpu.last_conv2d_algorithm("bwd_data") == "direct"
    if operand != "w":
        _same_non_finite(
            fc.conv2d_backward_weight(gy, x, w.shape, bias=False, **kw)[0],
            ref.conv2d_backward_weight(gy, x, w.shape, bias=False, **kw)[0],
        )
        assert fc._cpu.last_conv2d_algorithm("bwd_weight") == "direct"


def test_large_finite_operands_within_the_bound_keep_winograd():
    """The bound is a margin, not a ban on large values: 1e15 * 1e15 in float32 is far below it."""
    rng = np.random.default_rng(8)
    x = (1e15 * rng.standard_normal((1, 16, 9, 9))).astype(np.float32)
    w = (1e15 * rng.standard_normal((16, 16, 3, 3))).astype(np.float32)
    y = fc.conv2d(x, w, padding=1)
    assert fc._cpu.last_conv2d_algorithm("fwd") == WINO
    want = ref.conv2d(x, w, padding=1)
    assert np.linalg.norm(y - want) / np.linalg.norm(want) <= FROB_TOL
