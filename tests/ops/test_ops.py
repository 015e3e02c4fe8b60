"""The shared matrix: every row of tests/ops/families against the float64 NumPy reference, on
each CPU path (`isa` fixture) with NaN-poisoned outputs; exact results on the data that make a
row exact (small integers: every partial sum exact in float32, STYLE.md 9); non-contiguous
arrays. Then what only conv2d, max pooling and relu promise (views, NaN rules, defaults).
"""

from __future__ import annotations

import numpy as np
import pytest
from families import DTYPES, ROWS
from families import conv2d as conv_family
from helpers import OUTPUTS, assert_close, check_op, noncontiguous, randn

import fastconv as fc
from fastconv import reference as ref

LAYOUTS = ["NCHW", "NHWC"]
KINDS = ("slice", "fortran", "reversed")


def _params(pairs):
    return [pytest.param(row, case, id=f"{row.name}-{case}") for row, case in pairs]


# Smooth activations round even on integer sums: exact data makes a row exact only without them.
EXACT = [
    (row, case)
    for row in ROWS
    if row.exact_data
    for case, cfg in row.cases.items()
    if cfg.get("activation") in (None, "relu")
]


def _outputs(result):
    return result if isinstance(result, tuple) else (result,)


@pytest.mark.parametrize("row,case", _params((row, case) for row in ROWS for case in row.cases))
def test_matches_reference(isa, poison, row, case):
    for dtype in DTYPES:  # one test for both: half the items, the same calls
        call = row.draw(row.cases[case], np.random.default_rng(0), dtype, randn)
        check_op(row.op, *call.args, rtol=row.tolerance(dtype), exact=row.exact, **call.kwargs)


@pytest.fixture
def no_winograd():
    previous = fc.get_winograd()
    fc.set_winograd(False)
    yield
    fc.set_winograd(previous)


@pytest.mark.parametrize("row,case", _params(EXACT))
def test_exact_on_exact_data(isa, poison, no_winograd, row, case):
    """Any blocking order must give the reference's values exactly. (The direct conv kernels;
    Winograd's transforms round by design, test_winograd.py bounds them.)"""
    for dtype in DTYPES:
        call = row.draw(row.cases[case], np.random.default_rng(5), dtype, row.exact_data)
        check_op(row.op, *call.args, exact=True, **call.kwargs)


@pytest.mark.parametrize("row,case", _params((row, case) for row in ROWS for case in row.noncontiguous_cases()))
def test_noncontiguous_inputs(isa, poison, row, case):
    """Strided, transposed (a Keras kernel as weight.T) and reversed views of every array: the
    reference's values and the bits of the contiguous call."""
    for dtype in DTYPES:
        call = row.draw(row.cases[case], np.random.default_rng(3), dtype, randn)
        want = _outputs(getattr(fc, row.op)(*call.args, **call.kwargs))
        for kind in KINDS:
            strided = call.map_arrays(lambda a, kind=kind: noncontiguous(a, kind))
            got = check_op(row.op, *strided.args, rtol=row.tolerance(dtype), exact=row.exact, **strided.kwargs)
            for name, g, w in zip(OUTPUTS[row.op], _outputs(got), want):
                assert (g is None and w is None) or np.array_equal(g, w, equal_nan=True), (
                    f"{row.op} {name} {np.dtype(dtype).name}: {kind} inputs give other bits than contiguous ones"
                )


def test_every_public_op_has_a_complete_row():
    """The recipe of tests/ops/families: each op a row with grid cases, hypothesis configs and bad
    inputs, each backward op finite differences too."""
    ops = {row.op for row in ROWS}
    assert ops == set(OUTPUTS), f"ops without a row: {set(OUTPUTS) - ops}, rows without outputs: {ops - set(OUTPUTS)}"
    for op in ops:
        rows = [row for row in ROWS if row.op == op]
        assert all(row.cases and row.configs is not None for row in rows), op
        assert any(row.bad for row in rows) and any(row.valid for row in rows), f"{op}: no bad inputs"
        if "backward" in op:
            assert any(row.grad and row.grad_cases for row in rows), f"{op}: no finite differences"
    for row in ROWS:
        prefixes = [p for p in row.noncontiguous if not any(c == p or c.startswith(p + "-") for c in row.cases)]
        assert not prefixes, f"{row.name}: noncontiguous names no case: {prefixes}"


# ----------------------------------------------------------------------------- conv2d


def test_conv2d_transposed_views(isa):
    """NCHW data handed over as a transposed view of NHWC storage (and the weight likewise)."""
    rng = np.random.default_rng(4)
    x = randn(rng, (2, 9, 8, 16)).transpose(0, 3, 1, 2)  # (N,C,H,W) view of NHWC storage
    w = randn(rng, (3, 3, 16, 17)).transpose(3, 2, 0, 1)  # (K,C,R,S) view of RSCK storage
    check_op("conv2d", x, w, padding=1)
    gy = randn(rng, (2, 8, 9, 17)).transpose(0, 3, 2, 1)  # (N,K,P,Q) view, odd strides
    check_op("conv2d_backward", gy, x, w, padding=1)


def test_conv2d_defaults_and_output_type(isa):
    rng = np.random.default_rng(6)
    x, w = randn(rng, (2, 3, 6, 6)), randn(rng, (4, 3, 3, 3))
    y = fc.conv2d(x, w)
    assert type(y) is np.ndarray and y.shape == (2, 4, 4, 4) and y.dtype == np.float32
    assert_close(y, ref.conv2d(x, w), dtype=np.float32)
    assert_close(
        fc.conv2d(x, w, None, stride=(1, 1), padding=[0, 0], dilation=(1, 1)), ref.conv2d(x, w), dtype=np.float32
    )


def test_conv2d_batch_independence(isa):
    """Each image of a batch gives the same result as when it is run alone."""
    rng = np.random.default_rng(7)
    x, w, b = randn(rng, (5, 16, 9, 9)), randn(rng, (17, 16, 3, 3)), randn(rng, (17,))
    y = fc.conv2d(x, w, b, padding=1)
    for n in range(5):
        assert_close(fc.conv2d(x[n : n + 1], w, b, padding=1), y[n : n + 1], dtype=np.float32, rtol=1e-5)


# ----------------------------------------------------------------------------- max pooling


def test_max_pool2d_padding_never_wins(isa):
    for dtype in DTYPES:
        x = np.full((1, 2, 5, 5), -np.inf, dtype)
        x[0, 1] = -7.0
        y, idx = check_op("max_pool2d", x, 3, stride=1, padding=1, exact=True)
        assert (y[0, 0] == -np.inf).all() and (y[0, 1] == -7).all()


def test_max_pool2d_default_stride(isa):
    rng = np.random.default_rng(10)
    x = randn(rng, (1, 3, 8, 6))
    y, idx = fc.max_pool2d(x)
    assert y.shape == (1, 3, 4, 3) and idx.shape == y.shape and idx.dtype in (np.int32, np.int64)
    y2, idx2 = fc.max_pool2d(x, 3)
    assert y2.shape == (1, 3, 2, 2)


# ----------------------------------------------------------------------------- relu


def test_relu_special_values(isa):
    for dtype in DTYPES:
        x = np.array([-2.0, -0.0, 0.0, 1e-30, 3.0, np.inf, -np.inf] * 5, dtype)
        check_op("relu", x, exact=True)
        check_op("relu_backward", np.ones_like(x), x, exact=True)


# ----------------------------------------------------------------------------- NaN propagation


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_nan_propagation(isa, layout, dtype):
    """The output is NaN exactly where the window touches a NaN input (no leaking elsewhere)."""
    rng = np.random.default_rng(12)
    x, w, b, gy, kw = conv_family.arrays(conv_family.BASE[f"3x3_same_d2-layout={layout}"], rng, dtype, randn)
    x[(0, 3, 4, 5) if layout == "NCHW" else (0, 4, 5, 3)] = np.nan
    x[(1, 0, 0, 0)] = np.nan
    y = check_op("conv2d", x, w, b, **kw)
    assert np.isnan(y).any() and not np.isnan(y).all()
    check_op("conv2d", x, w, b, activation="relu", **kw)
    check_op("conv2d_backward_weight", gy, x, w.shape, **kw)
    gy[(0, 1, 1, 1)] = np.nan
    check_op("conv2d_backward_data", gy, w, x.shape, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_and_pool_nan_propagation(isa, dtype):
    rng = np.random.default_rng(13)
    x = randn(rng, (2, 3, 6, 6), dtype)
    x[0, 0, 1, 1] = x[1, 2, 4, 5] = x[1, 2, 5, 4] = np.nan
    x[0, 1, 0, 0] = -np.nan if dtype == np.float32 else np.nan
    y = check_op("relu", x, exact=True)
    assert np.isnan(y[0, 0, 1, 1])
    y, idx = check_op("max_pool2d", x, 2, exact=True)
    assert np.isnan(y[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 1 * 6 + 1
    assert np.isnan(y[1, 2, 2, 2]) and idx[1, 2, 2, 2] == 4 * 6 + 5  # first NaN in row-major order
    check_op("max_pool2d", x, 3, stride=1, padding=1, exact=True)
