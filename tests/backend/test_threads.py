"""Concurrent calls from Python threads, and the thread-count controls."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from helpers import OUTPUTS, assert_close, randn
from ops.families import DTYPES, ROWS

import fastconv as fc


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
    big = randn(rng, (3, 17, 31, 29))  # several relu work chunks
    return [y, gy, gx, gw, gb, p, idx, gp, fc.relu(x), fc.relu(big), fc.relu_backward(big, big)]


def _run(call):
    row, _, _, args = call
    result = getattr(fc, row.op)(*args.args, **args.kwargs)
    return result if isinstance(result, tuple) else (result,)


def test_every_row_called_from_several_threads_gives_the_serial_bits():
    """Every case of every row of tests/ops/families (float32 and float64), all ops mixed, from
    four Python threads at once: each result has the bits of the same call made alone."""
    calls = [
        (row, case, dtype, row.draw(cfg, np.random.default_rng(0), dtype, randn))
        for row in ROWS
        for case, cfg in row.cases.items()
        for dtype in DTYPES
    ]
    serial = [_run(c) for c in calls]
    order = np.random.default_rng(0).permutation(len(calls))  # neighbours run different ops
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(2):
            for i, got in zip(order, pool.map(_run, [calls[i] for i in order])):
                row, case, dtype = calls[i][:3]
                for name, g, w in zip(OUTPUTS[row.op], got, serial[i]):
                    assert (g is None and w is None) or np.array_equal(g, w, equal_nan=True), (
                        f"{row.name} {case} {np.dtype(dtype).name} {name}: a threaded call differs from the serial one"
                    )


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
                        f"the serial one (max diff {np.max(np.abs(got - want))})"
                    )


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


@pytest.mark.parametrize("bad", [1025, 40000, 2**31, 2.0, True])
def test_num_threads_rejects_absurd_counts(restore_threads, bad):
    with pytest.raises(ValueError, match=r"n must be an int in \[1, 1024\]"):
        fc.set_num_threads(bad)
    assert fc.get_num_threads() == restore_threads


def test_more_threads_than_cores_still_correct(restore_threads):
    """The pool starts workers on demand; 8 threads on a 2-core machine give the same results."""
    fc.set_num_threads(1)
    one = _work(3)
    fc.set_num_threads(8)
    many = _work(3)
    assert fc._cpu.pool_workers() >= 1
    for a, b in zip(one, many):
        assert_close(a, b.astype(np.float64) if b.dtype.kind == "f" else b, dtype=a.dtype, rtol=1e-5)


@pytest.fixture
def restore_spin():
    previous = fc.get_worker_spin_us()
    yield
    fc.set_worker_spin_us(previous)


@pytest.mark.parametrize("spin", [0, 100, 1_000_000])
def test_worker_spin_does_not_change_results(restore_spin, spin):
    want = _work(6)
    fc.set_worker_spin_us(spin)
    assert fc.get_worker_spin_us() == spin
    for a, b in zip(_work(6), want):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("bad", [-1, 1_000_001, 1.5, None])
def test_worker_spin_rejects_bad_values(restore_spin, bad):
    with pytest.raises(ValueError, match="us must be an int"):
        fc.set_worker_spin_us(bad)


def test_forked_child_runs_its_own_pool():
    """A child forked after the parent's workers started (a data-loader process) gets a fresh pool."""
    import os

    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    want = _work(2)  # the parent's workers are running now
    pid = os.fork()
    if pid == 0:  # child: exit code says whether it matched
        try:
            ok = all(np.array_equal(a, b) for a, b in zip(_work(2), want))
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


# ----------------------------------------------------------------------------- NumPy's BLAS threads


def _matmul_then_conv(rng):
    a, b = randn(rng, (50, 1024), np.float64), randn(rng, (1024, 100), np.float64)
    x, w = randn(rng, (4, 32, 20, 20)), randn(rng, (32, 32, 3, 3))
    out = []
    for _ in range(3):
        out.append(a @ b)  # wakes OpenBLAS's threads
        out.append(fc.conv2d(x, w, padding=1))  # parks them first (when enabled and safe)
    return out


@pytest.fixture
def restore_parking():
    previous = fc.get_blas_parking()
    yield
    fc.set_blas_parking(previous)


def test_blas_parking_on_and_off_give_identical_results(restore_parking):
    fc.set_blas_parking(True)
    on = _matmul_then_conv(np.random.default_rng(9))
    fc.set_blas_parking(False)
    off = _matmul_then_conv(np.random.default_rng(9))
    for a, b in zip(on, off):
        assert np.array_equal(a, b)


def test_blas_parking_stops_openblas_threads_and_they_restart(restore_parking, restore_threads):
    from fastconv.backend import blas

    if blas.parkable_libraries() == 0:
        pytest.skip("NumPy's BLAS is not an OpenBLAS with a pthreads server here")
    fc.set_blas_parking(True)
    fc.set_num_threads(2)
    rng = np.random.default_rng(10)
    a, b = randn(rng, (200, 800), np.float64), randn(rng, (800, 300), np.float64)
    want = a @ b
    blas.park()
    assert all(running.value == 0 for _, running in blas._find())
    assert np.array_equal(a @ b, want)  # the next BLAS call restarts its threads
    fc.set_blas_parking(False)
    blas.park()  # disabled: leaves them alone
    assert np.array_equal(a @ b, want)


def test_blas_parking_is_skipped_while_other_python_threads_run(restore_parking):
    """Another thread could be inside a BLAS call: parking must not pull its threads away."""
    import threading

    from fastconv.backend import blas

    if blas.parkable_libraries() == 0:
        pytest.skip("NumPy's BLAS is not an OpenBLAS with a pthreads server here")
    fc.set_blas_parking(True)
    rng = np.random.default_rng(11)
    a, b = randn(rng, (300, 600), np.float64), randn(rng, (600, 300), np.float64)
    want = a @ b
    stop = threading.Event()
    errors = []

    def busy_blas():
        while not stop.is_set():
            if not np.array_equal(a @ b, want):
                errors.append("wrong matmul")

    t = threading.Thread(target=busy_blas)
    t.start()
    try:
        for _ in range(20):
            _matmul_then_conv(rng)
            blas.park()
    finally:
        stop.set()
        t.join(timeout=60)
    assert not t.is_alive() and not errors


def test_lowering_the_thread_count_limits_the_team(restore_threads):
    """Workers started for 8 threads stay, but a later team with 2 threads lets only one join."""
    rng = np.random.default_rng(12)
    x, w = randn(rng, (8, 64, 32, 32)), randn(rng, (64, 64, 3, 3))
    fc.set_num_threads(8)
    fc.conv2d(x, w, padding=1)
    assert fc._cpu.pool_workers() >= 7
    fc.set_num_threads(2)
    for _ in range(5):
        fc.conv2d(x, w, padding=1)
        assert fc._cpu.pool_last_team_threads() <= 2
    fc.set_num_threads(1)
    fc.conv2d(x, w, padding=1)
    assert fc._cpu.pool_last_team_threads() <= 2  # one thread: no team ran since


def test_blas_parking_leaves_the_library_local():
    """park() must not re-open NumPy's OpenBLAS with RTLD_GLOBAL (its internal symbols would
    then interpose on every library loaded later): no new global symbol after a park."""
    import ctypes

    from fastconv.backend import blas

    if blas.parkable_libraries() == 0:
        pytest.skip("NumPy's BLAS is not an OpenBLAS with a pthreads server here")
    blas.park()
    main_program = ctypes.CDLL(None)  # the global lookup scope
    assert not hasattr(main_program, "blas_thread_shutdown_")
