"""The FASTCONV_* environment variables: what each accepts, and one warning at import for a value
that is not accepted (the setting is then ignored; the C++ side reads them with the same rules,
csrc/cpu/runtime/runtime.h env_switch / env_number)."""

from __future__ import annotations

import os
import warnings

_SWITCH = ("0", "1", "off", "on", "false", "true", "no", "yes")


def _switch(v):
    return v.lower() in _SWITCH


def _int_in(lo, hi):
    """(accepts, description) of an integer setting in [lo, hi]."""

    def accepts(v):
        try:
            return lo <= int(v) <= hi and str(int(v)) == v.strip().lstrip("+")
        except ValueError:
            return False

    return accepts, f"an integer in [{lo}, {hi}]"


_SWITCH_TEXT = "1/on/true/yes or 0/off/false/no"
_RULES = {  # name -> (accepts(value), what is allowed)
    "FASTCONV_ISA": (lambda v: v.lower() in ("avx512", "avx2", "scalar"), "avx512, avx2 or scalar"),
    "FASTCONV_WINOGRAD": (lambda v: _switch(v) or v.lower() == "force", _SWITCH_TEXT + " or force"),
    "FASTCONV_VERBOSE": (_switch, _SWITCH_TEXT),
    "FASTCONV_POISON": (_switch, _SWITCH_TEXT),
    "FASTCONV_PARK_BLAS": (_switch, _SWITCH_TEXT),
    "FASTCONV_SPIN_US": _int_in(0, 1_000_000),
    "FASTCONV_OUTPUT_CACHE_MB": _int_in(0, 1 << 20),
    "FASTCONV_SCRATCH_MB": _int_in(0, 1 << 20),
    "FASTCONV_STREAM_OUT_MB": _int_in(0, 1 << 30),
}


def check(environ=os.environ):
    """Warn (RuntimeWarning, once per variable) about values the settings ignore; returns the
    names of those variables."""
    bad = []
    for name, (accepts, allowed) in _RULES.items():
        value = environ.get(name)
        if value is not None and value != "" and not accepts(value):
            warnings.warn(f"{name}={value!r} is ignored: expected {allowed}", RuntimeWarning, stacklevel=3)
            bad.append(name)
    return bad


def switch(name, default):
    """A yes/no setting read with the same spellings as the C++ side."""
    value = os.environ.get(name, "").lower()
    if value in ("1", "on", "true", "yes"):
        return True
    if value in ("0", "off", "false", "no"):
        return False
    return default
