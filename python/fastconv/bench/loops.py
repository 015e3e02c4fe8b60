"""Whole-loop rows: one training step of the models users train, written as users write it
with fastconv's public API, timed against the same model in PyTorch (and, for the cs231n net,
the course's NumPy im2col network) round-robin in one process, median (time_interleaved).

  a  the MNIST CNN of the Keras seeds: Conv2D(32, 3, relu, 28x28x1) - MaxPooling2D(2) -
     Conv2D(64, 3, relu) - MaxPooling2D(2) - Conv2D(64, 3, relu) - Flatten - Dense(64, relu) -
     Dense(10); batch 64, float32, SoftmaxCrossEntropy + Adam, through fc.Sequential
  b  VGG16 transfer learning: fc.models.vgg16_base(150x150x3, trainable=False) + Flatten -
     Dense(256, relu) - Dropout(0.5) - Dense(1, sigmoid) with binary cross-entropy (Dense(2) +
     SoftmaxCrossEntropy while Dense has no sigmoid); batch 8, SGD with momentum; PyTorch with
     requires_grad=False on the base. Skipped while vgg16_base has no trainable argument.
  c  VGG16 full training step: vgg16_base(224x224x3) + Flatten - Dense(256, relu) - Dense(10),
     everything trainable; batch 8, SoftmaxCrossEntropy + SGD with momentum
  d  the cs231n ThreeLayerConvNet.loss (forward + backward, cs231n_course.py) through
     fastconv.compat.cs231n, float64, batch 50, against the same code on the course-style NumPy
     im2col conv-relu-pool (and the same net in PyTorch, float64)
  e  a batch-norm CNN as Keras courses write it: three blocks of Conv2D(3x3, 'same', no bias) -
     BatchNormalization - ReLU (32, 64, 128 filters; MaxPooling2D(2) after the first two) -
     GlobalAveragePooling2D - Dense(10); 28x28x1, batch 64, SoftmaxCrossEntropy + Adam

The PyTorch model is built from the fastconv model layer by layer, with its weights (NCHW), and
checked before timing: the same inference outputs (a-c; relative error <= 1e-3 in float32) or
the same loss and gradients (d, <= 1e-8 in float64).

"Kernels" is what the step would cost without overhead: the fastconv step runs once with the
compiled kernels (fastconv._cpu functions named conv*, maxpool*, relu*, gemm*, linear*, ...)
wrapped to record their arguments; every recorded call is then re-run alone (the recording run
was its warm-up; median) and the times summed. Everything else in the step (Python, copies,
layout changes, NumPy calls: the loss, the optimizer, a Dense matmul where Dense runs on NumPy)
is overhead. Row d counts the course's NumPy layer calls (affine, ReLU, softmax loss) as
kernels too: they are the user's own code.
"""

from __future__ import annotations

import collections
import functools
from dataclasses import dataclass, field

import numpy as np

import fastconv as fc

from .. import layers as L
from .. import models
from . import cs231n_course as course
from . import harness
from .kernel_calls import kernel_times
from .torch_mirror import CHECK_TOLERANCE, check_outputs, nchw, relative_error, torch_mirror


@dataclass(frozen=True)
class Spec:
    title: str
    batch: int
    size: int  # input height = width
    repeats: int  # default run; --quick uses quick_repeats, --repeats overrides both
    quick_repeats: int
    smoke_batch: int  # --smoke: a tiny version, seconds
    smoke_size: int


SPECS = {
    "a": Spec("MNIST CNN training step (Keras seeds model, Adam)", 64, 28, 20, 10, 4, 28),
    "b": Spec("VGG16 transfer learning step (frozen conv base + Dense head, SGD)", 8, 150, 5, 3, 1, 32),
    "c": Spec("VGG16 full training step (13 convs + Dense head, SGD)", 8, 224, 3, 2, 1, 32),
    "d": Spec("cs231n ThreeLayerConvNet.loss (compat.cs231n vs NumPy im2col)", 50, 32, 20, 10, 2, 32),
    "e": Spec("batch-norm CNN training step (Conv2D-BN-ReLU x3, global average pooling, Adam)", 64, 28, 20, 10, 4, 28),
}


class Unsupported(Exception):
    """The installed fastconv lacks what a row needs; the row is skipped with this reason."""


@dataclass
class Loop:
    steps: dict  # contender ("fastconv", "torch", "numpy") -> step()
    check: dict  # {"what", "error", "ok"}
    info: dict  # model, loss, optimizer, dtype, input
    extra_kernels: list = field(default_factory=list)  # (module, names, group) recorded as kernels


# ----------------------------------------------------------------------------- steps


def _softmax_ce(labels):
    ce = L.SoftmaxCrossEntropy()

    def loss(logits):
        return ce.forward(logits, labels), ce.backward()

    return loss


def _binary_ce(targets):
    """Mean binary cross-entropy of probabilities p (N, 1) against 0/1 targets -> (loss, dL/dp)."""

    def loss(p):
        value = -float(np.mean(targets * np.log(p) + (1 - targets) * np.log1p(-p)))
        return value, (p - targets) / (p * (1 - p) * p.dtype.type(p.shape[0]))

    return loss


def fastconv_step(model, x, loss_fn, opt):
    """forward, loss, backward, optimizer step: a Keras-style training step on the layers API."""

    def step():
        _, grad = loss_fn(model.forward(x, training=True))
        model.backward(grad)
        opt.step(model)

    return step


def torch_step(net, x, target, criterion, opt):
    def step():
        opt.zero_grad()
        criterion(net(x), target).backward()
        opt.step()

    return step


def _keras_loop(torch, model, x, labels, head_loss, fc_opt, torch_opt, info):
    """Loop of a fastconv Sequential (rows a-c) and its PyTorch mirror. head_loss: "softmax"
    (integer labels) or "sigmoid" (0/1 targets (N, 1))."""
    loss_fn = _softmax_ce(labels) if head_loss == "softmax" else _binary_ce(labels)
    steps = {"fastconv": fastconv_step(model, x, loss_fn, fc_opt)}
    net = None
    if torch is not None:
        net = torch_mirror(torch, model, torch.float32)
        params = [p for p in net.parameters() if p.requires_grad]
        crit, target = (
            (torch.nn.CrossEntropyLoss(), torch.from_numpy(labels))
            if head_loss == "softmax"
            else (torch.nn.BCELoss(), torch.from_numpy(labels))
        )
        steps["torch"] = torch_step(net, nchw(torch, x), target, crit, torch_opt(params))
    return Loop(steps, check_outputs(torch, model, net, x), {**info, "dtype": "float32"})


def mnist_cnn(input_shape, padding="valid"):
    """The Keras seeds' MNIST CNN (93,322 parameters at 28x28 'valid'), fixed seeds."""
    return fc.Sequential(
        [
            L.Conv2D(32, 3, padding=padding, activation="relu", input_shape=input_shape, seed=1),
            L.MaxPooling2D(2),
            L.Conv2D(64, 3, padding=padding, activation="relu", seed=2),
            L.MaxPooling2D(2),
            L.Conv2D(64, 3, padding=padding, activation="relu", seed=3),
            L.Flatten(),
            L.Dense(64, activation="relu", seed=4),
            L.Dense(10, seed=5),
        ],
        name="mnist_cnn",
    )


def _digits_loop(torch, model, N, size):
    """Rows a and e: `model` on N random size x size x 1 images, 10 classes, Adam."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, size, size, 1), dtype=np.float32)
    labels = rng.integers(0, 10, N)
    return _keras_loop(
        torch,
        model,
        x,
        labels,
        "softmax",
        fc.optim.Adam(lr=1e-3),
        lambda ps: torch.optim.Adam(ps, lr=1e-3),
        {"input": f"{size}x{size}x1", "loss": "SoftmaxCrossEntropy", "optimizer": "Adam(lr=1e-3)"},
    )


def build_mnist(torch, N, size):
    return _digits_loop(torch, mnist_cnn((size, size, 1)), N, size)


def bn_cnn(input_shape):
    """Row e's model: Conv2D - BatchNormalization - ReLU blocks, a global-average-pooling head."""
    blocks = []
    for i, filters in enumerate((32, 64, 128)):
        kw = {"input_shape": input_shape} if i == 0 else {}
        blocks += [
            L.Conv2D(filters, 3, padding="same", use_bias=False, seed=i + 1, **kw),
            L.BatchNormalization(),
            L.ReLU(),
        ]
        if i < 2:
            blocks.append(L.MaxPooling2D(2))
    return fc.Sequential([*blocks, L.GlobalAveragePooling2D(), L.Dense(10, seed=4)], name="bn_cnn")


def build_bn_cnn(torch, N, size):
    return _digits_loop(torch, bn_cnn((size, size, 1)), N, size)


def _has_sigmoid():
    try:
        L.Dense(1, activation="sigmoid")
    except ValueError:
        return False
    return True


def build_vgg16(torch, N, size, transfer):
    """Row b (transfer=True: frozen base, Dropout, sigmoid/2-way head) or c (all trainable)."""
    rng = np.random.default_rng(0)
    kw = dict(input_shape=(size, size, 3), weights=None, seed=0)
    if transfer:
        try:
            base = models.vgg16_base(**kw, trainable=False)
        except TypeError as exc:
            raise Unsupported(f"fc.models.vgg16_base(..., trainable=False) is not supported yet ({exc})") from None
    else:
        base = models.vgg16_base(**kw)
    if not transfer:
        head, head_loss, n_out = [L.Dense(10, seed=2)], "softmax", "Dense(10)"
    elif _has_sigmoid():
        head, head_loss, n_out = (
            [L.Dropout(0.5, seed=3), L.Dense(1, activation="sigmoid", seed=2)],
            "sigmoid",
            "Dropout(0.5) - Dense(1, sigmoid)",
        )
    else:
        head, head_loss, n_out = [L.Dropout(0.5, seed=3), L.Dense(2, seed=2)], "softmax", "Dropout(0.5) - Dense(2)"
    model = fc.Sequential(
        [base, L.Flatten(), L.Dense(256, activation="relu", seed=1), *head],
        name="vgg16_transfer" if transfer else "vgg16_full",
    )
    x = rng.standard_normal((N, size, size, 3), dtype=np.float32)
    labels = (
        rng.integers(0, 2, (N, 1)).astype(np.float32)
        if head_loss == "sigmoid"
        else rng.integers(0, 2 if transfer else 10, N)
    )
    frozen = sum(1 for lyr in model.layers if getattr(lyr, "trainable", True) is False and lyr.params)
    info = {
        "input": f"{size}x{size}x3",
        "head": f"Flatten - Dense(256, relu) - {n_out}",
        "loss": "binary cross-entropy" if head_loss == "sigmoid" else "SoftmaxCrossEntropy",
        "optimizer": "SGD(lr=1e-4, momentum=0.9)",
        "frozen_layers_with_params": frozen,
    }
    return _keras_loop(
        torch,
        model,
        x,
        labels,
        head_loss,
        fc.optim.SGD(lr=1e-4, momentum=0.9),
        lambda ps: torch.optim.SGD(ps, lr=1e-4, momentum=0.9),
        info,
    )


def build_cs231n(torch, N, size):
    from ..compat import cs231n as fast  # noqa: PLC0415

    rng = np.random.default_rng(0)
    params = course.init_params(rng, input_dim=(3, size, size))
    X = rng.standard_normal((N, 3, size, size))
    y = rng.integers(0, 10, N)

    def loss(sandwich_fwd, sandwich_bwd):
        return lambda: course.three_layer_convnet_loss(params, X, y, sandwich_fwd, sandwich_bwd)

    steps = {
        "fastconv": loss(fast.conv_relu_pool_forward, fast.conv_relu_pool_backward),
        "numpy": loss(course.numpy_conv_relu_pool_forward, course.numpy_conv_relu_pool_backward),
    }
    (got, g_got), (want, g_want) = steps["fastconv"](), steps["numpy"]()
    err = max([relative_error(got, want)] + [relative_error(g_got[k], g_want[k]) for k in g_want])
    if torch is not None:
        steps["torch"] = _torch_cs231n(torch, params, X, y)
        err = max(err, relative_error(got, steps["torch"]()))
    check = {
        "what": "loss and gradients vs the NumPy im2col net" + (" and loss vs PyTorch" if torch else ""),
        "error": err,
        "ok": err <= CHECK_TOLERANCE["float64"],
    }
    info = {
        "input": f"3x{size}x{size}",
        "dtype": "float64",
        "loss": "softmax_loss (course)",
        "optimizer": "none (loss and gradients only, as ThreeLayerConvNet.loss)",
    }
    return Loop(steps, check, info, [(course, course.LAYER_FUNCTIONS, "numpy")])


def _torch_cs231n(torch, params, X, y):
    """The same net in PyTorch, float64, dX included; returns the loss value."""
    F = torch.nn.functional
    p = {k: torch.from_numpy(v.copy()).requires_grad_() for k, v in params.items()}
    Xt, yt = torch.from_numpy(X).requires_grad_(), torch.from_numpy(y)
    pad = (params["W1"].shape[2] - 1) // 2

    def step():
        for t in (*p.values(), Xt):
            t.grad = None
        h = F.max_pool2d(torch.relu(F.conv2d(Xt, p["W1"], p["b1"], 1, pad)), 2)
        h = torch.relu(h.reshape(h.shape[0], -1) @ p["W2"] + p["b2"])
        loss = F.cross_entropy(h @ p["W3"] + p["b3"], yt)
        loss.backward()
        return loss.item()

    return step


BUILDERS = {
    "a": build_mnist,
    "b": functools.partial(build_vgg16, transfer=True),
    "c": functools.partial(build_vgg16, transfer=False),
    "d": build_cs231n,
    "e": build_bn_cnn,
}


# ----------------------------------------------------------------------------- one row


def run(key, torch, mode="full", repeats=None) -> dict:
    """Build, check and time loop row `key` ("a".."e") at the current thread settings.
    mode: "full", "quick" or "smoke" (tiny inputs). Returns the row for bench.json."""
    spec = SPECS[key]
    N, size = (spec.smoke_batch, spec.smoke_size) if mode == "smoke" else (spec.batch, spec.size)
    repeats = repeats or (spec.quick_repeats if mode in ("quick", "smoke") else spec.repeats)
    if mode == "smoke":
        repeats = min(repeats, 2)
    row = {"key": key, "name": spec.title, "batch": N, "repeats": repeats, "ms": {}, "skipped": None}
    try:
        loop = BUILDERS[key](torch, N, size)
    except Unsupported as exc:
        row["skipped"] = str(exc)
        return row
    row.update(loop.info, check=loop.check)
    if not loop.check["ok"]:
        row["skipped"] = "failed its check: " + loop.check["what"]
        return row
    med = harness.time_interleaved(loop.steps, repeats)
    ms = {k: v * 1e3 for k, v in med.items()}
    calls, counts = kernel_times(loop.steps["fastconv"], repeats, loop.extra_kernels)
    by_group = collections.defaultdict(float)
    for group, _, seconds in calls:
        by_group[group] += seconds * 1e3
    kernels = sum(by_group.values())
    step = ms["fastconv"]
    row.update(
        ms=ms,
        kernels_ms=kernels or None,
        kernels_ms_by_group=dict(by_group),
        kernel_calls=counts,
        step_over_kernels=step / kernels if kernels else None,
        overhead_pct=100 * (1 - kernels / step) if kernels else None,
        x_vs_torch=ms["torch"] / step if "torch" in ms else None,
        x_vs_numpy=ms["numpy"] / step if "numpy" in ms else None,
    )
    return row
