"""Memory fastconv keeps between calls: per-thread scratch bounded by set_scratch_limit, reported
by memory_info, given back by clear_caches (also while other threads run kernels)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import fastconv as fc
from fastconv import reference as ref

MIB = 1 << 20


SIMD_ISAS = [i for i in fc.available_cpu_isas() if i != "scalar"]


@pytest.fixture(autouse=True)
def simd_kernels_and_restored_limit():
    """The SIMD kernels (the scalar reference kernels need no scratch), whatever FASTCONV_ISA says."""
    if not SIMD_ISAS:
        pytest.skip("the scratch buffers belong to the AVX2 / AVX-512 kernels")
    limit, isa = fc.memory_info()["scratch_limit_mib"], fc.cpu_isa()
    fc.set_cpu_isa(SIMD_ISAS[-1])
    yield
    fc.set_cpu_isa(isa)
    fc.set_scratch_limit(limit)


def _big_layer(seed=0):
    """A 3x3 conv whose passes need several MiB of scratch per call (NCHW repacks, Winograd)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 32, 48, 48), dtype=np.float32)
    w = (0.1 * rng.standard_normal((32, 32, 3, 3))).astype(np.float32)
    gy = rng.standard_normal((4, 32, 48, 48), dtype=np.float32)
    return x, w, gy


def _all_passes(x, w, gy):
    y = fc.conv2d(x, w, padding=1)
    gx = fc.conv2d_backward_data(gy, w, x.shape, padding=1)
    gw, gb = fc.conv2d_backward_weight(gy, x, w.shape, padding=1)
    return y, gx, gw, gb


def test_memory_info_reports_scratch_and_clear_caches_gives_everything_back():
    x, w, gy = _big_layer()
    fc.set_scratch_limit(64)
    _all_passes(x, w, gy)
    info = fc.memory_info()
    assert set(info) == {
        "scratch_mib",
        "scratch_threads",
        "scratch_limit_mib",
        "output_cache_free_mib",
        "output_cache_used_mib",
        "output_cache_limit_mib",
        "kept_mib",
    }
    assert info["scratch_mib"] > 1 and info["scratch_threads"] >= 1
    assert info["kept_mib"] == pytest.approx(info["scratch_mib"] + info["output_cache_free_mib"])
    fc.clear_caches()
    info = fc.memory_info()
    assert info["scratch_mib"] == 0 and info["scratch_threads"] == 0
    assert info["output_cache_free_mib"] == 0 and info["kept_mib"] == 0


@pytest.mark.parametrize("threads", [1, 2])
def test_each_thread_keeps_at_most_the_limit_and_results_do_not_change(threads):
    x, w, gy = _big_layer(1)
    fc.clear_caches()
    before = fc.get_num_threads()
    fc.set_num_threads(threads)
    try:
        fc.set_scratch_limit(1000)
        want = _all_passes(x, w, gy)
        kept_unbounded = fc.memory_info()["scratch_mib"]
        fc.set_scratch_limit(1)
        for _ in range(2):  # over the limit: each call gets its buffers and gives the excess back
            got = _all_passes(x, w, gy)
            info = fc.memory_info()
            assert info["scratch_mib"] <= 1.0 * max(1, info["scratch_threads"])
        fc.set_scratch_limit(0)  # trims every thread at once, busy or not since
        assert fc.memory_info()["scratch_mib"] == 0
        got0 = _all_passes(x, w, gy)
        assert fc.memory_info()["scratch_mib"] == 0
    finally:
        fc.set_num_threads(before)
    assert kept_unbounded > 1
    for a, b, c in zip(want, got, got0):
        assert np.array_equal(a, b) and np.array_equal(a, c)


def test_linear_and_strided_kernels_use_the_bounded_scratch_too():
    rng = np.random.default_rng(2)
    fc.set_scratch_limit(0)
    x = rng.standard_normal((300, 700), dtype=np.float32)
    w = rng.standard_normal((400, 700), dtype=np.float32)
    np.testing.assert_allclose(fc.linear(x, w), x.astype(np.float64) @ w.T.astype(np.float64), rtol=1e-4, atol=1e-3)
    xs = rng.standard_normal((2, 8, 20, 20), dtype=np.float32)
    ws = rng.standard_normal((6, 8, 3, 3), dtype=np.float32)
    gy = rng.standard_normal((2, 6, 10, 10), dtype=np.float32)
    got = fc.conv2d_backward_data(gy, ws, xs.shape, stride=2, padding=1)
    np.testing.assert_allclose(
        got, ref.conv2d_backward_data(gy, ws, xs.shape, stride=2, padding=1), rtol=1e-4, atol=1e-4
    )
    assert fc.memory_info()["scratch_mib"] == 0


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), 2**60, True, "64"])
def test_scratch_limit_rejects_absurd_values(bad):
    with pytest.raises(ValueError, match="megabytes must be a number"):
        fc.set_scratch_limit(bad)


def test_clear_caches_while_other_threads_run_kernels():
    """clear_caches waits for a kernel holding its buffers; results stay exact."""
    x, w, gy = _big_layer(3)
    want = _all_passes(x, w, gy)
    errors = []
    stop = threading.Event()

    def worker():
        try:
            while not stop.is_set():
                for a, b in zip(want, _all_passes(x, w, gy)):
                    if not np.array_equal(a, b):
                        errors.append("result changed")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for _ in range(50):
        fc.clear_caches()
        fc.memory_info()
    stop.set()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:3]
    assert not any(t.is_alive() for t in threads)
    # join returns when a thread's Python part is done; its native thread-local buffers are given
    # back as the OS thread exits, which can come a little later (seen under AddressSanitizer)
    for _ in range(200):
        fc.clear_caches()
        if fc.memory_info()["scratch_mib"] == 0:
            break
        time.sleep(0.01)
    assert fc.memory_info()["scratch_mib"] == 0


def test_environment_variable_sets_the_limit_and_a_forked_child_can_clear():
    code = """
import os, numpy as np, fastconv as fc
assert fc.memory_info()["scratch_limit_mib"] == 5, fc.memory_info()
x = np.ones((2, 16, 40, 40), np.float32); w = np.ones((16, 16, 3, 3), np.float32)
fc.conv2d(x, w, padding=1)
pid = os.fork()
if pid == 0:
    fc.conv2d(x, w, padding=1)
    fc.clear_caches()
    os._exit(0 if fc.memory_info()["scratch_mib"] == 0 else 3)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, status
print("ok")
"""
    env = dict(os.environ, FASTCONV_SCRATCH_MB="5")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-2000:]


def test_fork_while_another_thread_runs_kernels():
    """The output cache's lock is held across fork and the child gets fresh scratch buffers, so a
    child forked while another thread computes can run kernels at once (it used to be able to
    inherit a lock held by that thread)."""
    code = """
import os, threading, numpy as np, fastconv as fc
x = np.ones((4, 32, 40, 40), np.float32); w = np.ones((32, 32, 3, 3), np.float32)
stop = threading.Event()
def busy():
    while not stop.is_set():
        fc.conv2d(x, w, padding=1); fc.clear_caches()
t = threading.Thread(target=busy); t.start()
for _ in range(8):
    pid = os.fork()
    if pid == 0:
        y = fc.conv2d(x, w, padding=1)
        os._exit(0 if float(y[0, 0, 5, 5]) == 32 * 9 else 3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
stop.set(); t.join()
print("ok")
"""
    r = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-2000:]
