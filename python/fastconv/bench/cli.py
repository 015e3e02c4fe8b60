"""`python -m fastconv.bench`: fastconv vs PyTorch vs plain NumPy on VGG16, the MNIST CNN and
the cs231n shapes. See fastconv/bench/__init__.py for what it measures."""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.util
import json
import os
import re
import shlex
import sys
from pathlib import Path

import numpy as np

import fastconv as fc

from . import harness, libs, loops, machine, networks, report, shapes
from .libs import FASTCONV, NUMPY, PASSES, TORCH, passes  # noqa: F401

# --quick: layers whose float64 reference check is cheap, still covering C,K >= 64 (conv3_1,
# conv5_1), the large memory-bound shapes (relu1_2, pool1, pool2) and every network file.
QUICK_LAYERS = {
    "vgg16": {"conv3_1", "conv5_1", "relu1_2", "pool1", "pool2"},
    "mnist": {"conv2", "relu1", "pool1"},
    "cs231n": {"conv_naive_test"},
    "activations": {"sigmoid2_1", "tanh2_1", "leaky_relu2_1"},
    "pooling": {"avgpool2x2", "gap512", "bn1_2"},
}
# --smoke: the training-loop rows that take well under a second in their tiny form.
SMOKE_LOOPS = ["a", "d"]


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m fastconv.bench [layers]",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="other commands: python -m fastconv.bench <command> --help\n"
        + "\n".join(f"  {name:9s} {text}" for name, (_, text) in COMMANDS.items()),
    )
    p.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="cuda hands over to fastconv.bench.cuda.main(argv) when it is installed",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a subset: batch 1 at the current thread count, the layers "
        + "; ".join(f"{net} {', '.join(sorted(names))}" for net, names in QUICK_LAYERS.items())
        + " (training loops with fewer repeats)",
    )
    p.add_argument("--smoke", action="store_true", help="a tiny network in seconds (for tests)")
    p.add_argument("--threads", default=None, help="comma list of thread counts (default 1,2)")
    p.add_argument("--batch", default=None, help="comma list of VGG16 batch sizes (default 1,8)")
    p.add_argument(
        "--networks", default=None, help="comma list of shape files (default vgg16,mnist,cs231n,activations,pooling)"
    )
    p.add_argument("--layers", default=None, help="regular expression on layer names")
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed repeats per contender (default 5; quick 3; training loops: per row, see loops.SPECS)",
    )
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out even when installed")
    p.add_argument("--no-networks", action="store_true", help="skip the whole-network rows")
    p.add_argument("--no-loops", action="store_true", help="skip the whole training-loop rows")
    p.add_argument(
        "--loops",
        default=None,
        help="comma list of training-loop rows (default a,b,c,d,e; --smoke a,d): a MNIST CNN, "
        "b VGG16 transfer learning, c VGG16 full training, d cs231n three-layer convnet, "
        "e batch-norm CNN with a global-average-pooling head",
    )
    p.add_argument("--copy-mib", type=int, default=512, help="size of the copy-bandwidth probe (MiB)")
    p.add_argument(
        "--out",
        default="bench-results",
        help="directory for bench.json, bench.md, bench.png (default bench-results, git-ignored)",
    )
    args = p.parse_args(argv)
    if args.loops is not None:
        args.loops = [k.strip() for k in args.loops.split(",") if k.strip()]
    unknown = [k for k in args.loops or () if k not in loops.SPECS]
    if unknown:
        p.error(f"--loops: unknown row(s) {unknown}; choose from {','.join(loops.SPECS)}")
    return args


def _ints(text, default):
    return [int(t) for t in text.split(",") if t.strip()] if text else default


def run_cuda(argv) -> int:
    rest, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--device":
            skip = True
            continue
        if a.startswith("--device="):
            continue
        rest.append(a)
    if importlib.util.find_spec("fastconv.bench.cuda") is None:
        print(
            "fastconv.bench: the CUDA benchmark (module fastconv.bench.cuda) is not part of this "
            "installation; run without --device for the CPU benchmark.",
            file=sys.stderr,
        )
        return 2
    return importlib.import_module("fastconv.bench.cuda").main(rest) or 0


def config(args):
    cpus = os.cpu_count() or 1
    threads = _ints(args.threads, [t for t in (1, 2) if t <= cpus] or [1])
    batches = _ints(args.batch, [1, 8])
    nets = args.networks.split(",") if args.networks else ["vgg16", "mnist", "cs231n", "activations", "pooling"]
    repeats = args.repeats or 5

    def layer_ok(net, name):
        return True

    whole = (
        []
        if args.no_networks
        else [
            ("vgg16 conv base forward", "vgg16", "forward", 1),
            ("mnist CNN training step", "mnist", "train_step", 64),
        ]
    )
    if args.quick:
        threads = _ints(args.threads, [max(threads)])
        batches = _ints(args.batch, [1])
        repeats = args.repeats or 3

        def layer_ok(net, name):
            return name in QUICK_LAYERS.get(net, ())

        whole = [w for w in whole if w[1] == "mnist"]
    if args.smoke:
        threads = _ints(args.threads, [1])
        batches = _ints(args.batch, [1])
        nets = args.networks.split(",") if args.networks else ["smoke"]
        repeats = args.repeats or 2
        whole = [] if args.no_networks else [("mnist CNN training step", "mnist", "train_step", 2)]
    if args.layers:
        rx = re.compile(args.layers)
        prev = layer_ok

        def layer_ok(net, name):
            return prev(net, name) and bool(rx.search(name))

    return threads, batches, nets, repeats, layer_ok, whole


def loop_config(args, threads_list):
    """(row keys, thread counts, mode) of the training-loop rows. They run at the thread count
    the environment gives (fastconv's default: OMP_NUM_THREADS or the core count) unless
    --threads says otherwise; --smoke runs tiny versions (of a and d unless --loops names others)."""
    keys = [] if args.no_loops else args.loops or (SMOKE_LOOPS if args.smoke else list(loops.SPECS))
    if args.smoke:
        return keys, threads_list, "smoke"
    return keys, _ints(args.threads, [fc.get_num_threads()]), "quick" if args.quick else "full"


def verify_batch(layer, batch):
    return min(batch, 2) if layer.batch else 1


# python -m fastconv.bench <command> ...: the focused benchmarks, each a module with main(argv).
COMMANDS = {
    "kernels": ("kernels", "the conv2d kernels vs PyTorch on VGG16 (--winograd both: vs the direct kernel)"),
    "cs231n": ("cs231n_speed", "compat.cs231n vs the course's NumPy fast_layers"),
    "fit": ("fit", "model.fit vs the hand-written loop; ImageDataGenerator vs the step it feeds"),
    "coexist": ("coexist", "ops next to NumPy's BLAS and next to a busy process"),
    "scratch": ("scratch", "scratch memory kept per VGG16 layer pass and what its limit costs"),
    "fold": ("fold", "Conv2D + BatchNormalization at inference: as trained, folded, the conv alone"),
    "distributed": ("distributed", "1 rank x 2 threads vs 2 ranks x 1 thread under mpiexec, and the scaling model"),
}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in COMMANDS:
        module = importlib.import_module(f"{__package__}.{COMMANDS[argv[0]][0]}")
        return module.main(argv[1:]) or 0
    if argv and argv[0] == "layers":  # the default command, by name
        argv = argv[1:]
    args = parse_args(argv)
    if args.device == "cuda":
        return run_cuda(argv)
    threads_list, batches, nets, repeats, layer_ok, whole = config(args)
    loop_keys, loop_threads, loop_mode = loop_config(args, threads_list)
    torch = None if args.no_torch else libs.torch_module()
    threads_found = machine.thread_settings(torch)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    say = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731

    isas = [i for i in ("avx2", "avx512") if i in fc.available_cpu_isas()]
    say(
        f"fastconv {fc.__version__}, ISA {fc.cpu_isa()}, threads {threads_list}, batches {batches}, "
        f"repeats {repeats}; "
        + (f"PyTorch {torch.__version__}" if torch else "PyTorch not installed (pip install torch)")
    )
    say("thread settings found: " + machine.describe_threads(threads_found))
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    say("measuring the FMA peak and the copy bandwidth ...")
    mach = machine.measure(
        threads_list, isas, 64 << 20 if args.smoke else args.copy_mib << 20, args.quick or args.smoke
    )
    best_isa = isas[-1] if isas else None

    layers = [L for net in nets for L in shapes.load(net) if layer_ok(net, L.name)]
    plan = []  # (layer, batch, pass, threads)
    for L in layers:
        for N in [L.batch] if L.batch else batches:
            for pass_ in passes(L):
                for t in threads_list:
                    plan.append((L, N, pass_, t))
    whole_plan = [(w, t) for w in whole for t in threads_list]
    loop_plan = [(k, t) for k in loop_keys for t in loop_threads]
    progress = harness.Progress(len(plan) + len(whole_plan) + len(loop_plan))

    rows, loop_rows, failed, checked, verified = [], [], [], 0, {}
    problem_key, problem = None, None
    saved_threads = fc.get_num_threads()
    saved_torch_threads = torch.get_num_threads() if torch else None
    try:
        for key, t in loop_plan:
            progress.step(f"loop {key} t{t}")
            row = run_loop(key, t, torch, loop_mode, args.repeats, failed)
            checked += 1 if row.get("check") else 0
            loop_rows.append(row)
        for L, N, pass_, t in plan:
            progress.step(f"{L.network} {L.name} {pass_} b{N} t{t}")
            vkey = (L.network, L.name, pass_)
            if vkey not in verified:
                fc.set_num_threads(max(threads_list))
                verified[vkey] = harness_verify(L, pass_, verify_batch(L, N))
                for layout, (ok, err) in verified[vkey].items():
                    checked += 1
                    if not ok:
                        failed.append(f"{L.network} {L.name} {pass_} fastconv {layout}: error {err}")
            if problem_key != (L, N):
                problem_key, problem = (L, N), None
                problem = libs.Problem(L, N)
            fc.set_num_threads(t)
            if torch:
                torch.set_num_threads(t)
            fns, skipped = {}, {}
            for layout in ("NCHW", "NHWC"):
                ok, _ = verified[vkey][layout]
                if ok:
                    fns[f"fastconv {layout}"] = libs.fastconv_op(problem, pass_, layout)
                    if L.kind not in ("conv", "bn") and L.dtype == "float32":
                        fns[f"fastconv {layout} kernel"] = libs.fastconv_kernel_op(problem, pass_, layout)
                else:
                    skipped[f"fastconv {layout}"] = "failed verification"
            if torch:
                fns["torch NCHW"] = libs.torch_op(torch, problem, pass_, False)
                fns["torch channels_last"] = libs.torch_op(torch, problem, pass_, True)
            np_fn = libs.numpy_op(problem, pass_)
            if callable(np_fn):
                fns[NUMPY] = np_fn
            else:
                skipped[NUMPY] = np_fn
            med = harness.time_interleaved(fns, repeats)
            rows.append(result_row(L, N, pass_, t, problem, med, skipped, verified[vkey], mach, best_isa))
        nets_rows = []
        for (title, net, kind, N), t in whole_plan:
            progress.step(f"{title} b{N} t{t}")
            fc.set_num_threads(t)
            if torch:
                torch.set_num_threads(t)
            fns = networks.build(kind, shapes.load(net), N, torch, with_numpy=True)
            med = harness.time_interleaved(fns, max(3, repeats - 2))
            ms = {k: v * 1e3 for k, v in med.items()}
            tb = [ms[k] for k in TORCH if k in ms]
            nets_rows.append(
                {
                    "name": title,
                    "network": net,
                    "kind": kind,
                    "batch": N,
                    "threads": t,
                    "ms": ms,
                    "torch_best_ms": min(tb) if tb else None,
                }
            )
    finally:
        fc.set_num_threads(saved_threads)
        if torch:
            torch.set_num_threads(saved_torch_threads)
    progress.close()

    result = {
        "fastconv_version": fc.__version__,
        "isa": fc.cpu_isa(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m fastconv.bench " + " ".join(shlex.quote(a) for a in argv),
        "torch_version": torch.__version__ if torch else None,
        "numpy_version": np.__version__,
        "machine": {
            **mach,
            "loadavg_1min_before_after": [
                load_before[0] if load_before else None,
                os.getloadavg()[0] if load_before else None,
            ],
        },
        "thread_settings": threads_found,
        "config": {
            "threads": threads_list,
            "batches": batches,
            "networks": nets,
            "repeats": repeats,
            "quick": args.quick,
            "smoke": args.smoke,
            "loops": loop_keys,
            "loop_threads": loop_threads,
        },
        "loops": loop_rows,
        "results": rows,
        "networks": nets_rows,
        "verification": {"checked": checked, "failed": failed},
        "ok": not failed,
    }
    result["summary"] = report.summarize(rows, nets_rows)
    (out_dir / "bench.json").write_text(json.dumps(result, indent=1))
    md = report.markdown(result)
    (out_dir / "bench.md").write_text(md)
    note = report.chart(result, out_dir / "bench.png")
    files = [out_dir / "bench.md", out_dir / "bench.json"] + ([] if note else [out_dir / "bench.png"])
    print(report.terminal_summary(result, files))
    if note:
        say(note)
    if failed:
        say("VERIFICATION FAILED (fastconv results differ from fastconv.reference):\n  " + "\n  ".join(failed))
        return 1
    return 0


def run_loop(key, threads, torch, mode, repeats, failed):
    """Training-loop row `key` at `threads` (fastconv and PyTorch alike); a crash or a failed
    check is reported in the row and in `failed` (exit status 1), the run goes on."""
    fc.set_num_threads(threads)
    if torch:
        torch.set_num_threads(threads)
    try:
        row = loops.run(key, torch, mode, repeats)
    except Exception as exc:  # noqa: BLE001  (reported like a failed verification)
        error = f"{type(exc).__name__}: {exc}"
        row = {"key": key, "name": loops.SPECS[key].title, "ms": {}, "skipped": f"error: {error}"}
        failed.append(f"loop {key}: {error}")
    else:
        if row.get("check") and not row["check"]["ok"]:
            failed.append(f"loop {key}: {row['check']['what']}: error {row['check']['error']}")
    row["threads"] = threads
    return row


def harness_verify(L, pass_, batch):
    from .verify import verify  # noqa: PLC0415  (imports the reference only when needed)

    return verify(L, pass_, ("NCHW", "NHWC"), batch)


def result_row(L, N, pass_, t, problem, med, skipped, vres, mach, best_isa):
    ms = {k: v * 1e3 for k, v in med.items()}
    peak32 = mach["peak_gflops_f32"].get(best_isa, {}).get(str(t)) if best_isa else None
    peak = (peak32 / 2 if L.dtype == "float64" else peak32) if peak32 else None
    copy_ref = max(mach["copy_gbps"][str(t)], mach["copy_gbps_streaming"][str(t)])
    flops = L.flops(N)
    nbytes = problem.bytes_moved(pass_)
    gflops = {k: flops / v / 1e6 for k, v in ms.items()} if flops else {}
    gbps = {k: nbytes / v / 1e6 for k, v in ms.items()} if nbytes else {}
    tb = [ms[k] for k in TORCH if k in ms]
    return {
        "network": L.network,
        "layer": L.name,
        "kind": L.kind,
        "pass": pass_,
        "batch": N,
        "threads": t,
        "dtype": L.dtype,
        "shape": {"C": L.C, "H": L.H, "W": L.W, "K": L.K, "R": L.R, "S": L.S, "stride": L.stride, "pad": L.pad},
        "flops": flops,
        "bytes": nbytes,
        "ms": ms,
        "gflops": gflops,
        "gbps": gbps,
        "peak_gflops": peak,
        "copy_gbps": copy_ref,
        "pct_peak": {k: 100 * v / peak for k, v in gflops.items()} if peak else {},
        "pct_copy": {k: 100 * v / copy_ref for k, v in gbps.items()},
        "torch_best_ms": min(tb) if tb else None,
        "x_vs_torch_best": {k: min(tb) / ms[k] for k in FASTCONV if k in ms} if tb else {},
        "x_vs_numpy": {k: ms[NUMPY] / ms[k] for k in FASTCONV if k in ms} if NUMPY in ms else {},
        "skipped": skipped,
        "verified": all(ok for ok, _ in vres.values()),
        "verify_error": {k: err for k, (_, err) in vres.items()},
    }
