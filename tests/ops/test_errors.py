"""Bad inputs of every row of tests/ops/families raise ValueError/TypeError whose message names
the offending argument; the valid call each row's mistakes alter works, so each isolates one."""

from __future__ import annotations

import pytest
from families import ROWS

BAD = [pytest.param(bad.call, bad.error, bad.match, id=f"{row.name}-{bad.id}") for row in ROWS for bad in row.bad]


@pytest.mark.parametrize("call,error,match", BAD)
def test_bad_input_raises(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("row", [pytest.param(row, id=row.name) for row in ROWS if row.valid is not None])
def test_valid_calls_behind_the_error_cases_work(row):
    row.valid()
