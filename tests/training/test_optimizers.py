"""Keras' optimizers against their formulas (and PyTorch where the conventions agree), the
schedules, and optimizers named as Keras names them."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastconv as fc
from fastconv import optim
from fastconv.layers import ParamRef


class _Holder:
    """One parameter with a gradient, as layers hold them."""

    def __init__(self, value):
        self.params, self.grads, self.trainable = {"w": value}, {}, True

    def parameters(self):
        return [ParamRef("w", self, "w")]


def _run(opt, grads, p0):
    h = _Holder(p0.copy())
    for g in grads:
        h.grads["w"] = g
        opt.step(h)
    return h.params["w"]


def _grads(steps=6, shape=(7, 5), seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape), [rng.standard_normal(shape) for _ in range(steps)]


# ----------------------------------------------------------------------------- optimizers


@pytest.mark.parametrize("momentum, centered", [(0.0, False), (0.0, True), (0.9, False), (0.5, True)])
def test_rmsprop_follows_keras_formula(momentum, centered):
    p0, grads = _grads()
    lr, rho, eps = 0.01, 0.8, 1e-7
    p, v, a, m = p0.copy(), np.zeros_like(p0), np.zeros_like(p0), np.zeros_like(p0)
    for g in grads:
        v = rho * v + (1 - rho) * g * g
        if centered:
            a = rho * a + (1 - rho) * g
        u = lr * g / np.sqrt(v - a * a + eps if centered else v + eps)
        if momentum:
            m = momentum * m + u
            u = m
        p = p - u
    got = _run(fc.RMSprop(learning_rate=lr, rho=rho, momentum=momentum, epsilon=eps, centered=centered), grads, p0)
    np.testing.assert_allclose(got, p, rtol=1e-12, atol=1e-14)


def test_adamw_follows_the_decoupled_formula_and_pytorch():
    p0, grads = _grads()
    lr, wd, b1, b2, eps = 0.01, 0.1, 0.8, 0.95, 1e-8
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for t, g in enumerate(grads, 1):
        p = p * (1 - lr * wd)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    got = _run(fc.AdamW(learning_rate=lr, weight_decay=wd, beta_1=b1, beta_2=b2, epsilon=eps), grads, p0)
    np.testing.assert_allclose(got, p, rtol=1e-12, atol=1e-14)
    torch = pytest.importorskip("torch")
    w = torch.tensor(p0.copy(), requires_grad=True)
    topt = torch.optim.AdamW([w], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
    for g in grads:
        w.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(got, w.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_keras_argument_names_equal_pytorch_names():
    p0, grads = _grads()
    pairs = [
        (
            fc.Adam(lr=0.01, betas=(0.8, 0.9), eps=1e-6),
            fc.Adam(learning_rate=0.01, beta_1=0.8, beta_2=0.9, epsilon=1e-6),
        ),
        (fc.SGD(lr=0.05, momentum=0.9), fc.SGD(learning_rate=0.05, momentum=0.9)),
        (fc.RMSprop(lr=0.01), fc.RMSprop(learning_rate=0.01)),
    ]
    for a, b in pairs:
        assert np.array_equal(_run(a, grads, p0), _run(b, grads, p0))
    assert fc.Adam(learning_rate=0.5).lr == 0.5 and fc.SGD(lr=0.5).learning_rate == 0.5
    with pytest.raises(TypeError, match="learning_rate or lr, not both"):
        fc.Adam(lr=0.1, learning_rate=0.1)
    with pytest.raises(TypeError, match="betas or beta_1/beta_2"):
        fc.Adam(betas=(0.9, 0.99), beta_1=0.9)
    with pytest.raises(ValueError, match="rho"):
        fc.RMSprop(rho=1.5)


def test_rmsprop_matches_pytorch_when_epsilon_is_negligible():
    torch = pytest.importorskip("torch")
    p0, grads = _grads()
    got = _run(fc.RMSprop(learning_rate=0.01, rho=0.9, momentum=0.5, epsilon=1e-30), grads, p0)
    w = torch.tensor(p0.copy(), requires_grad=True)
    topt = torch.optim.RMSprop([w], lr=0.01, alpha=0.9, momentum=0.5, eps=1e-30)
    for g in grads:
        w.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(got, w.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "schedule, want",
    [
        (optim.StepDecay(0.1, step_size=2, gamma=0.5), lambda s: 0.1 * 0.5 ** (s // 2)),
        (optim.ExponentialDecay(0.1, decay_steps=3, decay_rate=0.5), lambda s: 0.1 * 0.5 ** (s / 3)),
        (optim.ExponentialDecay(0.1, 3, 0.5, staircase=True), lambda s: 0.1 * 0.5 ** (s // 3)),
        (
            optim.CosineDecay(0.1, decay_steps=4, alpha=0.1),
            lambda s: 0.1 * (0.9 * 0.5 * (1 + math.cos(math.pi * min(s, 4) / 4)) + 0.1),
        ),
    ],
)
def test_schedules_drive_any_optimizer(schedule, want):
    p0, grads = _grads(steps=6)
    p = p0.copy()
    for step, g in enumerate(grads):
        p = p - want(step) * g
    got = _run(fc.SGD(learning_rate=schedule), grads, p0)
    np.testing.assert_allclose(got, p, rtol=1e-12, atol=1e-14)


def test_optimizer_from_a_keras_name():
    assert isinstance(optim.get("rmsprop"), fc.RMSprop) and isinstance(optim.get("AdamW"), fc.AdamW)
    with pytest.raises(ValueError, match="optimizer must be"):
        optim.get("adagrad")
