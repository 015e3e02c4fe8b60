"""Batch normalization: the forward pass (training and inference) and its backward pass."""

from __future__ import annotations

import numpy as np
from helpers import randn
from hypothesis import strategies as st

import fastconv as fc
from fastconv import reference as ref

from ._table import LAYOUTS, Bad, Call, Grad, Row, grid, layouts, nchw, tolerances

# (N, C, H, W): channels around the vector widths, batch 1, 1x1 planes; (3, 17, 37, 29): long
# channels (NCHW planes of 1073 elements, 67 vectors of 16 and a tail; NHWC blocks of 256 pixels).
SHAPES = {str(s): {"shape": s} for s in [(1, 1, 3, 5), (2, 15, 7, 5), (1, 16, 4, 4), (3, 17, 5, 3), (2, 33, 1, 1)]}
SHAPES["(3, 17, 37, 29)"] = {"shape": (3, 17, 37, 29)}
MODES = ("training", "inference")
# mean 1e4 + N(0, 1): the statistics must not cancel
CASES = {
    **grid(SHAPES, layout=LAYOUTS, mode=MODES, mean=(0.0, 1e4)),
    **grid(SHAPES, layout=LAYOUTS, mode=MODES, activation=("relu",)),
    **grid({"(2, 3, 4, 4)": {"shape": (2, 3, 4, 4)}}, layout=LAYOUTS, mode=MODES, affine=(False,)),
}
TRAINING_CASES = {k: v for k, v in CASES.items() if v["mode"] == "training"}
FROZEN_CASES = {k: v for k, v in CASES.items() if v["mode"] == "inference"}
NONCONTIGUOUS = ("(2, 15, 7, 5)",)
_FIELDS = dict(
    shape=st.tuples(st.integers(1, 3), st.integers(1, 18), st.integers(1, 6), st.integers(1, 6)),
    layout=layouts,
    mean=st.sampled_from([0.0, 1e4]),
    affine=st.booleans(),
    activation=st.sampled_from([None, "relu"]),
)


def _configs(modes):
    """Training needs more than one value a channel."""
    return st.fixed_dictionaries({**_FIELDS, "mode": st.sampled_from(modes)}).filter(
        lambda cfg: cfg["mode"] == "inference" or np.prod(cfg["shape"]) > cfg["shape"][1]
    )


CONFIGS = _configs(MODES)
TRAINING_CONFIGS = _configs(("training",))
FROZEN_CONFIGS = _configs(("inference",))


def _arrays(cfg, rng, dtype, make):
    """x, gamma, beta, running_mean, running_var (None while training) and the keywords."""
    N, C, H, W = cfg["shape"]
    mean = cfg.get("mean", 0.0)
    x = (mean + make(rng, nchw(cfg["layout"], N, C, H, W), np.float64)).astype(dtype)
    g, b = (make(rng, (C,), dtype), make(rng, (C,), dtype)) if cfg.get("affine", True) else (None, None)
    training = cfg["mode"] == "training"
    stats = (None, None)
    if not training:
        stats = ((mean + randn(rng, (C,), np.float64)).astype(dtype), rng.uniform(0.5, 2, C).astype(dtype))
    kw = dict(training=training, layout=cfg["layout"], activation=cfg.get("activation"))
    return x, g, b, stats, kw


def draw_forward(cfg, rng, dtype, make):
    x, g, b, stats, kw = _arrays(cfg, rng, dtype, make)
    return Call((x, g, b, *stats), kw)


def draw_backward(cfg, rng, dtype, make):
    """grad_y, x, gamma and the saved statistics (and y with the fused relu) of the reference forward."""
    x, g, b, stats, kw = _arrays(cfg, rng, dtype, make)
    y, mean, inv_std = (a.astype(dtype) for a in ref.batch_norm(x, g, b, *stats, **kw)[:3])
    gy = make(rng, x.shape, dtype)
    relu = {"y": y} if kw["activation"] == "relu" else {}
    return Call((gy, x, g, mean, inv_std), {**kw, **relu})


def grad(cfg, rng):
    """Through the training forward pass, whose statistics depend on x."""
    x, g, b, _, kw = _arrays(cfg, rng, np.float64, randn)

    def forward(x, gamma, beta):
        return fc.batch_norm(x, gamma, beta, None, None, **kw)[0]

    def backward(gy, x, gamma, beta):
        y, mean, inv_std = fc.batch_norm(x, gamma, beta, None, None, **kw)
        relu = {"y": y} if kw["activation"] == "relu" else {}
        gx, gg, gb = fc.batch_norm_backward(gy, x, gamma, mean, inv_std, **kw, **relu)
        return {"x": gx, "gamma": gg, "beta": gb}

    return Grad(dict(x=x, gamma=g, beta=b), forward, backward)


GRAD_CASES = {
    **grid({"(2, 3, 3, 2)": {"shape": (2, 3, 3, 2)}}, layout=LAYOUTS, mode=("training",)),
    **grid({"(2, 3, 4, 5)": {"shape": (2, 3, 4, 5)}}, layout=LAYOUTS, mode=("training",), activation=("relu",)),
}

# ----------------------------------------------------------------------------- bad inputs

X = np.ones((2, 3, 4, 4), np.float32)
C3 = np.ones(3, np.float32)


def _read_only():
    ro = C3.copy()
    ro.flags.writeable = False
    return ro


def _valid():
    y, m, s = fc.batch_norm(X, C3, C3, C3.copy(), C3.copy(), training=True)
    assert y.shape == X.shape and m.shape == s.shape == (3,)


def _backward_valid():
    _, m, s = fc.batch_norm(X, C3, C3, None, None, training=True)
    assert fc.batch_norm_backward(X, X, C3, m, s)[0].shape == X.shape


def _bn(*args, **kw):
    return lambda: fc.batch_norm(*args, **kw)


def _relu_state():
    return fc.batch_norm(X, C3, C3, None, None, training=True, activation="relu")


BAD = (
    Bad("gamma_shape", _bn(X, np.ones(4, np.float32), C3, C3, C3, training=True), ValueError, "gamma must have shape"),
    Bad(
        "running_mean_dtype",
        _bn(X, C3, C3, np.zeros(3), np.ones(3), training=True),
        TypeError,
        "running_mean has dtype",
    ),
    Bad("eps_0", _bn(X, C3, C3, C3, C3, training=True, eps=0.0), ValueError, "eps"),
    Bad("momentum_1.5", _bn(X, C3, C3, C3, C3, training=True, momentum=1.5), ValueError, "momentum"),
    Bad("training_str", _bn(X, C3, C3, C3, C3, training="yes"), TypeError, "training"),
    Bad(
        "inference_no_statistics",
        _bn(X, C3, C3, None, None, training=False),
        TypeError,
        "running_mean must be an array",
    ),
    Bad(
        "one_value_per_channel",
        _bn(np.ones((1, 3, 1, 1), np.float32), C3, C3, None, None, training=True),
        ValueError,
        "more than one value per channel",
    ),
    Bad(
        "running_mean_read_only",
        lambda: fc.batch_norm(X, C3, C3, _read_only(), C3, training=True),
        ValueError,
        "writeable",
    ),
    Bad(
        "activation_sigmoid",
        _bn(X, C3, C3, None, None, training=True, activation="sigmoid"),
        ValueError,
        "activation must be None or 'relu'",
    ),
)
BACKWARD_BAD = (
    Bad(
        "grad_y_shape",
        lambda: fc.batch_norm_backward(np.ones((2, 3, 4, 5), np.float32), X, C3, C3, C3),
        ValueError,
        "grad_y has shape",
    ),
    Bad(
        "relu_needs_y",
        lambda: fc.batch_norm_backward(X, X, C3, *_relu_state()[1:], activation="relu"),
        TypeError,
        "needs y",
    ),
    Bad(
        "y_without_relu",
        lambda: fc.batch_norm_backward(X, X, C3, *_relu_state()[1:], y=_relu_state()[0]),
        ValueError,
        "with activation='relu'",
    ),
    Bad(
        "y_shape",
        lambda: fc.batch_norm_backward(X, X, C3, *_relu_state()[1:], activation="relu", y=_relu_state()[0][:1]),
        ValueError,
        "y has shape",
    ),
    Bad(
        "y_dtype",
        lambda: fc.batch_norm_backward(
            X, X, C3, *_relu_state()[1:], activation="relu", y=_relu_state()[0].astype(np.float64)
        ),
        TypeError,
        "dtype",
    ),
)

# ----------------------------------------------------------------------------- rows

TOL = tolerances(3e-6, 1e-10)
ROWS = [
    Row(
        "batch_norm",
        draw_forward,
        CASES,
        CONFIGS,
        rtol=TOL,
        noncontiguous=NONCONTIGUOUS,
        valid=_valid,
        bad=BAD,
    ),
    Row(
        "batch_norm_backward",
        draw_backward,
        TRAINING_CASES,
        TRAINING_CONFIGS,
        rtol=tolerances(2e-5, 1e-9),
        noncontiguous=NONCONTIGUOUS,
        grad=grad,
        grad_cases=GRAD_CASES,
        valid=_backward_valid,
        bad=BACKWARD_BAD,
    ),
    # frozen statistics (training=False): the running ones are constants, a tighter bound
    Row(
        "batch_norm_backward",
        draw_backward,
        FROZEN_CASES,
        FROZEN_CONFIGS,
        rtol=TOL,
        noncontiguous=NONCONTIGUOUS,
        name="batch_norm_backward[frozen]",
    ),
]
