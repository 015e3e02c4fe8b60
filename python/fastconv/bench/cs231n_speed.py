"""fastconv.compat.cs231n vs the course's NumPy layer functions, on the course's usual shapes.

    python -m fastconv.bench cs231n [--repeat 5] [--dtype float32 float64]

The NumPy baseline below is written after the course's fast_layers.py:
  conv forward   conv_forward_strides: as_strided im2col (C,HH,WW,N,H',W') + one GEMM (BLAS)
  conv backward  conv_backward_strides: two GEMMs + col2im; the course's col2im_6d is Cython,
                 here its NumPy equivalent (one strided slice-add per filter tap)
  max pooling    max_pool_forward_reshape / max_pool_backward_reshape (square, tiling windows)
  relu           np.maximum / dout * (x > 0)
Every result is checked against the baseline before it is timed; medians of --repeat runs
after one warm-up, the two sides interleaved. The ratio is NumPy time / fastconv time (> 1: fastconv is faster).
"""

from __future__ import annotations

import argparse

import numpy as np

import fastconv as fc
from fastconv.compat import cs231n as fast

from . import harness

# ----------------------------------------------------------------------------- course baseline


def np_conv_forward(x, w, b, conv_param):
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    stride, pad = conv_param["stride"], conv_param["pad"]
    assert (W + 2 * pad - WW) % stride == 0, "width does not work"
    assert (H + 2 * pad - HH) % stride == 0, "height does not work"
    x_padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="constant")
    H += 2 * pad
    W += 2 * pad
    out_h, out_w = (H - HH) // stride + 1, (W - WW) // stride + 1
    shape = (C, HH, WW, N, out_h, out_w)
    strides = x.itemsize * np.array((H * W, W, 1, C * H * W, stride * W, stride))
    x_cols = np.ascontiguousarray(np.lib.stride_tricks.as_strided(x_padded, shape=shape, strides=strides))
    x_cols.shape = (C * HH * WW, N * out_h * out_w)
    res = w.reshape(F, -1).dot(x_cols) + b.reshape(-1, 1)
    res.shape = (F, N, out_h, out_w)
    out = np.ascontiguousarray(res.transpose(1, 0, 2, 3))
    return out, (x, w, b, conv_param, x_cols)


def _col2im_6d(cols, N, C, H, W, HH, WW, pad, stride):
    """cols (C, HH, WW, N, H', W') -> dx (N, C, H, W): the scatter-add of col2im_6d_cython."""
    _, _, _, _, out_h, out_w = cols.shape
    x_padded = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=cols.dtype)
    for hh in range(HH):
        for ww in range(WW):
            x_padded[:, :, hh : hh + stride * out_h : stride, ww : ww + stride * out_w : stride] += cols[
                :, hh, ww
            ].transpose(1, 0, 2, 3)
    return x_padded[:, :, pad : pad + H, pad : pad + W] if pad else x_padded


def np_conv_backward(dout, cache):
    x, w, b, conv_param, x_cols = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, out_h, out_w = dout.shape
    db = np.sum(dout, axis=(0, 2, 3))
    dout_reshaped = dout.transpose(1, 0, 2, 3).reshape(F, -1)
    dw = dout_reshaped.dot(x_cols.T).reshape(w.shape)
    dx_cols = w.reshape(F, -1).T.dot(dout_reshaped)
    dx_cols.shape = (C, HH, WW, N, out_h, out_w)
    dx = _col2im_6d(dx_cols, N, C, H, W, HH, WW, pad, stride)
    return dx, dw, db


def np_max_pool_forward(x, pool_param):
    N, C, H, W = x.shape
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    assert ph == pw == stride and H % ph == 0 and W % pw == 0, "reshape path only"
    x_reshaped = x.reshape(N, C, H // ph, ph, W // pw, pw)
    out = x_reshaped.max(axis=3).max(axis=4)
    return out, (x, x_reshaped, out)


def np_max_pool_backward(dout, cache):
    x, x_reshaped, out = cache
    dx_reshaped = np.zeros_like(x_reshaped)
    mask = x_reshaped == out[:, :, :, np.newaxis, :, np.newaxis]
    dout_broadcast, _ = np.broadcast_arrays(dout[:, :, :, np.newaxis, :, np.newaxis], dx_reshaped)
    dx_reshaped[mask] = dout_broadcast[mask]
    dx_reshaped /= np.sum(mask, axis=(3, 5), keepdims=True)
    return dx_reshaped.reshape(x.shape)


def np_relu_forward(x):
    return np.maximum(0, x), x


def np_relu_backward(dout, cache):
    return dout * (cache > 0)


def np_conv_relu_pool_forward(x, w, b, conv_param, pool_param):
    a, conv_cache = np_conv_forward(x, w, b, conv_param)
    s, relu_cache = np_relu_forward(a)
    out, pool_cache = np_max_pool_forward(s, pool_param)
    return out, (conv_cache, relu_cache, pool_cache)


def np_conv_relu_pool_backward(dout, cache):
    conv_cache, relu_cache, pool_cache = cache
    ds = np_max_pool_backward(dout, pool_cache)
    da = np_relu_backward(ds, relu_cache)
    return np_conv_backward(da, conv_cache)


def assert_close(name, got, want, dtype):
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.dtype == dtype, f"{name}: output {i} has dtype {g.dtype}, expected {dtype}"
        scale = max(float(np.abs(w).max()), 1e-30)
        err = float(np.abs(g.astype(np.float64) - w).max()) / scale
        assert err < tol, f"{name}: output {i} differs from the NumPy baseline (rel err {err:.2e})"


def cases(rng, dtype):
    def rand(*shape):
        return rng.standard_normal(shape).astype(dtype)

    p1 = {"stride": 2, "pad": 1}
    x1, w1, b1 = rand(100, 3, 31, 31), rand(25, 3, 3, 3), rand(25)
    p2 = {"stride": 1, "pad": 1}
    x2, w2, b2 = rand(50, 64, 32, 32), rand(64, 64, 3, 3), rand(64)
    pool = {"pool_height": 2, "pool_width": 2, "stride": 2}
    xp = rand(100, 3, 32, 32)
    return [
        (
            f"conv fwd   x{x1.shape} w{w1.shape} s2 p1",
            lambda: np_conv_forward(x1, w1, b1, p1)[:1],
            lambda: fast.conv_forward_fast(x1, w1, b1, p1)[:1],
        ),
        (
            f"conv bwd   x{x1.shape} w{w1.shape} s2 p1",
            *_bwd(
                np_conv_forward,
                np_conv_backward,
                fast.conv_forward_fast,
                fast.conv_backward_fast,
                (x1, w1, b1, p1),
                rng,
                dtype,
            ),
        ),
        (
            f"conv fwd   x{x2.shape} w{w2.shape} s1 p1",
            lambda: np_conv_forward(x2, w2, b2, p2)[:1],
            lambda: fast.conv_forward_fast(x2, w2, b2, p2)[:1],
        ),
        (
            f"conv bwd   x{x2.shape} w{w2.shape} s1 p1",
            *_bwd(
                np_conv_forward,
                np_conv_backward,
                fast.conv_forward_fast,
                fast.conv_backward_fast,
                (x2, w2, b2, p2),
                rng,
                dtype,
            ),
        ),
        (
            f"pool fwd   x{xp.shape} 2x2 s2",
            lambda: np_max_pool_forward(xp, pool)[:1],
            lambda: fast.max_pool_forward_fast(xp, pool)[:1],
        ),
        (
            f"pool bwd   x{xp.shape} 2x2 s2",
            *_bwd(
                np_max_pool_forward,
                lambda d, c: (np_max_pool_backward(d, c),),
                fast.max_pool_forward_fast,
                lambda d, c: (fast.max_pool_backward_fast(d, c),),
                (xp, pool),
                rng,
                dtype,
            ),
        ),
        (
            f"relu fwd+bwd x{x2.shape}",
            lambda: (np_relu_backward(x2, np_relu_forward(x2)[1]),),
            lambda: (fast.relu_backward(x2, fast.relu_forward(x2)[1]),),
        ),
        (
            f"conv_relu_pool fwd+bwd x{x2.shape} w{w2.shape}",
            *_fwd_bwd(
                np_conv_relu_pool_forward,
                np_conv_relu_pool_backward,
                fast.conv_relu_pool_forward,
                fast.conv_relu_pool_backward,
                (x2, w2, b2, p2, pool),
                rng,
                dtype,
            ),
        ),
    ]


def _bwd(np_fwd, np_bwd, fc_fwd, fc_bwd, args, rng, dtype):
    """Backward only (the forward caches are made once, outside the timing)."""
    out, np_cache = np_fwd(*args)
    _, fc_cache = fc_fwd(*args)
    dout = rng.standard_normal(out.shape).astype(dtype)
    return (lambda: np_bwd(dout, np_cache)), (lambda: fc_bwd(dout, fc_cache))


def _fwd_bwd(np_fwd, np_bwd, fc_fwd, fc_bwd, args, rng, dtype):
    out, _ = np_fwd(*args)
    dout = rng.standard_normal(out.shape).astype(dtype)

    def run(fwd, bwd):
        o, cache = fwd(*args)
        return (o, *bwd(dout, cache))

    return (lambda: run(np_fwd, np_bwd)), (lambda: run(fc_fwd, fc_bwd))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=0, help="fastconv CPU threads (default: all)")
    ap.add_argument("--dtype", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    args = ap.parse_args(argv)
    if args.threads:
        fc.set_num_threads(args.threads)
    print(
        f"fastconv {fc.__version__}  isa={fc.cpu_isa()}  threads={fc.get_num_threads()}  "
        f"numpy {np.__version__}  repeat={args.repeat} (median)"
    )
    print(f"{'case':<58} {'dtype':<8} {'numpy ms':>10} {'fastconv ms':>12} {'ratio':>7}")
    for dtype_name in args.dtype:
        dtype = np.dtype(dtype_name)
        rng = np.random.default_rng(0)
        for name, np_fn, fc_fn in cases(rng, dtype):
            want = [np.asarray(a, dtype=np.float64) for a in np_fn()]
            assert_close(name, fc_fn(), want, dtype)  # random data: no ties in max pooling
            t = harness.time_interleaved({"numpy": np_fn, "fastconv": fc_fn}, args.repeat, slow_s=float("inf"))
            t_np, t_fc = t["numpy"], t["fastconv"]
            print(
                f"{name:<58} {dtype_name:<8} {t_np * 1e3:>10.2f} {t_fc * 1e3:>12.2f} {t_np / t_fc:>6.2f}x", flush=True
            )
