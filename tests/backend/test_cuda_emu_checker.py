"""The CUDA emulation as a checker (csrc/cuda/emu/cuda_emu.h), no GPU needed.

Races: each kernel runs with the threads of every block resumed in forward, reverse and seeded
shuffled orders between barriers; a correct kernel gives the same bits in every order, a missing
__syncthreads() does not (the deliberately racy toy kernel proves the check can fail).

Out-of-bounds accesses: in a -DFASTCONV_SANITIZE=ON build (.ci/run's sanitizer job) the kernel
tests run under AddressSanitizer (global memory: every emulated device buffer is then a fresh
allocation of its exact size) and UBSan's bounds check (fixed-size __shared__ arrays); the toy
kernels that read past a global buffer and write past a shared one must be reported there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zlib

import numpy as np
import pytest
from helpers import randn

import fastconv as fc
from fastconv import _cuda_emu
from fastconv.backend import cpu as backend_cpu
from fastconv.backend import cuda_emu as emu

ORDERS = [("reverse", 0), ("shuffled", 1), ("shuffled", 2)]


@pytest.fixture
def emu_backend(monkeypatch, poison):
    monkeypatch.setattr(backend_cpu, "CPU", emu.backend())
    yield emu.backend()
    _cuda_emu.set_thread_order("forward", 0)


def _in_every_order(run):
    """run() under the forward order, then every other order: the outputs, bit for bit."""
    _cuda_emu.set_thread_order("forward", 0)
    want = [np.array(a) for a in run()]
    for order, seed in ORDERS:
        _cuda_emu.set_thread_order(order, seed)
        got = run()
        for i, (a, b) in enumerate(zip(want, got)):
            assert np.array_equal(a, b, equal_nan=True), f"output {i} differs in {order} order (seed {seed})"
    _cuda_emu.set_thread_order("forward", 0)


# (N, C, H, W, K, R, S, stride, padding, dilation)
CONV_CASES = {
    "3x3_pad1": (2, 5, 9, 8, 18, 3, 3, 1, 1, 1),
    "strided_dilated": (1, 4, 11, 10, 7, 3, 2, (2, 1), ((1, 2), (0, 1)), (1, 2)),
}


@pytest.mark.parametrize("version", (1, 2, 3))
@pytest.mark.parametrize("layout", ("NCHW", "NHWC"))
@pytest.mark.parametrize("case", list(CONV_CASES))
def test_conv_kernels_do_not_depend_on_the_thread_order(emu_backend, case, layout, version):
    N, C, H, W, K, R, S, stride, padding, dilation = CONV_CASES[case]
    rng = np.random.default_rng(zlib.crc32(f"{case}{layout}{version}".encode()))
    x = randn(rng, (N, C, H, W) if layout == "NCHW" else (N, H, W, C))
    w = randn(rng, (K, C, R, S) if layout == "NCHW" else (R, S, C, K))
    b = randn(rng, (K,))
    kw = dict(stride=stride, padding=padding, dilation=dilation, layout=layout)
    with emu_backend.using(version=version):
        gy = randn(rng, fc.conv2d(x, w, b, **kw).shape)

        def run():
            y = fc.conv2d(x, w, b, activation="relu", **kw)
            gx = fc.conv2d_backward_data(gy, w, x.shape, **kw)
            gw, gb = fc.conv2d_backward_weight(gy, x, w.shape, **kw)
            return y, gx, gw, gb

        _in_every_order(run)


@pytest.mark.parametrize("version", (1, 2))
@pytest.mark.parametrize("layout", ("NCHW", "NHWC"))
def test_pool_and_relu_kernels_do_not_depend_on_the_thread_order(emu_backend, layout, version):
    rng = np.random.default_rng(3)
    x = randn(rng, (2, 5, 9, 11) if layout == "NCHW" else (2, 9, 11, 5), np.float64)
    x.flat[::7] = x.flat[3]  # ties
    with emu_backend.using(version=version):

        def run():
            y, idx = fc.max_pool2d(x, 3, stride=2, padding=1, layout=layout)
            gx = fc.max_pool2d_backward(np.ones_like(y), idx, x.shape, 3, stride=2, padding=1, layout=layout)
            r = fc.relu(x)
            return y, idx, gx, r, fc.relu_backward(x, r)

        _in_every_order(run)


def test_the_order_check_finds_a_missing_barrier():
    threads, blocks = 64, 3
    a = np.arange(threads * blocks, dtype=np.int32)

    def run(kernel):
        out = np.full_like(a, -1)
        kernel(a.ctypes.data, out.ctypes.data, blocks, threads)
        return (out,)

    _in_every_order(lambda: run(_cuda_emu.selftest_reverse_in_block))  # with its barrier
    with pytest.raises(AssertionError, match="differs in reverse order"):
        _in_every_order(lambda: run(_cuda_emu.selftest_racy_reverse_in_block))
    _cuda_emu.set_thread_order("forward", 0)


def test_thread_order_names_are_checked():
    with pytest.raises(ValueError, match="order: expected 'forward', 'reverse' or 'shuffled'"):
        _cuda_emu.set_thread_order("random")


_OOB_SCRIPT = """
import numpy as np
from fastconv import _cuda_emu
kind = {kind!r}
if kind == "global":
    a = np.arange(32, dtype=np.int32); out = np.zeros(32, np.int32)
    _cuda_emu.selftest_global_read_past_end(a.ctypes.data, out.ctypes.data, 32)
else:
    out = np.zeros(32, np.int32)
    _cuda_emu.selftest_shared_write_past_end(out.ctypes.data, 32)
print("not caught")
"""


@pytest.mark.skipif(
    not _cuda_emu.sanitized and os.environ.get("FASTCONV_REQUIRE_SANITIZED") != "1",
    reason="needs the -DFASTCONV_SANITIZE=ON build (.ci/run's sanitizer job)",
)
@pytest.mark.parametrize("kind, report", [("global", "heap-buffer-overflow"), ("shared", "out of bounds")])
def test_out_of_bounds_toy_kernels_are_reported_by_the_sanitizers(kind, report):
    assert _cuda_emu.sanitized, "FASTCONV_REQUIRE_SANITIZED=1 but fastconv._cuda_emu is not sanitized"
    r = subprocess.run(
        [sys.executable, "-c", _OOB_SCRIPT.format(kind=kind)], capture_output=True, text=True, timeout=120
    )
    assert r.returncode != 0 and "not caught" not in r.stdout, r.stdout + r.stderr[-3000:]
    assert report in r.stderr, r.stderr[-3000:]
