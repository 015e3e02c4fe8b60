"""fastconv's CUDA kernels, run on the CPU through their host emulation (fastconv._cuda_emu).

The .cu sources are compiled a second time as host C++ (csrc/cuda/emu/cuda_emu.h): every thread
block runs on a host thread with its GPU threads as fibers that meet at __syncthreads(). These
tests route the public API to that build (the `emu` fixture swaps the CPU backend for
fastconv.backend.cuda_emu, which drives the kernels through the same KernelRunner as CuPy does)
and compare every kernel version with fastconv.reference on small odd shapes, both layouts,
float32/float64, stride/padding/dilation, the fused ReLU, pooling ties/NaN/bad indices, with
outputs poisoned (NaN) before each kernel. Nothing here needs a GPU.
"""

from __future__ import annotations

import zlib

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from helpers import assert_close, check_op, noncontiguous, randn, small_ints  # noqa: E402

import fastconv as fc  # noqa: E402
from fastconv import _cuda_emu  # noqa: E402
from fastconv import reference as ref  # noqa: E402
from fastconv.backend import cpu as backend_cpu  # noqa: E402
from fastconv.backend import cuda_emu as emu  # noqa: E402
from fastconv.backend import runner as backend_runner  # noqa: E402

CONV_VERSIONS = (1, 2, 3)  # kernel1_naive, kernel2_smem_tiled, kernel3_regtile
POOL_VERSIONS = (1, 2)  # kernel1_scalar, kernel2_vec
RELU_VERSIONS = (1, 2)
DTYPES = (np.float32, np.float64)
LAYOUTS = ("NCHW", "NHWC")


@pytest.fixture
def emu_backend(monkeypatch, poison):
    """fc.* on NumPy arrays runs the emulated CUDA kernels (with poisoned outputs)."""
    monkeypatch.setattr(backend_cpu, "CPU", emu.backend())
    return emu.backend()


def x_shape(layout, N, C, H, W):
    return (N, C, H, W) if layout == "NCHW" else (N, H, W, C)


def w_shape(layout, K, C, R, S):
    return (K, C, R, S) if layout == "NCHW" else (R, S, C, K)


# (N, C, H, W, K, R, S, stride, padding, dilation): odd sizes, batch 1 and 3, channels around
# the tiles (17, 33, 130 > 128 output channels), M = N*P*Q over several 128-row tiles.
CONV_CASES = {
    "3x3_pad1": (1, 3, 7, 9, 5, 3, 3, 1, 1, 1),
    "stride_pad_dil_mixed": (2, 5, 9, 8, 7, 3, 2, (2, 1), ((1, 2), (0, 1)), (1, 2)),
    "1x1_c17_k33": (3, 17, 6, 5, 33, 1, 1, 1, 0, 1),
    "5x5_stride3": (1, 2, 11, 10, 3, 5, 5, 3, 2, 1),
    "k130_m300": (3, 4, 10, 10, 130, 3, 3, 1, "same", 1),
}


@pytest.mark.parametrize("version", CONV_VERSIONS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", list(CONV_CASES), ids=str)
def test_conv2d_every_pass(emu_backend, case, dtype, layout, version):
    N, C, H, W, K, R, S, stride, padding, dilation = CONV_CASES[case]
    rng = np.random.default_rng(zlib.crc32(f"{case}{layout}{version}".encode()))
    x = randn(rng, x_shape(layout, N, C, H, W), dtype)
    w = randn(rng, w_shape(layout, K, C, R, S), dtype)
    b = randn(rng, (K,), dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, layout=layout)
    with emu_backend.using(version=version):
        y = check_op("conv2d", x, w, b, **kw)
        check_op("conv2d", x, w, b, activation="relu", **kw)
        check_op("conv2d", x, w, None, **kw)
        gy = randn(rng, y.shape, dtype)
        check_op("conv2d_backward_data", gy, w, x.shape, **kw)
        check_op("conv2d_backward_weight", gy, x, w.shape, bias=True, **kw)
        check_op("conv2d_backward_weight", gy, x, w.shape, bias=False, **kw)
        check_op("conv2d_backward", gy, x, w, **kw)
    kernel = _cuda_emu.last_kernel()
    assert np.dtype(dtype).name.replace("float", "f") in kernel and layout.lower() in kernel, kernel
    if version == 1:
        assert "kernel1_naive" in kernel, kernel


@pytest.mark.parametrize("version", CONV_VERSIONS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_conv2d_small_integers_exact(emu_backend, layout, version):
    """Small-integer data: every partial sum is exact in float32, any blocking must match exactly."""
    rng = np.random.default_rng(7)
    N, C, H, W, K, R, S = 2, 6, 9, 7, 67, 3, 3
    x = small_ints(rng, x_shape(layout, N, C, H, W))
    w = small_ints(rng, w_shape(layout, K, C, R, S))
    b = small_ints(rng, (K,))
    kw = dict(stride=(1, 2), padding=1, dilation=(2, 1), layout=layout)
    with emu_backend.using(version=version):
        y = check_op("conv2d", x, w, b, activation="relu", exact=True, **kw)
        gy = small_ints(rng, y.shape)
        check_op("conv2d_backward_data", gy, w, x.shape, exact=True, **kw)
        check_op("conv2d_backward_weight", gy, x, w.shape, exact=True, **kw)


@pytest.mark.parametrize("version", (2, 3))
@pytest.mark.parametrize("layout", LAYOUTS)
def test_conv2d_backward_weight_splits_deterministic(emu_backend, layout, version):
    """The split reduction (partials in a workspace, fixed-order sum) is right for any split
    count and bitwise reproducible while blocks run concurrently on 2 host workers."""
    rng = np.random.default_rng(11)
    N, C, H, W, K, R, S = 3, 5, 13, 11, 9, 3, 3
    x = randn(rng, x_shape(layout, N, C, H, W))
    w_shape_ = w_shape(layout, K, C, R, S)
    kw = dict(stride=1, padding=1, layout=layout)
    gy = randn(rng, fc.conv2d(x, np.ones(w_shape_, np.float32), **kw).shape)
    want_w, want_b = ref.conv2d_backward_weight(gy, x, w_shape_, **kw)
    workers = _cuda_emu.workers()
    _cuda_emu.set_workers(2)
    try:
        for splits in (1, 2, 5, 64):
            with emu_backend.using(version=version, splits=splits):
                gw, gb = fc.conv2d_backward_weight(gy, x, w_shape_, **kw)
                gw2, gb2 = fc.conv2d_backward_weight(gy, x, w_shape_, **kw)
            assert_close(gw, want_w, dtype=np.float32, name=f"grad_weight splits={splits}")
            assert_close(gb, want_b, dtype=np.float32, name=f"grad_bias splits={splits}")
            assert np.array_equal(gw, gw2) and np.array_equal(gb, gb2), f"not reproducible, splits={splits}"
    finally:
        _cuda_emu.set_workers(workers)


def test_conv2d_workspace_sizes():
    spec = fc.ops.conv.conv_spec((2, 5, 9, 9), (7, 5, 3, 3), 1, 1, 1, "NCHW")
    size = _cuda_emu.conv2d_backward_weight_workspace_bytes
    assert size(spec.native(_cuda_emu), False, True, 1, 0) == 0  # naive: none
    assert size(spec.native(_cuda_emu), False, True, 3, 1) == 7 * (5 * 9 + 1) * 4  # one split, bias column
    assert size(spec.native(_cuda_emu), True, False, 3, 1) == 7 * (5 * 9) * 8
    assert size(spec.native(_cuda_emu), False, True, 2, 3) == 3 * 7 * 46 * 4
    # too small a workspace is refused, naming the kernel family
    gy, x = np.ones((2, 7, 9, 9), np.float32), np.ones((2, 5, 9, 9), np.float32)
    gw, gb = np.empty((7, 5, 3, 3), np.float32), np.empty(7, np.float32)
    ws = np.empty(16, np.uint8)
    with pytest.raises(RuntimeError, match="conv2d_backward_weight"):
        _cuda_emu.conv2d_backward_weight(
            spec.native(_cuda_emu),
            gy.ctypes.data,
            x.ctypes.data,
            gw.ctypes.data,
            gb.ctypes.data,
            ws.ctypes.data,
            ws.nbytes,
            False,
            3,
            1,
            0,
        )


@pytest.mark.parametrize("layout", LAYOUTS)
def test_batch_split_paths(emu_backend, layout):
    """Problems over the 32-bit launch limit are split over the batch (fwd, bwd-data, pooling) or
    run by the naive kernel (bwd-weight); a tiny limit exercises those paths on small data."""
    rng = np.random.default_rng(3)
    x = randn(rng, x_shape(layout, 5, 3, 6, 7))
    w = randn(rng, w_shape(layout, 4, 3, 3, 3))
    b = randn(rng, (4,))
    kw = dict(padding=1, layout=layout)
    old = _cuda_emu.max_launch_elements()
    _cuda_emu.set_max_launch_elements(200)  # conv: 4 images of 6*7 pixels per launch; pool: 1
    try:
        with emu_backend.using(version=3):
            y = check_op("conv2d", x, w, b, **kw)
            gy = randn(rng, y.shape)
            check_op("conv2d_backward_data", gy, w, x.shape, **kw)
            check_op("conv2d_backward_weight", gy, x, w.shape, **kw)
            assert "kernel1_naive" in _cuda_emu.last_kernel()  # N*P*Q = 210 > 200
            yp, idx = check_op("max_pool2d", x, 2, stride=1, padding=1, layout=layout)
            check_op("max_pool2d_backward", randn(rng, yp.shape), idx, x.shape, 2, stride=1, padding=1, layout=layout)
    finally:
        _cuda_emu.set_max_launch_elements(old)
    assert _cuda_emu.max_launch_elements() == old


def test_conv2d_noncontiguous_inputs(emu_backend):
    rng = np.random.default_rng(5)
    x = noncontiguous(randn(rng, (2, 3, 8, 7)))
    w = noncontiguous(randn(rng, (4, 3, 3, 3)), "fortran")
    b = noncontiguous(randn(rng, (4,)))
    y = check_op("conv2d", x, w, b, stride=2, padding=1)
    check_op("conv2d_backward", noncontiguous(randn(rng, y.shape), "reversed"), x, w, stride=2, padding=1)


def test_runner_rejects_noncontiguous_pointer_args():
    spec = fc.ops.conv.conv_spec((1, 2, 5, 5), (3, 2, 3, 3), 1, 0, 1, "NCHW")
    x = np.ones((1, 2, 10, 5), np.float32)[:, :, ::2]
    with pytest.raises(ValueError, match="C-contiguous"):
        emu.backend().conv2d_forward(spec, x, np.ones((3, 2, 3, 3), np.float32), None)


# ----------------------------------------------------------------------------- pooling

POOL_CASES = {  # (N, C, H, W, kernel, stride, padding)
    "2x2": (2, 8, 8, 6, 2, None, 0),
    "3x3_s2_p1_oddC": (1, 3, 9, 7, 3, 2, 1),
    "overlap_asym": (2, 8, 7, 9, (3, 2), (1, 2), ((1, 0), (0, 1))),
    "same_c5": (3, 5, 5, 6, 3, 2, "same"),
}


@pytest.mark.parametrize("version", POOL_VERSIONS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", list(POOL_CASES), ids=str)
def test_max_pool2d(emu_backend, case, dtype, layout, version):
    N, C, H, W, k, stride, padding = POOL_CASES[case]
    rng = np.random.default_rng(zlib.crc32(f"{case}{layout}".encode()))
    x = randn(rng, x_shape(layout, N, C, H, W), dtype) - 3.0  # mostly negative: padding (0) must not win
    kw = dict(stride=stride, padding=padding, layout=layout)
    with emu_backend.using(version=version):
        y, idx = check_op("max_pool2d", x, k, exact=True, **kw)
        check_op("max_pool2d_backward", randn(rng, y.shape, dtype), idx, x.shape, k, **kw)
    vec = version == 2 and layout == "NHWC" and C % (16 // np.dtype(dtype).itemsize) == 0
    assert ("kernel2_vec" in _cuda_emu.last_kernel()) == vec, _cuda_emu.last_kernel()


@pytest.mark.parametrize("version", POOL_VERSIONS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_max_pool2d_ties_and_nan(emu_backend, layout, version):
    """Ties go to the first element in row-major order; the first NaN wins and propagates."""
    rng = np.random.default_rng(2)
    x = small_ints(rng, x_shape(layout, 2, 4, 9, 8), low=0, high=2)  # many ties
    x[x == 2] = np.where(rng.random(int((x == 2).sum())) < 0.15, np.nan, 2)
    kw = dict(stride=(2, 1), padding=1, layout=layout)
    with emu_backend.using(version=version):
        y, idx = check_op("max_pool2d", x, 3, exact=True, **kw)
        gx = check_op("max_pool2d_backward", randn(rng, y.shape), idx, x.shape, 3, **kw)
    assert np.isnan(y).any() and not np.isnan(y).all()
    assert np.isfinite(gx).all()


@pytest.mark.parametrize("version", POOL_VERSIONS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_max_pool2d_matches_cpu_kernels_bitwise(monkeypatch, layout, version):
    """Same values, same indices and bitwise-equal gradients as the CPU kernels (the gather sums
    each input's windows in the CPU scatter's order)."""
    rng = np.random.default_rng(4)
    x = randn(rng, x_shape(layout, 2, 8, 11, 10))
    kw = dict(stride=1, padding=1, layout=layout)
    y_cpu, idx_cpu = fc.max_pool2d(x, 3, **kw)
    gy = randn(rng, y_cpu.shape)
    gx_cpu = fc.max_pool2d_backward(gy, idx_cpu, x.shape, 3, **kw)
    monkeypatch.setattr(backend_cpu, "CPU", emu.backend())
    with emu.backend().using(version=version):
        y, idx = fc.max_pool2d(x, 3, **kw)
        gx = fc.max_pool2d_backward(gy, idx, x.shape, 3, **kw)
    assert np.array_equal(y, y_cpu) and np.array_equal(idx, idx_cpu) and np.array_equal(gx, gx_cpu)


@pytest.mark.parametrize("version", POOL_VERSIONS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_max_pool2d_backward_bad_indices(emu_backend, layout, version):
    rng = np.random.default_rng(6)
    x = randn(rng, x_shape(layout, 1, 4, 6, 6))
    with emu_backend.using(version=version):
        y, idx = fc.max_pool2d(x, 2, layout=layout)
        gy = randn(rng, y.shape)
        for bad in (-1, 36, 2**40):  # outside the plane
            broken = idx.copy()
            broken.flat[5] = bad
            with pytest.raises(ValueError, match="indices"):
                fc.max_pool2d_backward(gy, broken, x.shape, 2, layout=layout)
        # inside the plane but outside its window: the gather kernel would drop it, so it refuses
        broken = idx.copy()
        broken.flat[0] = 35
        with pytest.raises(ValueError, match="window"):
            fc.max_pool2d_backward(gy, broken, x.shape, 2, layout=layout)
        # int32 indices are accepted (functional casts them)
        check_op("max_pool2d_backward", gy, idx.astype(np.int32), x.shape, 2, layout=layout)


# ----------------------------------------------------------------------------- relu


@pytest.mark.parametrize("version", RELU_VERSIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("n", (1, 7, 1001, 4096 + 3))
def test_relu(emu_backend, n, dtype, version):
    rng = np.random.default_rng(n)
    x = randn(rng, (n,), dtype)
    x[::7] = np.nan
    x[1::11] = 0.0
    with emu_backend.using(version=version):
        y = check_op("relu", x, exact=True)
        check_op("relu_backward", randn(rng, (n,), dtype), y, exact=True)
        inplace = x.copy()
        out = fc.relu(inplace, out=inplace)
    assert out is inplace
    assert_close(out, ref.relu(x), dtype=dtype, exact=True, name="relu in place")


def test_relu_misaligned_falls_back_to_scalar(emu_backend):
    rng = np.random.default_rng(9)
    x = np.empty(1001 + 1, np.float32)[1:]  # contiguous, 4 bytes past a 16-byte boundary
    x[...] = randn(rng, (1001,))
    assert x.ctypes.data % 16 != 0
    with emu_backend.using(version=2):
        check_op("relu", x, exact=True)
    assert "kernel1_scalar" in _cuda_emu.last_kernel()


# ----------------------------------------------------------------------------- the emulator


def test_emulator_barrier_and_shared_memory():
    """A block reverses its slice through shared memory: wrong unless __syncthreads() is a real
    barrier and each concurrently running block has its own shared memory."""
    blocks, threads = 7, 96
    a = np.arange(blocks * threads, dtype=np.int32)
    out = np.full_like(a, -1)
    _cuda_emu.selftest_reverse_in_block(a.ctypes.data, out.ctypes.data, blocks, threads)
    assert np.array_equal(out, a.reshape(blocks, threads)[:, ::-1].ravel())


def test_emulator_reports_divergent_barrier():
    out = np.zeros(64, np.int32)
    with pytest.raises(RuntimeError, match="selftest_divergent_barrier.*__syncthreads"):
        _cuda_emu.selftest_divergent_barrier(out.ctypes.data, 64)


def test_fast_divmod():
    rng = np.random.default_rng(1)
    divisors = [1, 2, 3, 7, 9, 64, 100, 641, 2**16 + 1, 2**30, 2**31 - 1] + list(rng.integers(1, 2**31 - 1, 20))
    numerators = [0, 1, 2**31 - 1, 2**31 - 2, 2**30] + list(rng.integers(0, 2**31 - 1, 30))
    for d in divisors:
        for n in numerators + [int(d) - 1, int(d), int(d) + 1, 3 * int(d) - 1]:
            if 0 <= n < 2**31:
                assert _cuda_emu.fast_divmod(int(d), int(n)) == divmod(int(n), int(d)), (d, n)


def test_kernel_errors_name_the_kernel():
    spec = fc.ops.conv.conv_spec((1, 1, 3, 3), (1, 1, 1, 1), 1, 0, 1, "NCHW")
    a = np.ones(9, np.float32)
    with pytest.raises(RuntimeError, match=r"f32_conv2d_bwd_weight_nchw_kernel3_regtile|conv2d_backward_weight"):
        _cuda_emu.conv2d_backward_weight(
            spec.native(_cuda_emu), a.ctypes.data, a.ctypes.data, a.ctypes.data, 0, 0, 0, False, 3, 0, 0
        )


# ----------------------------------------------------------------------------- the CuPy glue


class _StubDevice:
    def __init__(self, id=0):
        self.id = id


class _StubCupyArray(np.ndarray):
    """A NumPy array with the few CuPy attributes backend/cuda.py reads (data.ptr, device, get)."""

    class _Mem:
        def __init__(self, ptr):
            self.ptr = ptr

    @property
    def data(self):
        return self._Mem(self.ctypes.data)

    @property
    def device(self):
        return _StubDevice(getattr(self, "_device_id", 0))

    def get(self):
        return np.asarray(self).copy()


def _stub_cupy():
    import types

    def wrap(fn):
        return lambda *a, **k: fn(*a, **k).view(_StubCupyArray)

    cupy = types.ModuleType("cupy")
    cupy.empty, cupy.full, cupy.zeros = wrap(np.empty), wrap(np.full), wrap(np.zeros)
    cupy.ascontiguousarray = wrap(np.ascontiguousarray)
    cupy.float64 = np.float64
    streams = []

    class _Stream:
        ptr = 0

    def get_current_stream():
        streams.append(1)
        return _Stream()

    cupy.cuda = types.SimpleNamespace(get_current_stream=get_current_stream, Device=_StubDevice)
    return cupy, streams


def test_cuda_backend_glue_with_a_stub_cupy(monkeypatch, poison):
    """backend/cuda.py end to end (pointers, stream handle, workspace, bad-index flag readback,
    device check) with CuPy stubbed by NumPy and fastconv._cuda replaced by its emulation."""
    import sys

    from fastconv.backend import cuda as backend_cuda

    cupy, streams = _stub_cupy()
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setitem(sys.modules, "fastconv._cuda", _cuda_emu)
    monkeypatch.setattr(backend_cuda, "_runner", None)
    rng = np.random.default_rng(8)
    x = randn(rng, (2, 9, 7, 5)).view(_StubCupyArray)  # NHWC
    w = randn(rng, (3, 3, 5, 6)).view(_StubCupyArray)
    b = randn(rng, (6,)).view(_StubCupyArray)
    kw = dict(stride=(2, 1), padding=1, dilation=1, layout="NHWC")
    spec = fc.ops.conv.conv_spec(x.shape, w.shape, kw["stride"], kw["padding"], 1, "NHWC", "relu")
    y = backend_cuda.backend().conv2d_forward(spec, x, w, b)
    assert type(y) is _StubCupyArray
    assert_close(np.asarray(y), ref.conv2d(x, w, b, activation="relu", **kw), dtype=np.float32, name="y")
    spec = fc.ops.conv.conv_spec(x.shape, w.shape, kw["stride"], kw["padding"], 1, "NHWC")
    gy = randn(rng, spec.y_shape).view(_StubCupyArray)
    gx = backend_cuda.backend().conv2d_backward_data(spec, gy, w)
    gw, gb = backend_cuda.backend().conv2d_backward_weight(spec, gy, x, True)
    want = ref.conv2d_backward(gy, x, w, **kw)
    for name, g, wnt in zip(("grad_x", "grad_weight", "grad_bias"), (gx, gw, gb), want):
        assert_close(np.asarray(g), wnt, dtype=np.float32, name=name)
    pspec = fc.ops.pool2d.pool_spec(x.shape, 3, 2, 1, "NHWC")
    py, idx = backend_cuda.backend().max_pool2d_forward(pspec, x)
    want_y, want_idx = ref.max_pool2d(x, 3, stride=2, padding=1, layout="NHWC")
    assert np.array_equal(py, want_y) and np.array_equal(idx, want_idx)
    g = backend_cuda.backend().max_pool2d_backward(pspec, py, idx)
    assert_close(
        np.asarray(g),
        ref.max_pool2d_backward(py, want_idx, x.shape, 3, stride=2, padding=1, layout="NHWC"),
        dtype=np.float32,
        name="pool grad",
    )
    bad = idx.copy()
    bad.flat[3] = -5
    with pytest.raises(ValueError, match="indices"):
        backend_cuda.backend().max_pool2d_backward(pspec, py, bad)
    r = backend_cuda.backend().relu_forward(x)
    assert_close(np.asarray(r), ref.relu(x), dtype=np.float32, exact=True, name="relu")
    assert_close(
        np.asarray(backend_cuda.backend().relu_backward(gy[..., :1].copy(), gy[..., :1].copy())),
        ref.relu_backward(gy[..., :1], gy[..., :1]),
        dtype=np.float32,
        exact=True,
        name="relu bwd",
    )
    assert len(streams) >= 8  # every launch asked CuPy for its current stream
    other = x.copy()
    other._device_id = 1
    with pytest.raises(ValueError, match="current CuPy device"):
        backend_cuda.backend().relu_forward(other)


def test_the_three_backends_are_one_interface():
    """CPU, CUDA (KernelRunner over CuPy) and its emulation implement _backend.Backend; a call's
    arrays choose the object."""
    from fastconv.backend.base import Backend

    assert isinstance(backend_cpu.CPU, Backend) and isinstance(emu.backend(), Backend)
    assert issubclass(backend_runner.KernelRunner, Backend)
    assert fc.ops._checks.backend_for(x=np.ones(2), bias=None) is backend_cpu.CPU
    rng = np.random.default_rng(2)
    a, b = randn(rng, (5, 3)), randn(rng, (3, 4))
    for be in (backend_cpu.CPU, emu.backend()):
        assert_close(
            be.matmul(a, b, np.ones(4, np.float32), "relu"), np.maximum(a @ b + 1, 0), dtype=np.float32, name="matmul"
        )
        assert_close(be.column_sums(a), a.sum(axis=0), dtype=np.float32, name="column sums")
