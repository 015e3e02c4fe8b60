"""Finite differences of every backward pass in tests/ops/families (float64, loss = sum(y * g)):
each gradient a row's grad returns against the central differences of its forward pass."""

from __future__ import annotations

import numpy as np
import pytest
from families import ROWS
from helpers import assert_close, numerical_grad

CASES = [
    pytest.param(row, case, id=f"{row.name}-{case}") for row in ROWS if row.grad is not None for case in row.grad_cases
]


@pytest.mark.parametrize("row,case", CASES)
def test_backward_matches_finite_differences(row, case):
    rng = np.random.default_rng(0)
    grad = row.grad(row.grad_cases[case], rng)
    g = rng.standard_normal(grad.forward(**grad.inputs).shape)
    got = grad.backward(g, **grad.inputs)
    assert got, f"{row.name}: the backward names no input"
    for name, value in got.items():

        def loss_input(a, name=name):
            return grad.forward(**{**grad.inputs, name: a})

        num = numerical_grad(loss_input, grad.inputs[name], g, eps=row.grad_eps)
        assert_close(value, num, dtype=np.float64, rtol=row.grad_rtol, name=f"{row.name} grad of {name}")
