"""Times every fastconv operation against the float64 NumPy reference on a few VGG16 layer
shapes (batch 1, float32, NCHW and NHWC). The full benchmark is `python -m fastconv.bench`
once the SIMD kernels land; this script is the foundation's smoke benchmark.

    python bench/bench_ops.py [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import fastconv as fc
from fastconv import reference as ref

# (name, C, H, W, K): 3x3 pad 1 conv layers of VGG16 at 224x224 input, scaled to batch 1.
SHAPES = [("conv1_2", 64, 224, 224, 64), ("conv3_1", 128, 56, 56, 256), ("conv5_1", 512, 14, 14, 512)]


def median_ms(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"fastconv {fc.__version__}  isa={fc.cpu_isa()}  threads={fc.get_num_threads()}")
    print(f"{'layer':9} {'layout':6} {'op':18} {'fastconv ms':>12} {'numpy ms':>10} {'speed-up':>9} {'GFLOP/s':>8}")
    for name, C, H, W, K in SHAPES:
        for layout in ("NCHW", "NHWC"):
            x = rng.standard_normal((1, C, H, W)).astype(np.float32)
            w = rng.standard_normal((K, C, 3, 3)).astype(np.float32) * 0.05
            if layout == "NHWC":
                x, w = x.transpose(0, 2, 3, 1).copy(), w.transpose(2, 3, 1, 0).copy()
            kw = dict(padding=1, layout=layout)
            y = fc.conv2d(x, w, **kw)
            flops = 2.0 * H * W * C * K * 9
            ops = [
                ("conv2d", lambda: fc.conv2d(x, w, **kw), lambda: ref.conv2d(x, w, **kw), flops),
                ("conv2d_bwd_data", lambda: fc.conv2d_backward_data(y, w, x.shape, **kw),
                 lambda: ref.conv2d_backward_data(y, w, x.shape, **kw), flops),
                ("conv2d_bwd_weight", lambda: fc.conv2d_backward_weight(y, x, w.shape, **kw),
                 lambda: ref.conv2d_backward_weight(y, x, w.shape, **kw), flops),
                ("max_pool2d", lambda: fc.max_pool2d(y, 2, layout=layout),
                 lambda: ref.max_pool2d(y, 2, layout=layout), 0),
                ("relu", lambda: fc.relu(y), lambda: ref.relu(y), 0),
            ]
            for op, run_fc, run_ref, fl in ops:
                t_fc = median_ms(run_fc, args.repeats)
                t_np = median_ms(run_ref, 1)
                gf = f"{fl / t_fc / 1e6:8.1f}" if fl else f"{'':8}"
                print(f"{name:9} {layout:6} {op:18} {t_fc:12.2f} {t_np:10.2f} {t_np / t_fc:8.1f}x {gf}", flush=True)


if __name__ == "__main__":
    main()
