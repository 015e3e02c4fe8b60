"""pytest configuration: make tests/helpers.py importable; the shared fixtures `isa`, `poison`
and `restore_cpu_state` (data makers and the finite-difference helper are in helpers.py)."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # `import helpers` under any --import-mode

# Outputs start as NaN (indices as -1), so an element a kernel forgets to write fails the tests.
os.environ.setdefault("FASTCONV_POISON", "1")


def pytest_configure(config):
    """The test shapes are small: let problems from 4096 multiply-adds up use the threads (the
    default threshold would run nearly every test call on one thread)."""
    try:
        from fastconv import _cpu
    except ImportError:
        return
    _cpu.set_min_parallel_work(1 << 12)


def _available_isas():
    try:
        import fastconv

        return list(fastconv.available_cpu_isas())
    except Exception:  # package not built: tests that need an ISA are skipped (empty parameter set)
        return []


@pytest.fixture(params=_available_isas())
def isa(request):
    """Run the test once per CPU path this machine supports, restoring the previous one after."""
    import fastconv as fc

    previous = fc.cpu_isa()
    fc.set_cpu_isa(request.param)
    assert fc.cpu_isa() == request.param
    try:
        yield request.param
    finally:
        fc.set_cpu_isa(previous)


@pytest.fixture
def poison(monkeypatch):
    """Outputs of every backend start as NaN (indices as -1) in this test, whatever
    FASTCONV_POISON said when fastconv was imported."""
    from fastconv.backend import cpu as backend_cpu
    from fastconv.backend import runner as backend_runner

    monkeypatch.setattr(backend_cpu, "POISON", True)
    monkeypatch.setattr(backend_runner, "POISON", True)


@pytest.fixture
def restore_cpu_state():
    """The CPU path, thread count and Winograd switches are put back as they were after the test."""
    import fastconv as fc

    isa, threads = fc.cpu_isa(), fc.get_num_threads()
    winograd, forced = fc.get_winograd(), fc._cpu._get_winograd_forced()
    yield
    fc.set_cpu_isa(isa)
    fc.set_num_threads(threads)
    fc.set_winograd(winograd)
    fc._cpu._set_winograd_forced(forced)
