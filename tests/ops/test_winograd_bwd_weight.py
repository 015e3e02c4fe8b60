"""The Winograd F(4x4,3x3) backward-weight path (csrc/cpu/conv2d/winograd_bwd_weight.inl, AVX-512
and AVX2) against the float64 reference, the shapes it must leave to the direct kernel, and
thread-count independence. Bounds and the forcing switch: winograd_helpers.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from winograd_helpers import (
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


@pytest.fixture(autouse=True, params=SIMD_ISAS)
def simd_isa_forced_winograd(request, poison):
    """Each SIMD ISA, Winograd on and forced for every eligible shape, NaN-poisoned outputs."""
    with winograd_forced(request.param):
        yield


# -------------------------------------------------------------------------- backward-weight
# grad_w = G^T [ sum over tiles of (A dY A^T) .* (B^T d B) ] G: 36 GEMMs over the tiles
# (csrc/cpu/conv2d/winograd_bwd_weight.inl). Cases cover channel blocks of 64 with tails,
# the tile splits of layers with few channel blocks, ragged tiles and every padding.

# (N, C, H, W, K, padding)
BWW_CASES = [
    (1, 17, 9, 11, 33, 1),  # one channel block, C and K tails
    (2, 20, 8, 9, 40, ((0, 2), (1, 0))),  # asymmetric padding
    (3, 33, 10, 7, 17, 0),  # no padding, ragged tiles (P=8, Q=5)
    (1, 70, 30, 31, 100, 2),  # 2 x 2 channel blocks with tails
    (1, 130, 12, 12, 70, 1),  # 3 input-channel blocks
    (4, 64, 35, 33, 64, 1),  # one block, 16 tile splits added in order
    (1, 8, 5, 40, 96, 3),  # padding wider than the kernel
]
BWW_IDS = [f"N{c[0]}C{c[1]}H{c[2]}W{c[3]}K{c[4]}p{c[5]}".replace(" ", "") for c in BWW_CASES]


def _bwd_weight_case(N, C, H, W, K, pad, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    P, Q = ref.conv2d(np.zeros((1, C, H, W)), np.zeros((K, C, 3, 3)), padding=pad).shape[2:]
    gy = rng.standard_normal((N, K, P, Q)).astype(np.float32)
    return gy, x


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("case", BWW_CASES, ids=BWW_IDS)
def test_winograd_backward_weight_against_reference(case, layout):
    N, C, H, W, K, pad = case
    gy, x = _bwd_weight_case(N, C, H, W, K, pad)
    gw, gb = _bwd_weight(gy, x, (K, C, 3, 3), layout, padding=pad)
    assert fc._cpu.last_conv2d_algorithm("bwd_weight") == WINO
    gw_ref, gb_ref = ref.conv2d_backward_weight(gy.astype(np.float64), x.astype(np.float64), (K, C, 3, 3), padding=pad)
    _check(gw, gw_ref)
    np.testing.assert_allclose(gb, gb_ref, rtol=1e-5, atol=1e-5 * np.abs(gb_ref).max())


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_winograd_backward_weight_vgg_like_layer(layout):
    """Under the default size rule a VGG16-shaped layer takes Winograd; switched off, the
    direct kernel (which rounds differently)."""
    fc._cpu._set_winograd_forced(False)
    gy, x = _bwd_weight_case(2, 64, 28, 28, 128, 1, seed=9)
    gw, gb = _bwd_weight(gy, x, (128, 64, 3, 3), layout, padding="same")
    assert fc._cpu.last_conv2d_algorithm("bwd_weight") == WINO
    gw_ref, _ = ref.conv2d_backward_weight(gy.astype(np.float64), x.astype(np.float64), (128, 64, 3, 3), padding=1)
    _check(gw, gw_ref)
    fc.set_winograd(False)
    gw_direct, gb_direct = _bwd_weight(gy, x, (128, 64, 3, 3), layout, padding="same")
    assert fc._cpu.last_conv2d_algorithm("bwd_weight") == "direct"
    assert not np.array_equal(gw, gw_direct), "Winograd rounds differently; equal means it did not run"
    _check(gw_direct, gw_ref)


def test_winograd_backward_weight_without_bias():
    gy, x = _bwd_weight_case(1, 40, 13, 14, 24, 1, seed=10)
    gw, gb = _bwd_weight(gy, x, (24, 40, 3, 3), "NHWC", padding=1, bias=False)
    assert gb is None and fc._cpu.last_conv2d_algorithm("bwd_weight") == WINO
    _check(gw, ref.conv2d_backward_weight(gy.astype(np.float64), x.astype(np.float64), (24, 40, 3, 3), padding=1)[0])


@pytest.mark.parametrize(
    "kw",
    [dict(stride=2, padding=1), dict(dilation=2, padding=2), dict(padding=2, ksize=5)],
    ids=["stride2", "dilation2", "5x5"],
)
def test_winograd_backward_weight_ineligible_shapes(kw):
    kw = dict(kw)
    ksize = kw.pop("ksize", 3)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((1, 64, 12, 13)).astype(np.float32)
    y_shape = ref.conv2d(np.zeros(x.shape), np.zeros((64, 64, ksize, ksize)), **kw).shape
    gy = rng.standard_normal(y_shape).astype(np.float32)
    gw, _ = fc.conv2d_backward_weight(gy, x, (64, 64, ksize, ksize), **kw)
    assert fc._cpu.last_conv2d_algorithm("bwd_weight") == "direct"
    gw_ref, _ = ref.conv2d_backward_weight(gy.astype(np.float64), x.astype(np.float64), (64, 64, ksize, ksize), **kw)
    assert np.linalg.norm(gw - gw_ref) / np.linalg.norm(gw_ref) <= 1e-6


@pytest.mark.parametrize(
    "case", [(4, 64, 35, 33, 64, 1), (1, 130, 12, 12, 70, 1)], ids=["tile-splits", "channel-blocks"]
)
def test_winograd_backward_weight_threads_do_not_change_the_result(case):
    """Items own whole dU blocks and tile splits depend on the shape only: bit-identical
    results for 1 and 2 threads."""
    N, C, H, W, K, pad = case
    gy, x = _bwd_weight_case(N, C, H, W, K, pad, seed=12)
    n = fc.get_num_threads()
    try:
        fc.set_num_threads(1)
        r1 = _bwd_weight(gy, x, (K, C, 3, 3), "NHWC", padding=pad)
        fc.set_num_threads(2)
        r2 = _bwd_weight(gy, x, (K, C, 3, 3), "NHWC", padding=pad)
    finally:
        fc.set_num_threads(n)
    assert np.array_equal(r1[0], r2[0]) and np.array_equal(r1[1], r2[1])
