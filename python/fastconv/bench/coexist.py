"""fastconv in a user's loop on a shared machine: next to NumPy's BLAS, and next to a busy neighbour.

    python -m fastconv.bench coexist [--repeats 15] [--out bench/results/coexist.txt]

1. Alternation with NumPy's BLAS (the default environment, nothing exported): each fc.conv2d of
   the cs231n stride-2 layer (float32 and float64) and of VGG16 conv3_1 at batch 1 runs right after
   a NumPy (50, 8192) @ (8192, 100) matmul, and the other way round; each op's median in the loop
   against its median alone, with fastconv's BLAS parking on (the default) and off.
2. One busy neighbour (another process spinning on one core): the MNIST CNN training step
   (loop row a of `python -m fastconv.bench`, fastconv vs PyTorch, same threads) idle and busy,
   and the cs231n notebook's gradient check (3,072 conv_forward_fast calls on x (2,3,16,16), w
   (3,3,3,3), pad 1) with fastconv's default threads and with 1 thread, idle and busy.
Medians; contenders interleaved within each condition. Prints one markdown table per part.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

import fastconv as fc
from fastconv.compat import cs231n

from . import harness, loops, machine


def median_ms(fn, repeats):
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3


def alternation(repeats):
    rng = np.random.default_rng(0)

    def conv(shape_x, shape_w, dtype, **kw):
        x, w = rng.standard_normal(shape_x).astype(dtype), rng.standard_normal(shape_w).astype(dtype)
        return lambda: fc.conv2d(x, w, **kw)

    cases = {
        "cs231n stride-2 f64 (100,3,31,31)": conv((100, 3, 31, 31), (25, 3, 3, 3), np.float64, stride=2, padding=1),
        "cs231n stride-2 f32 (100,3,31,31)": conv((100, 3, 31, 31), (25, 3, 3, 3), np.float32, stride=2, padding=1),
        "VGG16 conv3_1 f32 batch 1": conv((1, 128, 56, 56), (256, 128, 3, 3), np.float32, padding=1),
    }
    a, b = rng.standard_normal((50, 8192)), rng.standard_normal((8192, 100))

    def matmul():
        return a @ b

    rows = []
    for parking in (True, False):
        fc.set_blas_parking(parking)
        for name, op in cases.items():
            for _ in range(3):
                op(), matmul()
            time.sleep(0.3)  # let every spinning thread go to sleep
            op_alone = median_ms(op, repeats)
            time.sleep(0.3)
            mm_alone = median_ms(matmul, repeats)
            op_loop, mm_loop = [], []
            for _ in range(repeats):
                t0 = time.perf_counter()
                op()
                t1 = time.perf_counter()
                matmul()
                t2 = time.perf_counter()
                op_loop.append(t1 - t0)
                mm_loop.append(t2 - t1)
            op_l, mm_l = statistics.median(op_loop) * 1e3, statistics.median(mm_loop) * 1e3
            rows.append(
                f"| {name} | {'on' if parking else 'off'} | {op_alone:.3f} | {op_l:.3f} | "
                f"{op_l / op_alone:.2f} | {mm_alone:.3f} | {mm_l:.3f} | {mm_l / mm_alone:.2f} |"
            )
    fc.set_blas_parking(True)
    return [
        "| conv | BLAS parking | conv alone ms | conv in loop ms | loop/alone | matmul alone ms | "
        "matmul in loop ms | loop/alone |",
        "|---|---|---|---|---|---|---|---|",
    ] + rows


def gradient_check(threads):
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 3, 16, 16)), rng.standard_normal((3, 3, 3, 3)), rng.standard_normal(3)
    param = {"stride": 1, "pad": 1}
    flat = x.reshape(-1)

    def run():
        previous = fc.get_num_threads()
        fc.set_num_threads(threads)
        try:
            for i in range(flat.size):  # eval_numerical_gradient_array: 2 calls per element
                old = flat[i]
                flat[i] = old + 1e-5
                cs231n.conv_forward_fast(x, w, b, param)
                flat[i] = old - 1e-5
                cs231n.conv_forward_fast(x, w, b, param)
                flat[i] = old
        finally:
            fc.set_num_threads(previous)

    return run


def busy_neighbour(repeats):
    import torch

    torch.set_num_threads(fc.get_num_threads())
    loop = loops.BUILDERS["a"](torch, 64, 28)
    contenders = {
        "MNIST step fastconv": loop.steps["fastconv"],
        "MNIST step PyTorch": loop.steps["torch"],
        f"gradient check, {fc.get_num_threads()} threads": gradient_check(fc.get_num_threads()),
        "gradient check, 1 thread": gradient_check(1),
    }
    slow = {name for name in contenders if name.startswith("gradient")}
    idle = harness.time_interleaved({k: v for k, v in contenders.items() if k not in slow}, repeats)
    idle.update(harness.time_interleaved({k: contenders[k] for k in slow}, max(3, repeats // 5)))
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        busy = harness.time_interleaved({k: v for k, v in contenders.items() if k not in slow}, repeats)
        busy.update(harness.time_interleaved({k: contenders[k] for k in slow}, max(3, repeats // 5)))
    finally:
        spinner.kill()
        spinner.wait()
    rows = ["| what | idle ms | one busy neighbour ms | busy/idle |", "|---|---|---|---|"]
    for name in contenders:
        rows.append(f"| {name} | {idle[name] * 1e3:.2f} | {busy[name] * 1e3:.2f} | {busy[name] / idle[name]:.2f} |")
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--out", default=None, help="also write the tables to this file")
    p.add_argument("--part", choices=("all", "blas", "busy"), default="all")
    args = p.parse_args(argv)
    lines = [
        f"# fastconv next to NumPy's BLAS and a busy neighbour ({machine.cpu_model()}, "
        f"{os.cpu_count()} CPUs, fastconv {fc.get_num_threads()} threads, ISA {fc.cpu_isa()}, "
        f"worker spin {fc.get_worker_spin_us()} us, load average {os.getloadavg()[0]:.2f} at start)",
        "",
        "Threads: " + machine.describe_threads(machine.thread_settings()),
        "",
    ]
    if args.part in ("all", "blas"):
        lines += ["## Alternating with a NumPy (50, 8192) @ (8192, 100) matmul", ""] + alternation(args.repeats) + [""]
    if args.part in ("all", "busy"):
        lines += ["## One busy neighbour process", ""] + busy_neighbour(args.repeats) + [""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
