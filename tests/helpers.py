"""Shared test helpers: data makers, the whole-op checker and a finite-difference gradient.

check_op("conv2d", x, w, b, stride=2, layout="NHWC")   # fastconv vs reference, every output
"""

from __future__ import annotations

import numpy as np

from fastconv import reference as ref

# Tolerances, relative to the largest |expected| of each output.
RTOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-4}

# Names of each op's outputs, for messages (a single name: the op returns one array).
OUTPUTS = {
    "conv2d": ("y",),
    "conv2d_backward": ("grad_x", "grad_weight", "grad_bias"),
    "conv2d_backward_data": ("grad_x",),
    "conv2d_backward_weight": ("grad_weight", "grad_bias"),
    "max_pool2d": ("y", "indices"),
    "max_pool2d_backward": ("grad_x",),
    "relu": ("y",),
    "relu_backward": ("grad_x",),
    "batch_norm": ("y", "saved_mean", "saved_inv_std"),
    "batch_norm_backward": ("grad_x", "grad_gamma", "grad_beta"),
    "avg_pool2d": ("y",),
    "avg_pool2d_backward": ("grad_x",),
    "global_avg_pool2d": ("y",),
    "global_avg_pool2d_backward": ("grad_x",),
    "global_max_pool2d": ("y", "indices"),
    "global_max_pool2d_backward": ("grad_x",),
    **{name: ("y",) for name in ("sigmoid", "tanh", "leaky_relu")},
    **{f"{name}_backward": ("grad_x",) for name in ("sigmoid", "tanh", "leaky_relu")},
    "linear": ("y",),
    "linear_backward": ("grad_x", "grad_weight", "grad_bias"),
    "linear_backward_data": ("grad_x",),
    "linear_backward_weight": ("grad_weight", "grad_bias"),
}


# ----------------------------------------------------------------------------- data


def randn(rng, shape, dtype=np.float32):
    """Standard-normal data (never exactly zero in practice)."""
    return rng.standard_normal(shape).astype(dtype)


def small_ints(rng, shape, dtype=np.float32, low=-3, high=3):
    """Integers in [low, high]: every partial sum of a conv is exact in float32."""
    return rng.integers(low, high + 1, size=shape).astype(dtype)


def noncontiguous(a, kind="slice"):
    """The same values as `a` in a non-C-contiguous array.

    "slice": every other element of a wider buffer along each axis; "fortran": column-major
    storage (a transposed view); "reversed": negative strides along the last two axes.
    """
    a = np.asarray(a)
    if kind == "fortran" and a.ndim < 2:
        kind = "reversed"  # a 1-D array is contiguous in both orders
    if kind == "slice":
        poison = np.nan if np.issubdtype(a.dtype, np.floating) else -1  # the gaps must never be read
        big = np.full(tuple(2 * d for d in a.shape), poison, a.dtype)
        view = big[tuple(slice(None, None, 2) for _ in a.shape)]
    elif kind == "fortran":
        view = np.empty(a.shape[::-1], a.dtype).T
    elif kind == "reversed":
        view = np.empty(a.shape, a.dtype)[(Ellipsis,) + (slice(None, None, -1),) * min(a.ndim, 2)]
    else:
        raise ValueError(kind)
    view[...] = a
    assert not view.flags.c_contiguous or max(a.shape, default=1) <= 1
    return view


# ----------------------------------------------------------------------------- comparison


def _first_mismatch(bad):
    return tuple(int(i) for i in np.argwhere(bad)[0])


def assert_close(got, want, *, dtype, name="output", exact=False, rtol=None):
    """got (from fastconv) against want (float64 reference): type, shape, dtype and values.

    Floats pass when |got - want| <= rtol * max|want| (NaN must match NaN); integer outputs
    and `exact=True` must be equal. The message gives the first bad index and both values.
    """
    assert type(got) is np.ndarray, f"{name}: expected a numpy.ndarray, got {type(got).__name__}"
    want = np.asarray(want)
    assert got.shape == want.shape, f"{name}: shape {got.shape}, expected {want.shape}"
    if np.issubdtype(want.dtype, np.integer):
        assert got.dtype in (np.int32, np.int64), f"{name}: dtype {got.dtype}, expected int32/int64"
        bad = got != want
        tol = 0.0
    else:
        assert got.dtype == np.dtype(dtype), f"{name}: dtype {got.dtype}, expected {np.dtype(dtype)}"
        g, w = got.astype(np.float64), want.astype(np.float64)
        nan_g, nan_w = np.isnan(g), np.isnan(w)
        finite = ~(nan_g | nan_w)
        scale = np.abs(w[finite]).max(initial=0.0)
        tol = 0.0 if exact else (RTOL[np.dtype(dtype)] if rtol is None else rtol) * max(scale, 1e-300)
        bad = nan_g != nan_w
        with np.errstate(invalid="ignore"):  # inf - inf
            diff = np.where(g[finite] == w[finite], 0.0, np.abs(g[finite] - w[finite]))
        bad[finite] = diff > tol
    if bad.any():
        i = _first_mismatch(bad)
        raise AssertionError(
            f"{name}: {int(bad.sum())} of {bad.size} elements differ (tol {tol:.3g}); "
            f"first at index {i}: got {got[i]!r}, expected {want[i]!r}"
        )


def check_op(op, *args, dtype=None, exact=False, rtol=None, **kwargs):
    """Run fastconv.<op> and reference.<op> on the same inputs and compare every output.

    Also checks that the inputs were not modified and that outputs are new arrays.
    `dtype` is the expected float dtype of the outputs (default: that of the first argument).
    Returns fastconv's result.
    """
    import fastconv as fc

    arrays = [a for a in list(args) + list(kwargs.values()) if isinstance(a, np.ndarray)]
    before = [a.copy() for a in arrays]
    dtype = np.dtype(dtype if dtype is not None else np.asarray(args[0]).dtype)

    got = getattr(fc, op)(*args, **kwargs)
    want = getattr(ref, op)(*args, **kwargs)

    names = OUTPUTS[op]
    if len(names) == 1:
        got, want = (got,), (want,)
    assert isinstance(got, tuple) and len(got) == len(names), (
        f"{op}: expected a tuple of {len(names)} ({', '.join(names)}), got {type(got).__name__}"
    )
    for name, g, w in zip(names, got, want):
        label = f"{op} {name}"
        if w is None:
            assert g is None, f"{label}: expected None, got {type(g).__name__}"
            continue
        assert_close(g, w, dtype=dtype, name=label, exact=exact, rtol=rtol)
        for a in arrays:
            assert not np.shares_memory(g, a), f"{label} shares memory with an input"
    for a, b in zip(arrays, before):
        assert np.array_equal(a, b, equal_nan=True), f"{op} modified one of its inputs"
    return got if len(names) > 1 else got[0]


# ----------------------------------------------------------------------------- gradients


def numerical_grad(f, a, g, eps=1e-6):
    """Central differences of loss(a) = sum(f(a) * g) with respect to every element of a."""
    a = np.array(a, dtype=np.float64)
    grad = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + eps
        plus = np.sum(f(a) * g)
        a[i] = old - eps
        minus = np.sum(f(a) * g)
        a[i] = old
        grad[i] = (plus - minus) / (2 * eps)
    return grad
