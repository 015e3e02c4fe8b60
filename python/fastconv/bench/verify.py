"""Each fastconv result is checked against the float64 NumPy oracle (fastconv.reference)
before it is timed: convolution within a relative Frobenius error, pooling and ReLU exactly,
sigmoid, tanh and leaky ReLU within 4 units in the last place of each element."""

from __future__ import annotations

import numpy as np

from .. import reference as ref
from .libs import LEAKY_SLOPE, Problem, fastconv_result_nchw

CONV_TOLERANCE = {"float32": 1e-4, "float64": 1e-10}  # ||got - want||_F / ||want||_F
AVG_POOL_TOLERANCE = {"float32": 1e-6, "float64": 1e-14}  # sums of a few elements in the dtype


def reference_result(problem, pass_):
    L, x, gy = problem.layer, problem.x, problem.gy
    if L.kind == "conv":
        kw = dict(stride=L.stride, padding=L.pad)
        if pass_ == "fwd":
            return ref.conv2d(x, problem.w, activation=L.activation, alpha=LEAKY_SLOPE, **kw)
        if pass_ == "bwd_data":
            return ref.conv2d_backward_data(gy, problem.w, x.shape, **kw)
        return ref.conv2d_backward_weight(gy, x, problem.w.shape, bias=False, **kw)
    if L.kind == "avgpool":
        kw = dict(kernel_size=L.R, stride=L.stride, padding=L.pad)
        return ref.avg_pool2d(x, **kw) if pass_ == "fwd" else ref.avg_pool2d_backward(gy, x.shape, **kw)
    if L.kind == "gavgpool":
        return ref.global_avg_pool2d(x) if pass_ == "fwd" else ref.global_avg_pool2d_backward(gy, x.shape)
    if L.kind == "bn":
        if pass_ == "fwd":
            return ref.batch_norm(x, problem.gamma, problem.beta, None, None, training=True)[0]
        return ref.batch_norm_backward(gy, x, problem.gamma, problem.mean, problem.inv_std)[0]
    if L.kind == "pool":
        kw = dict(kernel_size=L.R, stride=L.stride, padding=L.pad)
        y, idx = ref.max_pool2d(x, **kw)
        return (y, idx) if pass_ == "fwd" else ref.max_pool2d_backward(gy, idx, x.shape, **kw)
    kw = {"alpha": LEAKY_SLOPE} if L.kind == "leaky_relu" else {}
    if pass_ == "fwd":
        return getattr(ref, L.kind)(x, **kw)
    return getattr(ref, f"{L.kind}_backward")(gy, problem.y, **kw)


def _first(a):
    return a[0] if isinstance(a, tuple) else a


def compare(problem, pass_, got, want):
    """-> (ok, error): relative Frobenius error for conv, number of differing elements otherwise."""
    kind = problem.layer.kind
    if kind in ("conv", "avgpool", "gavgpool", "bn"):
        g, w = np.asarray(_first(got), np.float64), np.asarray(_first(want), np.float64)
        if g.shape != w.shape:
            return False, float("inf")
        err = float(np.linalg.norm(g - w) / max(np.linalg.norm(w), 1e-300))
        tolerance = CONV_TOLERANCE if kind == "conv" else AVG_POOL_TOLERANCE
        return bool(err <= tolerance[problem.layer.dtype]), err
    if kind in ("sigmoid", "tanh", "leaky_relu"):
        g, w = np.asarray(got), np.asarray(want)
        if g.shape != w.shape:
            return False, float("inf")
        info = np.finfo(g.dtype)
        bad = np.abs(g - w) > 4 * info.eps * np.abs(w) + info.tiny
        return not bad.any(), float(bad.sum())
    gots = got if isinstance(got, tuple) else (got,)
    wants = want if isinstance(want, tuple) else (want,)
    bad = 0
    for g, w in zip(gots, wants):
        g = np.asarray(g)
        w = np.asarray(w).astype(g.dtype) if g.dtype.kind == "f" else np.asarray(w)
        if g.shape != w.shape:
            return False, float("inf")
        same = (g == w) | (np.isnan(g) & np.isnan(w)) if g.dtype.kind == "f" else (g == w)
        bad += int((~same).sum())
    return bad == 0, float(bad)


def verify(layer, pass_, layouts, batch):
    """{layout: (ok, error)} for fastconv at `batch` on `layer` against the reference."""
    problem = Problem(layer, batch, seed=1)
    want = reference_result(problem, pass_)
    out = {}
    for layout in layouts:
        try:
            got = fastconv_result_nchw(problem, pass_, layout)
        except Exception as exc:  # a crash is a failed check, reported with the rest
            out[layout] = (False, f"{type(exc).__name__}: {exc}")
            continue
        out[layout] = compare(problem, pass_, got, want)
    return out
