"""GPU benchmark: fastconv's CUDA kernels against PyTorch's cuDNN on the VGG16 layers.

    python -m fastconv.bench --device cuda [--batch 32] [--versions 3] [--out FILE]
    python -m fastconv.bench.cuda [same options]

For each of VGG16's 13 conv layers (224x224 input, batch 32, float32, 3x3, padding 1) it times
forward, backward-data and backward-weight in NCHW and NHWC with CUDA events (warm-up, then the
median of --repeats runs), next to torch's cuDNN convolution (allow_tf32 = False,
cudnn.benchmark = True) in NCHW and channels_last. Every fastconv result is checked against cuDNN
before it is timed. Max pooling (the 5 VGG16 pool layers) and ReLU (every conv output) are
reported in GB/s against a measured device-to-device copy. Results go to a JSON file (default
bench/results/cuda-<gpu>.json) and a table on stdout.

Needs fastconv built with nvcc, CuPy and a CUDA device; torch is optional (without it the cuDNN
columns are empty). Without a GPU it exits with status 2 and says what is missing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import statistics
import sys

# VGG16 (Simonyan & Zisserman, configuration D) at 224x224: (name, C, K, H=W); all 3x3, pad 1.
VGG16_CONV = [
    ("conv1_1", 3, 64, 224),
    ("conv1_2", 64, 64, 224),
    ("conv2_1", 64, 128, 112),
    ("conv2_2", 128, 128, 112),
    ("conv3_1", 128, 256, 56),
    ("conv3_2", 256, 256, 56),
    ("conv3_3", 256, 256, 56),
    ("conv4_1", 256, 512, 28),
    ("conv4_2", 512, 512, 28),
    ("conv4_3", 512, 512, 28),
    ("conv5_1", 512, 512, 14),
    ("conv5_2", 512, 512, 14),
    ("conv5_3", 512, 512, 14),
]
# 2x2 stride-2 max pooling after conv1_2, conv2_2, conv3_3, conv4_3, conv5_3: (name, C, H=W).
VGG16_POOL = [("pool1", 64, 224), ("pool2", 128, 112), ("pool3", 256, 56), ("pool4", 512, 28), ("pool5", 512, 14)]

# FP32 (non-tensor-core) peak in TFLOP/s by device name, for "% of peak"; --peak-tflops overrides.
FP32_PEAK_TFLOPS = {"H100 SXM": 66.9, "H100 80GB HBM3": 66.9, "H200": 66.9, "H100 PCIe": 51.2, "A100": 19.5}


class GpuUnavailable(RuntimeError):
    pass


def _parse(argv):
    p = argparse.ArgumentParser(
        prog="python -m fastconv.bench --device cuda",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--device", default="cuda", choices=["cuda"], help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--layers", default="all", help="comma-separated layer names (default: all)")
    p.add_argument("--versions", default="3", help="conv kernel versions to time, e.g. 1,2,3 (default 3)")
    p.add_argument("--passes", default="fwd,bwd_data,bwd_weight")
    p.add_argument("--layouts", default="NCHW,NHWC")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--peak-tflops", type=float, default=None, help="FP32 peak for %% of peak")
    p.add_argument("--no-torch", action="store_true", help="skip the cuDNN comparison")
    p.add_argument("--out", default=None, help="JSON file (default bench/results/cuda-<gpu>.json)")
    return p.parse_args(argv)


def _require_gpu():
    """-> (cupy, fastconv) or GpuUnavailable saying what is missing."""
    import fastconv as fc

    if not fc.cuda_built():
        raise GpuUnavailable(
            "this fastconv was built without its CUDA kernels (no nvcc at build time); reinstall with nvcc on PATH"
        )
    try:
        import cupy
    except ImportError as exc:
        raise GpuUnavailable(
            f"CuPy is not installed ({exc}); pip install 'fastconv[cuda12]' or 'fastconv[cuda13]'"
        ) from exc
    if not fc.cuda_available():
        raise GpuUnavailable(
            "no usable CUDA device (fastconv.cuda_available() is False); this benchmark needs an NVIDIA GPU"
        )
    return cupy, fc


def _torch(no_torch):
    if no_torch:
        return None, "disabled (--no-torch)"
    try:
        import torch
    except ImportError:
        return None, "torch not installed"
    if not torch.cuda.is_available():
        return None, "torch sees no CUDA device"
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    return torch, f"torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}"


def _median_ms(cupy, fn, warmup, repeats):
    """Median over `repeats` of fn()'s GPU time on the current stream, between two CUDA events."""
    for _ in range(warmup):
        fn()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    times = []
    for _ in range(repeats):
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, end))
    return statistics.median(times)


def _torch_median_ms(torch, fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(repeats):
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def _rel_err(cupy, got, want):
    got, want = cupy.asarray(got, dtype=cupy.float64), cupy.asarray(want, dtype=cupy.float64)
    return float(cupy.abs(got - want).max() / max(float(cupy.abs(want).max()), 1e-30))


def _copy_bandwidth(cupy, warmup, repeats, nbytes=1 << 30):
    """Device-to-device copy bandwidth in GB/s (bytes read + bytes written per second)."""
    src = cupy.ones(nbytes // 4, cupy.float32)
    dst = cupy.empty_like(src)
    ms = _median_ms(cupy, lambda: dst.data.copy_from_device_async(src.data, nbytes), warmup, repeats)
    return 2 * nbytes / (ms * 1e-3) / 1e9


def _peak(name, override):
    if override:
        return override
    for key, tflops in FP32_PEAK_TFLOPS.items():
        if key.lower() in name.lower():
            return tflops
    return None


def _bench_conv(cupy, fc, torch, args, peak, results):
    from fastconv.backend import cuda as backend_cuda

    runner = backend_cuda.backend()
    versions = [int(v) for v in args.versions.split(",")]
    passes = args.passes.split(",")
    wanted = None if args.layers == "all" else set(args.layers.split(","))
    rs = cupy.random.RandomState(0)
    N = args.batch
    for name, C, K, HW in VGG16_CONV:
        if wanted and name not in wanted:
            continue
        flops = 2 * N * K * HW * HW * C * 9
        x = rs.standard_normal((N, C, HW, HW), dtype=cupy.float32)
        w = rs.standard_normal((K, C, 3, 3), dtype=cupy.float32) * (1.0 / (3 * C) ** 0.5)
        b = rs.standard_normal((K,), dtype=cupy.float32)
        gy = rs.standard_normal((N, K, HW, HW), dtype=cupy.float32)
        data = {
            "NCHW": (x, w, gy),
            "NHWC": (
                cupy.ascontiguousarray(x.transpose(0, 2, 3, 1)),
                cupy.ascontiguousarray(w.transpose(2, 3, 1, 0)),
                cupy.ascontiguousarray(gy.transpose(0, 2, 3, 1)),
            ),
        }
        # cuDNN references and timings (NCHW and channels_last)
        tref, tms = {}, {}
        if torch is not None:
            tx, tw, tb, tgy = (torch.as_tensor(a, device="cuda") for a in (x, w, b, gy))
            for fmt, mf in (("NCHW", torch.contiguous_format), ("NHWC", torch.channels_last)):
                xx, ww, gg = (
                    tx.contiguous(memory_format=mf),
                    tw.contiguous(memory_format=mf),
                    tgy.contiguous(memory_format=mf),
                )
                conv = torch.ops.aten.convolution_backward
                ops = {
                    "fwd": lambda: torch.nn.functional.conv2d(xx, ww, tb, padding=1),
                    "bwd_data": lambda: conv(
                        gg, xx, ww, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, [True, False, False]
                    )[0],
                    "bwd_weight": lambda: conv(
                        gg, xx, ww, [K], [1, 1], [1, 1], [1, 1], False, [0, 0], 1, [False, True, True]
                    )[1],
                }
                for ps in passes:
                    tref[ps] = ops[ps]()
                    tms[(fmt, ps)] = _torch_median_ms(torch, ops[ps], args.warmup, args.repeats)
        for layout in args.layouts.split(","):
            xl, wl, gyl = data[layout]
            to_layout = (lambda t: t) if layout == "NCHW" else (lambda t: t.permute(0, 2, 3, 1))
            w_to_layout = (lambda t: t) if layout == "NCHW" else (lambda t: t.permute(2, 3, 1, 0))
            ops = {
                "fwd": lambda: fc.conv2d(xl, wl, b, padding=1, layout=layout),
                "bwd_data": lambda: fc.conv2d_backward_data(gyl, wl, xl.shape, padding=1, layout=layout),
                "bwd_weight": lambda: fc.conv2d_backward_weight(gyl, xl, wl.shape, padding=1, layout=layout)[0],
            }
            for ps in passes:
                for v in versions:
                    with runner.using(version=v):
                        out = ops[ps]()
                        err = None
                        if ps in tref:
                            want = tref[ps] if ps != "bwd_weight" else w_to_layout(tref[ps])
                            want = to_layout(want) if ps != "bwd_weight" else want
                            err = _rel_err(cupy, out, cupy.asarray(want.contiguous()))
                        ms = _median_ms(cupy, ops[ps], args.warmup, args.repeats)
                    tflops = flops / (ms * 1e-3) / 1e12
                    t_ms = tms.get((layout, ps))
                    row = {
                        "layer": name,
                        "layout": layout,
                        "pass": ps,
                        "version": v,
                        "ms": ms,
                        "tflops": tflops,
                        "pct_fp32_peak": 100 * tflops / peak if peak else None,
                        "cudnn_ms": t_ms,
                        "speedup_vs_cudnn": t_ms / ms if t_ms else None,
                        "max_rel_err_vs_cudnn": err,
                        "kernel": runner.module.last_kernel(),
                    }
                    results.append(row)
                    flag = "" if err is None or err < 1e-3 else "  MISMATCH"
                    print(
                        f"{name:8} {layout} {ps:10} v{v} {ms:8.3f} ms {tflops:6.2f} TFLOP/s"
                        + (f" {row['pct_fp32_peak']:5.1f}% peak" if peak else "")
                        + (f"  cuDNN {t_ms:8.3f} ms x{t_ms / ms:5.2f}" if t_ms else "")
                        + (f"  err {err:.1e}" if err is not None else "")
                        + flag,
                        flush=True,
                    )
        del x, w, gy, data, tref


def _bench_memory_bound(cupy, fc, torch, args, copy_gbps, pool_rows, relu_rows):
    rs = cupy.random.RandomState(1)
    N = args.batch
    for name, C, HW in VGG16_POOL:
        for layout in args.layouts.split(","):
            shape = (N, C, HW, HW) if layout == "NCHW" else (N, HW, HW, C)
            x = rs.standard_normal(shape, dtype=cupy.float32)
            y, idx = fc.max_pool2d(x, 2, layout=layout)
            gy = rs.standard_normal(y.shape, dtype=cupy.float32)
            n_in, n_out = x.size, y.size
            cases = {
                "fwd": (lambda: fc.max_pool2d(x, 2, layout=layout), 4 * n_in + 4 * n_out + 8 * n_out),
                "bwd": (
                    lambda: fc.max_pool2d_backward(gy, idx, x.shape, 2, layout=layout),
                    4 * n_out + 8 * n_out + 4 * n_in,
                ),
            }
            for ps, (fn, nbytes) in cases.items():
                ms = _median_ms(cupy, fn, args.warmup, args.repeats)
                gbps = nbytes / (ms * 1e-3) / 1e9
                pool_rows.append(
                    {
                        "layer": name,
                        "layout": layout,
                        "pass": ps,
                        "ms": ms,
                        "GBps": gbps,
                        "pct_copy": 100 * gbps / copy_gbps,
                    }
                )
                print(
                    f"{name:8} {layout} maxpool {ps:3} {ms:8.3f} ms {gbps:7.1f} GB/s "
                    f"{100 * gbps / copy_gbps:5.1f}% of copy",
                    flush=True,
                )
    seen = set()
    for name, _, K, HW in VGG16_CONV:
        n = N * K * HW * HW
        if n in seen:
            continue
        seen.add(n)
        x = rs.standard_normal((n,), dtype=cupy.float32)
        y = fc.relu(x)
        cases = {"fwd": (lambda: fc.relu(x), 8 * n), "bwd": (lambda: fc.relu_backward(x, y), 12 * n)}
        for ps, (fn, nbytes) in cases.items():
            ms = _median_ms(cupy, fn, args.warmup, args.repeats)
            gbps = nbytes / (ms * 1e-3) / 1e9
            relu_rows.append(
                {
                    "shape_of": name,
                    "elements": n,
                    "pass": ps,
                    "ms": ms,
                    "GBps": gbps,
                    "pct_copy": 100 * gbps / copy_gbps,
                }
            )
            print(
                f"relu ({name} output, {n} elements) {ps:3} {ms:8.3f} ms {gbps:7.1f} GB/s "
                f"{100 * gbps / copy_gbps:5.1f}% of copy",
                flush=True,
            )


def main(argv=None) -> int:
    args = _parse(argv)
    try:
        cupy, fc = _require_gpu()
    except GpuUnavailable as exc:
        print(f"fastconv GPU benchmark: cannot run: {exc}", file=sys.stderr)
        return 2
    torch, torch_info = _torch(args.no_torch)
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    gpu = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    peak = _peak(gpu, args.peak_tflops)
    print(
        f"fastconv {fc.__version__} on {gpu}; {torch_info}; batch {args.batch}; FP32 peak {peak or 'unknown'} TFLOP/s",
        flush=True,
    )
    copy_gbps = _copy_bandwidth(cupy, args.warmup, args.repeats)
    print(f"device-to-device copy: {copy_gbps:.1f} GB/s (read + write)", flush=True)

    conv_rows, pool_rows, relu_rows = [], [], []
    _bench_conv(cupy, fc, torch, args, peak, conv_rows)
    _bench_memory_bound(cupy, fc, torch, args, copy_gbps, pool_rows, relu_rows)

    result = {
        "benchmark": "fastconv.bench.cuda",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "device": gpu,
        "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
        "torch": torch_info,
        "batch": args.batch,
        "dtype": "float32",
        "warmup": args.warmup,
        "repeats": args.repeats,
        "fp32_peak_tflops": peak,
        "copy_GBps": copy_gbps,
        "conv": conv_rows,
        "maxpool": pool_rows,
        "relu": relu_rows,
    }
    out = args.out or os.path.join(
        "bench", "results", "cuda-" + re.sub(r"[^A-Za-z0-9]+", "-", gpu).strip("-") + ".json"
    )
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
