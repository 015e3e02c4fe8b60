"""linear (the dense-layer GEMM) and its backward passes."""

from __future__ import annotations

import numpy as np
from helpers import randn, small_ints
from hypothesis import strategies as st

import fastconv as fc

from ._table import Bad, Call, Grad, Row, grid, tolerances

# (M, K, N): rows around both register tiles (AVX2 6, AVX-512 14), columns around the panel
# widths (8, 16, 32 lanes), reductions around the reduction block (256) and the 512-byte row groups.
GRID = {
    f"{M}x{K}x{N}": dict(M=M, K=K, N=N)
    for M, K, N in [
        (1, 1, 1),
        (1, 7, 3),
        (5, 13, 17),
        (6, 16, 16),
        (7, 33, 31),
        (9, 70, 21),
        (14, 256, 32),
        (15, 257, 33),
        (23, 700, 45),
        (29, 300, 129),
        (64, 576, 64),
        (8, 1030, 10),
        (3, 513, 200),
    ]
}
ACTIVATED = {
    **grid(GRID, activation=("relu",)),
    **grid({"3x9x4": dict(M=3, K=9, N=4)}, activation=("sigmoid", "tanh", "leaky_relu"), alpha=(None, 0.25)),
}
WITH_BIAS = grid(GRID, bias=(True, False))
NONCONTIGUOUS = ("9x70x21", "7x33x31")
# K and N from 4: every output then holds several sums, so one sum that cancels to ~0 cannot set
# the scale of the tolerance (a lone 1x1 grad_weight of 21 products missed 1e-5 in float32).
CONFIGS = st.fixed_dictionaries(
    dict(
        M=st.integers(1, 40),
        K=st.integers(4, 300),
        N=st.integers(4, 40),
        bias=st.booleans(),
        # relu only: tanh squeezes y to [-1, 1] while a 300-term float32 sum keeps its rounding
        # of ~1e-5 (the smooth epilogues are the fixed K=9 cases)
        activation=st.sampled_from([None, "relu"]),
    )
)


def _arrays(cfg, rng, dtype, make):
    M, K, N = cfg["M"], cfg["K"], cfg["N"]
    return make(rng, (M, K), dtype), make(rng, (N, K), dtype), make(rng, (N,), dtype), make(rng, (M, N), dtype)


def draw_forward(cfg, rng, dtype, make):
    x, w, b, _ = _arrays(cfg, rng, dtype, make)
    act = {k: cfg[k] for k in ("activation", "alpha") if k in cfg}
    return Call((x, w, b if cfg.get("bias", True) else None), act)


def draw_backward(cfg, rng, dtype, make):
    x, w, _, gy = _arrays(cfg, rng, dtype, make)
    return Call((gy, x, w), {"bias": cfg.get("bias", True)})


def draw_backward_data(cfg, rng, dtype, make):
    _, w, _, gy = _arrays(cfg, rng, dtype, make)
    return Call((gy, w))


def draw_backward_weight(cfg, rng, dtype, make):
    x, _, _, gy = _arrays(cfg, rng, dtype, make)
    return Call((gy, x), {"bias": cfg.get("bias", True)})


def _grad(passes):
    def make(cfg, rng):
        x, w, b, _ = _arrays(cfg, rng, np.float64, randn)
        return Grad(dict(x=x, weight=w, bias=b), lambda x, weight, bias: fc.linear(x, weight, bias), passes)

    return make


def _all_three(g, x, weight, bias):
    return dict(zip(("x", "weight", "bias"), fc.linear_backward(g, x, weight)))


def _data_pass(g, x, weight, bias):
    return {"x": fc.linear_backward_data(g, weight)}


def _weight_pass(g, x, weight, bias):
    return dict(zip(("weight", "bias"), fc.linear_backward_weight(g, x)))


GRAD_CASES = {"3x5x4": dict(M=3, K=5, N=4)}

# ----------------------------------------------------------------------------- bad inputs

_rng = np.random.default_rng(8)
X, W, B, GY = randn(_rng, (3, 6)), randn(_rng, (4, 6)), randn(_rng, (4,)), randn(_rng, (3, 4))
X2, W2 = np.ones((2, 3), np.float32), np.ones((4, 3), np.float32)


def _valid():
    assert fc.linear(X, W, B).shape == GY.shape


def _backward_valid():
    assert [a.shape for a in fc.linear_backward(GY, X, W)] == [X.shape, W.shape, B.shape]


def _data_valid():
    assert fc.linear_backward_data(GY, W).shape == X.shape


def _weight_valid():
    assert [a.shape for a in fc.linear_backward_weight(GY, X)] == [W.shape, B.shape]


def _slope(alpha):
    return lambda: fc.linear(X2, np.ones((2, 3), np.float32), activation="leaky_relu", alpha=alpha)


BAD = (
    Bad("x_1d", lambda: fc.linear(X[0], W), ValueError, r"x must be 2-D \(N, in_features\)"),
    Bad("features", lambda: fc.linear(X, W[:, :-1]), ValueError, r"x has 6 features but weight expects 5"),
    Bad("bias_len", lambda: fc.linear(X, W, B[:-1]), ValueError, r"bias must have shape \(4,\)"),
    Bad("activation_elu", lambda: fc.linear(X, W, activation="elu"), ValueError, r"activation must be None, 'linear'"),
    Bad("x_empty", lambda: fc.linear(X[:0], W), ValueError, r"empty dimension"),
    Bad("mixed_dtypes", lambda: fc.linear(X2, W2.astype(np.float64)), TypeError, "mixed dtypes"),
    Bad("int32", lambda: fc.linear(X2.astype(np.int32), W2.astype(np.int32)), TypeError, "float32 and float64"),
    Bad("x_list", lambda: fc.linear(X2.tolist(), W2), TypeError, "NumPy or CuPy array"),
    *(Bad(f"alpha_{a}", _slope(a), ValueError, "alpha") for a in (-0.5, float("nan"), float("inf"), True, "0.1")),
)
BACKWARD_BAD = (
    Bad(
        "grad_y_shape",
        lambda: fc.linear_backward(GY[:, :-1], X, W),
        ValueError,
        r"grad_y has shape \(3, 3\) but the forward output is \(3, 4\)",
    ),
)
DATA_BAD = (
    Bad(
        "grad_y_shape",
        lambda: fc.linear_backward_data(GY, W[:-1]),
        ValueError,
        r"grad_y has shape \(3, 4\) but the forward output is \(3, 3\)",
    ),
)
WEIGHT_BAD = (
    Bad(
        "grad_y_shape",
        lambda: fc.linear_backward_weight(GY[:-1], X),
        ValueError,
        r"grad_y has shape \(2, 4\) but the forward output is \(3, 4\)",
    ),
)

# ----------------------------------------------------------------------------- rows

_common = dict(configs=CONFIGS, rtol=tolerances(1e-5, 1e-10), exact_data=small_ints, noncontiguous=NONCONTIGUOUS)
ROWS = [
    Row("linear", draw_forward, {**WITH_BIAS, **ACTIVATED}, valid=_valid, bad=BAD, **_common),
    Row(
        "linear_backward",
        draw_backward,
        WITH_BIAS,
        grad=_grad(_all_three),
        grad_cases=GRAD_CASES,
        valid=_backward_valid,
        bad=BACKWARD_BAD,
        **_common,
    ),
    Row(
        "linear_backward_data",
        draw_backward_data,
        GRID,
        grad=_grad(_data_pass),
        grad_cases=GRAD_CASES,
        valid=_data_valid,
        bad=DATA_BAD,
        **_common,
    ),
    Row(
        "linear_backward_weight",
        draw_backward_weight,
        WITH_BIAS,
        grad=_grad(_weight_pass),
        grad_cases=GRAD_CASES,
        valid=_weight_valid,
        bad=WEIGHT_BAD,
        **_common,
    ),
]
