"""Shared by the Winograd tests (test_winograd.py, test_winograd_bwd_weight.py): the ISAs that have
the Winograd path, its algorithm name, the forcing switch and the float32 error check.

Winograd is not bit-exact: its transforms round differently from a direct sum. The bound is the
relative Frobenius error ||y - y_ref||_F / ||y_ref||_F <= 1e-5 on random normal data (measured
on VGG16 layers: 3.5e-7 .. 4.5e-6; the direct kernel: 1.3e-7 .. 1.2e-6), plus an element-wise
check against the reference scaled by max|y_ref| so a single wrong tile cannot hide in the norm.
"""

from __future__ import annotations

import contextlib

import numpy as np

import fastconv as fc

SIMD_ISAS = [i for i in fc.available_cpu_isas() if i != "scalar"]
WINO = "winograd_f4x4_3x3"
FROB_TOL = 1e-5


@contextlib.contextmanager
def winograd_forced(isa):
    """ISA `isa`, Winograd on and forced for every eligible shape (the size rule sends only large
    layers to Winograd; fastconv._cpu._set_winograd_forced(True) lets small shapes take it)."""
    saved = fc.cpu_isa(), fc.get_winograd(), fc._cpu._get_winograd_forced()
    fc.set_cpu_isa(isa)
    fc.set_winograd(True)
    fc._cpu._set_winograd_forced(True)
    try:
        yield
    finally:
        fc.set_cpu_isa(saved[0])
        fc.set_winograd(saved[1])
        fc._cpu._set_winograd_forced(saved[2])


def check_winograd(y, y_ref):
    """float32 y against the float64 y_ref: finite, Frobenius and element-wise bounds."""
    assert y.dtype == np.float32
    assert y.shape == y_ref.shape
    assert np.isfinite(y).all(), "unwritten (NaN-poisoned) or non-finite outputs"
    err = np.linalg.norm(y - y_ref) / np.linalg.norm(y_ref)
    assert err <= FROB_TOL, f"relative Frobenius error {err:.3g} > {FROB_TOL}"
    worst = np.abs(y - y_ref).max() / np.abs(y_ref).max()
    assert worst <= 2e-5, f"max element error {worst:.3g} of max|y_ref|"
    return err


def backward_weight_nchw(gy, x, w_shape, layout, **kw):
    """(grad_w as (K,C,3,3), grad_b) through fastconv in `layout` (inputs given as NCHW)."""
    if layout == "NCHW":
        return fc.conv2d_backward_weight(gy, x, w_shape, layout=layout, **kw)
    K, C, R, S = w_shape
    gw, gb = fc.conv2d_backward_weight(
        np.ascontiguousarray(gy.transpose(0, 2, 3, 1)),
        np.ascontiguousarray(x.transpose(0, 2, 3, 1)),
        (R, S, C, K),
        layout=layout,
        **kw,
    )
    return gw.transpose(3, 2, 0, 1), gb
