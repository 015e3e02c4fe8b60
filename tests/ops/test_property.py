"""Hypothesis: random valid configurations of every row of tests/ops/families (row.configs) on a
random CPU path, against the reference; rows that are exact on some data draw that data too."""

from __future__ import annotations

import numpy as np
import pytest
from families import DTYPES, ROWS
from helpers import check_op, randn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastconv as fc

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class _Isa:
    """Run the body under one CPU path and put the previous one back."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.previous = fc.cpu_isa()
        fc.set_cpu_isa(self.name)

    def __exit__(self, *exc):
        fc.set_cpu_isa(self.previous)


@pytest.mark.parametrize("row", [pytest.param(row, id=row.name) for row in ROWS])
@SETTINGS
@given(data=st.data())
def test_random_configurations(row, data):
    cfg = data.draw(row.configs, label="config")
    dtype = data.draw(st.sampled_from(DTYPES), label="dtype")
    isa = data.draw(st.sampled_from(fc.available_cpu_isas()), label="isa")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    # smooth activations round even on integer sums
    exact = (
        row.exact_data is not None
        and cfg.get("activation") in (None, "relu")
        and data.draw(st.booleans(), label="exact data")
    )
    call = row.draw(cfg, np.random.default_rng(seed), dtype, row.exact_data if exact else randn)
    with _Isa(isa):
        check_op(row.op, *call.args, rtol=row.tolerance(dtype), exact=row.exact or exact, **call.kwargs)
