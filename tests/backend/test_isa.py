"""CPU instruction-set selection: fc.cpu_isa(), fc.set_cpu_isa() and FASTCONV_ISA."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import fastconv as fc

ORDER = ("scalar", "avx2", "avx512")  # lowest to highest


def _run(code, **env):
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_cpu_isa_is_known():
    assert fc.cpu_isa() in ORDER
    available = fc.available_cpu_isas()
    assert "scalar" in available and set(available) <= set(ORDER)
    assert fc.cpu_isa() in available


@pytest.mark.parametrize("requested", ORDER)
def test_fastconv_isa_environment_variable(requested):
    """FASTCONV_ISA forces a path, capped to the best one this CPU supports."""
    available = fc.available_cpu_isas()
    expected = max((a for a in available if ORDER.index(a) <= ORDER.index(requested)), key=ORDER.index)
    assert _run("import fastconv; print(fastconv.cpu_isa())", FASTCONV_ISA=requested) == expected


def test_default_isa_is_the_best_available():
    env = {k: v for k, v in os.environ.items() if k != "FASTCONV_ISA"}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import fastconv as f; print(f.cpu_isa(), max(f.available_cpu_isas(), key={ORDER!r}.index))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    used, best = result.stdout.split()
    assert used == best


def test_set_cpu_isa_round_trip(isa):
    assert fc.cpu_isa() == isa


@pytest.mark.parametrize("bad", ["sse2", "AVX-512", "", "neon"])
def test_set_cpu_isa_rejects_unknown_names(bad):
    before = fc.cpu_isa()
    with pytest.raises(ValueError):
        fc.set_cpu_isa(bad)
    assert fc.cpu_isa() == before
