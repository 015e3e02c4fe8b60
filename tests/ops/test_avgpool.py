"""Average pooling and global average / max pooling (fastconv.ops.pool2d; CPU kernels
csrc/cpu/pool2d/avgpool.inl compiled per ISA, CUDA kernels csrc/cuda/pool2d/avgpool.cu through their
emulation). The reference agreement on the edge grid (tests/ops/families/pool2d.py: odd sizes,
channels around the vector widths, windows wider than the plane, count_include_pad both ways),
finite differences, bad inputs and threads are rows; here what only these kernels promise: every
ISA and thread count computes the same sums in the same order (bit-identical), the wide-window
crashes in a subprocess, the PyTorch / Keras conventions, accuracy, NaN, the CUDA emulation.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import check_op, randn

import fastconv as fc
from fastconv import _cuda_emu
from fastconv import reference as ref
from fastconv.backend import cpu as backend_cpu
from fastconv.backend import cuda_emu as emu

DTYPES = (np.float32, np.float64)
LAYOUTS = ("NCHW", "NHWC")

# (N, C, H, W, kernel, stride, padding)
CASES = [
    (1, 1, 5, 7, 2, None, 0),
    (2, 15, 9, 11, 2, None, 0),  # odd sizes: the last row / column dropped
    (3, 17, 8, 6, 2, 2, 0),  # 2x2 windows tiling the plane
    (2, 3, 5, 7, 2, 2, "same"),  # 2x2 'same' on odd sizes: windows reach the bottom / right padding
    (1, 16, 8, 8, 3, 2, 1),
    (3, 17, 10, 9, 3, 2, "same"),
    (1, 33, 7, 12, (3, 2), (2, 1), ((1, 0), (0, 1))),
    (2, 5, 6, 6, 3, 1, 1),  # overlapping windows, stride 1
    (1, 4, 11, 13, 2, 3, 0),  # stride > kernel: rows no window covers
    (2, 3, 14, 14, 7, 7, 0),
]
# Windows wider or taller than the plane: one output column whose stride becomes 1, windows
# starting and ending in padding, Keras 'same' with a kernel larger than the map, huge kernels
WIDE_CASES = [
    (1, 3, 4, 4, 5, None, 2),
    (2, 3, 4, 4, 40, None, 19),
    (2, 5, 4, 4, 8, None, "same"),
    (1, 2, 4, 5, 8, 1, "same"),
    (1, 2, 3, 3, (1, 20001), None, "same"),
    (1, 2, 3, 4, (20001, 3), None, "same"),
    (2, 3, 5, 3, (3, 2001), 1, (1, 1000)),
]
CASES += WIDE_CASES
IDS = [f"N{c[0]}C{c[1]}H{c[2]}W{c[3]}k{c[4]}s{c[5]}p{c[6]}".replace(" ", "") for c in CASES]


def _x(case, layout, dtype, seed=0):
    N, C, H, W = case[:4]
    shape = (N, C, H, W) if layout == "NCHW" else (N, H, W, C)
    return randn(np.random.default_rng(seed), shape, dtype)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_every_isa_and_thread_count_gives_the_same_bits(case, layout, restore_cpu_state):
    k, s, p = case[4:]
    x = _x(case, layout, np.float32)
    kw = dict(stride=s, padding=p, layout=layout, count_include_pad=False)
    runs = []
    for isa in fc.available_cpu_isas():
        for threads in (1, 2):
            fc.set_cpu_isa(isa)
            fc.set_num_threads(threads)
            y = fc.avg_pool2d(x, k, **kw)
            runs.append((isa, threads, y, fc.avg_pool2d_backward(y, x.shape, k, **kw)))
    for isa, threads, y, gx in runs[1:]:
        assert np.array_equal(y, runs[0][2]) and np.array_equal(gx, runs[0][3]), (isa, threads)


_WIDE_WINDOW_SCRIPT = """
import numpy as np, fastconv as fc
fc.set_num_threads(2)
for _ in range(2000):   # wrote past y's end (SIGSEGV after a few hundred calls)
    assert fc.avg_pool2d(np.ones((1, 1, 4, 4), np.float32), 40, padding=19)[0, 0, 0, 0] == 16 / 1600
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 3, 4, 4))
for k, axes, cells in ((100001, (2, 3), 16), ((1, 100001), (3,), 4)):
    R, S = (k, k) if isinstance(k, int) else k
    for include_pad in (True, False):
        kw = dict(padding="same", count_include_pad=include_pad)
        y = fc.avg_pool2d(x, k, **kw)
        want = x.sum(axis=axes, keepdims=True) / (R * S if include_pad else cells)
        assert np.allclose(y, want, rtol=1e-12, atol=0), (k, include_pad)
        gy = rng.standard_normal(y.shape)
        gx = fc.avg_pool2d_backward(gy, x.shape, k, **kw)
        assert np.allclose(gx, np.broadcast_to(gy / (R * S if include_pad else cells), x.shape), rtol=1e-12, atol=0)
# a neighbour plane's mean came back in 1-15 outputs per call on 2 threads
x = rng.standard_normal((512, 256, 4, 4)).astype(np.float32)
want = np.float32(x.astype(np.float64).mean(axis=(2, 3), keepdims=True))
for _ in range(5):
    y = fc.avg_pool2d(x, 8, padding=2, count_include_pad=False)
    assert y.shape == (512, 256, 1, 1) and np.allclose(y, want, rtol=1e-5, atol=1e-6)
# the backward read scratch left by an earlier call (100.04 for 0.04)
fc.avg_pool2d_backward(np.full((1, 1, 3, 3), 400.0, np.float32), (1, 1, 4, 4), 2, stride=1)   # leaves 100s
gx = fc.avg_pool2d_backward(np.ones((1, 1, 1, 1), np.float32), (1, 1, 4, 4), 5, padding=2)
want = np.zeros((4, 4), np.float32)
want[:3, :3] = np.float32(1 / 25)
assert np.array_equal(gx[0, 0], want), gx
layer = fc.layers.AveragePooling2D(8, padding="same", data_format="channels_first")
x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
assert np.allclose(layer(x), x.mean(axis=(2, 3), keepdims=True), rtol=1e-5, atol=1e-6)
print("ok")
"""


@pytest.mark.parametrize("isa_name", ["avx512", "avx2", "scalar"])
def test_windows_wider_than_the_plane_in_a_subprocess(isa_name):
    """The reported crashes and wrong answers of windows larger than the plane, each ISA in its own
    process (an out-of-bounds write there must fail this test, not kill pytest)."""
    if isa_name not in fc.available_cpu_isas():
        pytest.skip(f"{isa_name} not available on this CPU")
    env = {**os.environ, "FASTCONV_ISA": isa_name, "MALLOC_PERTURB_": "165"}
    r = subprocess.run(
        [sys.executable, "-c", _WIDE_WINDOW_SCRIPT], capture_output=True, text=True, timeout=300, env=env
    )
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-3000:]


def test_count_include_pad_matches_pytorch_and_keras_conventions():
    x = np.ones((1, 1, 3, 3))
    # PyTorch (count_include_pad=True): the corner window of a 3x3 pool with padding 1 sees 4 ones of 9
    assert fc.avg_pool2d(x, 3, stride=1, padding=1)[0, 0, 0, 0] == pytest.approx(4 / 9)
    # Keras 'same' (count_include_pad=False): the mean of the cells inside: 1
    assert fc.avg_pool2d(x, 3, stride=1, padding="same", count_include_pad=False)[0, 0, 0, 0] == 1.0


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("hw", [(1, 1), (1, 7), (2, 4), (3, 3), (7, 7), (4, 5)])
def test_global_average_of_nchw_planes_is_one_sum_whichever_block_a_plane_falls_in(hw, dtype, restore_cpu_state):
    """NCHW planes are summed eight at a time where a thread's chunk has eight left, else one by
    one: both in the same order, so every plane's mean has the same bits for any thread count and
    ISA, and equals the one-plane sum (8 partial sums by index mod 8, a fixed tree, the tail)."""
    H, W = hw
    x = randn(np.random.default_rng(H * W), (3, 61, H, W), dtype)
    threshold = fc._cpu.min_parallel_work()
    fc._cpu.set_min_parallel_work(1)  # 183 planes in chunks of 22 (1 thread) or 11 (2 threads)
    runs = []
    try:
        for isa in fc.available_cpu_isas():
            for threads in (1, 2):
                fc.set_cpu_isa(isa)
                fc.set_num_threads(threads)
                runs.append(fc.global_avg_pool2d(x))
    finally:
        fc._cpu.set_min_parallel_work(threshold)
    for y in runs[1:]:
        assert np.array_equal(y, runs[0])
    planes = x.reshape(-1, H * W)
    n8 = (H * W) // 8 * 8
    part = planes[:, :n8].reshape(len(planes), -1, 8)
    acc = np.zeros((len(planes), 8), dtype)
    for i in range(part.shape[1]):
        acc += part[:, i]
    tail = np.zeros(len(planes), dtype)
    for k in range(n8, H * W):
        tail += planes[:, k]
    q = acc.T
    sums = (((q[0] + q[1]) + (q[2] + q[3])) + ((q[4] + q[5]) + (q[6] + q[7]))) + tail
    assert np.array_equal(runs[0].ravel(), sums * (dtype(1) / dtype(H * W)))


def test_global_max_pool_propagates_nan():
    x = np.random.default_rng(7).standard_normal((2, 3, 4, 5))
    x[1, 2, 3, 1] = np.nan
    y, idx = fc.global_max_pool2d(x)
    assert idx.dtype == np.int64 and idx.shape == (2, 3)
    assert np.isnan(y[1, 2]) and idx[1, 2] == 3 * 5 + 1
    assert np.isfinite(np.delete(y.ravel(), 5)).all()


def test_global_average_of_a_large_plane_is_accurate():
    # 1e4 + N(0, 1) over 2048 x 7 x 7: the sum must not lose the small part
    rng = np.random.default_rng(8)
    x = (1e4 + rng.standard_normal((2, 2048, 7, 7))).astype(np.float32)
    got = fc.global_avg_pool2d(x)
    want = ref.global_avg_pool2d(x)
    assert np.abs(got - want).max() <= 4e-3  # float32 spacing at 1e4 is 1e-3


# ----------------------------------------------------------------------------- CUDA kernels (emulated)


@pytest.fixture
def emu_backend(monkeypatch, poison):
    monkeypatch.setattr(backend_cpu, "CPU", emu.backend())
    return emu.backend()


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", CASES[:6] + WIDE_CASES, ids=IDS[:6] + IDS[-len(WIDE_CASES) :])
def test_cuda_kernels_emulated(emu_backend, case, layout, dtype, count_include_pad):
    k, s, p = case[4:]
    x = _x(case, layout, dtype)
    kw = dict(stride=s, padding=p, layout=layout, count_include_pad=count_include_pad)
    y = check_op("avg_pool2d", x, k, **kw)
    assert "avgpool2d_fwd" in _cuda_emu.last_kernel()
    check_op("avg_pool2d_backward", randn(np.random.default_rng(1), y.shape, dtype), x.shape, k, **kw)
    assert "avgpool2d_bwd" in _cuda_emu.last_kernel()


def test_cuda_global_pooling_emulated(emu_backend):
    x = randn(np.random.default_rng(2), (2, 7, 7, 9), np.float32)
    check_op("global_avg_pool2d", x, layout="NHWC")
    check_op("global_max_pool2d", x, layout="NHWC", exact=True)
