"""fc.linear and its backward passes (the dense-layer GEMM). The edge grid around the register
tile and the reduction block, transposed (Keras kernel.T) and non-contiguous operands,
small-integer exact checks, finite differences and errors are rows of
tests/ops/families/linear.py; here NaN / inf propagation, thread-count independence and the
verbose kernel name."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check_op, randn

import fastconv as fc


def test_nan_and_inf_propagate(isa):
    rng = np.random.default_rng(5)
    x, w = randn(rng, (4, 40)), randn(rng, (20, 40))
    x[1, 3], x[2, 5] = np.nan, np.inf
    check_op("linear", x, w)
    check_op("linear", x, w, activation="relu")


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
