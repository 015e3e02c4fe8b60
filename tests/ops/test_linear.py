"""fc.linear and its backward passes (the dense-layer GEMM) against the float64 reference, on
every CPU path: an edge grid around the register tile and the reduction block, transposed and
non-contiguous operands, small-integer exact checks, finite differences, errors, threads."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close, check_op, noncontiguous, numerical_grad, randn, small_ints

import fastconv as fc

# Rows around both register tiles (AVX2 6, AVX-512 14), columns around the panel widths (8, 16,
# 32 lanes), reductions around the reduction block (256) and the 512-byte row groups.
GRID = [
    (1, 1, 1),
    (1, 7, 3),
    (5, 13, 17),
    (6, 16, 16),
    (7, 33, 31),
    (14, 256, 32),
    (15, 257, 33),
    (29, 300, 129),
    (64, 576, 64),
    (8, 1030, 10),
    (3, 513, 200),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("M,K,N", GRID)
def test_linear_all_passes_match_reference(isa, M, K, N, dtype):
    rng = np.random.default_rng(M * 1000 + K + N)
    x, w, b = randn(rng, (M, K), dtype), randn(rng, (N, K), dtype), randn(rng, (N,), dtype)
    gy = randn(rng, (M, N), dtype)
    rtol = 1e-5 if dtype == np.float32 else None
    check_op("linear", x, w, b, rtol=rtol)
    check_op("linear", x, w, b, activation="relu", rtol=rtol)
    check_op("linear", x, w, rtol=rtol)
    check_op("linear_backward", gy, x, w, rtol=rtol)
    check_op("linear_backward", gy, x, w, bias=False, rtol=rtol)
    check_op("linear_backward_data", gy, w, rtol=rtol)
    check_op("linear_backward_weight", gy, x, rtol=rtol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_integers_are_exact(isa, dtype):
    """Every partial sum is an integer below 2^24: any summation order must give the exact result."""
    rng = np.random.default_rng(3)
    x, w, b = small_ints(rng, (23, 700), dtype), small_ints(rng, (45, 700), dtype), small_ints(rng, (45,), dtype)
    gy = small_ints(rng, (23, 45), dtype)
    check_op("linear", x, w, b, activation="relu", exact=True)
    check_op("linear_backward", gy, x, w, exact=True)


@pytest.mark.parametrize("kind", ["fortran", "slice", "reversed"])
def test_transposed_and_noncontiguous_operands(isa, kind):
    """A Keras kernel (in, out) passed as kernel.T is read in place; other layouts are copied."""
    rng = np.random.default_rng(4)
    x, w, b, gy = randn(rng, (9, 70)), randn(rng, (21, 70)), randn(rng, (21,)), randn(rng, (9, 21))
    want = fc.linear(x, w, b)
    assert_close(
        fc.linear(noncontiguous(x, kind), noncontiguous(w, kind), noncontiguous(b, kind)),
        want,
        dtype=np.float32,
        exact=True,
    )
    kernel = np.ascontiguousarray(w.T)  # Keras layout (in, out)
    assert_close(fc.linear(x, kernel.T, b), want, dtype=np.float32, exact=True)
    gx, gw, gb = fc.linear_backward(gy, x, w)
    for got, ref in zip(fc.linear_backward(noncontiguous(gy, kind), noncontiguous(x, kind), kernel.T), (gx, gw, gb)):
        assert_close(got, ref, dtype=np.float32, exact=True)


def test_nan_and_inf_propagate(isa):
    rng = np.random.default_rng(5)
    x, w = randn(rng, (4, 40)), randn(rng, (20, 40))
    x[1, 3], x[2, 5] = np.nan, np.inf
    check_op("linear", x, w)
    check_op("linear", x, w, activation="relu")


def test_finite_differences():
    rng = np.random.default_rng(6)
    x, w, b = randn(rng, (3, 5), np.float64), randn(rng, (4, 5), np.float64), randn(rng, (4,), np.float64)
    gy = randn(rng, (3, 4), np.float64)
    gx, gw, gb = fc.linear_backward(gy, x, w)
    assert_close(gx, numerical_grad(lambda a: fc.linear(a, w, b), x, gy), dtype=np.float64, rtol=1e-7)
    assert_close(gw, numerical_grad(lambda a: fc.linear(x, a, b), w, gy), dtype=np.float64, rtol=1e-7)
    assert_close(gb, numerical_grad(lambda a: fc.linear(x, w, a), b, gy), dtype=np.float64, rtol=1e-7)


def test_same_result_for_any_thread_count():
    """Each output sums its reduction in a fixed order: bit-identical for 1, 2 and 3 threads."""
    rng = np.random.default_rng(7)
    x, w, gy = randn(rng, (37, 1500)), randn(rng, (300, 1500)), randn(rng, (37, 300))
    threads = fc.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            fc.set_num_threads(n)
            results.append((fc.linear(x, w), *fc.linear_backward(gy, x, w)))
    finally:
        fc.set_num_threads(threads)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert np.array_equal(a, b)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda x, w, b, gy: fc.linear(x[0], w), r"x must be 2-D \(N, in_features\)"),
        (lambda x, w, b, gy: fc.linear(x, w[:, :-1]), r"x has 6 features but weight expects 5"),
        (lambda x, w, b, gy: fc.linear(x, w, b[:-1]), r"bias must have shape \(4,\)"),
        (lambda x, w, b, gy: fc.linear(x, w, activation="elu"), r"activation must be None, 'linear' or one of"),
        (lambda x, w, b, gy: fc.linear(x[:0], w), r"empty dimension"),
        (
            lambda x, w, b, gy: fc.linear_backward(gy[:, :-1], x, w),
            r"grad_y has shape \(3, 3\) but the forward output is \(3, 4\)",
        ),
        (
            lambda x, w, b, gy: fc.linear_backward_data(gy, w[:-1]),
            r"grad_y has shape \(3, 4\) but the forward output is \(3, 3\)",
        ),
        (
            lambda x, w, b, gy: fc.linear_backward_weight(gy[:-1], x),
            r"grad_y has shape \(2, 4\) but the forward output is \(3, 4\)",
        ),
    ],
)
def test_errors_name_the_argument_and_shapes(call, match):
    rng = np.random.default_rng(8)
    x, w, b, gy = randn(rng, (3, 6)), randn(rng, (4, 6)), randn(rng, (4,)), randn(rng, (3, 4))
    with pytest.raises(ValueError, match=match):
        call(x, w, b, gy)


def test_type_errors():
    x, w = np.ones((2, 3), np.float32), np.ones((4, 3), np.float32)
    with pytest.raises(TypeError, match="mixed dtypes"):
        fc.linear(x, w.astype(np.float64))
    with pytest.raises(TypeError, match="float32 and float64"):
        fc.linear(x.astype(np.int32), w.astype(np.int32))
    with pytest.raises(TypeError, match="NumPy or CuPy array"):
        fc.linear(x.tolist(), w)


def test_verbose_names_the_gemm_kernel(capfd):
    """FASTCONV_VERBOSE=1 names the tile of the dense-layer GEMM (checked in a subprocess)."""
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np, fastconv as fc; fc.set_cpu_isa('avx2'); "
        "fc.linear(np.ones((8, 600), np.float32), np.ones((40, 600), np.float32))"
    )
    if "avx2" not in fc.available_cpu_isas():
        pytest.skip("no AVX2 on this CPU")
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "FASTCONV_VERBOSE": "1"},
        check=True,
    )
    assert "f32_gemm_6x16_avx2 M=8 N=40 K=600" in out.stderr, out.stderr
