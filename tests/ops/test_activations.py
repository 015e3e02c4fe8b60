"""sigmoid, tanh and leaky_relu (fastconv.ops.eltwise; CPU kernels csrc/cpu/activation_*.cpp, CUDA
kernels csrc/cuda/eltwise/activation.cu through their emulation) against the float64 reference.

The SIMD paths evaluate exp with their own polynomial (simd/vector_math.h), so the bound is on
the relative error of every element: <= 4 units in the last place of the dtype wherever the
float64 value is a normal number of that dtype (measured: 1.4 eps for float32 sigmoid, 1.8 eps
for float64 tanh), and within 1 subnormal step below. The reference agreement on odd sizes,
finite differences, bad inputs and threads are rows of tests/ops/families/eltwise.py; here what
only activations promise: special values, in-place outputs, fused epilogues, CUDA emulation.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close, check_op, randn

import fastconv as fc
from fastconv import _cuda_emu
from fastconv import reference as ref
from fastconv.backend import cpu as backend_cpu
from fastconv.backend import cuda_emu as emu

DTYPES = (np.float32, np.float64)
ACTS = ("sigmoid", "tanh", "leaky_relu")


def _rel_errors(got, want, dtype):
    """max relative error in eps where want is normal in dtype, max abs error in subnormal steps below."""
    info = np.finfo(dtype)
    got = got.astype(np.float64)
    normal = np.abs(want) >= info.tiny
    rel = np.abs(got[normal] - want[normal]) / np.abs(want[normal]) / info.eps
    sub = np.abs(got[~normal] - want[~normal]) / float(info.smallest_subnormal)
    return (rel.max() if rel.size else 0.0), (sub.max() if sub.size else 0.0)


def _grid(dtype):
    """A dense sweep of the ranges where each formula changes: tiny, around the exp reduction
    points, saturation, and the subnormal range of sigmoid."""
    lo = -110 if dtype == np.float32 else -750
    return np.concatenate(
        [
            np.linspace(-30, 30, 60001),
            np.linspace(-1e-5, 1e-5, 2001),
            np.geomspace(1e-30, 1, 3001),
            -np.geomspace(1e-30, 1, 3001),
            np.linspace(lo, -80, 20001),
        ]
    ).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("act", ("sigmoid", "tanh"))
def test_forward_within_4_ulp_of_the_float64_value(isa, poison, act, dtype):
    x = _grid(dtype)
    y = getattr(fc, act)(x)
    assert y.dtype == dtype
    rel, sub = _rel_errors(y, getattr(ref, act)(x), dtype)
    assert rel <= 4, f"{act} {isa}: relative error {rel:.2f} eps"
    assert sub <= 1, f"{act} {isa}: subnormal error {sub:.2f} steps"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("act", ACTS)
def test_special_values(isa, poison, act, dtype):
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e30, -1e30, 800, -800], dtype)
    y = getattr(fc, act)(x)
    want = getattr(ref, act)(x)
    assert np.array_equal(np.isnan(y), np.isnan(want))
    ok = ~np.isnan(want)
    assert np.array_equal(np.isinf(y[ok]), np.isinf(want[ok]))
    assert np.allclose(y[ok], want[ok], rtol=2 * np.finfo(dtype).eps, atol=0)  # alpha * x rounds in dtype
    if act == "tanh":  # odd: the sign of zero is kept
        assert np.signbit(y[1]) and not np.signbit(y[0])


@pytest.mark.parametrize("act", ACTS)
def test_in_place_and_overlapping_out(isa, act):
    rng = np.random.default_rng(1)
    x = randn(rng, (1003,), np.float32)
    want = getattr(fc, act)(x)
    a = x.copy()
    assert getattr(fc, act)(a, out=a) is a
    assert np.array_equal(a, want)
    b = np.concatenate([x, np.zeros(5, np.float32)])
    got = getattr(fc, act)(b[:1003], out=b[5:])  # out overlaps x shifted: NumPy semantics
    assert np.array_equal(got, want)


@pytest.mark.parametrize("act", ACTS)
def test_same_bits_for_any_alignment_and_thread_count(isa, act, restore_cpu_state):
    rng = np.random.default_rng(2)
    x = randn(rng, (70001,), np.float32)
    fc.set_num_threads(1)
    one = getattr(fc, act)(x)
    fc.set_num_threads(2)  # conftest lets 4096 elements and more use the threads
    two = getattr(fc, act)(x)
    shifted = np.empty(70001 + 3, np.float32)[3:]  # 12 bytes past the buffer's alignment
    shifted[...] = x
    moved = getattr(fc, act)(shifted)
    assert np.array_equal(one, two) and np.array_equal(one, moved)


def test_the_kernel_entry_point_names_a_bad_activation():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="activation must be"):
        fc._cpu.activation_forward("elu", 0.0, x, x.copy())


# ----------------------------------------------------------------------------- fused epilogues
# conv2d / linear apply the activation to the finished sums before they store them
# (conv2d/microkernel.inl, winograd_transforms.inl, the reference loops): the same register
# functions as the separate kernel (simd/vector_math.h), so the bits must match it.

# (x shape NCHW, weight shape KCRS, conv2d keywords): the direct driver in both layouts with
# channels around the vector widths, 1x1, stride 2 with dilation, batch 1, and Winograd's two
# drivers (many tiles: tiles outer; few tiles, many channels: channels outer).
FUSED_CONVS = {
    "3x3_c17_k33": ((2, 17, 9, 11), (33, 17, 3, 3), dict(padding=1)),
    "1x1_c15_k16": ((1, 15, 6, 7), (16, 15, 1, 1), {}),
    "5x3_stride2_dil2": ((3, 5, 13, 12), (15, 5, 5, 3), dict(stride=2, padding=2, dilation=(1, 2))),
    "k1_batch1": ((1, 3, 8, 5), (1, 3, 3, 3), dict(padding="same")),
    "winograd_tiles_outer": ((2, 8, 30, 30), (17, 8, 3, 3), dict(padding=1, winograd=True)),
    "winograd_channels_outer": ((1, 33, 7, 7), (70, 33, 3, 3), dict(padding=1, winograd=True)),
}


def _fused_conv_inputs(case, layout, dtype):
    xs, ws, kw = FUSED_CONVS[case]
    kw = dict(kw)
    winograd = kw.pop("winograd", False)
    rng = np.random.default_rng(len(case) * 7 + len(layout))
    x, w, b = randn(rng, xs, dtype), randn(rng, ws, dtype) * 0.3, randn(rng, (ws[0],), dtype)
    x.flat[::29] = np.nan  # NaN must propagate through every epilogue
    if layout == "NHWC":
        x, w = np.ascontiguousarray(x.transpose(0, 2, 3, 1)), np.ascontiguousarray(w.transpose(2, 3, 1, 0))
    return x, w, b, dict(kw, layout=layout), winograd


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("layout", ("NCHW", "NHWC"))
@pytest.mark.parametrize("case", list(FUSED_CONVS))
@pytest.mark.parametrize("act", ACTS + ("relu",))
def test_conv2d_epilogue_equals_the_separate_kernel_bit_for_bit(
    isa, poison, restore_cpu_state, act, case, layout, dtype
):
    x, w, b, kw, winograd = _fused_conv_inputs(case, layout, dtype)
    fc.set_winograd(winograd)
    fc._cpu._set_winograd_forced(winograd)
    fused = fc.conv2d(x, w, b, activation=act, alpha=0.3, **kw)
    separate = fc.ops.eltwise.activate(act, fc.conv2d(x, w, b, **kw), 0.3)
    assert np.array_equal(fused, separate, equal_nan=True), (
        f"fused {act} differs from the separate pass at {np.argwhere(~((fused == separate) | np.isnan(separate)))[:3]}"
    )
    finite = np.isfinite(separate)
    want = ref.conv2d(np.nan_to_num(x), w, b, activation=act, alpha=0.3, **kw)
    assert np.array_equal(np.isnan(fused), ~np.isfinite(ref.conv2d(x, w, b, activation=act, alpha=0.3, **kw)))
    assert_close(np.where(finite, fused, 0), np.where(finite, want, 0), dtype=dtype, name=f"conv2d {act}")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("MKN", [(1, 9, 1), (3, 9, 15), (14, 33, 17), (29, 70, 33)], ids=str)
@pytest.mark.parametrize("act", ACTS + ("relu",))
def test_linear_epilogue_equals_the_separate_kernel_bit_for_bit(isa, poison, act, MKN, dtype):
    M, K, N = MKN
    rng = np.random.default_rng(M * K + N)
    x, w, b = randn(rng, (M, K), dtype), randn(rng, (N, K), dtype) * 0.3, randn(rng, (N,), dtype)
    x[0, 0] = np.nan
    fused = fc.linear(x, w, b, activation=act, alpha=0.3)
    separate = fc.ops.eltwise.activate(act, fc.linear(x, w, b), 0.3)
    assert np.array_equal(fused, separate, equal_nan=True)
    assert np.isnan(fused[0]).all() and not np.isnan(fused[1:]).any()
    assert_close(fused[1:], ref.linear(x[1:], w, b, activation=act, alpha=0.3), dtype=dtype, name=f"linear {act}")
    # the transposed weight view (a Keras kernel) goes through the same epilogue
    assert np.array_equal(
        fc.linear(x, np.ascontiguousarray(w.T).T, b, activation=act, alpha=0.3), fused, equal_nan=True
    )


def test_conv2d_and_linear_make_no_second_pass(monkeypatch):
    """The activation is in the kernel's epilogue: the elementwise kernels are never called."""

    def no_second_pass(*args):
        raise AssertionError("an activation kernel ran after the conv / GEMM")

    monkeypatch.setattr(fc._cpu, "activation_forward", no_second_pass)
    monkeypatch.setattr(fc._cpu, "relu_forward", no_second_pass)
    rng = np.random.default_rng(3)
    for act in ACTS + ("relu",):
        fc.conv2d(randn(rng, (1, 3, 6, 6)), randn(rng, (4, 3, 3, 3)), activation=act)
        fc.linear(randn(rng, (2, 5)), randn(rng, (3, 5)), activation=act)
        fc.layers.Conv2D(2, 3, activation=act).forward(randn(rng, (1, 3, 5, 5)))
        fc.layers.Dense(2, activation=act).forward(randn(rng, (2, 5)))


# ----------------------------------------------------------------------------- CUDA kernels (emulated)


@pytest.fixture
def emu_backend(monkeypatch, poison):
    monkeypatch.setattr(backend_cpu, "CPU", emu.backend())
    return emu.backend()


@pytest.mark.parametrize("n", (1, 7, 1001))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("act", ACTS)
def test_cuda_kernels_emulated(emu_backend, act, dtype, n):
    rng = np.random.default_rng(n)
    x = randn(rng, (n,), dtype) * 4
    x[::7] = np.nan
    y = check_op(act, x)
    assert f"{act}_fwd_vec" in _cuda_emu.last_kernel()
    check_op(f"{act}_backward", randn(rng, (n,), dtype), y)
    inplace = x.copy()
    assert getattr(fc, act)(inplace, out=inplace) is inplace
    assert_close(inplace, getattr(ref, act)(x), dtype=dtype, name=f"{act} in place")


@pytest.mark.parametrize("version", (1, 2, 3))  # kernel1_naive, kernel2_smem_tiled, kernel3_regtile
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("layout", ("NCHW", "NHWC"))
@pytest.mark.parametrize("act", ACTS)
def test_cuda_conv2d_epilogue_emulated(emu_backend, act, layout, dtype, version):
    """The CUDA conv2d applies the activation in its epilogue: the conv kernel is the last launch
    and the result equals the separate activation kernel's."""
    x, w, b, kw, _ = _fused_conv_inputs("3x3_c17_k33", layout, dtype)
    x = np.nan_to_num(x)
    with emu_backend.using(version=version):
        fused = check_op("conv2d", x, w, b, activation=act, alpha=0.3, **kw)
        assert "conv2d_fwd" in _cuda_emu.last_kernel(), _cuda_emu.last_kernel()
        separate = fc.ops.eltwise.activate(act, fc.conv2d(x, w, b, **kw), 0.3)
    assert np.array_equal(fused, separate)


def test_cuda_kernels_emulated_misaligned(emu_backend):
    x = np.empty(1001 + 1, np.float32)[1:]
    x[...] = randn(np.random.default_rng(9), (1001,))
    check_op("sigmoid", x)
    assert _cuda_emu.last_kernel().endswith("_vec1")


@pytest.mark.parametrize(
    "call",
    [
        lambda a, dt: fc.leaky_relu(np.zeros(3, dt), a),
        lambda a, dt: fc.leaky_relu_backward(np.ones(3, dt), np.zeros(3, dt), a),
        lambda a, dt: fc.conv2d(
            np.zeros((1, 1, 3, 3), dt), np.ones((1, 1, 1, 1), dt), activation="leaky_relu", alpha=a
        ),
        lambda a, dt: fc.linear(np.zeros((2, 3), dt), np.ones((4, 3), dt), activation="leaky_relu", alpha=a),
    ],
    ids=["leaky_relu", "leaky_relu_backward", "conv2d", "linear"],
)
def test_a_slope_that_overflows_the_dtype_is_refused(call):
    """alpha = 1e300 is finite in float64 but inf in float32, where leaky_relu(0) became NaN."""
    with pytest.raises(ValueError, match=r"alpha .*1e\+300 overflows float32"):
        call(1e300, np.float32)
    assert np.isfinite(call(1e300, np.float64)).all()
    assert np.isfinite(call(3e38, np.float32)).all()
