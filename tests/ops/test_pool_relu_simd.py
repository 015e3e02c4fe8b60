"""SIMD max pooling and ReLU (csrc/cpu/pool2d/maxpool.inl, eltwise/eltwise.inl) against the portable
kernels (the `scalar` ISA) and fastconv.reference, on every ISA this CPU runs.

Pooling and ReLU do no arithmetic in the forward pass, and the backward pass adds in the same
order as the portable kernel, so every comparison is exact (bit for bit, NaN included). Data
are small integers so windows hold many ties (first element in row-major order must win);
some cases add NaN. FASTCONV_POISON=1 fills every output with NaN / -1 first, so an element a
kernel forgets to write cannot pass.
"""

from __future__ import annotations

import itertools  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import fastconv as fc  # noqa: E402
from fastconv import reference as ref  # noqa: E402

SIMD_ISAS = [i for i in fc.available_cpu_isas() if i != "scalar"]
DTYPES = (np.float32, np.float64)
LAYOUTS = ("NCHW", "NHWC")


pytestmark = pytest.mark.usefixtures("poison", "restore_cpu_state")


def on_isa(isa, fn, *args, **kwargs):
    fc.set_cpu_isa(isa)
    assert fc.cpu_isa() == isa
    return fn(*args, **kwargs)


def assert_same(got, want, what, bitwise=False):
    """Equal arrays (NaN == NaN; with bitwise=True also -0.0 != +0.0 and NaN payloads), with the
    first differing index in the message."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if bitwise and got.dtype.kind == "f":
        assert got.dtype == want.dtype
        same = got.view(f"u{got.itemsize}") == want.view(f"u{want.itemsize}")
    elif got.dtype.kind == "f":
        same = (got == want) | (np.isnan(got) & np.isnan(want))
    else:
        same = got == want
    if not same.all():
        first = tuple(int(i) for i in np.argwhere(~same)[0])
        raise AssertionError(
            f"{what}: {int((~same).sum())} elements differ, first at {first}: got {got[first]!r}, want {want[first]!r}"
        )


def make_x(rng, shape, dtype, nan=False):
    x = rng.integers(-4, 5, size=shape).astype(dtype)  # many ties
    if nan:
        x.flat[rng.choice(x.size, size=max(1, x.size // 50), replace=False)] = np.nan
    return x


def check_pool(isa, rng, N, C, H, W, k, stride, padding, layout, dtype, nan=False):
    shape = (N, C, H, W) if layout == "NCHW" else (N, H, W, C)
    x = make_x(rng, shape, dtype, nan)
    kw = dict(kernel_size=k, stride=stride, padding=padding, layout=layout)
    tag = f"{isa} {layout} {np.dtype(dtype).name} x{shape} k{k} s{stride} p{padding}"

    y, idx = on_isa(isa, fc.max_pool2d, x, **kw)
    y0, idx0 = on_isa("scalar", fc.max_pool2d, x, **kw)
    yr, idxr = ref.max_pool2d(x, **kw)
    assert y.dtype == dtype and idx.dtype == np.int64
    assert_same(y, y0, f"forward y vs portable, {tag}", bitwise=True)
    assert_same(idx, idx0, f"forward indices vs portable, {tag}")
    assert_same(y, yr.astype(dtype), f"forward y vs reference, {tag}")
    assert_same(idx, idxr, f"forward indices vs reference, {tag}")

    gy = rng.integers(-8, 9, size=y.shape).astype(dtype)  # small integers: sums are exact
    gx = on_isa(isa, fc.max_pool2d_backward, gy, idx, shape, **kw)
    gx0 = on_isa("scalar", fc.max_pool2d_backward, gy, idx, shape, **kw)
    assert gx.dtype == dtype
    assert_same(gx, gx0, f"backward vs portable, {tag}", bitwise=True)
    assert_same(gx, ref.max_pool2d_backward(gy, idx, shape, **kw).astype(dtype), f"backward vs reference, {tag}")


# Widths around the vector widths (8/16 floats, 4/8 doubles) after pooling: Q = 7..9, 15..17.
@pytest.mark.parametrize("isa", SIMD_ISAS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_2x2_stride2_grid(isa, layout, dtype):
    """The VGG case (2x2, stride 2, no padding): channels 1/15/16/17/33, even and odd sizes."""
    rng = np.random.default_rng(1)
    for C, W in itertools.product((1, 15, 16, 17, 33), (14, 15, 16, 17, 18, 31, 32, 33, 34, 35)):
        check_pool(isa, rng, 1, C, 5, W, 2, 2, 0, layout, dtype)


@pytest.mark.parametrize("isa", SIMD_ISAS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", (2, 3, (2, 3)))
def test_max_pool_window_stride_padding_grid(isa, layout, dtype, k):
    rng = np.random.default_rng(2)
    cases = itertools.product((1, 2, 3, (2, 1)), (0, 1, ((1, 0), (0, 1))), (1, 17), (9, 19, 34))
    for i, (stride, padding, C, W) in enumerate(cases):
        check_pool(isa, rng, 1 + i % 2, C, 7, W, k, stride, padding, layout, dtype)


@pytest.mark.parametrize("isa", SIMD_ISAS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_windows_wider_than_the_plane(isa, layout, dtype):
    """Windows that overhang the plane on both sides, Keras 'same' with a kernel larger than the
    map, and huge kernels (one output position whose stride is ignored)."""
    rng = np.random.default_rng(5)
    cases = [
        (4, 4, 5, None, 2),
        (4, 4, 5, 1, 4),
        (4, 4, 40, None, 19),
        (4, 4, 8, None, "same"),
        (4, 5, 8, 1, "same"),
        (1, 1, 2, 1, 1),
        (1, 7, 5, 1, 4),
        (3, 3, (1, 100001), None, "same"),
        (3, 4, (100001, 3), None, "same"),
        (5, 3, (3, 2001), 1, (1, 1000)),
    ]
    for H, W, k, stride, padding in cases:
        check_pool(isa, rng, 2, 3, H, W, k, stride, padding, layout, dtype)


@pytest.mark.parametrize("isa", SIMD_ISAS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_nan_wins_and_propagates(isa, layout, dtype):
    rng = np.random.default_rng(3)
    for k, stride, padding, C in [(2, 2, 0, 17), (3, 2, 1, 16), (3, 1, 1, 33), (2, 3, 0, 15)]:
        check_pool(isa, rng, 2, C, 9, 37, k, stride, padding, layout, dtype, nan=True)
    # A NaN after the maximum wins; one before it stays.
    x = np.array([[[[1.0, np.nan, 5.0, 2.0], [np.nan, 9.0, -1.0, 3.0]]]], dtype)
    if layout == "NHWC":
        x = x.transpose(0, 2, 3, 1).copy()
    y, idx = on_isa(isa, fc.max_pool2d, x, 2, layout=layout)
    assert np.isnan(y.ravel()[0]) and idx.ravel()[0] == 1
    assert y.ravel()[1] == 5.0 and idx.ravel()[1] == 2


@pytest.mark.parametrize("isa", SIMD_ISAS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_max_pool_all_equal_window_picks_first(isa, layout):
    x = np.full((1, 3, 6, 40), 2.5, np.float32)
    if layout == "NHWC":
        x = x.transpose(0, 2, 3, 1).copy()
    for k, s, pad in [(2, 2, 0), (3, 2, 1), (3, 3, 0), (2, 1, 1)]:
        _, idx = on_isa(isa, fc.max_pool2d, x, k, stride=s, padding=pad, layout=layout)
        _, idxr = ref.max_pool2d(x, k, stride=s, padding=pad, layout=layout)
        assert_same(idx, idxr, f"{isa} {layout} k{k} s{s} p{pad}")


@pytest.mark.parametrize("isa", SIMD_ISAS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_backward_any_in_range_indices(isa, layout, dtype):
    """Indices that max_pool2d did not produce (outside their window, repeated) still scatter
    exactly like the portable kernel: the fast path must hand over to the general one."""
    rng = np.random.default_rng(4)
    for N, C, H, W, k, s in [(1, 17, 8, 36, 2, 2), (2, 16, 9, 9, 3, 3), (1, 33, 7, 20, 3, 1)]:
        shape = (N, C, H, W) if layout == "NCHW" else (N, H, W, C)
        P, Q = (H - k) // s + 1, (W - k) // s + 1
        out_shape = (N, C, P, Q) if layout == "NCHW" else (N, P, Q, C)
        kw = dict(kernel_size=k, stride=s, layout=layout)
        gy = rng.integers(-8, 9, size=out_shape).astype(dtype)
        _, idx = ref.max_pool2d(make_x(rng, shape, dtype), **kw)
        stray = idx.copy()
        stray.flat[rng.choice(stray.size, 3, replace=False)] = [0, H * W - 1, (H // 2) * W]
        everywhere = rng.integers(0, H * W, size=out_shape)
        for name, ind in [("from max_pool2d", idx), ("a few strays", stray), ("random", everywhere)]:
            gx = on_isa(isa, fc.max_pool2d_backward, gy, ind, shape, **kw)
            gx0 = on_isa("scalar", fc.max_pool2d_backward, gy, ind, shape, **kw)
            assert_same(gx, gx0, f"{isa} {layout} {name} x{shape} k{k} s{s}", bitwise=True)
            assert_same(gx, ref.max_pool2d_backward(gy, ind, shape, **kw).astype(dtype), f"{isa} {name} vs reference")


@pytest.mark.parametrize("isa", SIMD_ISAS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_backward_negative_zero_and_nan_gradients(isa, layout, dtype):
    """grad_x = 0 + grad_y like the scatter-add: -0.0 becomes +0.0, NaN stays NaN."""
    rng = np.random.default_rng(11)
    for k, s, pad in [(2, 2, 0), (2, 3, 1), (3, 3, 0)]:
        shape = (2, 17, 9, 20) if layout == "NCHW" else (2, 9, 20, 17)
        x = make_x(rng, shape, dtype)
        kw = dict(kernel_size=k, stride=s, padding=pad, layout=layout)
        _, idx = fc.max_pool2d(x, **kw)
        gy = np.where(rng.random(idx.shape) < 0.5, -0.0, np.nan).astype(dtype)
        gx = on_isa(isa, fc.max_pool2d_backward, gy, idx, shape, **kw)
        assert_same(
            gx, on_isa("scalar", fc.max_pool2d_backward, gy, idx, shape, **kw), f"{isa} k{k} s{s}", bitwise=True
        )
        assert not np.signbit(gx).any()


@pytest.mark.parametrize("isa", fc.available_cpu_isas())
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("k,s", [(2, 2), (3, 1)])
def test_max_pool_backward_bad_index_raises(isa, layout, k, s):
    rng = np.random.default_rng(5)
    shape = (2, 16, 8, 8) if layout == "NCHW" else (2, 8, 8, 16)
    x = make_x(rng, shape, np.float32)
    _, idx = fc.max_pool2d(x, k, stride=s, layout=layout)
    gy = np.ones(idx.shape, np.float32)
    for bad in (-1, 64, 1 << 40):
        broken = idx.copy()
        broken.flat[idx.size // 2] = bad
        with pytest.raises(ValueError, match="indices"):
            on_isa(isa, fc.max_pool2d_backward, gy, broken, shape, k, stride=s, layout=layout)


@pytest.mark.parametrize("isa", SIMD_ISAS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_max_pool_threads_and_batch1_vgg_like(isa, layout):
    """A VGG-like shape (batch 1, 64 channels, 2x2/2) with 1, 2 and 3 threads gives the same bits."""
    rng = np.random.default_rng(6)
    shape = (1, 64, 30, 30) if layout == "NCHW" else (1, 30, 30, 64)
    x = rng.standard_normal(shape).astype(np.float32)
    yr, idxr = ref.max_pool2d(x, 2, layout=layout)
    gy = rng.standard_normal(yr.shape).astype(np.float32)
    gxr = ref.max_pool2d_backward(gy, idxr, shape, 2, layout=layout).astype(np.float32)
    before = fc.get_num_threads()
    try:
        for threads in (1, 2, 3):
            fc.set_num_threads(threads)
            y, idx = on_isa(isa, fc.max_pool2d, x, 2, layout=layout)
            assert_same(y, yr.astype(np.float32), f"{threads} threads")
            assert_same(idx, idxr, f"{threads} threads")
            assert_same(
                on_isa(isa, fc.max_pool2d_backward, gy, idx, shape, 2, layout=layout), gxr, f"{threads} threads"
            )
    finally:
        fc.set_num_threads(before)


# ----------------------------------------------------------------------------- ReLU

SIZES = (1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 1000, 4097, (1 << 16) + 5, (1 << 21) + 13)


@pytest.mark.parametrize("isa", SIMD_ISAS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_forward_backward_sizes(isa, dtype):
    rng = np.random.default_rng(7)
    for n in SIZES:
        x = rng.standard_normal(n).astype(dtype)
        x[rng.choice(n, size=max(1, n // 100), replace=False)] = np.nan
        if n > 4:
            x[1], x[2], x[3] = 0.0, -0.0, np.inf
        gy = rng.standard_normal(n).astype(dtype)
        y = on_isa(isa, fc.relu, x)
        assert_same(y, on_isa("scalar", fc.relu, x), f"relu {isa} n={n}", bitwise=True)
        assert_same(y, ref.relu(x).astype(dtype), f"relu vs reference {isa} n={n}")
        gx = on_isa(isa, fc.relu_backward, gy, y)
        assert_same(gx, on_isa("scalar", fc.relu_backward, gy, y), f"relu_backward {isa} n={n}", bitwise=True)
        assert_same(gx, ref.relu_backward(gy, y).astype(dtype), f"relu_backward vs reference {isa} n={n}")


@pytest.mark.parametrize("isa", SIMD_ISAS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_unaligned_views_and_in_place(isa, dtype):
    """Offsets 0..15 elements from an allocation (alignment peeling of streaming stores), in
    place (out=x), and a 4-D tensor."""
    rng = np.random.default_rng(8)
    base = rng.standard_normal((1 << 20) + 64).astype(dtype)
    for off in range(16):
        x = base[off : off + (1 << 20) + off]
        want = ref.relu(x).astype(dtype)
        assert_same(on_isa(isa, fc.relu, x), want, f"offset {off}")
        xc = x.copy()
        out = on_isa(isa, fc.relu, xc, out=xc)
        assert out is xc
        assert_same(xc, want, f"in place, offset {off}")
        gy = base[16 - off : 16 - off + x.size].copy()
        assert_same(
            on_isa(isa, fc.relu_backward, gy, want), ref.relu_backward(gy, want).astype(dtype), f"bwd offset {off}"
        )
    x4 = rng.standard_normal((2, 64, 17, 19)).astype(dtype)
    assert_same(on_isa(isa, fc.relu, x4), ref.relu(x4).astype(dtype), "4-D")


@pytest.mark.parametrize("isa", SIMD_ISAS)
def test_relu_threads(isa):
    rng = np.random.default_rng(9)
    x = rng.standard_normal(3 * (1 << 20) + 7).astype(np.float32)
    want = ref.relu(x).astype(np.float32)
    before = fc.get_num_threads()
    try:
        for threads in (1, 2, 3):
            fc.set_num_threads(threads)
            assert_same(on_isa(isa, fc.relu, x), want, f"{threads} threads")
    finally:
        fc.set_num_threads(before)


@pytest.mark.parametrize("isa", SIMD_ISAS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_large_streaming_stores(isa, dtype):
    """Outputs over 16 MiB take the non-temporal-store path; misaligned starts and in place too."""
    rng = np.random.default_rng(10)
    n = (16 << 20) // np.dtype(dtype).itemsize + 37
    base = rng.standard_normal(n + 8).astype(dtype)
    base[rng.choice(n, 100, replace=False)] = np.nan
    for off in (0, 3):
        x = base[off : off + n]
        want = ref.relu(x).astype(dtype)
        assert_same(on_isa(isa, fc.relu, x), want, f"offset {off}")
        gy = base[8 - off : 8 - off + n]
        assert_same(on_isa(isa, fc.relu_backward, gy, want), ref.relu_backward(gy, want).astype(dtype), f"bwd {off}")
    xc = base[1 : 1 + n].copy()
    want = ref.relu(xc).astype(dtype)
    fc.set_cpu_isa(isa)
    fc.relu(xc, out=xc)
    assert_same(xc, want, "in place")


@pytest.mark.parametrize("isa", SIMD_ISAS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_large_streaming_paths(isa, layout, dtype):
    """Outputs over 16 MiB take the non-temporal-store paths (NHWC forward, NHWC tiles and NCHW
    bands backward); they must give the portable kernel's bits, and stray indices still fall back."""
    rng = np.random.default_rng(12)
    shape = (1, 64, 300, 300) if layout == "NCHW" else (1, 300, 300, 64)
    x = make_x(rng, shape, dtype, nan=True)
    y, idx = on_isa(isa, fc.max_pool2d, x, 2, layout=layout)
    y0, idx0 = on_isa("scalar", fc.max_pool2d, x, 2, layout=layout)
    assert_same(y, y0, "forward", bitwise=True)
    assert_same(idx, idx0, "forward indices")
    gy = rng.integers(-8, 9, size=y.shape).astype(dtype)
    for name, ind in [("own", idx), ("stray", np.where(rng.random(idx.shape) < 1e-4, 0, idx))]:
        gx = on_isa(isa, fc.max_pool2d_backward, gy, ind, shape, 2, layout=layout)
        assert_same(gx, on_isa("scalar", fc.max_pool2d_backward, gy, ind, shape, 2, layout=layout), name, bitwise=True)
