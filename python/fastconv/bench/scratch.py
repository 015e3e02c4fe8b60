"""Scratch memory fastconv keeps after each VGG16 layer pass, and what its per-thread limit costs.

    python -m fastconv.bench scratch [--layout NCHW|NHWC] [--batch 8] [--out bench/results/scratch_NCHW.txt]

For every VGG16 conv layer at the given batch (224x224 input), each pass (forward,
backward-data, backward-weight) runs after fc.clear_caches() with the default limit (64 MiB per
thread) and with no practical limit (100 GiB), alternating, twice: the best time of each and the
scratch kept per thread after the call (fc.memory_info()). Ends with the totals, the largest
amount kept per thread, and memory_info() after clear_caches().
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import fastconv as fc
from fastconv.models import VGG16_LAYERS

UNLIMITED_MIB = 100 * 1024


def vgg16_convs():
    size, c = 224, 3
    for block, k, n in VGG16_LAYERS:
        for i in range(n):
            yield f"conv{block}_{i + 1}", c, k, size
            c = k
        size //= 2


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layout", default="NCHW", choices=["NCHW", "NHWC"])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--out", default=None, help="also write the table to this file")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    limit = fc.memory_info()["scratch_limit_mib"]
    lines = [
        f"# Scratch kept after each VGG16 pass ({args.layout}, batch {args.batch}, {fc.get_num_threads()} "
        f"threads, ISA {fc.cpu_isa()}): time with the {limit:.0f} MiB limit / without, kept MiB per thread",
        "",
        "| layer | fwd ms | bwd_data ms | bwd_weight ms | kept per thread (MiB) |",
        "|---|---|---|---|---|",
    ]
    totals = {limit: 0.0, UNLIMITED_MIB: 0.0}
    worst = 0.0
    for name, C, K, S in vgg16_convs():
        xs = (args.batch, C, S, S) if args.layout == "NCHW" else (args.batch, S, S, C)
        ws = (K, C, 3, 3) if args.layout == "NCHW" else (3, 3, C, K)
        x = rng.standard_normal(xs, dtype=np.float32)
        w = (0.05 * rng.standard_normal(ws)).astype(np.float32)
        kw = dict(padding=1, layout=args.layout)
        gy = rng.standard_normal(fc.conv2d(x, w, **kw).shape, dtype=np.float32)
        passes = (
            lambda: fc.conv2d(x, w, **kw),
            lambda: fc.conv2d_backward_data(gy, w, x.shape, **kw),
            lambda: fc.conv2d_backward_weight(gy, x, w.shape, **kw),
        )
        cells, kept = [], 0.0
        for run in passes:
            best = {limit: float("inf"), UNLIMITED_MIB: float("inf")}
            for _ in range(2):
                for lim in (limit, UNLIMITED_MIB):
                    fc.set_scratch_limit(lim)
                    fc.clear_caches()
                    run()  # the first call after a clear allocates either way
                    t = time.perf_counter()
                    run()
                    best[lim] = min(best[lim], time.perf_counter() - t)
                    if lim == limit:
                        info = fc.memory_info()
                        kept = max(kept, info["scratch_mib"] / max(1, info["scratch_threads"]))
            for lim in best:
                totals[lim] += best[lim]
            cells.append(f"{best[limit] * 1e3:.1f} / {best[UNLIMITED_MIB] * 1e3:.1f}")
        worst = max(worst, kept)
        lines.append(f"| {name} | {' | '.join(cells)} | {kept:.1f} |")
        print(lines[-1], flush=True)
    fc.set_scratch_limit(limit)
    fc.clear_caches()
    lines += [
        "",
        f"All passes: {totals[limit]:.3f} s with the limit, {totals[UNLIMITED_MIB]:.3f} s without; "
        f"at most {worst:.1f} MiB kept per thread after a call.",
        f"After clear_caches(): {fc.memory_info()}",
    ]
    print("\n".join(lines[-2:]))
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")
