"""The CPU output-buffer cache (csrc/cpu/runtime/output_cache.h): outputs of 1 MiB or more reuse
freed blocks of the same size, within a byte limit, and are ordinary writable NumPy arrays."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import fastconv as fc
from fastconv import reference as ref
from fastconv.backend import cpu as backend_cpu


@pytest.fixture(autouse=True)
def default_limit():
    limit = fc.output_cache_info()["limit_mib"]
    yield
    fc.set_output_cache_limit(limit)


def _big_relu_input(seed=0):
    return np.random.default_rng(seed).standard_normal((4, 64, 64, 64)).astype(np.float32)  # 4 MiB


def test_freed_outputs_are_reused():
    fc.set_output_cache_limit(256)
    x = _big_relu_input()
    y = fc.relu(x)
    ptr = y.ctypes.data
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    del y
    assert fc.output_cache_info()["free_mib"] >= 4
    y2 = fc.relu(-x)
    assert y2.ctypes.data == ptr, "same size after a free: the block is reused"
    np.testing.assert_array_equal(y2, np.maximum(-x, 0))  # fully rewritten, nothing stale


def test_outputs_are_ordinary_arrays():
    x = _big_relu_input(1)
    y = fc.relu(x)
    assert y.flags.c_contiguous and y.flags.writeable and y.flags.aligned
    assert y.dtype == np.float32 and y.shape == x.shape
    assert y.ctypes.data % 64 == 0
    y[0, 0, 0, 0] = 5.0
    view = y[1:]
    del y
    assert view.shape == (3, 64, 64, 64)  # a view keeps the block alive
    np.testing.assert_array_equal(view, np.maximum(x[1:], 0))


def test_limit_zero_keeps_nothing_and_lower_limits_trim():
    fc.set_output_cache_limit(256)
    ys = [fc.relu(_big_relu_input(i)) for i in range(3)]
    used = fc.output_cache_info()["used_mib"]
    assert used >= 12
    del ys
    assert fc.output_cache_info()["free_mib"] >= 12
    fc.set_output_cache_limit(5)
    assert fc.output_cache_info()["free_mib"] <= 5
    fc.set_output_cache_limit(0)
    assert fc.output_cache_info()["free_mib"] == 0
    y = fc.relu(_big_relu_input())
    del y
    assert fc.output_cache_info()["free_mib"] == 0
    fc.set_output_cache_limit(64)
    fc.relu(_big_relu_input())
    fc.clear_output_cache()
    assert fc.output_cache_info()["free_mib"] == 0


def test_small_outputs_bypass_the_cache():
    y = fc.relu(np.ones((10, 10), np.float32))
    assert not isinstance(y.base, np.ndarray) or y.base.nbytes < (1 << 20)
    assert backend_cpu._CACHE_MIN_BYTES == 1 << 20


@pytest.mark.parametrize("bad", [-1, "1", None, True])
def test_set_output_cache_limit_validates(bad):
    with pytest.raises(ValueError):
        fc.set_output_cache_limit(bad)


def test_threads_share_the_cache_safely():
    """Several Python threads allocate and free same-size outputs concurrently; every result
    stays correct (no block is handed to two arrays at once)."""
    fc.set_output_cache_limit(64)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 32, 40, 40)).astype(np.float32)  # outputs of 1.2 MiB
    w = rng.standard_normal((48, 32, 3, 3)).astype(np.float32)
    want = ref.conv2d(x.astype(np.float64), w.astype(np.float64), padding=1)
    errors = []

    def work():
        for _ in range(20):
            ys = [fc.conv2d(x, w, padding=1) for _ in range(3)]
            for y in ys:
                if np.abs(y - want).max() > 1e-3 * np.abs(want).max():
                    errors.append("wrong result")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
