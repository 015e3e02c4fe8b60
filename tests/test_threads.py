"""Concurrent calls from Python threads, and the thread-count controls."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastconv as fc
from helpers import assert_close, randn


def _work(seed):
    """One unit of work: conv forward (fused relu), both backward passes, pooling and relu."""
    rng = np.random.default_rng(seed)
    layout = "NCHW" if seed % 2 == 0 else "NHWC"
    x = randn(rng, (2, 16, 12, 11) if layout == "NCHW" else (2, 12, 11, 16))
    w = randn(rng, (17, 16, 3, 3) if layout == "NCHW" else (3, 3, 16, 17))
    b = randn(rng, (17,))
    kw = dict(stride=1 + seed % 2, padding="same", layout=layout)
    y = fc.conv2d(x, w, b, activation="relu", **kw)
    gy = fc.relu_backward(randn(rng, y.shape), y)
    gx, gw, gb = fc.conv2d_backward(gy, x, w, **kw)
    p, idx = fc.max_pool2d(y, 3, stride=2, padding=1, layout=layout)
    gp = fc.max_pool2d_backward(p, idx, y.shape, 3, stride=2, padding=1, layout=layout)
    big = randn(rng, (3, 17, 31, 29))                       # several relu work chunks
    return [y, gy, gx, gw, gb, p, idx, gp, fc.relu(x), fc.relu(big), fc.relu_backward(big, big)]


def test_concurrent_calls_match_serial():
    seeds = list(range(8))
    serial = [_work(s) for s in seeds]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(3):
            concurrent = list(pool.map(_work, seeds * 2))
            for i, results in enumerate(concurrent):
                for j, (got, want) in enumerate(zip(results, serial[i % len(seeds)])):
                    assert np.array_equal(got, want), (
                        f"seed {seeds[i % len(seeds)]}, output {j}: a threaded call differs from "
                        f"the serial one (max diff {np.max(np.abs(got - want))})")


@pytest.fixture
def restore_threads():
    previous = fc.get_num_threads()
    yield previous
    fc.set_num_threads(previous)
    assert fc.get_num_threads() == previous


def test_num_threads_round_trip(restore_threads):
    assert isinstance(restore_threads, int) and restore_threads >= 1
    fc.set_num_threads(1)
    assert fc.get_num_threads() == 1
    fc.set_num_threads(2)
    assert fc.get_num_threads() == 2


@pytest.mark.parametrize("bad", [0, -1])
def test_num_threads_rejects_non_positive(restore_threads, bad):
    with pytest.raises(ValueError):
        fc.set_num_threads(bad)
    assert fc.get_num_threads() == restore_threads


def test_one_thread_matches_many(restore_threads):
    fc.set_num_threads(max(2, restore_threads))
    many = _work(5)
    fc.set_num_threads(1)
    one = _work(5)
    for j, (a, b) in enumerate(zip(one, many)):
        if a.dtype.kind == "i":
            assert np.array_equal(a, b), f"output {j}"
        else:
            assert_close(a, b.astype(np.float64), dtype=a.dtype, name=f"output {j}", rtol=1e-5)
