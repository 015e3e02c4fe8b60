"""Testing helpers for users' own layers and models.

    from fastconv.testing import check_layer_gradients
    errors = check_layer_gradients(fc.layers.Conv2D(4, 3, padding="same"), x)   # raises on failure

Finite differences on float64: the layer (or Sequential) is copied and cast to float64, the
scalar L = sum(forward(x) * G) with a fixed random G is differentiated numerically by central
differences, and compared with what backward(G) puts in grad_x and in .grads.
"""

from __future__ import annotations

import copy

import numpy as np

__all__ = ["check_layer_gradients"]


def _refs(model):
    return model.parameters()


def _mark_input_grad(model):
    """Ask for the input gradient (Sequential skips it by default)."""
    if hasattr(model, "layers"):
        model.input_grad = True
        if model.built:
            model._mark_input_grads()
    else:
        model.needs_input_grad = True


def check_layer_gradients(
    layer,
    x,
    *,
    training=True,
    eps=1e-6,
    rtol=1e-6,
    atol=1e-9,
    max_checks=64,
    seed=0,
    check_input=True,
    check_params=True,
):
    """Compare backward() of `layer` (a fastconv layer or Sequential) with central differences.

    x: an input batch (any float dtype; cast to float64). The layer is deep-copied and cast to
    float64, so the caller's layer is left untouched; each evaluation runs on a fresh copy, which
    also replays random state (Dropout draws the same mask). At most `max_checks` randomly chosen
    elements of grad_x and of each parameter gradient are checked (all when fewer).
    An element passes when |analytic - numeric| <= atol + rtol * max(|analytic|, |numeric|).

    Returns {"x": max relative error, "<layer>/<param>": ..., ...}; raises AssertionError naming
    the array, the element index and both values on the first array that fails.
    """
    rng = np.random.default_rng(seed)
    x = np.array(x, dtype=np.float64)
    base = copy.deepcopy(layer)
    if hasattr(base, "layers"):
        base.build(x.shape[1:])
    else:
        base._ensure_built(x)
    base.astype(np.float64)
    _mark_input_grad(base)

    y = copy.deepcopy(base).forward(x, training=training)
    G = rng.standard_normal(y.shape)

    def loss(model, xin):
        return float(np.sum(model.forward(xin, training=training) * G))

    analytic_model = copy.deepcopy(base)
    analytic_model.forward(x, training=training)
    gx = analytic_model.backward(G)
    errors = {}

    def check(name, analytic, perturb):
        analytic = np.asarray(analytic, dtype=np.float64)
        n = analytic.size
        picks = np.arange(n) if n <= max_checks else rng.choice(n, max_checks, replace=False)
        worst = 0.0
        for flat in picks:
            idx = np.unravel_index(flat, analytic.shape)
            plus, minus = perturb(idx, +eps), perturb(idx, -eps)
            numeric = (plus - minus) / (2 * eps)
            a = analytic[idx]
            diff = abs(a - numeric)
            scale = max(abs(a), abs(numeric))
            if diff > atol + rtol * scale:
                raise AssertionError(
                    f"gradient check failed for {name} at index {tuple(int(i) for i in idx)}: "
                    f"backward gives {a!r}, finite differences {numeric!r} "
                    f"(|diff| {diff:.3g}, eps {eps})"
                )
            worst = max(worst, diff / scale if scale > 0 else diff)
        errors[name] = worst

    if check_input:
        if gx is None:
            raise AssertionError("backward returned no input gradient")
        if gx.shape != x.shape:
            raise AssertionError(f"grad_x has shape {gx.shape}, x has {x.shape}")

        def perturb_x(idx, delta):
            xd = x.copy()
            xd[idx] += delta
            return loss(copy.deepcopy(base), xd)

        check("x", gx, perturb_x)

    if check_params:
        grads = {ref.name: ref.grad for ref in _refs(analytic_model)}
        for ref in _refs(base):
            g = grads[ref.name]
            if g is None:
                raise AssertionError(f"backward left no gradient for {ref.name}")
            if tuple(g.shape) != tuple(ref.value.shape):
                raise AssertionError(
                    f"{ref.name}: gradient shape {tuple(g.shape)} != parameter shape {tuple(ref.value.shape)}"
                )

            def perturb_p(idx, delta, name=ref.name):
                trial = copy.deepcopy(base)
                target = next(r for r in _refs(trial) if r.name == name).value
                target[idx] += delta
                return loss(trial, x)

            check(ref.name, g, perturb_p)
    return errors
