"""Rewriting the entries of a saved .npz, for the tests of damaged model files."""

from __future__ import annotations

import numpy as np


def rewrite_npz(path, change):
    """Load every entry of the .npz at path, call change(entries) on the dict, write it back."""
    with np.load(path) as f:
        entries = {k: f[k] for k in f.files}
    change(entries)
    with open(path, "wb") as f:
        np.savez(f, **entries)
