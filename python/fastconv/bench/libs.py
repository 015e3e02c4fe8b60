"""The contenders, each as zero-argument callables over prepared inputs: fastconv (NCHW and
NHWC), PyTorch (NCHW and channels_last, when installed) and the plain-NumPy baseline.

Every variant gets the same data (NCHW arrays made once per layer and batch, converted to its
layout up front), so a timed call runs the operation and its output allocation only."""

from __future__ import annotations

import numpy as np

import fastconv as fc

from .. import reference as ref
from . import numpy_baseline as npb
from .shapes import ELEMENTWISE

LEAKY_SLOPE = 0.01

NUMPY_MAX_BYTES = 1 << 30  # skip the NumPy baseline when its im2col matrix would exceed this

PASSES = {
    "conv": ("fwd", "bwd_data", "bwd_weight"),
    "pool": ("fwd", "bwd"),
    "avgpool": ("fwd", "bwd"),
    "gavgpool": ("fwd", "bwd"),
    "bn": ("fwd", "bwd"),
    **{kind: ("fwd", "bwd") for kind in ELEMENTWISE},
}


def passes(layer):
    """The passes timed for a layer: a conv with a fused activation (act=) only forward."""
    return ("fwd",) if layer.activation else PASSES[layer.kind]


FASTCONV = ("fastconv NCHW", "fastconv NHWC")
# Pooling and the activations also timed with outputs allocated once, outside the timed call: the kernel
# alone, without the page faults of a fresh 100 MB output (which every allocating API pays).
KERNEL_ONLY = ("fastconv NCHW kernel", "fastconv NHWC kernel")
TORCH = ("torch NCHW", "torch channels_last")
NUMPY = "numpy"


def torch_module():
    """torch, or None when it is not installed (the benchmark then says so and goes on)."""
    try:
        import torch  # noqa: PLC0415
    except ImportError:
        return None
    return torch


def to_nhwc(a):
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1))


def w_to_rsck(w):
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0))


class Problem:
    """Random inputs of one layer at one batch (NCHW, the layer's dtype)."""

    def __init__(self, layer, N, seed=0):
        rng = np.random.default_rng(seed)
        dt = np.dtype(layer.dtype)
        self.layer, self.N, self.dtype = layer, N, dt
        L = layer
        self.x = rng.standard_normal((N, L.C, L.H, L.W), dtype=np.float32).astype(dt, copy=False)
        if L.kind == "conv":
            scale = 1.0 / np.sqrt(L.C * L.R * L.S)
            self.w = (rng.standard_normal((L.K, L.C, L.R, L.S)) * scale).astype(dt)
            self.gy = rng.standard_normal((N, L.K, L.P, L.Q), dtype=np.float32).astype(dt, copy=False)
        elif L.kind in ("pool", "avgpool"):
            self.gy = rng.standard_normal((N, L.C, L.P, L.Q), dtype=np.float32).astype(dt, copy=False)
        elif L.kind == "gavgpool":
            self.gy = rng.standard_normal((N, L.C), dtype=np.float32).astype(dt, copy=False)
        elif L.kind == "bn":
            self.gy = rng.standard_normal(self.x.shape, dtype=np.float32).astype(dt, copy=False)
            self.gamma = rng.uniform(0.5, 1.5, L.C).astype(dt)
            self.beta = rng.standard_normal(L.C).astype(dt)
            _, self.mean, self.inv_std = ref.batch_norm(self.x, self.gamma, self.beta, None, None, training=True)[:3]
            self.mean, self.inv_std = self.mean.astype(dt), self.inv_std.astype(dt)
        else:
            self.gy = rng.standard_normal(self.x.shape, dtype=np.float32).astype(dt, copy=False)
            # the forward output every contender's backward pass reads (sigmoid' = y (1 - y) ...):
            # the same rounded y for all, so that the check compares the backward kernels alone
            kw = {"alpha": LEAKY_SLOPE} if L.kind == "leaky_relu" else {}
            self.y = getattr(ref, L.kind)(self.x, **kw).astype(dt)

    def bytes_moved(self, pass_):
        """Bytes a pooling/activation pass must read and write (indices are int64)."""
        L, isz = self.layer, self.dtype.itemsize
        nx = self.x.size
        if L.kind in ELEMENTWISE:
            return (2 if pass_ == "fwd" else 3) * nx * isz
        if L.kind == "pool":
            ny = self.gy.size
            return nx * isz + ny * isz + ny * 8
        if L.kind in ("avgpool", "gavgpool"):
            return (nx + self.gy.size) * isz
        if L.kind == "bn":  # two passes: x for the statistics, then x -> y (backward: gy, x twice, gx)
            return (3 if pass_ == "fwd" else 5) * nx * isz
        return 0


# ----------------------------------------------------------------------------- fastconv


def fastconv_op(problem, pass_, layout):
    """A callable running fastconv's pass on `problem` in `layout` (inputs converted once)."""
    L = problem.layer
    nhwc = layout == "NHWC"
    x = to_nhwc(problem.x) if nhwc else problem.x
    gy = to_nhwc(problem.gy) if nhwc and problem.gy.ndim == 4 else problem.gy
    if L.kind == "avgpool":
        kw = dict(stride=L.stride, padding=L.pad, layout=layout)
        if pass_ == "fwd":
            return lambda: fc.avg_pool2d(x, L.R, **kw)
        return lambda: fc.avg_pool2d_backward(gy, x.shape, L.R, **kw)
    if L.kind == "gavgpool":
        if pass_ == "fwd":
            return lambda: fc.global_avg_pool2d(x, layout=layout)
        return lambda: fc.global_avg_pool2d_backward(gy, x.shape, layout=layout)
    if L.kind == "bn":
        g, b = problem.gamma, problem.beta
        if pass_ == "fwd":
            return lambda: fc.batch_norm(x, g, b, None, None, training=True, layout=layout)[0]
        return lambda: fc.batch_norm_backward(gy, x, g, problem.mean, problem.inv_std, layout=layout)[0]
    if L.kind == "conv":
        w = w_to_rsck(problem.w) if nhwc else problem.w
        kw = dict(stride=L.stride, padding=L.pad, layout=layout)
        if pass_ == "fwd":
            return lambda: fc.conv2d(x, w, activation=L.activation, alpha=LEAKY_SLOPE, **kw)
        if pass_ == "bwd_data":
            return lambda: fc.conv2d_backward_data(gy, w, x.shape, **kw)
        return lambda: fc.conv2d_backward_weight(gy, x, w.shape, bias=False, **kw)
    if L.kind == "pool":
        kw = dict(kernel_size=L.R, stride=L.stride, padding=L.pad, layout=layout)
        if pass_ == "fwd":
            return lambda: fc.max_pool2d(x, **kw)
        _, idx = fc.max_pool2d(x, **kw)
        return lambda: fc.max_pool2d_backward(gy, idx, x.shape, **kw)
    kw = {"alpha": LEAKY_SLOPE} if L.kind == "leaky_relu" else {}
    if pass_ == "fwd":
        forward = getattr(fc, L.kind)
        return lambda: forward(x, **kw)
    backward, y = getattr(fc, f"{L.kind}_backward"), to_nhwc(problem.y) if nhwc else problem.y
    return lambda: backward(gy, y, **kw)


def fastconv_kernel_op(problem, pass_, layout):
    """Pooling and activations: the CPU kernel through fastconv._cpu with outputs allocated up front."""
    from .. import _cpu  # noqa: PLC0415
    from ..ops.pool2d import pool_spec  # noqa: PLC0415

    L = problem.layer
    nhwc = layout == "NHWC"
    x = to_nhwc(problem.x) if nhwc else problem.x
    gy = to_nhwc(problem.gy) if nhwc and problem.gy.ndim == 4 else problem.gy
    if L.kind in ("avgpool", "gavgpool"):
        spec = pool_spec(x.shape, (L.R, L.S), L.stride if L.kind == "avgpool" else None, L.pad, layout)
        params = spec.native(_cpu)
        y, gx = np.empty(spec.y_shape, x.dtype), np.empty_like(x)
        gy4 = gy.reshape(spec.y_shape)
        if pass_ == "fwd":
            return lambda: _cpu.avgpool2d_forward(params, True, x, y)
        return lambda: _cpu.avgpool2d_backward(params, True, gy4, gx)
    if L.kind in ELEMENTWISE:
        y = to_nhwc(problem.y) if nhwc else problem.y
        out = np.empty_like(x)
        if L.kind == "relu":
            if pass_ == "fwd":
                return lambda: _cpu.relu_forward(x, out)
            return lambda: _cpu.relu_backward(gy, y, out)
        alpha = LEAKY_SLOPE if L.kind == "leaky_relu" else 0.0
        if pass_ == "fwd":
            return lambda: _cpu.activation_forward(L.kind, alpha, x, out)
        return lambda: _cpu.activation_backward(L.kind, alpha, gy, y, out)
    spec = pool_spec(x.shape, L.R, L.stride, L.pad, layout)
    params = spec.native(_cpu)
    y, idx = fc.max_pool2d(x, L.R, stride=L.stride, padding=L.pad, layout=layout)
    if pass_ == "fwd":
        return lambda: _cpu.maxpool2d_forward(params, x, y, idx)
    gx = np.empty_like(x)
    return lambda: _cpu.maxpool2d_backward(params, gy, idx, gx)


def fastconv_result_nchw(problem, pass_, layout):
    """fastconv's output(s) for the check against the reference, back in NCHW."""
    out = fastconv_op(problem, pass_, layout)()
    L = problem.layer
    if layout == "NCHW":
        return out
    if L.kind == "pool" and pass_ == "fwd":
        return tuple(np.ascontiguousarray(a.transpose(0, 3, 1, 2)) for a in out)
    if L.kind == "gavgpool" and pass_ == "fwd":
        return out  # (N, C) in both layouts
    if L.kind == "conv" and pass_ == "bwd_weight":
        gw, _ = out
        return np.ascontiguousarray(gw.transpose(3, 2, 0, 1)), None
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


# ----------------------------------------------------------------------------- PyTorch


def _torch_forward(torch, kind):
    """PyTorch's function for an activation (an ELEMENTWISE kind)."""
    F = torch.nn.functional
    return {
        "relu": torch.relu,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "leaky_relu": lambda a: F.leaky_relu(a, LEAKY_SLOPE),
    }[kind]


def torch_op(torch, problem, pass_, channels_last):
    L = problem.layer
    F = torch.nn.functional
    mf = torch.channels_last if channels_last else torch.contiguous_format

    def t(a):
        return torch.from_numpy(a).contiguous(memory_format=mf)

    x = t(problem.x)
    gy = t(problem.gy) if problem.gy.ndim == 4 else t(problem.gy.reshape(*problem.gy.shape, 1, 1))
    no_grad = torch.no_grad
    if L.kind == "avgpool":
        k, s, p = [L.R] * 2, [L.stride] * 2, [L.pad] * 2
        if pass_ == "fwd":

            def run():
                with no_grad():
                    return F.avg_pool2d(x, k, s, p)

            return run
        return lambda: torch.ops.aten.avg_pool2d_backward(gy, x, k, s, p, False, True, None)
    if L.kind == "bn":
        g, b = torch.from_numpy(problem.gamma), torch.from_numpy(problem.beta)
        mean, inv_std = torch.from_numpy(problem.mean), torch.from_numpy(problem.inv_std)
        if pass_ == "fwd":

            def run():
                with no_grad():
                    return F.batch_norm(x, None, None, g, b, training=True, eps=1e-5)

            return run
        bn_bwd = torch.ops.aten.native_batch_norm_backward
        return lambda: bn_bwd(gy, x, g, None, None, mean, inv_std, True, 1e-5, [True, True, True])
    if L.kind == "gavgpool":
        if pass_ == "fwd":

            def run():
                with no_grad():
                    return F.adaptive_avg_pool2d(x, 1)

            return run
        return lambda: torch.ops.aten._adaptive_avg_pool2d_backward(gy, x)
    if L.kind == "conv":
        w = t(problem.w)
        s, p = [L.stride] * 2, [L.pad] * 2
        if pass_ == "fwd":
            act = _torch_forward(torch, L.activation) if L.activation else (lambda a: a)

            def run():
                with no_grad():
                    return act(F.conv2d(x, w, None, L.stride, L.pad))

            return run
        mask = [True, False, False] if pass_ == "bwd_data" else [False, True, False]
        conv_bwd = torch.ops.aten.convolution_backward

        def run():
            with no_grad():
                return conv_bwd(gy, x, w, None, s, p, [1, 1], False, [0, 0], 1, mask)

        return run
    if L.kind == "pool":
        k, s, p = [L.R] * 2, [L.stride] * 2, [L.pad] * 2
        if pass_ == "fwd":

            def run():
                with no_grad():
                    return F.max_pool2d(x, k, s, p, return_indices=True)

            return run
        with no_grad():
            _, idx = F.max_pool2d(x, k, s, p, return_indices=True)
        pool_bwd = torch.ops.aten.max_pool2d_with_indices_backward

        def run():
            with no_grad():
                return pool_bwd(gy, x, k, s, p, [1, 1], False, idx)

        return run
    aten = torch.ops.aten
    forward = _torch_forward(torch, L.kind)
    if pass_ == "fwd":

        def run():
            with no_grad():
                return forward(x)

        return run
    y = t(problem.y)
    # the backward ops PyTorch's autograd calls for each (leaky_relu's reads the input x)
    return {
        "relu": lambda: aten.threshold_backward(gy, y, 0),
        "sigmoid": lambda: aten.sigmoid_backward(gy, y),
        "tanh": lambda: aten.tanh_backward(gy, y),
        "leaky_relu": lambda: aten.leaky_relu_backward(gy, x, LEAKY_SLOPE, False),
    }[L.kind]


# ----------------------------------------------------------------------------- NumPy


def numpy_op(problem, pass_):
    """The NumPy baseline's callable, or a string saying why there is none."""
    L = problem.layer
    x, gy = problem.x, problem.gy
    if L.kind == "avgpool":
        if L.R != L.stride or L.pad:
            return "only kernel == stride, no padding"
        if pass_ == "fwd":
            return lambda: npb.avg_pool2d(x, L.R)
        return lambda: npb.avg_pool2d_backward(gy, x.shape, L.R)
    if L.kind == "bn":
        if pass_ == "fwd":
            return lambda: npb.batch_norm(x, problem.gamma, problem.beta)
        return lambda: npb.batch_norm_backward(gy, x, problem.gamma, problem.mean, problem.inv_std)
    if L.kind == "gavgpool":
        if pass_ == "fwd":
            return lambda: x.mean(axis=(2, 3))
        return lambda: np.broadcast_to((gy / (L.H * L.W))[:, :, None, None], x.shape).copy()
    if L.kind == "conv":
        need = npb.im2col_bytes(x.shape, L.R, L.S, L.stride, L.pad, x.itemsize)
        if need > NUMPY_MAX_BYTES:
            return f"im2col matrix would take {need / 2**30:.1f} GiB"
        w = problem.w
        if pass_ == "fwd":
            if L.activation:
                act = getattr(npb, L.activation)
                return lambda: act(npb.conv2d(x, w, L.stride, L.pad))
            return lambda: npb.conv2d(x, w, L.stride, L.pad)
        if pass_ == "bwd_data":
            return lambda: npb.conv2d_backward_data(gy, w, x.shape, L.stride, L.pad)
        return lambda: npb.conv2d_backward_weight(gy, x, w.shape, L.stride, L.pad)
    if L.kind == "pool":
        if L.R != L.stride or L.pad:
            return "only kernel == stride, no padding"
        if pass_ == "fwd":
            return lambda: npb.max_pool2d(x, L.R)
        _, j = npb.max_pool2d(x, L.R)
        return lambda: npb.max_pool2d_backward(gy, j, x.shape, L.R)
    if pass_ == "fwd":
        forward = getattr(npb, L.kind)
        return lambda: forward(x)
    backward, y = getattr(npb, f"{L.kind}_backward"), problem.y
    return lambda: backward(gy, y)
