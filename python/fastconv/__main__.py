"""`python -m fastconv`: what this installation runs on, and a self-check of every operation
against the float64 NumPy reference (fastconv.reference)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np

import fastconv as fc
from fastconv import reference as ref


def _conv_cases(layout, dtype, x, w, b, gy, gpy, idx, kw, pool_kw):
    """The conv, pooling and ReLU checks of one layout and dtype (a function of its own, so that
    each lambda keeps its own arrays)."""
    xd, wd, bd, gyd, gpyd = (a.astype(dtype) for a in (x, w, b, gy, gpy))
    tag = f"{layout} {np.dtype(dtype).name}"
    return [
        (
            f"conv2d {tag}",
            lambda: fc.conv2d(xd, wd, bd, activation="relu", **kw),
            lambda: ref.conv2d(x, w, b, activation="relu", **kw),
        ),
        (
            f"conv2d_backward {tag}",
            lambda: fc.conv2d_backward(gyd, xd, wd, **kw),
            lambda: ref.conv2d_backward(gy, x, w, **kw),
        ),
        (f"max_pool2d {tag}", lambda: fc.max_pool2d(xd, **pool_kw), lambda: ref.max_pool2d(x, **pool_kw)),
        (
            f"max_pool2d_backward {tag}",
            lambda: fc.max_pool2d_backward(gpyd, idx, x.shape, **pool_kw),
            lambda: ref.max_pool2d_backward(gpy, idx, x.shape, **pool_kw),
        ),
        (f"relu {tag}", lambda: fc.relu(xd), lambda: ref.relu(x)),
        (f"relu_backward {tag}", lambda: fc.relu_backward(xd, xd), lambda: ref.relu_backward(x, x)),
    ]


def _linear_cases(dtype, x, w, b, gy):
    xd, wd, bd, gyd = (a.astype(dtype) for a in (x, w, b, gy))
    tag = np.dtype(dtype).name
    return [
        (
            f"linear {tag}",
            lambda: fc.linear(xd, wd, bd, activation="relu"),
            lambda: ref.linear(x, w, b, activation="relu"),
        ),
        (f"linear_backward {tag}", lambda: fc.linear_backward(gyd, xd, wd), lambda: ref.linear_backward(gy, x, w)),
    ]


def _cases(rng):
    """(name, fastconv callable, reference callable) on small random problems, both layouts."""
    cases = []
    for layout in ("NCHW", "NHWC"):
        x = rng.standard_normal((2, 5, 11, 9))
        w = rng.standard_normal((7, 5, 3, 3))
        b = rng.standard_normal(7)
        if layout == "NHWC":
            x, w = x.transpose(0, 2, 3, 1).copy(), w.transpose(2, 3, 1, 0).copy()
        kw: dict[str, Any] = dict(stride=(1, 2), padding=((1, 0), (2, 1)), dilation=(2, 1), layout=layout)
        gy = rng.standard_normal(ref.conv2d(x, w, b, **kw).shape)
        pool_kw: dict[str, Any] = dict(kernel_size=3, stride=2, padding=1, layout=layout)
        py, idx = ref.max_pool2d(x, **pool_kw)
        gpy = rng.standard_normal(py.shape)
        for dtype in (np.float32, np.float64):
            cases += _conv_cases(layout, dtype, x, w, b, gy, gpy, idx, kw, pool_kw)
    lx, lw, lb, lgy = (rng.standard_normal(s) for s in ((9, 300), (37, 300), (37,), (9, 37)))
    for dtype in (np.float32, np.float64):
        cases += _linear_cases(dtype, lx, lw, lb, lgy)
    return cases


def _max_rel_error(got, want) -> float:
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    worst = 0.0
    for g, w in zip(got, want):
        if g is None and w is None:
            continue
        if g.shape != w.shape:
            return float("inf")
        scale = max(float(np.max(np.abs(w))), 1e-30)
        worst = max(worst, float(np.max(np.abs(g.astype(np.float64) - w))) / scale)
    return worst


def self_check(verbose: bool) -> bool:
    rng = np.random.default_rng(2024)
    ok = True
    isas = fc.available_cpu_isas()
    previous = fc.cpu_isa()
    try:
        for isa in isas:
            fc.set_cpu_isa(isa)
            for name, run_fc, run_ref in _cases(rng):
                err = _max_rel_error(run_fc(), run_ref())
                tol = 1e-4 if "float32" in name else 1e-10
                passed = err <= tol
                ok &= passed
                if verbose or not passed:
                    print(f"  [{isa:6}] {name:38} max rel error {err:.2e}  {'ok' if passed else 'FAIL'}")
    finally:
        fc.set_cpu_isa(previous)
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastconv", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="print every check")
    args = parser.parse_args(argv)

    print(f"fastconv {fc.__version__}")
    print(f"  CPU ISA in use : {fc.cpu_isa()} (this CPU supports: {', '.join(fc.available_cpu_isas())})")
    print(
        f"  CPU threads    : {fc.get_num_threads()} (worker spin {fc.get_worker_spin_us()} us, "
        f"NumPy BLAS parking {'on' if fc.get_blas_parking() else 'off'})"
    )
    print(f"  CUDA           : built={fc.cuda_built()} available={fc.cuda_available()}")
    start = time.perf_counter()
    ok = self_check(args.verbose)
    seconds = time.perf_counter() - start
    if ok:
        print(f"self-check OK: every operation matches the float64 reference on all ISA paths ({seconds:.1f} s)")
        return 0
    print(f"self-check FAILED: see the lines above ({seconds:.1f} s)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
