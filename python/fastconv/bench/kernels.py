"""Time fastconv's conv2d kernels against PyTorch (CPU, oneDNN) on the VGG16 conv layers.

    python -m fastconv.bench kernels --batch 1 --threads 2 [--passes fwd,bwd_data,bwd_weight]
        [--layers 0,1,5] [--reps 7] [--isa avx512] [--dtype float32] [--winograd on|off|force|both]

For each layer and pass it times fastconv NCHW/NHWC and PyTorch NCHW/channels_last interleaved
(one call of each per round, median over rounds), checks fastconv against PyTorch first, and prints
GFLOP/s plus the ratio of fastconv's best layout to PyTorch's best layout. GFLOP/s are always
direct-convolution FLOPs (2*N*K*C*9*H*W) per second, also for the Winograd path.
--winograd both: times the default path (Winograd where its size rule says so) as
"fc NCHW/NHWC" and the direct kernel as "fcd NCHW/NHWC" side by side, for every pass, and prints
the error ||got - want||_F / ||want||_F of both against the float64 reference
(fastconv.reference, on the first image). --winograd force: Winograd on every 3x3 stride-1 layer.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import fastconv as fc
from fastconv.models import VGG16_LAYERS

from . import harness


def _vgg16_convs():
    """(C, K, H=W) of VGG16's 13 conv layers at 224x224, all 3x3 pad 1 stride 1."""
    layers, size, c = [], 224, 3
    for _, k, n in VGG16_LAYERS:
        for _ in range(n):
            layers.append((c, k, size))
            c = k
        size //= 2
    return layers


VGG16 = _vgg16_convs()


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m fastconv.bench kernels", description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--passes", default="fwd,bwd_data,bwd_weight")
    ap.add_argument("--layers", default=None, help="comma-separated indices into VGG16")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--isa", default=None)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument(
        "--winograd",
        choices=["on", "off", "force", "both"],
        default="on",
        help="Winograd path: default rule (on), disabled, forced on every 3x3 "
        "stride-1 layer, or forced and direct side by side",
    )
    ap.add_argument(
        "--stat",
        choices=["median", "min"],
        default="median",
        help="statistic over the rounds (min is more robust on a shared machine)",
    )
    ap.add_argument(
        "--cpu-time",
        action="store_true",
        help="time with process CPU time (robust on a shared machine; use with --threads 1)",
    )
    args = ap.parse_args(argv)

    fc.set_num_threads(args.threads)
    fc.set_winograd(args.winograd != "off")
    fc._cpu._set_winograd_forced(args.winograd == "force")
    if args.isa:
        fc.set_cpu_isa(args.isa)
    torch = None
    if not args.no_torch:
        import torch  # noqa: PLC0415

        torch.set_num_threads(args.threads)
    dt = np.dtype(args.dtype)
    layers = range(len(VGG16)) if args.layers is None else [int(i) for i in args.layers.split(",")]
    passes = args.passes.split(",")
    print(
        f"fastconv isa={fc.cpu_isa()} threads={args.threads} batch={args.batch} dtype={dt}"
        f" clock={'cpu' if args.cpu_time else 'wall'} stat={args.stat}"
        + ("" if torch is None else f" torch={torch.__version__}")
    )
    rng = np.random.default_rng(0)
    summary = {ps: [] for ps in passes}
    for li in layers:
        C, K, H = VGG16[li]
        N = args.batch
        x = rng.standard_normal((N, C, H, H)).astype(dt)
        w = (rng.standard_normal((K, C, 3, 3)) * 0.1).astype(dt)
        b = rng.standard_normal(K).astype(dt)
        gy = rng.standard_normal((N, K, H, H)).astype(dt)
        xh, wh, gyh = (
            np.ascontiguousarray(x.transpose(0, 2, 3, 1)),
            np.ascontiguousarray(w.transpose(2, 3, 1, 0)),
            np.ascontiguousarray(gy.transpose(0, 2, 3, 1)),
        )
        flops = 2.0 * N * K * C * 9 * H * H
        for ps in passes:
            fns = {}
            if ps == "fwd":
                fns["fc NCHW"] = lambda: fc.conv2d(x, w, b, padding=1)
                fns["fc NHWC"] = lambda: fc.conv2d(xh, wh, b, padding=1, layout="NHWC")
            elif ps == "bwd_data":
                fns["fc NCHW"] = lambda: fc.conv2d_backward_data(gy, w, x.shape, padding=1)
                fns["fc NHWC"] = lambda: fc.conv2d_backward_data(gyh, wh, xh.shape, padding=1, layout="NHWC")
            else:
                fns["fc NCHW"] = lambda: fc.conv2d_backward_weight(gy, x, w.shape, padding=1)
                fns["fc NHWC"] = lambda: fc.conv2d_backward_weight(gyh, xh, wh.shape, padding=1, layout="NHWC")
            if args.winograd == "both":
                fns["fcd NCHW"] = lambda f=fns["fc NCHW"]: _direct(f)
                fns["fcd NHWC"] = lambda f=fns["fc NHWC"]: _direct(f)
                if dt == np.float32:
                    _print_errors(li, ps, x, w, b, gy)
            if torch is not None:
                tx, tw, tb, tgy = (torch.from_numpy(a) for a in (x, w, b, gy))
                cl = torch.channels_last
                tx2, tw2, tgy2 = (t.contiguous(memory_format=cl) for t in (tx, tw, tgy))
                conv_bwd = torch.ops.aten.convolution_backward
                for name, (X, Wt, GY) in {"pt NCHW": (tx, tw, tgy), "pt CL": (tx2, tw2, tgy2)}.items():
                    if ps == "fwd":
                        fns[name] = lambda X=X, Wt=Wt: torch.nn.functional.conv2d(X, Wt, tb, padding=1)
                    elif ps == "bwd_data":
                        fns[name] = lambda X=X, Wt=Wt, GY=GY: conv_bwd(
                            GY, X, Wt, [K], [1, 1], [1, 1], [1, 1], False, [0, 0], 1, [True, False, False]
                        )
                    else:
                        fns[name] = lambda X=X, Wt=Wt, GY=GY: conv_bwd(
                            GY, X, Wt, [K], [1, 1], [1, 1], [1, 1], False, [0, 0], 1, [False, True, True]
                        )
            reps = args.reps if flops * args.reps < 4e11 else max(3, args.reps // 2)
            with torch.no_grad() if torch is not None else _null():
                # one warm-up call each (scratch buffers, oneDNN primitives), then the rounds
                med = harness.time_interleaved(
                    fns,
                    reps,
                    slow_s=float("inf"),
                    stat=statistics.median if args.stat == "median" else min,
                    clock=time.process_time if args.cpu_time else time.perf_counter,
                )
            gf = {k: flops / v / 1e9 for k, v in med.items()}
            fc_best = max(gf["fc NCHW"], gf["fc NHWC"])
            if "fcd NCHW" in gf:
                summary.setdefault(f"{ps} direct", []).append(
                    max(gf["fcd NCHW"], gf["fcd NHWC"]) / max(gf.get("pt NCHW", 1), gf.get("pt CL", 1))
                )
                line_extra = f" wino/direct={fc_best / max(gf['fcd NCHW'], gf['fcd NHWC']):4.2f}"
            else:
                line_extra = ""
            line = f"{ps:10s} L{li:<2d} C={C:<3d} K={K:<3d} H={H:<3d} " + " ".join(f"{k}={gf[k]:6.1f}" for k in gf)
            if torch is not None:
                pt_best = max(gf["pt NCHW"], gf["pt CL"])
                ratio = fc_best / pt_best
                ratio_nchw = gf["fc NCHW"] / gf["pt NCHW"]
                ratio_nhwc = gf["fc NHWC"] / gf["pt CL"]
                summary[ps].append((ratio, ratio_nchw, ratio_nhwc, fc_best))
                line += f"  best/best={ratio:5.2f} (NCHW {ratio_nchw:4.2f}, NHWC/CL {ratio_nhwc:4.2f})"
            else:
                summary[ps].append((1.0, 1.0, 1.0, fc_best))
            print(line + line_extra + f"  [{med['fc NHWC'] * 1e3:.2f} ms]", flush=True)
    if torch is not None:
        for ps, rows in summary.items():
            if ps.endswith(" direct"):
                g = float(np.exp(np.mean(np.log(rows))))
                print(f"{ps} geomean ratio fcd-best/pt-best {g:.3f}  min {min(rows):.3f}")
                continue
            if rows:
                g = [float(np.exp(np.mean(np.log([r[i] for r in rows])))) for i in range(3)]
                print(
                    f"{ps:10s} geomean ratio fc-best/pt-best {g[0]:.3f}  NCHW/NCHW {g[1]:.3f}  "
                    f"NHWC/CL {g[2]:.3f}  min {min(r[0] for r in rows):.3f}"
                )


def _print_errors(li, ps, x, w, b, gy):
    """||got - want||_F / ||want||_F of the default path (both layouts) and of the direct kernel
    against the float64 reference, on the first image."""
    import fastconv.reference as ref  # noqa: PLC0415

    x1, gy1, w64 = x[:1], gy[:1], w.astype(np.float64)

    def nhwc(a):
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1))

    if ps == "fwd":
        want = ref.conv2d(x1.astype(np.float64), w64, b.astype(np.float64), padding=1)
        calls = [
            lambda: fc.conv2d(x1, w, b, padding=1),
            lambda: fc.conv2d(nhwc(x1), w.transpose(2, 3, 1, 0).copy(), b, padding=1, layout="NHWC").transpose(
                0, 3, 1, 2
            ),
        ]
        path = fc._cpu._last_conv2d_fwd_path
    elif ps == "bwd_data":
        want = ref.conv2d_backward_data(gy1.astype(np.float64), w64, x1.shape, padding=1)
        calls = [
            lambda: fc.conv2d_backward_data(gy1, w, x1.shape, padding=1),
            lambda: fc.conv2d_backward_data(
                nhwc(gy1), w.transpose(2, 3, 1, 0).copy(), nhwc(x1).shape, padding=1, layout="NHWC"
            ).transpose(0, 3, 1, 2),
        ]
        path = fc._cpu._last_conv2d_bwd_data_path
    else:
        want = ref.conv2d_backward_weight(gy1.astype(np.float64), x1.astype(np.float64), w.shape, padding=1)[0]
        calls = [
            lambda: fc.conv2d_backward_weight(gy1, x1, w.shape, padding=1)[0],
            lambda: fc.conv2d_backward_weight(
                nhwc(gy1), nhwc(x1), w.transpose(2, 3, 1, 0).shape, padding=1, layout="NHWC"
            )[0].transpose(3, 2, 0, 1),
        ]
        path = fc._cpu._last_conv2d_bwd_weight_path
    norm = np.linalg.norm(want)
    errs = [np.linalg.norm(f() - want) / norm for f in calls]
    calls[0]()
    name = path()
    err_direct = np.linalg.norm(_direct(calls[0]) - want) / norm
    print(
        f"  {ps} L{li} error vs float64 (Frobenius, relative): {name} NCHW {errs[0]:.2e} "
        f"NHWC {errs[1]:.2e}  direct {err_direct:.2e}",
        flush=True,
    )


def _direct(f):
    """f() with the Winograd path off (the direct kernel)."""
    fc.set_winograd(False)
    try:
        return f()
    finally:
        fc.set_winograd(True)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False
