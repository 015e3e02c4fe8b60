"""Whole-network rows: the VGG16 conv base forward (13 conv + bias + ReLU, 5 pools) and one
training step of the small MNIST CNN (forward + backward through all three convs, both
pools and the ReLUs), as callables for fastconv (each layout), PyTorch and NumPy."""

from __future__ import annotations

import numpy as np

import fastconv as fc

from . import numpy_baseline as npb
from .libs import to_nhwc, w_to_rsck


def _params(layers, rng, dtype=np.float32):
    """Weights and biases (NCHW order) for the conv layers of a layer list."""
    out = {}
    for L in layers:
        if L.kind == "conv":
            w = rng.standard_normal((L.K, L.C, L.R, L.S)) * np.sqrt(2.0 / (L.C * L.R * L.S))
            out[L.name] = (w.astype(dtype), (rng.standard_normal(L.K) * 0.01).astype(dtype))
    return out


# ----------------------------------------------------------------------------- forward pass


def forward_fastconv(layers, params, x, layout):
    """fastconv forward (conv + fused bias/ReLU, pools); relu lines are fused into the convs."""
    nhwc = layout == "NHWC"
    ps = {k: ((w_to_rsck(w) if nhwc else w), b) for k, (w, b) in params.items()}
    xin = to_nhwc(x) if nhwc else x

    def run():
        a = xin
        for L in layers:
            if L.kind == "conv":
                w, b = ps[L.name]
                a = fc.conv2d(a, w, b, stride=L.stride, padding=L.pad, layout=layout, activation="relu")
            elif L.kind == "pool":
                a, _ = fc.max_pool2d(a, L.R, stride=L.stride, padding=L.pad, layout=layout)
        return a

    return run


def forward_torch(torch, layers, params, x, channels_last):
    F = torch.nn.functional
    mf = torch.channels_last if channels_last else torch.contiguous_format
    ps = {k: (torch.from_numpy(w).contiguous(memory_format=mf), torch.from_numpy(b)) for k, (w, b) in params.items()}
    xin = torch.from_numpy(x).contiguous(memory_format=mf)

    def run():
        with torch.no_grad():
            a = xin
            for L in layers:
                if L.kind == "conv":
                    w, b = ps[L.name]
                    a = torch.relu_(F.conv2d(a, w, b, L.stride, L.pad))
                elif L.kind == "pool":
                    a = F.max_pool2d(a, L.R, L.stride, L.pad)
            return a

    return run


def forward_numpy(layers, params, x):
    def run():
        a = x
        for L in layers:
            if L.kind == "conv":
                w, b = params[L.name]
                a = npb.relu(npb.conv2d(a, w, L.stride, L.pad) + b[:, None, None])
            elif L.kind == "pool":
                a, _ = npb.max_pool2d(a, L.R)
        return a

    return run


# ----------------------------------------------------------------------------- training step


def train_step_fastconv(layers, params, x, g_top, layout):
    """Forward, then backward from g_top (dL/d output of the last layer); the first conv skips
    its input gradient. Returns the weight gradients."""
    nhwc = layout == "NHWC"
    ps = {k: ((w_to_rsck(w) if nhwc else w), b) for k, (w, b) in params.items()}
    xin, gtop = (to_nhwc(x), to_nhwc(g_top)) if nhwc else (x, g_top)
    first_conv = next(L.name for L in layers if L.kind == "conv")

    def run():
        a, tape = xin, []
        for L in layers:
            if L.kind == "conv":
                w, b = ps[L.name]
                y = fc.conv2d(a, w, b, stride=L.stride, padding=L.pad, layout=layout, activation="relu")
                tape.append((L, a, y))
                a = y
            elif L.kind == "pool":
                y, idx = fc.max_pool2d(a, L.R, stride=L.stride, padding=L.pad, layout=layout)
                tape.append((L, a, idx))
                a = y
        g, grads = gtop, {}
        for L, a_in, saved in reversed(tape):
            if L.kind == "conv":
                g = fc.relu_backward(g, saved)  # through the fused ReLU
                kw = dict(stride=L.stride, padding=L.pad, layout=layout)
                w = ps[L.name][0]
                grads[L.name] = fc.conv2d_backward_weight(g, a_in, w.shape, **kw)
                if L.name != first_conv:
                    g = fc.conv2d_backward_data(g, w, a_in.shape, **kw)
            else:
                g = fc.max_pool2d_backward(g, saved, a_in.shape, L.R, stride=L.stride, padding=L.pad, layout=layout)
        return grads

    return run


def train_step_torch(torch, layers, params, x, g_top, channels_last):
    F = torch.nn.functional
    mf = torch.channels_last if channels_last else torch.contiguous_format
    ps = {
        k: (
            torch.from_numpy(w).contiguous(memory_format=mf).requires_grad_(),
            torch.from_numpy(b.copy()).requires_grad_(),
        )
        for k, (w, b) in params.items()
    }
    xin = torch.from_numpy(x).contiguous(memory_format=mf)
    gtop = torch.from_numpy(g_top).contiguous(memory_format=mf)

    def run():
        for w, b in ps.values():
            w.grad = b.grad = None
        a = xin
        for L in layers:
            if L.kind == "conv":
                w, b = ps[L.name]
                a = torch.relu(F.conv2d(a, w, b, L.stride, L.pad))
            elif L.kind == "pool":
                a = F.max_pool2d(a, L.R, L.stride, L.pad)
        a.backward(gtop)
        return {k: w.grad for k, (w, _) in ps.items()}

    return run


def train_step_numpy(layers, params, x, g_top):
    first_conv = next(L.name for L in layers if L.kind == "conv")

    def run():
        a, tape = x, []
        for L in layers:
            if L.kind == "conv":
                w, b = params[L.name]
                y = npb.relu(npb.conv2d(a, w, L.stride, L.pad) + b[:, None, None])
                tape.append((L, a, y))
                a = y
            elif L.kind == "pool":
                y, j = npb.max_pool2d(a, L.R)
                tape.append((L, a, j))
                a = y
        g, grads = g_top, {}
        for L, a_in, saved in reversed(tape):
            if L.kind == "conv":
                g = npb.relu_backward(g, saved)
                w = params[L.name][0]
                grads[L.name] = (npb.conv2d_backward_weight(g, a_in, w.shape, L.stride, L.pad), g.sum(axis=(0, 2, 3)))
                if L.name != first_conv:
                    g = npb.conv2d_backward_data(g, w, a_in.shape, L.stride, L.pad)
            else:
                g = npb.max_pool2d_backward(g, saved, a_in.shape, L.R)
        return grads

    return run


def output_shape(layers, N):
    """NCHW shape of the last layer's output."""
    last = layers[-1]
    if last.kind == "conv":
        return (N, last.K, last.P, last.Q)
    if last.kind == "pool":
        return (N, last.C, last.P, last.Q)
    return (N, last.C, last.H, last.W)


def build(kind, layers, N, torch, with_numpy=True, seed=0):
    """{contender: callable} for kind "forward" or "train_step"."""
    rng = np.random.default_rng(seed)
    params = _params(layers, rng)
    first = layers[0]
    x = rng.standard_normal((N, first.C, first.H, first.W), dtype=np.float32)
    fns = {}
    if kind == "forward":
        for layout in ("NCHW", "NHWC"):
            fns[f"fastconv {layout}"] = forward_fastconv(layers, params, x, layout)
        if torch is not None:
            fns["torch NCHW"] = forward_torch(torch, layers, params, x, False)
            fns["torch channels_last"] = forward_torch(torch, layers, params, x, True)
        if with_numpy:
            fns["numpy"] = forward_numpy(layers, params, x)
    else:
        g_top = rng.standard_normal(output_shape(layers, N), dtype=np.float32)
        for layout in ("NCHW", "NHWC"):
            fns[f"fastconv {layout}"] = train_step_fastconv(layers, params, x, g_top, layout)
        if torch is not None:
            fns["torch NCHW"] = train_step_torch(torch, layers, params, x, g_top, False)
            fns["torch channels_last"] = train_step_torch(torch, layers, params, x, g_top, True)
        if with_numpy:
            fns["numpy"] = train_step_numpy(layers, params, x, g_top)
    return fns
