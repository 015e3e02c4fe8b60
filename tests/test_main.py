"""`python -m fastconv` runs its self-check and prints a verdict."""

from __future__ import annotations

import subprocess
import sys


def test_python_dash_m_fastconv_reports_ok():
    result = subprocess.run([sys.executable, "-m", "fastconv"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert any("OK" in line for line in result.stdout.splitlines()), result.stdout
