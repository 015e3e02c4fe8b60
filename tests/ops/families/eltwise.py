"""Elementwise activations: relu, sigmoid, tanh, leaky_relu and their backward passes."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import fastconv as fc
from fastconv import reference as ref

from ._table import Bad, Call, Grad, Row, grid

# 1-D sizes around the SIMD widths (tails), and 4-D sizes spanning several 16K-element work chunks.
RELU_SHAPES = {
    str(s): {"shape": s}
    for s in [
        (1,),
        (7,),
        (15,),
        (16,),
        (17,),
        (31,),
        (33,),
        (2, 3, 5, 5),
        (3, 17, 9, 11),
        (1, 33, 16, 16),
        (3, 17, 31, 29),
        (2, 16, 32, 32),
    ]
}
RELU_4D = tuple(k for k, v in RELU_SHAPES.items() if len(v["shape"]) == 4)
# Around every vector width and the 4-vector body, and one 4-D tensor for the non-contiguous views.
SIZES = {str(s): {"shape": s} for s in [(1,), (15,), (16,), (17,), (33,), (1000,), (4096 + 3,), (6, 4, 9)]}
SLOPES = grid({"(3, 5, 7, 2)": {"shape": (3, 5, 7, 2)}}, alpha=(0.0, 0.01, 0.3, 2.5))
# At least 8 elements: a lone saturated tanh'(y) = 1 - y^2 cancels to ~1e-9 and would set the
# tolerance's scale alone (the edge grid keeps the 1-element case with fixed data).
SHAPES = st.lists(st.integers(1, 10), min_size=1, max_size=4).map(tuple).filter(lambda s: np.prod(s) >= 8)
CONFIGS = st.fixed_dictionaries({"shape": SHAPES})
LEAKY_CONFIGS = st.fixed_dictionaries({"shape": SHAPES, "alpha": st.sampled_from([0.0, 0.01, 0.3, 2.5])})
ACTIVATIONS = ("sigmoid", "tanh", "leaky_relu")


def _alpha(cfg):
    return (cfg["alpha"],) if "alpha" in cfg else ()


def draw_relu(cfg, rng, dtype, make):
    return Call((make(rng, cfg["shape"], dtype),))


def draw_relu_backward(cfg, rng, dtype, make):
    """grad_y and y = relu(x), or y = x itself (any array: y > 0 decides)."""
    x, g = make(rng, cfg["shape"], dtype), make(rng, cfg["shape"], dtype)
    return Call((g, ref.relu(x).astype(dtype) if cfg["y"] == "relu(x)" else x))


def draw_activation(act):
    def draw(cfg, rng, dtype, make):
        return Call((make(rng, cfg["shape"], dtype) * 4, *_alpha(cfg)))  # * 4: reach the saturation

    return draw


def draw_activation_backward(act):
    def draw(cfg, rng, dtype, make):
        x, g = make(rng, cfg["shape"], dtype) * 4, make(rng, cfg["shape"], dtype)
        return Call((g, getattr(ref, act)(x, *_alpha(cfg)).astype(dtype), *_alpha(cfg)))

    return draw


def grad_activation(act):
    """Through the forward pass, away from the kinks of relu and leaky_relu."""

    def make(cfg, rng):
        x = rng.standard_normal((2, 3, 4, 5)) * 2
        x[np.abs(x) < 1e-2] = 0.5
        f = getattr(fc, act)
        return Grad({"x": x}, f, lambda g, x: {"x": getattr(fc, f"{act}_backward")(g, f(x))})

    return make


# ----------------------------------------------------------------------------- bad inputs

X = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
X2 = np.ones((2, 3), np.float32)


def _read_only():
    ro = np.ones((2, 3), np.float32)
    ro.flags.writeable = False
    return ro


def _valid(act):
    def valid():
        y = getattr(fc, act)(X)
        assert y.shape == X.shape and getattr(fc, f"{act}_backward")(X, y).shape == X.shape

    return valid


def _forward_bad(act):
    f = getattr(fc, act)
    return (
        Bad("x_int32", lambda: f(X.astype(np.int32)), TypeError, "int32"),
        Bad("x_complex", lambda: f(X.astype(np.complex64)), TypeError, "complex64"),
        Bad("x_int32_names_dtypes", lambda: f(X2.astype(np.int32)), TypeError, "float32 and float64"),
        Bad("x_list", lambda: f([1.0, 2.0]), TypeError, "NumPy or CuPy array"),
        Bad("out_shape", lambda: f(X2, out=np.ones((3, 2), np.float32)), ValueError, "out must match x"),
        Bad("out_read_only", lambda: f(X2, out=_read_only()), ValueError, "read-only"),
    )


def _backward_bad(act):
    f = getattr(fc, f"{act}_backward")
    return (
        Bad("grad_y_float16", lambda: f(X.astype(np.float16), X), TypeError, "float16"),
        Bad("mixed", lambda: f(X.astype(np.float64), X), (TypeError, ValueError), "dtype|float64|grad_y"),
        Bad("mixed_dtypes", lambda: f(X2, X2.astype(np.float64)), TypeError, "mixed dtypes"),
        Bad("shape", lambda: f(X[:1], X), ValueError, "grad_y|shape"),
        Bad("grad_y_shape", lambda: f(X2, np.ones((3, 2), np.float32)), ValueError, "grad_y has shape"),
    )


BAD_SLOPES = (-0.1, float("nan"), float("inf"), True, "0.1", None)
LEAKY_BAD = tuple(Bad(f"alpha_{a}", lambda a=a: fc.leaky_relu(X2, a), ValueError, "alpha") for a in BAD_SLOPES)
LEAKY_BACKWARD_BAD = tuple(
    Bad(f"alpha_{a}", lambda a=a: fc.leaky_relu_backward(X2, X2, a), ValueError, "alpha") for a in BAD_SLOPES
)

# ----------------------------------------------------------------------------- rows

ROWS = [
    Row(
        "relu",
        draw_relu,
        RELU_SHAPES,
        CONFIGS,
        exact=True,
        noncontiguous=RELU_4D,
        valid=_valid("relu"),
        bad=_forward_bad("relu"),
    ),
    Row(
        "relu_backward",
        draw_relu_backward,
        grid(RELU_SHAPES, y=("relu(x)", "x")),
        st.fixed_dictionaries({"shape": SHAPES, "y": st.sampled_from(["relu(x)", "x"])}),
        exact=True,
        noncontiguous=RELU_4D,
        grad=grad_activation("relu"),
        grad_cases={"2x3x4x5": {}},
        valid=_valid("relu"),
        bad=_backward_bad("relu"),
    ),
]
for _act in ACTIVATIONS:
    _cases = {**SIZES, **SLOPES} if _act == "leaky_relu" else SIZES
    _configs = LEAKY_CONFIGS if _act == "leaky_relu" else CONFIGS
    _extra = (LEAKY_BAD, LEAKY_BACKWARD_BAD) if _act == "leaky_relu" else ((), ())
    ROWS += [
        Row(
            _act,
            draw_activation(_act),
            _cases,
            _configs,
            noncontiguous=("(6, 4, 9)",),
            valid=_valid(_act),
            bad=_forward_bad(_act) + _extra[0],
        ),
        Row(
            f"{_act}_backward",
            draw_activation_backward(_act),
            _cases,
            _configs,
            noncontiguous=("(6, 4, 9)",),
            grad=grad_activation(_act),
            grad_cases={"2x3x4x5": {}},
            valid=_valid(_act),
            bad=_backward_bad(_act) + _extra[1],
        ),
    ]
