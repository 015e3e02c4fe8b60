"""The kernel-family table: one Row per public op, which every shared test file runs.

    tests/ops/test_ops.py           each case x dtype on every ISA with poisoned outputs against
                                    fastconv.reference; exact results on row.exact_data; the
                                    row.noncontiguous cases with strided / transposed / reversed
                                    arrays, which must also give the contiguous call's bits
    tests/ops/test_grad.py          row.grad_cases: the backward pass against central differences
    tests/ops/test_property.py      row.configs: hypothesis draws, forward or backward against the reference
    tests/ops/test_errors.py        row.bad: each mistake raises its error naming the argument;
                                    row.valid: the call they alter works
    tests/backend/test_threads.py   row.cases from several Python threads at once: the serial bits

A family-specific file (test_avgpool.py, test_batchnorm.py, ...) keeps only what no row can say:
bit identity across ISAs and thread counts, error bounds at extremes, NaN rules, in-place
updates, CUDA emulation, layers.

Adding a kernel family means adding rows, not test files:
  1. fastconv.reference gets the float64 oracle with the op's signature, helpers.OUTPUTS the names
     of its outputs.
  2. A module here, families/<family>.py, with
     - a draw(config, rng, dtype, make) -> Call per op, making every array with make(rng, shape,
       dtype) (a backward op derives saved state such as indices from the reference forward);
     - cases: {id: config}, an edge grid built with grid(): odd sizes, batch 1, channels and
       lengths around the SIMD widths (1, 15, 16, 17, 33), both layouts, every keyword variant;
     - configs: a hypothesis strategy of the same config dicts (filtered to valid ones);
     - rtol per dtype when the default (helpers.RTOL) does not fit; exact=True for ops without
       arithmetic; exact_data (e.g. helpers.small_ints) when integer data make every sum exact;
     - for each backward op, grad(config, rng) -> Grad and grad_cases (small float64 shapes);
     - bad: Bad(id, call, error, match) for every mistake a caller can make, and valid.
  3. Its ROWS appended to ROWS below. Nothing in the shared test files changes.
"""

from __future__ import annotations

from . import batchnorm, conv2d, eltwise, linear, pool2d
from ._table import DTYPES, Bad, Call, Grad, Row

ROWS = conv2d.ROWS + pool2d.ROWS + eltwise.ROWS + batchnorm.ROWS + linear.ROWS

__all__ = ["DTYPES", "ROWS", "Bad", "Call", "Grad", "Row"]
