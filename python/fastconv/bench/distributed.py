"""Data-parallel training on this machine, measured, and the scaling model fitted to it.

    pip install "fastconv[mpi]"
    python -m fastconv.bench distributed [--steps 5] [--vgg-batch 4] [--out bench-results]

Each configuration runs in its own job, launched by this command with the mpich wheel's mpiexec:
  1 rank x 2 threads        the single-process step (plain optimizer)
  2 ranks x 1 thread        DistributedOptimizer, allreduce overlapped with backward (the default)
  2 ranks x 1 thread        the same with overlap=False: every bucket sent after backward
on two training steps, the same global batch in every configuration:
  MNIST CNN   the Keras course model, 28x28x1, global batch 64, Adam (93,322 parameters)
  VGG16       the full network, 224x224x3, 13 convolutions + Dense 4096, 4096, 1000 (138.4 M
              parameters, 553 MB of float32 gradients), global batch --vgg-batch, SGD momentum
Per step (a barrier first, so that ranks start together): the wall time, the time the
communication thread spent in allreduce (comm) and the time step() waited for it (exposed: the
part not hidden behind backward). Medians over --steps after one warm-up step. Then an allreduce
sweep (1 KiB to 64 MiB, 2 ranks) fits the ring model's latency and bandwidth on this machine, and
the model (docs/distributed.md) predicts the 2-rank exposure to compare with the measurement, and
scaling efficiency at 8, 64 and 256 ranks over 10 and 100 Gb/s and NVLink.

Writes OUT/distributed.md and OUT/distributed.json; prints the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import fastconv as fc
from fastconv import distributed as dist
from fastconv import layers as L
from fastconv import losses, models
from fastconv.distributed.collectives import sum_in_place
from fastconv.distributed.world import current_world

from . import machine
from .loops import mnist_cnn

WORKLOADS = ("mnist", "vgg16")
CONFIGS = (("1 rank", 1, True), ("2 ranks", 2, True), ("2 ranks", 2, False))
SWEEP_BYTES = [2**k for k in range(10, 27, 2)]  # 1 KiB .. 64 MiB


# ----------------------------------------------------------------------------- the scaling model


def ring_allreduce_s(nbytes, ranks, latency_s, bandwidth_bps):
    """Ring allreduce (reduce-scatter + all-gather): 2 (p - 1) messages, each rank sends and
    receives 2 (p - 1) / p of the buffer."""
    if ranks <= 1:
        return 0.0
    return 2 * (ranks - 1) * latency_s + 2 * (ranks - 1) / ranks * nbytes / bandwidth_bps


def predicted_step(compute_s, backward_s, buckets, ranks, latency_s, bandwidth_bps):
    """(step seconds, exposed seconds) with per-rank compute `compute_s`, of which `backward_s` is
    the backward pass, and gradient buckets [(bytes, seconds of backward still to run after the
    bucket is complete)] in the order backward fills them. One communication channel sends the
    buckets in order; each starts when it is complete and the previous one is sent; the step
    ends when the last one is."""
    t_backward_start = compute_s - backward_s
    channel_free = 0.0
    for nbytes, remaining in buckets:
        ready = t_backward_start + backward_s - remaining
        channel_free = max(channel_free, ready) + ring_allreduce_s(nbytes, ranks, latency_s, bandwidth_bps)
    end = max(compute_s, channel_free)
    return end, end - compute_s


def fit_latency_bandwidth(sweep):
    """(latency, bandwidth) of t = 2 (p - 1) a + 2 (p - 1) / p n / B at p = 2 (t = 2 a + n / B):
    a from the smallest message, B from the least-squares slope over the messages of 1 MiB and more
    (where the latency term is negligible)."""
    n = np.array([b for b, _ in sweep], dtype=np.float64)
    t = np.array([s for _, s in sweep], dtype=np.float64)
    big = n >= 2**20
    slope, _ = np.polyfit(n[big], t[big], 1)
    return t[0] / 2, 1.0 / slope


LINKS = {  # bytes/s per rank and per-message latency, as the docs' model assumes
    "10 Gb/s Ethernet": (10e9 / 8 * 0.9, 30e-6),
    "100 Gb/s InfiniBand": (100e9 / 8 * 0.9, 5e-6),
    "NVLink (NCCL, ~150 GB/s bus)": (150e9, 10e-6),
}


# ----------------------------------------------------------------------------- one rank's run


def workload(name, global_batch):
    rng = np.random.default_rng(0)
    if name == "mnist":
        model = mnist_cnn((28, 28, 1))
        x = rng.standard_normal((global_batch, 28, 28, 1), dtype=np.float32)
        y = rng.integers(0, 10, global_batch)
        return model, x, y, fc.Adam(1e-3)
    base = models.vgg16_base(input_shape=(224, 224, 3), weights=None, seed=0)
    model = fc.Sequential(
        [
            base,
            L.Flatten(),
            L.Dense(4096, activation="relu", seed=1),
            L.Dense(4096, activation="relu", seed=2),
            L.Dense(1000, seed=3),
        ],
        name="vgg16",
    )
    x = rng.standard_normal((global_batch, 224, 224, 3), dtype=np.float32)
    y = rng.integers(0, 1000, global_batch)
    return model, x, y, fc.SGD(1e-4, momentum=0.9)


def worker(args):
    dist.init()
    model, x, y, inner = workload(args.workload, args.global_batch)
    opt = (
        dist.DistributedOptimizer(inner, model, bucket_mib=args.bucket_mib, overlap=args.overlap)
        if dist.size() > 1
        else inner
    )
    b, e = dist.shard_range(x.shape[0])
    xb, yb = x[b:e], y[b:e]
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    dist.broadcast_parameters(model)
    done_at = {}  # id(layer) -> perf_counter when its grads were done

    def mark(m, layer, is_top, is_bottom):
        if is_top:
            done_at.clear()
        done_at[id(layer)] = time.perf_counter()

    model.grad_hooks.insert(0, mark)  # before the optimizer's: its own waits come after
    rows = []
    for _ in range(args.steps + 1):
        dist.barrier()
        t0 = time.perf_counter()
        loss(yb, model.forward(xb))
        t1 = time.perf_counter()
        model.backward(loss.backward())
        t2 = time.perf_counter()
        opt.step(model)
        t3 = time.perf_counter()
        stats = getattr(opt, "last_step", {}) or {}
        rows.append(
            {
                "step_s": t3 - t0,
                "forward_s": t1 - t0,
                "backward_s": t2 - t1,
                "update_s": t3 - t2,
                "comm_s": stats.get("comm_s", 0.0),
                "exposed_s": stats.get("exposed_s", 0.0),
                "buckets": stats.get("buckets", 0),
                "overlapped": stats.get("overlapped", 0),
                "grad_bytes": stats.get("bytes", 0),
            }
        )
    rows = rows[1:]  # the warm-up step
    # each parameter's gradient bytes and the backward time left once its layer was done, in the
    # order backward fills them (the scaling model's input)
    end = max(done_at.values())
    profile = [(ref.value.nbytes, end - done_at[id(ref.layer)]) for ref in reversed(model.parameters())]
    sweep = allreduce_sweep() if args.workload == "mnist" and dist.size() > 1 else []
    if dist.rank() == 0:
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        result = {
            "workload": args.workload,
            "ranks": dist.size(),
            "threads": fc.get_num_threads(),
            "overlap": args.overlap,
            "global_batch": args.global_batch,
            "steps": args.steps,
            "median": med,
            "profile": profile,
            "sweep": sweep,
            "flops": forward_flops(model),
            "params": int(sum(r.value.size for r in model.parameters())),
        }
        Path(args.result).write_text(json.dumps(result))


def allreduce_sweep(repeats=9):
    """Median seconds of one float32 allreduce per size, on this job's ranks."""
    out = []
    for nbytes in SWEEP_BYTES:
        buf = np.ones(nbytes // 4, dtype=np.float32)
        ts = []
        for _ in range(repeats):
            dist.barrier()
            t0 = time.perf_counter()
            sum_in_place(current_world(), buf)
            ts.append(time.perf_counter() - t0)
        out.append((nbytes, statistics.median(ts)))
    return out


# ----------------------------------------------------------------------------- the launcher


def mpiexec():
    """The mpiexec beside this Python (the mpich wheel puts it there), else the one on PATH, or None."""
    local = Path(sys.executable).with_name("mpiexec")
    if local.exists():
        return str(local)
    from shutil import which  # noqa: PLC0415

    return which("mpiexec")


def launch(workload_name, ranks, overlap, args, tmp):
    result = Path(tmp) / f"{workload_name}-{ranks}-{int(overlap)}.json"
    batch = 64 if workload_name == "mnist" else args.vgg_batch
    cmd = [
        sys.executable,
        "-m",
        "fastconv.bench",
        "distributed",
        "--worker",
        "--workload",
        workload_name,
        "--global-batch",
        str(batch),
        "--steps",
        str(args.steps),
        "--bucket-mib",
        str(args.bucket_mib),
        "--result",
        str(result),
    ] + ([] if overlap else ["--no-overlap"])
    if ranks > 1:
        cmd = [mpiexec(), "-n", str(ranks)] + cmd
    env = {k: v for k, v in os.environ.items() if k not in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(result.read_text())


def report(results, model_rows, args, load):
    lines = [
        f"`python -m fastconv.bench distributed --steps {args.steps} --vgg-batch {args.vgg_batch} "
        f"--bucket-mib {args.bucket_mib}`",
        "",
        f"CPU: {machine.cpu_model()}, {os.cpu_count()} cores; fastconv {fc.__version__}, ISA {fc.cpu_isa()}; "
        f"load average before: {load}. Medians of {args.steps} steps after one warm-up.",
        "",
        "| workload | global batch | configuration | step ms | images/s | × vs 1 rank | forward ms | "
        "backward ms | update ms | allreduce ms | exposed ms (% of step) | buckets (in backward) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in WORKLOADS:
        base = None
        for label, ranks, overlap in CONFIGS:
            r = results.get((name, ranks, overlap))
            if r is None:
                continue
            m = r["median"]
            base = base or m["step_s"]
            label = f"{label} x {r['threads']} thread{'s' * (r['threads'] > 1)}" + (
                "" if ranks == 1 else ", overlapped" if overlap else ", after backward"
            )
            lines.append(
                f"| {name} | {r['global_batch']} | {label} | {m['step_s'] * 1e3:.1f} | "
                f"{r['global_batch'] / m['step_s']:.1f} | {base / m['step_s']:.2f} | "
                f"{m['forward_s'] * 1e3:.1f} | {m['backward_s'] * 1e3:.1f} | {m['update_s'] * 1e3:.1f} | "
                f"{m['comm_s'] * 1e3:.1f} | {m['exposed_s'] * 1e3:.1f} ({100 * m['exposed_s'] / m['step_s']:.1f}%) | "
                f"{m['buckets']:.0f} ({m['overlapped']:.0f}) |"
            )
    lines += [
        "",
        "backward includes the averaging: packing the buckets, the allreduce of the last bucket (every "
        "bucket, after backward) and the wait for the others (exposed). allreduce = time spent in MPI "
        "by the communication thread and by the compute thread. update = the optimizer.",
        "",
        "## Scaling model (docs/distributed.md)",
        "",
    ] + model_rows
    return "\n".join(lines) + "\n"


GPU_TFLOPS = 60.0  # assumed sustained training throughput of one GPU (TF32, cuDNN), FLOP/s / 1e12
GPU_BATCH = 32  # per-GPU batch assumed for the GPU rows
BUCKETS_MIB = (1, 4, 16, 25, 64, 256)


def model_table(results, args):
    """The fitted machine, the check against the 2-rank measurement, and the predictions."""
    sweep = results[("mnist", 2, True)]["sweep"]
    latency, bandwidth = fit_latency_bandwidth(sweep)
    rows = [
        f"Fitted to the 2-rank allreduce sweep on this machine ({len(sweep)} sizes, 1 KiB - 64 MiB): "
        f"latency {latency * 1e6:.1f} us, bandwidth {bandwidth / 1e9:.2f} GB/s.",
        "",
        "Check, 2 ranks on this machine (model: the profile of the 'after backward' run):",
        "",
        "| workload | gradient MB | buckets | allreduce ms predicted / measured | exposed after backward ms "
        "predicted / measured | exposed overlapped ms predicted / measured |",
        "|---|---|---|---|---|---|",
    ]
    setups = {}
    for name in WORKLOADS:
        after, over = results.get((name, 2, False)), results.get((name, 2, True))
        if after is None or over is None:
            continue
        m = after["median"]
        compute, backward = m["step_s"] - m["exposed_s"], m["backward_s"] - m["exposed_s"]
        buckets = bucketize(after["profile"], args.bucket_mib * 2**20)
        comm = sum(ring_allreduce_s(b, 2, latency, bandwidth) for b, _ in buckets)
        _, exposed_over = predicted_step(compute, backward, buckets, 2, latency, bandwidth)
        rows.append(
            f"| {name} | {sum(b for b, _ in buckets) / 1e6:.1f} | {len(buckets)} | {comm * 1e3:.1f} / "
            f"{m['comm_s'] * 1e3:.1f} | {comm * 1e3:.1f} / {m['exposed_s'] * 1e3:.1f} | "
            f"{exposed_over * 1e3:.1f} / {over['median']['exposed_s'] * 1e3:.1f} |"
        )
        setups[name] = (compute, backward, after["profile"], after["global_batch"] // 2, after["flops"])
    rows += [
        "",
        "Predicted weak scaling (per-rank batch fixed): efficiency = compute / step for each bucket "
        "size. CPU rows: this machine's per-rank compute (the 'after backward' run, exposed time "
        f"taken out); GPU rows: {GPU_TFLOPS:g} TFLOP/s sustained per GPU, batch {GPU_BATCH} per GPU, "
        "backward 2/3 of the step, the same gradient order.",
        "",
        "| workload | ranks on | per-rank batch | compute ms | link | ranks | "
        + " | ".join(f"{mib} MiB" for mib in BUCKETS_MIB)
        + " |",
        "|---|---|---|---|---|---|" + "---|" * len(BUCKETS_MIB),
    ]
    for name, (compute, backward, profile, batch, flops) in setups.items():
        gpu_compute = 3 * flops * GPU_BATCH / (GPU_TFLOPS * 1e12)
        gpu_profile = [(b, left * gpu_compute * 2 / 3 / max(backward, 1e-12)) for b, left in profile]
        for kind, c, bwd, prof, nb in (
            ("CPU", compute, backward, profile, batch),
            ("GPU", gpu_compute, gpu_compute * 2 / 3, gpu_profile, GPU_BATCH),
        ):
            for link, (bw, lat) in LINKS.items():
                if kind == "CPU" and link.startswith("NVLink"):
                    continue
                for p in (8,) if link.startswith("NVLink") else (8, 64, 256):
                    eff = [
                        c / predicted_step(c, bwd, bucketize(prof, mib * 2**20), p, lat, bw)[0] for mib in BUCKETS_MIB
                    ]
                    rows.append(
                        f"| {name} | {kind} | {nb} | {c * 1e3:.3g} | {link} | {p} | "
                        + " | ".join(f"{e:.3f}" for e in eff)
                        + " |"
                    )
    return rows


def forward_flops(model):
    """Multiply-adds x 2 of one image's forward pass through the Conv2D and Dense layers."""
    shape, total = model.input_shape, 0
    for layer in model.layers:
        out = layer.output_shape(shape)
        kernel = layer.params.get("kernel")
        if kernel is not None:
            units = out[-1] if getattr(layer, "layout", "NHWC") == "NHWC" or len(out) == 1 else out[0]
            total += 2 * kernel.size * int(np.prod(out)) // units
        shape = out
    return total


def bucketize(profile, bucket_bytes):
    """The parameter profile [(bytes, backward left)] cut as DistributedOptimizer cuts its buckets:
    a bucket is complete when its last (lowest) parameter is."""
    out, run, left = [], 0, None
    for nbytes, remaining in profile:
        if run and run + nbytes > bucket_bytes:
            out.append((run, left))
            run = 0
        run += nbytes
        left = remaining
    if run:
        out.append((run, left))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m fastconv.bench distributed", description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5, help="timed steps per configuration (after one warm-up)")
    ap.add_argument("--vgg-batch", type=int, default=4, help="VGG16 global batch (default 4: 2 per rank)")
    ap.add_argument("--bucket-mib", type=float, default=25.0)
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--out", default="bench-results")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--workload", help=argparse.SUPPRESS)
    ap.add_argument("--global-batch", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--no-overlap", dest="overlap", action="store_false", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    try:
        import mpi4py  # noqa: F401, PLC0415
    except ImportError:
        print(
            "python -m fastconv.bench distributed needs mpi4py and an MPI: pip install 'fastconv[mpi]'", file=sys.stderr
        )
        return 2
    if mpiexec() is None:
        print("no mpiexec found: pip install mpich", file=sys.stderr)
        return 2
    names = [w for w in args.workloads.split(",") if w]
    if "mnist" not in names:
        names.insert(0, "mnist")  # its 2-rank job also measures the allreduce sweep
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else "n/a"
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            for label, ranks, overlap in CONFIGS:
                print(f"{name}: {label}{'' if overlap else ', after backward'} ...", file=sys.stderr, flush=True)
                results[(name, ranks, overlap)] = launch(name, ranks, overlap, args, tmp)
    text = report(results, model_table(results, args), args, f"{load:.2f}" if load != "n/a" else load)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "distributed.md").write_text(text)
    (out / "distributed.json").write_text(json.dumps({f"{k[0]}-{k[1]}-{int(k[2])}": v for k, v in results.items()}))
    print(text)
    print(f"written: {out / 'distributed.md'}, {out / 'distributed.json'}", file=sys.stderr)
    return 0
