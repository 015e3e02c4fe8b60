"""Adam's fused CPU update (csrc/cpu/optim/) against its NumPy formula, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

import fastconv as fc
from fastconv.layers import ParamRef


class _Holder:
    """The minimum a ParamRef needs: params, grads, trainable."""

    def __init__(self, p, g):
        self.params, self.grads, self.trainable = {"w": p}, {"w": g}, True


def _numpy_adam(p, grads, lr, b1=0.9, b2=0.999, eps=1e-8):
    dt = p.dtype.type
    p, m, v = p.copy(), np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        m *= dt(b1)
        m += dt(1 - b1) * g
        v *= dt(b2)
        v += dt(1 - b2) * (g * g)
        p -= dt(lr / (1 - b1**t)) * (m / ((v / dt(1 - b2**t)) ** 0.5 + dt(eps)))
    return p


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7,), (3, 3, 5, 64), (700, 129)])
@pytest.mark.parametrize("order", ["C", "F"])  # F: a non-contiguous parameter takes the NumPy code
def test_adam_matches_its_formula_bit_for_bit(dtype, shape, order):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(shape).astype(dtype)
    grads = [rng.standard_normal(shape).astype(dtype) for _ in range(5)]
    p = np.array(p0, order=order)
    holder = _Holder(p, None)
    opt = fc.Adam(lr=1e-2)
    for g in grads:
        holder.grads["w"] = g
        opt.step([ParamRef("w", holder, "w")])
    assert np.array_equal(p, _numpy_adam(p0, grads, 1e-2))
    assert holder.params["w"] is p  # updated in place


def test_adam_with_a_transposed_gradient_view():
    rng = np.random.default_rng(1)
    p0 = rng.standard_normal((40, 30)).astype(np.float32)
    g = np.asfortranarray(rng.standard_normal((40, 30)).astype(np.float32))
    p = p0.copy()
    holder = _Holder(p, g)
    fc.Adam(lr=1e-3).step([ParamRef("w", holder, "w")])
    assert np.array_equal(p, _numpy_adam(p0, [np.ascontiguousarray(g)], 1e-3))
