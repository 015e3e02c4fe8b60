"""Max, average and global pooling, forward and backward."""

from __future__ import annotations

import numpy as np
from helpers import randn, small_ints
from hypothesis import strategies as st

import fastconv as fc
from fastconv import reference as ref

from ._table import LAYOUTS, Bad, Call, Grad, Row, grid, hw_pair, layouts, nchw, output_hw, padding_forms

FIELDS = ("N", "C", "H", "W", "kernel", "stride", "padding")
# (N, C, H, W, kernel_size, stride, padding)
MAX_GEOMETRY = {
    "k2": (2, 3, 8, 8, 2, None, 0),
    "k2_odd": (1, 17, 7, 9, 2, None, 0),
    "k3_s2_p1": (2, 16, 9, 8, 3, 2, 1),
    "k3_s1_same": (1, 15, 6, 7, 3, 1, "same"),
    "k2x3_asym": (1, 33, 7, 7, (2, 3), (1, 2), ((1, 0), (0, 1))),
    "k1": (1, 1, 5, 5, 1, 1, 0),
    "k3_valid_s2": (3, 16, 11, 10, 3, 2, "valid"),
    "k2_s2_same": (1, 16, 7, 5, 2, 2, "same"),
}
MAX_GRAD_GEOMETRY = {
    "k2": (2, 2, 4, 6, 2, None, 0),
    "k3_s2_p1": (1, 2, 7, 6, 3, 2, 1),
    "k3_s1_same": (1, 1, 5, 5, 3, 1, "same"),
    "k2x3_asym": (1, 2, 6, 7, (2, 3), (1, 2), ((1, 0), (0, 1))),
}
AVG_GEOMETRY = {
    "N1C1H5W7k2": (1, 1, 5, 7, 2, None, 0),
    "odd_sizes_drop_last": (2, 15, 9, 11, 2, None, 0),
    "k2s2_tiles": (3, 17, 8, 6, 2, 2, 0),
    "k2s2_same_odd": (2, 3, 5, 7, 2, 2, "same"),  # windows reach the bottom / right padding
    "k3s2p1": (1, 16, 8, 8, 3, 2, 1),
    "k3s2_same": (3, 17, 10, 9, 3, 2, "same"),
    "k3x2_asym": (1, 33, 7, 12, (3, 2), (2, 1), ((1, 0), (0, 1))),
    "k3s1p1_overlap": (2, 5, 6, 6, 3, 1, 1),
    "k2s3_gaps": (1, 4, 11, 13, 2, 3, 0),  # stride > kernel: rows no window covers
    "k7s7": (2, 3, 14, 14, 7, 7, 0),
    # windows wider or taller than the plane: one output column whose stride becomes 1, windows
    # starting and ending in padding, Keras 'same' with a kernel larger than the map, huge kernels
    "wide_k5p2": (1, 3, 4, 4, 5, None, 2),
    "wide_k40p19": (2, 3, 4, 4, 40, None, 19),
    "wide_k8_same": (2, 5, 4, 4, 8, None, "same"),
    "wide_k8s1_same": (1, 2, 4, 5, 8, 1, "same"),
    "wide_k1x20001_same": (1, 2, 3, 3, (1, 20001), None, "same"),
    "wide_k20001x3_same": (1, 2, 3, 4, (20001, 3), None, "same"),
    "wide_k3x2001_p1x1000": (2, 3, 5, 3, (3, 2001), 1, (1, 1000)),
}
GLOBAL_SHAPES = {
    "1x1x1x1": (1, 1, 1, 1),
    "2x17x7x7": (2, 17, 7, 7),
    "3x33x5x9": (3, 33, 5, 9),
    "1x64x1x13": (1, 64, 1, 13),
}


def _configs(geometry):
    return {name: dict(zip(FIELDS, g)) for name, g in geometry.items()}


def _window_holds_a_cell(cfg):
    """Valid pooling: an output, and every window (the last one too) overlaps the input."""
    stride = cfg["kernel"] if cfg["stride"] is None else cfg["stride"]
    P, Q, pads = output_hw(cfg, cfg["kernel"], stride)
    (R, S), (sh, sw) = (np.broadcast_to(cfg["kernel"], 2), np.broadcast_to(stride, 2))
    return (
        P >= 1
        and Q >= 1
        and max(pads[:2]) < R
        and max(pads[2:]) < S
        and (P - 1) * sh - pads[0] < cfg["H"]
        and (Q - 1) * sw - pads[2] < cfg["W"]
    )


_pool_fields = dict(
    N=st.integers(1, 2),
    C=st.integers(1, 18),
    H=st.integers(1, 10),
    W=st.integers(1, 10),
    kernel=hw_pair,
    stride=st.one_of(st.none(), hw_pair),
    padding=padding_forms,
    layout=layouts,
)
MAX_CONFIGS = st.fixed_dictionaries(_pool_fields).filter(_window_holds_a_cell)
AVG_CONFIGS = st.fixed_dictionaries({**_pool_fields, "count_include_pad": st.booleans()}).filter(_window_holds_a_cell)
GLOBAL_CONFIGS = st.fixed_dictionaries(
    dict(N=st.integers(1, 2), C=st.integers(1, 18), H=st.integers(1, 10), W=st.integers(1, 10), layout=layouts)
)


def ties(rng, shape, dtype):
    """Integers in [-1, 1]: windows hold many ties (the first in row-major order must win)."""
    return small_ints(rng, shape, dtype, -1, 1)


def _keywords(cfg, *extra):
    return {"stride": cfg["stride"], "padding": cfg["padding"], "layout": cfg["layout"], **{k: cfg[k] for k in extra}}


def _x(cfg, rng, dtype, make):
    return make(rng, nchw(cfg["layout"], cfg["N"], cfg["C"], cfg["H"], cfg["W"]), dtype)


def _distinct(cfg, rng):
    """float64 data without ties, so every max is strict under a finite-difference step."""
    shape = nchw(cfg["layout"], cfg["N"], cfg["C"], cfg["H"], cfg["W"])
    return rng.permutation(np.arange(np.prod(shape), dtype=np.float64)).reshape(shape) * 0.1


# ----------------------------------------------------------------------------- max pooling


def draw_max(cfg, rng, dtype, make):
    return Call((_x(cfg, rng, dtype, make), cfg["kernel"]), _keywords(cfg))


def draw_max_backward(cfg, rng, dtype, make):
    x = _x(cfg, rng, dtype, make)
    kw = _keywords(cfg)
    y, idx = ref.max_pool2d(x, cfg["kernel"], **kw)
    gy = make(rng, y.shape, dtype)
    return Call((gy, idx.astype(cfg.get("indices", "int64")), x.shape, cfg["kernel"]), kw)


def grad_max(cfg, rng):
    kw = _keywords(cfg)
    k = cfg["kernel"]

    def forward(x):
        return fc.max_pool2d(x, k, **kw)[0]

    def backward(g, x):
        return {"x": fc.max_pool2d_backward(g, fc.max_pool2d(x, k, **kw)[1], x.shape, k, **kw)}

    return Grad({"x": _distinct(cfg, rng)}, forward, backward)


# ----------------------------------------------------------------------------- average pooling


def draw_avg(cfg, rng, dtype, make):
    return Call((_x(cfg, rng, dtype, make), cfg["kernel"]), _keywords(cfg, "count_include_pad"))


def draw_avg_backward(cfg, rng, dtype, make):
    x = _x(cfg, rng, dtype, make)
    kw = _keywords(cfg, "count_include_pad")
    P, Q, _ = output_hw(cfg, cfg["kernel"], cfg["kernel"] if cfg["stride"] is None else cfg["stride"])
    gy = make(rng, nchw(cfg["layout"], cfg["N"], cfg["C"], P, Q), dtype)
    return Call((gy, x.shape, cfg["kernel"]), kw)


def grad_avg(cfg, rng):
    kw = _keywords(cfg, "count_include_pad")
    k = cfg["kernel"]
    x = randn(rng, nchw(cfg["layout"], cfg["N"], cfg["C"], cfg["H"], cfg["W"]), np.float64)
    return Grad(
        {"x": x},
        lambda x: fc.avg_pool2d(x, k, **kw),
        lambda g, x: {"x": fc.avg_pool2d_backward(g, x.shape, k, **kw)},
    )


# ----------------------------------------------------------------------------- global pooling


def draw_global(cfg, rng, dtype, make):
    return Call((_x(cfg, rng, dtype, make),), {"layout": cfg["layout"]})


def draw_global_max(cfg, rng, dtype, make):
    x = _x(cfg, rng, dtype, make)
    x.flat[::5] = x.flat[0]  # ties: the first one wins
    return Call((x,), {"layout": cfg["layout"]})


def draw_global_avg_backward(cfg, rng, dtype, make):
    x = _x(cfg, rng, dtype, make)
    return Call((make(rng, (cfg["N"], cfg["C"]), dtype), x.shape), {"layout": cfg["layout"]})


def draw_global_max_backward(cfg, rng, dtype, make):
    x = draw_global_max(cfg, rng, dtype, make).args[0]
    _, idx = ref.global_max_pool2d(x, layout=cfg["layout"])
    return Call((make(rng, (cfg["N"], cfg["C"]), dtype), idx, x.shape), {"layout": cfg["layout"]})


def grad_global_avg(cfg, rng):
    lay = cfg["layout"]
    return Grad(
        {"x": randn(rng, nchw(lay, cfg["N"], cfg["C"], cfg["H"], cfg["W"]), np.float64)},
        lambda x: fc.global_avg_pool2d(x, layout=lay),
        lambda g, x: {"x": fc.global_avg_pool2d_backward(g, x.shape, layout=lay)},
    )


def grad_global_max(cfg, rng):
    lay = cfg["layout"]

    def backward(g, x):
        return {"x": fc.global_max_pool2d_backward(g, fc.global_max_pool2d(x, layout=lay)[1], x.shape, layout=lay)}

    return Grad({"x": _distinct(cfg, rng)}, lambda x: fc.global_max_pool2d(x, layout=lay)[0], backward)


# ----------------------------------------------------------------------------- bad inputs

X = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
PY, PI = fc.max_pool2d(X, 2)  # (2, 3, 4, 4)
X4 = np.ones((1, 2, 4, 4), np.float32)


def _max_valid():
    assert fc.max_pool2d(X, 2)[0].shape == PY.shape


def _max_backward_valid():
    assert fc.max_pool2d_backward(PY, PI, X.shape).shape == X.shape


def _avg_valid():
    assert fc.avg_pool2d(X4, 2, count_include_pad=False).shape == (1, 2, 2, 2)


def _avg_backward_valid():
    assert fc.avg_pool2d_backward(np.ones((1, 2, 2, 2), np.float32), X4.shape, 2).shape == X4.shape


def _global_avg_valid():
    assert fc.global_avg_pool2d(X4).shape == (1, 2)


def _global_max_valid():
    assert [a.shape for a in fc.global_max_pool2d(X4)] == [(1, 2), (1, 2)]


def _global_backward_valid():
    assert fc.global_avg_pool2d_backward(np.ones((1, 2), np.float32), X4.shape).shape == X4.shape
    assert fc.global_max_pool2d_backward(np.ones((1, 2), np.float32), np.zeros((1, 2), np.int64), X4.shape).shape == (
        X4.shape
    )


def _not_arrays(op):
    return tuple(
        Bad(f"x_{name}", lambda v=value: getattr(fc, op)(v), TypeError, "x must be a NumPy or CuPy array")
        for name, value in (("list", [[[[1.0]]]]), ("None", None))
    )


MAX_BAD = (
    Bad("x_3d", lambda: fc.max_pool2d(X[0]), ValueError, r"\bx\b"),
    Bad("x_empty_batch", lambda: fc.max_pool2d(X[:0]), ValueError, r"\bx\b.*empty"),
    Bad("x_float16", lambda: fc.max_pool2d(X.astype(np.float16)), TypeError, "float16"),
    Bad("out_small", lambda: fc.max_pool2d(X, 9), ValueError, "output|size|shape"),
    Bad("kernel_0", lambda: fc.max_pool2d(X, 0), ValueError, "kernel_size"),
    Bad("kernel_float", lambda: fc.max_pool2d(X, 2.0), TypeError, "kernel_size"),
    Bad("stride_0", lambda: fc.max_pool2d(X, 2, stride=0), ValueError, "stride"),
    Bad("padding_negative", lambda: fc.max_pool2d(X, 3, padding=-1), ValueError, "padding"),
    Bad("padding_string", lambda: fc.max_pool2d(X, 3, padding="full"), ValueError, "padding"),
    Bad("layout_bad", lambda: fc.max_pool2d(X, layout="NWHC"), ValueError, "layout"),
)
MAX_BACKWARD_BAD = (
    Bad(
        "indices_float",
        lambda: fc.max_pool2d_backward(PY, PI.astype(np.float32), X.shape),
        (TypeError, ValueError),
        "indices",
    ),
    Bad("grad_y_shape", lambda: fc.max_pool2d_backward(PY[:, :, :3], PI, X.shape), ValueError, "grad_y"),
    Bad("indices_shape", lambda: fc.max_pool2d_backward(PY, PI[:, :, :3], X.shape), ValueError, "indices"),
    Bad(
        "indices_negative",
        lambda: fc.max_pool2d_backward(PY, np.where(PI == PI.flat[0], -1, PI), X.shape),
        ValueError,
        "indices",
    ),
    Bad("indices_too_big", lambda: fc.max_pool2d_backward(PY, PI + 64, X.shape), ValueError, "indices"),
    Bad("kernel_0", lambda: fc.max_pool2d_backward(PY, PI, X.shape, 0), ValueError, "kernel_size"),
)
AVG_BAD = (
    Bad("padding_2_kernel_2", lambda: fc.avg_pool2d(X4, 2, padding=2), ValueError, "padding"),
    Bad("count_include_pad_str", lambda: fc.avg_pool2d(X4, 2, count_include_pad="yes"), TypeError, "count_include_pad"),
)
AVG_BACKWARD_BAD = (
    Bad(
        "grad_y_shape",
        lambda: fc.avg_pool2d_backward(np.ones((1, 2, 3, 3), np.float32), X4.shape, 2),
        ValueError,
        "grad_y",
    ),
    Bad(
        "x_shape_3",
        lambda: fc.avg_pool2d_backward(np.ones((1, 2, 2, 2), np.float32), (1, 2, 4), 2),
        ValueError,
        "x_shape",
    ),
)
GLOBAL_AVG_BAD = (
    Bad("x_2d", lambda: fc.global_avg_pool2d(np.ones((2, 3), np.float32)), ValueError, "4-D"),
    *_not_arrays("global_avg_pool2d"),
)
GLOBAL_AVG_BACKWARD_BAD = (
    Bad(
        "grad_y_shape",
        lambda: fc.global_avg_pool2d_backward(np.ones((1, 3), np.float32), X4.shape),
        ValueError,
        r"grad_y must have shape \(N, C\)",
    ),
)
GLOBAL_MAX_BACKWARD_BAD = (
    Bad(
        "indices_shape",
        lambda: fc.global_max_pool2d_backward(np.ones((1, 2), np.float32), np.zeros((1, 3), np.int64), X4.shape),
        ValueError,
        "indices has shape",
    ),
)

# ----------------------------------------------------------------------------- rows

MAX_CASES = grid(_configs(MAX_GEOMETRY), layout=LAYOUTS)
AVG_CASES = grid(_configs(AVG_GEOMETRY), layout=LAYOUTS, count_include_pad=(True, False))
AVG_GRAD_CASES = grid(
    {"k3s2p1": dict(zip(FIELDS, (1, 2, 7, 6, 3, 2, 1)))}, layout=LAYOUTS, count_include_pad=(True, False)
)
GLOBAL_CASES = grid({k: dict(zip("NCHW", s)) for k, s in GLOBAL_SHAPES.items()}, layout=LAYOUTS)
GLOBAL_GRAD_CASES = grid({"2x3x4x5": dict(N=2, C=3, H=4, W=5)}, layout=LAYOUTS)

ROWS = [
    Row(
        "max_pool2d",
        draw_max,
        MAX_CASES,
        MAX_CONFIGS,
        exact=True,
        exact_data=ties,
        noncontiguous=tuple(MAX_GEOMETRY),
        valid=_max_valid,
        bad=MAX_BAD,
    ),
    Row(
        "max_pool2d_backward",
        draw_max_backward,
        grid(_configs(MAX_GEOMETRY), layout=LAYOUTS, indices=("int64", "int32")),
        MAX_CONFIGS,
        exact_data=ties,
        noncontiguous=tuple(MAX_GEOMETRY),
        grad=grad_max,
        grad_cases=grid(_configs(MAX_GRAD_GEOMETRY), layout=LAYOUTS),
        grad_eps=1e-3,
        valid=_max_backward_valid,
        bad=MAX_BACKWARD_BAD,
    ),
    Row(
        "avg_pool2d",
        draw_avg,
        AVG_CASES,
        AVG_CONFIGS,
        noncontiguous=("k3s2p1", "k3x2_asym"),
        valid=_avg_valid,
        bad=AVG_BAD,
    ),
    Row(
        "avg_pool2d_backward",
        draw_avg_backward,
        AVG_CASES,
        AVG_CONFIGS,
        noncontiguous=("k3s2p1", "k3x2_asym"),
        grad=grad_avg,
        grad_cases=AVG_GRAD_CASES,
        valid=_avg_backward_valid,
        bad=AVG_BACKWARD_BAD,
    ),
    Row(
        "global_avg_pool2d",
        draw_global,
        GLOBAL_CASES,
        GLOBAL_CONFIGS,
        noncontiguous=("2x17x7x7",),
        valid=_global_avg_valid,
        bad=GLOBAL_AVG_BAD,
    ),
    Row(
        "global_avg_pool2d_backward",
        draw_global_avg_backward,
        GLOBAL_CASES,
        GLOBAL_CONFIGS,
        noncontiguous=("2x17x7x7",),
        grad=grad_global_avg,
        grad_cases=GLOBAL_GRAD_CASES,
        valid=_global_backward_valid,
        bad=GLOBAL_AVG_BACKWARD_BAD,
    ),
    Row(
        "global_max_pool2d",
        draw_global_max,
        GLOBAL_CASES,
        GLOBAL_CONFIGS,
        exact=True,
        noncontiguous=("2x17x7x7",),
        valid=_global_max_valid,
        bad=_not_arrays("global_max_pool2d"),
    ),
    Row(
        "global_max_pool2d_backward",
        draw_global_max_backward,
        GLOBAL_CASES,
        GLOBAL_CONFIGS,
        exact=True,
        noncontiguous=("2x17x7x7",),
        grad=grad_global_max,
        grad_cases=GLOBAL_GRAD_CASES,
        valid=_global_backward_valid,
        bad=GLOBAL_MAX_BACKWARD_BAD,
    ),
]
