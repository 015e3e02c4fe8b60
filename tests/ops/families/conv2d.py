"""conv2d and its three backward passes."""

from __future__ import annotations

import numpy as np
from helpers import randn, small_ints
from hypothesis import strategies as st

import fastconv as fc

from ._table import (
    LAYOUTS,
    Bad,
    Call,
    Grad,
    Row,
    grid,
    hw_pair,
    layouts,
    nchw,
    output_hw,
    padding_forms,
)

# (N, C, K, H, W, R, S, stride, padding, dilation): an edge-case grid, not only random shapes
# (STYLE.md 10): channels 1/15/16/17/33, output widths around the register tiles (q*), batch 1.
GEOMETRY = {
    "1x1": (1, 1, 1, 5, 5, 1, 1, 1, 0, 1),
    "1x1_s2_c33": (2, 33, 16, 6, 7, 1, 1, 2, 0, 1),
    "3x3_p1_c3k16": (2, 3, 16, 9, 7, 3, 3, 1, 1, 1),
    "3x3_same_s2": (1, 15, 17, 8, 8, 3, 3, 2, "same", 1),
    "5x5_p2_c16k15": (3, 16, 15, 7, 9, 5, 5, 1, 2, 1),
    "7x7_p3_c17k33": (1, 17, 33, 11, 10, 7, 7, 1, 3, 1),
    "3x3_valid_s3": (1, 3, 3, 13, 12, 3, 3, 3, "valid", 1),
    "3x3_same_d2": (2, 16, 17, 10, 11, 3, 3, 1, "same", 2),
    "3x3_asym_pad": (1, 4, 5, 9, 8, 3, 3, 1, ((1, 0), (2, 1)), 1),
    "5x5_same_s2_odd": (1, 3, 16, 14, 13, 5, 5, 2, "same", 1),
    "3x2_mixed": (2, 1, 33, 6, 5, 3, 2, (2, 1), (1, 0), (1, 2)),
    "q1": (1, 3, 5, 3, 3, 3, 3, 1, 0, 1),
    "q15": (1, 16, 16, 3, 17, 3, 3, 1, 0, 1),
    "q16": (1, 16, 16, 3, 16, 3, 3, 1, 1, 1),
    "q17": (1, 17, 16, 4, 19, 3, 3, 1, 0, 1),
    "q33": (1, 16, 16, 3, 35, 3, 3, 1, 0, 1),
    "q7_k48": (2, 8, 48, 5, 9, 3, 3, 1, 0, 1),
    "q8_k32": (1, 16, 32, 6, 8, 3, 3, 1, 1, 1),
    "q14_k16": (1, 3, 16, 4, 14, 3, 3, 1, "same", 1),
    "q28_k33": (1, 16, 33, 3, 30, 3, 3, 1, 0, 1),
    "first_layer_c3_k64": (3, 3, 64, 16, 16, 3, 3, 1, 1, 1),
    "k64_c32": (2, 32, 64, 12, 12, 3, 3, 1, 1, 1),
    "s2_d2_p3": (1, 15, 16, 13, 12, 3, 3, 2, 3, 2),
}
# Small geometries for the finite differences (every element is perturbed twice).
GRAD_GEOMETRY = {
    "3x3_p1": (2, 3, 2, 5, 5, 3, 3, 1, 1, 1),
    "3x2_s2": (1, 2, 3, 7, 6, 3, 2, 2, 0, 1),
    "d2_same": (1, 2, 2, 6, 7, 3, 3, 1, "same", 2),
    "asym_pad_s3": (1, 2, 2, 8, 7, 3, 3, (3, 2), ((1, 0), (2, 1)), 1),
    "1x1": (2, 3, 4, 3, 4, 1, 1, 1, 0, 1),
}
FIELDS = ("N", "C", "K", "H", "W", "R", "S", "stride", "padding", "dilation")


def _configs(geometry):
    return {name: dict(zip(FIELDS, g)) for name, g in geometry.items()}


BASE = grid(_configs(GEOMETRY), layout=LAYOUTS)
WITH_BIAS = grid(_configs(GEOMETRY), layout=LAYOUTS, bias=(True, False))
NONCONTIGUOUS = ("3x3_p1_c3k16", "3x3_same_s2", "3x2_mixed")
# The fused epilogues: relu on a few geometries, every activation (and a slope) on one.
ACTIVATED = {
    **grid(
        _configs({k: GEOMETRY[k] for k in ("3x3_p1_c3k16", "5x5_same_s2_odd", "3x3_same_d2", "q17")}),
        layout=LAYOUTS,
        bias=(True, False),
        activation=("relu",),
    ),
    **grid(
        {"5x3x3_p1": dict(zip(FIELDS, (2, 5, 4, 7, 6, 3, 3, 1, 1, 1)))},
        layout=LAYOUTS,
        activation=("sigmoid", "tanh", "leaky_relu"),
        alpha=(None, 0.25),
    ),
}
GRAD_CASES = {
    **grid(_configs(GRAD_GEOMETRY), layout=LAYOUTS),
    # conv2d(activation='relu'), relu_backward, conv2d_backward: the layer's gradient
    **grid(
        {"relu_chain": dict(zip(FIELDS, (1, 2, 3, 5, 5, 3, 3, 1, "same", 1)))}, layout=LAYOUTS, activation=("relu",)
    ),
}


def _valid(cfg):
    P, Q, _ = output_hw(cfg, (cfg["R"], cfg["S"]), cfg["stride"], cfg["dilation"])
    return P >= 1 and Q >= 1


CONFIGS = st.fixed_dictionaries(
    dict(
        N=st.integers(1, 2),
        C=st.integers(1, 18),
        K=st.integers(1, 18),
        H=st.integers(1, 10),
        W=st.integers(1, 10),
        R=st.integers(1, 4),
        S=st.integers(1, 4),
        stride=hw_pair,
        dilation=st.one_of(st.just(1), st.tuples(st.integers(1, 2), st.integers(1, 2))),
        padding=padding_forms,
        layout=layouts,
        bias=st.booleans(),
        activation=st.sampled_from([None, "relu", "sigmoid", "tanh", "leaky_relu"]),
    )
).filter(_valid)


def arrays(cfg, rng, dtype, make):
    """x, weight, bias, grad_y and the keywords of one convolution."""
    lay = cfg["layout"]
    N, C, K, H, W, R, S = (cfg[k] for k in "NCKHWRS")
    P, Q, _ = output_hw(cfg, (R, S), cfg["stride"], cfg["dilation"])
    x = make(rng, nchw(lay, N, C, H, W), dtype)
    w = make(rng, (K, C, R, S) if lay == "NCHW" else (R, S, C, K), dtype)
    b = make(rng, (K,), dtype)
    gy = make(rng, nchw(lay, N, K, P, Q), dtype)
    kw = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"], layout=lay)
    return x, w, b, gy, kw


def draw_forward(cfg, rng, dtype, make):
    x, w, b, _, kw = arrays(cfg, rng, dtype, make)
    act = {k: cfg[k] for k in ("activation", "alpha") if k in cfg}
    return Call((x, w, b if cfg.get("bias", True) else None), {**kw, **act})


def draw_backward(cfg, rng, dtype, make):
    x, w, _, gy, kw = arrays(cfg, rng, dtype, make)
    return Call((gy, x, w), {**kw, "bias": cfg.get("bias", True)})


def draw_backward_data(cfg, rng, dtype, make):
    x, w, _, gy, kw = arrays(cfg, rng, dtype, make)
    return Call((gy, w, x.shape), kw)


def draw_backward_weight(cfg, rng, dtype, make):
    x, w, _, gy, kw = arrays(cfg, rng, dtype, make)
    return Call((gy, x, w.shape), {**kw, "bias": cfg.get("bias", True)})


def _grad(passes):
    """Grad of conv2d (activation included) through conv2d_backward, or through the separate
    passes: `passes` maps (g, x, weight, kw) to {input name: gradient}."""

    def make(cfg, rng):
        x, w, b, _, kw = arrays(cfg, rng, np.float64, randn)
        act = cfg.get("activation")

        def forward(x, weight, bias):
            return fc.conv2d(x, weight, bias, activation=act, **kw)

        def backward(g, x, weight, bias):
            if act == "relu":
                g = fc.relu_backward(g, forward(x, weight, bias))
            return passes(g, x, weight, kw)

        return Grad(dict(x=x, weight=w, bias=b), forward, backward)

    return make


def _all_three(g, x, w, kw):
    gx, gw, gb = fc.conv2d_backward(g, x, w, **kw)
    return {"x": gx, "weight": gw, "bias": gb}


def _data_pass(g, x, w, kw):
    return {"x": fc.conv2d_backward_data(g, w, x.shape, **kw)}


def _weight_pass(g, x, w, kw):
    gw, gb = fc.conv2d_backward_weight(g, x, w.shape, **kw)
    return {"weight": gw, "bias": gb}


# ----------------------------------------------------------------------------- bad inputs

_rng = np.random.default_rng(0)
X = _rng.standard_normal((2, 3, 8, 8)).astype(np.float32)  # NCHW
W = _rng.standard_normal((4, 3, 3, 3)).astype(np.float32)  # KCRS
B = _rng.standard_normal(4).astype(np.float32)
GY = _rng.standard_normal((2, 4, 6, 6)).astype(np.float32)  # conv2d(X, W) output shape
X_NHWC = np.ascontiguousarray(X.transpose(0, 2, 3, 1))
W_RSCK = np.ascontiguousarray(W.transpose(2, 3, 1, 0))


def _conv2d_valid():
    assert fc.conv2d(X, W, B).shape == GY.shape
    assert fc.conv2d(X_NHWC, W_RSCK, B, layout="NHWC").shape == (2, 6, 6, 4)


def _slope(alpha):
    return lambda: fc.conv2d(X, W, activation="leaky_relu", alpha=alpha)


CONV2D_BAD = (
    Bad("x_3d", lambda: fc.conv2d(X[0], W), ValueError, r"\bx\b"),
    Bad("x_5d", lambda: fc.conv2d(X[None], W), ValueError, r"\bx\b"),
    Bad("w_3d", lambda: fc.conv2d(X, W[0]), ValueError, "weight"),
    Bad("bias_2d", lambda: fc.conv2d(X, W, B[None]), ValueError, "bias"),
    Bad("x_empty_batch", lambda: fc.conv2d(X[:0], W), ValueError, r"\bx\b.*empty"),
    Bad("w_no_filters", lambda: fc.conv2d(X, W[:0]), ValueError, r"weight.*empty"),
    Bad("x_int32", lambda: fc.conv2d(X.astype(np.int32), W), TypeError, "int32"),
    Bad("x_float16", lambda: fc.conv2d(X.astype(np.float16), W), TypeError, "float16"),
    Bad("w_int32", lambda: fc.conv2d(X, W.astype(np.int32)), TypeError, "int32"),
    Bad("mixed_w", lambda: fc.conv2d(X, W.astype(np.float64)), (TypeError, ValueError), "dtype|float64|weight"),
    Bad("mixed_bias", lambda: fc.conv2d(X, W, B.astype(np.float64)), (TypeError, ValueError), "dtype|float64|bias"),
    Bad("channels", lambda: fc.conv2d(X, W[:, :2]), ValueError, "channel|weight"),
    Bad("channels_nhwc", lambda: fc.conv2d(X_NHWC, W_RSCK[:, :, :2], layout="NHWC"), ValueError, "channel|weight"),
    Bad("bias_len", lambda: fc.conv2d(X, W, B[:3]), ValueError, "bias"),
    Bad("bias_len_nhwc", lambda: fc.conv2d(X_NHWC, W_RSCK, B[:3], layout="NHWC"), ValueError, "bias"),
    Bad("out_small", lambda: fc.conv2d(X[:, :, :2, :2], W), ValueError, "output|size|shape"),
    Bad("out_small_dilation", lambda: fc.conv2d(X, W, dilation=4), ValueError, "output|size|shape"),
    Bad("stride_0", lambda: fc.conv2d(X, W, stride=0), ValueError, "stride"),
    Bad("stride_negative", lambda: fc.conv2d(X, W, stride=(1, -1)), ValueError, "stride"),
    Bad("stride_float", lambda: fc.conv2d(X, W, stride=1.5), TypeError, "stride"),
    Bad("stride_str", lambda: fc.conv2d(X, W, stride="1"), TypeError, "stride"),
    Bad("stride_triple", lambda: fc.conv2d(X, W, stride=(1, 1, 1)), (TypeError, ValueError), "stride"),
    Bad("stride_bool", lambda: fc.conv2d(X, W, stride=True), TypeError, "stride"),
    Bad("dilation_0", lambda: fc.conv2d(X, W, dilation=0), ValueError, "dilation"),
    Bad("dilation_float", lambda: fc.conv2d(X, W, dilation=2.0), TypeError, "dilation"),
    Bad("padding_negative", lambda: fc.conv2d(X, W, padding=-1), ValueError, "padding"),
    Bad("padding_negative_pair", lambda: fc.conv2d(X, W, padding=((0, 1), (-1, 0))), ValueError, "padding"),
    Bad("padding_string", lambda: fc.conv2d(X, W, padding="full"), ValueError, "padding"),
    Bad("padding_float", lambda: fc.conv2d(X, W, padding=1.0), TypeError, "padding"),
    Bad("padding_triple", lambda: fc.conv2d(X, W, padding=(1, 1, 1)), (TypeError, ValueError), "padding"),
    Bad("padding_bad_pairs", lambda: fc.conv2d(X, W, padding=((1, 1, 1), (1, 1))), (TypeError, ValueError), "padding"),
    Bad("layout_bad_order", lambda: fc.conv2d(X, W, layout="NCWH"), ValueError, "layout"),
    Bad("layout_bad", lambda: fc.conv2d(X, W, layout="CHWN"), ValueError, "layout"),
    Bad("activation_gelu", lambda: fc.conv2d(X, W, activation="gelu"), ValueError, "activation"),
    Bad("activation_elu", lambda: fc.conv2d(X, W, activation="elu"), ValueError, "activation must be"),
    Bad("bias_scalar", lambda: fc.conv2d(X, W, 1.0), (TypeError, ValueError), "bias"),
    *(Bad(f"alpha_{a}", _slope(a), ValueError, "alpha") for a in (-0.5, float("nan"), float("inf"), True, "0.1")),
)


def _backward_valid():
    assert fc.conv2d_backward(GY, X, W)[0].shape == X.shape


BACKWARD_BAD = (
    Bad("grad_y_3d", lambda: fc.conv2d_backward(GY[0], X, W), ValueError, "grad_y"),
    Bad("grad_y_int32", lambda: fc.conv2d_backward(GY.astype(np.int32), X, W), TypeError, "int32"),
    Bad(
        "mixed_grad_y",
        lambda: fc.conv2d_backward(GY.astype(np.float64), X, W),
        (TypeError, ValueError),
        "dtype|float64|grad_y",
    ),
    Bad("grad_y_shape", lambda: fc.conv2d_backward(GY[:, :, :5], X, W), ValueError, "grad_y"),
    Bad("grad_y_channels", lambda: fc.conv2d_backward(GY[:, :3], X, W), ValueError, "grad_y"),
    Bad("grad_y_batch", lambda: fc.conv2d_backward(GY[:1], X, W), ValueError, "grad_y"),
    Bad("stride_0", lambda: fc.conv2d_backward(GY, X, W, stride=0), ValueError, "stride"),
    Bad("padding_negative", lambda: fc.conv2d_backward(GY, X, W, padding=-2), ValueError, "padding"),
    Bad("layout_bad", lambda: fc.conv2d_backward(GY, X, W, layout=None), (TypeError, ValueError), "layout"),
)


def _data_valid():
    assert fc.conv2d_backward_data(GY, W, X.shape).shape == X.shape


DATA_BAD = (
    Bad("x_shape_3", lambda: fc.conv2d_backward_data(GY, W, X.shape[1:]), ValueError, "x_shape|shape"),
    Bad("grad_y_shape", lambda: fc.conv2d_backward_data(GY, W, (2, 3, 9, 9)), ValueError, "grad_y"),
    Bad("dilation_negative", lambda: fc.conv2d_backward_data(GY, W, X.shape, dilation=-1), ValueError, "dilation"),
)


def _weight_valid():
    assert fc.conv2d_backward_weight(GY, X, W.shape)[0].shape == W.shape


WEIGHT_BAD = (
    Bad("w_shape_3", lambda: fc.conv2d_backward_weight(GY, X, W.shape[1:]), ValueError, "weight_shape|shape"),
    Bad("grad_y_shape", lambda: fc.conv2d_backward_weight(GY, X, (4, 3, 5, 5)), ValueError, "grad_y"),
    Bad("channels", lambda: fc.conv2d_backward_weight(GY, X, (4, 2, 3, 3)), ValueError, "channel|weight"),
    Bad("stride_float", lambda: fc.conv2d_backward_weight(GY, X, W.shape, stride=0.5), TypeError, "stride"),
)

# ----------------------------------------------------------------------------- rows

_common = dict(configs=CONFIGS, exact_data=small_ints, noncontiguous=NONCONTIGUOUS)
ROWS = [
    Row(
        "conv2d",
        draw_forward,
        {**WITH_BIAS, **ACTIVATED},
        valid=_conv2d_valid,
        bad=CONV2D_BAD,
        **_common,
    ),
    Row(
        "conv2d_backward",
        draw_backward,
        WITH_BIAS,
        grad=_grad(_all_three),
        grad_cases=GRAD_CASES,
        valid=_backward_valid,
        bad=BACKWARD_BAD,
        **_common,
    ),
    Row(
        "conv2d_backward_data",
        draw_backward_data,
        BASE,
        grad=_grad(_data_pass),
        grad_cases=GRAD_CASES,
        valid=_data_valid,
        bad=DATA_BAD,
        **_common,
    ),
    Row(
        "conv2d_backward_weight",
        draw_backward_weight,
        WITH_BIAS,
        grad=_grad(_weight_pass),
        grad_cases=GRAD_CASES,
        valid=_weight_valid,
        bad=WEIGHT_BAD,
        **_common,
    ),
]
