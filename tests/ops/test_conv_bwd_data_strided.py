"""conv2d backward-data with stride > 1 on the SIMD paths (the stride-phase kernel of
csrc/cpu/conv2d/bwd_data_strided.inl) against the float64 reference and the portable
(`scalar`) kernels.

Grid: strides 2, 3, (2, 3), (3, 2), (2, 1), (1, 2); dilation 1/2; padding 0/1/2 and asymmetric; kernels 1x1,
2x2, 3x3, 5x5 (including stride > kernel, where some grad_x pixels receive no tap and must be
written as zeros); C in {1, 3, 5, 8, 9, 17, 64} (channel blocks of 8 and a tail); K in {1, 16, 25, 33};
odd H/W; batch 1/3; both layouts, float32/float64, every SIMD ISA this CPU has.
- exact: integers in -2..2 make every partial sum exact, so results are bit-identical to the
  reference and to the portable kernel;
- random: standard-normal data within the tolerances of tests/helpers.py;
- outputs are poisoned with NaN before each kernel, so an unwritten element fails.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import RTOL, assert_close

import fastconv as fc
from fastconv import reference as ref

SIMD_ISAS = [i for i in fc.available_cpu_isas() if i != "scalar"]

# (N, C, H, W, K, R, S, stride, padding, dilation)
CASES = [
    (3, 3, 31, 31, 25, 3, 3, 2, 1, 1),  # cs231n first layer, smaller batch
    (1, 1, 9, 13, 1, 3, 3, 2, 0, 1),  # C=K=1
    (1, 5, 11, 17, 16, 5, 5, 2, 2, 1),  # 5x5 pad 2
    (3, 3, 13, 11, 33, 3, 3, 3, 1, 1),  # stride 3, K=33
    (1, 17, 9, 15, 25, 3, 3, 2, 1, 1),  # C=17: 8 + 8 + 1 channel blocks
    (1, 17, 7, 9, 16, 3, 3, 3, 2, 2),  # C=17, stride 3, dilation 2
    (2, 64, 9, 9, 33, 3, 3, 2, 1, 1),  # C=64: 8 full channel blocks
    (1, 3, 10, 15, 25, 3, 3, (2, 3), 1, 1),  # unequal strides
    (1, 5, 15, 10, 33, 3, 3, (3, 2), ((0, 2), (1, 0)), 1),  # asymmetric padding
    (1, 5, 9, 11, 16, 3, 3, (2, 1), 1, 1),  # stride 1 along W: one column phase
    (3, 3, 9, 11, 16, 3, 3, (1, 2), 1, (2, 1)),  # stride 1 along H
    (3, 9, 8, 9, 1, 3, 3, 2, ((2, 1), (0, 2)), (2, 1)),  # C=9 (two channel blocks), dilation
    (1, 3, 12, 13, 16, 3, 3, 2, 0, 2),  # dilation 2, no padding
    (1, 8, 9, 9, 25, 1, 1, 2, 0, 1),  # 1x1 stride 2: odd pixels get zeros
    (1, 3, 11, 11, 16, 2, 2, 3, 0, 1),  # stride > kernel: zero pixels
    (1, 5, 47, 41, 16, 3, 3, 2, 1, 1),  # rows past one pixel tile
    (1, 17, 11, 10, 33, 2, 2, 3, 1, 1),  # C=17 with pixels without taps
]
IDS = [f"N{c[0]}C{c[1]}H{c[2]}W{c[3]}K{c[4]}R{c[5]}S{c[6]}st{c[7]}p{c[8]}d{c[9]}".replace(" ", "") for c in CASES]


pytestmark = pytest.mark.usefixtures("poison")


def make_data(case, layout, dtype, exact, seed):
    N, C, H, W, K, R, S, stride, padding, dilation = case
    rng = np.random.default_rng(seed)
    draw = (
        (lambda shape: rng.integers(-2, 3, size=shape).astype(dtype))
        if exact
        else (lambda shape: rng.standard_normal(shape).astype(dtype))
    )
    x_shape, w = (N, C, H, W), draw((K, C, R, S))
    kw = dict(stride=stride, padding=padding, dilation=dilation, layout=layout)
    if layout == "NHWC":
        x_shape, w = (N, H, W, C), np.ascontiguousarray(w.transpose(2, 3, 1, 0))
    y_shape = ref.conv2d(np.zeros(x_shape), w.astype(np.float64), **kw).shape
    return draw(y_shape), w, x_shape, kw


@pytest.mark.skipif(not SIMD_ISAS, reason="this CPU has no AVX2/AVX-512 path")
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_exact_small_integers(case, restore_cpu_state):
    for layout in ("NCHW", "NHWC"):
        for dtype in (np.float32, np.float64):
            gy, w, x_shape, kw = make_data(case, layout, dtype, exact=True, seed=1)
            want = ref.conv2d_backward_data(gy, w, x_shape, **kw)
            fc.set_cpu_isa("scalar")
            portable = fc.conv2d_backward_data(gy, w, x_shape, **kw)
            for isa in SIMD_ISAS:
                assert fc.set_cpu_isa(isa) == isa
                for threads in (1, 2):
                    fc.set_num_threads(threads)
                    got = fc.conv2d_backward_data(gy, w, x_shape, **kw)
                    label = f"{isa} {layout} {np.dtype(dtype).name} threads={threads}"
                    assert got.shape == tuple(x_shape) and got.dtype == dtype
                    assert_close(got, want, dtype=dtype, name=label, exact=True)
                    assert np.array_equal(got, portable), f"{label}: differs from the scalar kernel"


@pytest.mark.skipif(not SIMD_ISAS, reason="this CPU has no AVX2/AVX-512 path")
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_random_normal(case, restore_cpu_state):
    for layout in ("NCHW", "NHWC"):
        for dtype in (np.float32, np.float64):
            gy, w, x_shape, kw = make_data(case, layout, dtype, exact=False, seed=2)
            want = ref.conv2d_backward_data(gy.astype(np.float64), w.astype(np.float64), x_shape, **kw)
            for isa in SIMD_ISAS:
                fc.set_cpu_isa(isa)
                got = fc.conv2d_backward_data(gy, w, x_shape, **kw)
                assert_close(
                    got, want, dtype=dtype, name=f"{isa} {layout} {np.dtype(dtype).name}", rtol=RTOL[np.dtype(dtype)]
                )
