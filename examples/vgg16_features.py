"""Feature extraction with the VGG16 convolutional base (the transfer-learning workflow).

    python examples/vgg16_features.py                       # random-init weights, 4 images 150x150
    python examples/vgg16_features.py --weights vgg16_notop.npz --batch 8 --size 224

Runs the 13-conv/5-pool stack (fastconv.models.vgg16_base) forward on a batch and reports
images/s (median of --repeat runs after a warm-up) and the feature shape: e.g. (N, 4, 4, 512)
for 150x150 inputs, the features a small classifier is then trained on. Pretrained weights come
from examples/convert_vgg16_weights.py; the images here are random (shapes and speed only).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import fastconv as fc


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=None, help=".npz from convert_vgg16_weights.py (default: random init)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--size", type=int, default=150, help="input height = width")
    ap.add_argument("--data-format", default="channels_last", choices=["channels_last", "channels_first"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="CPU kernel threads (default: all)")
    args = ap.parse_args(argv)
    if args.threads:
        fc.set_num_threads(args.threads)

    shape = (args.size, args.size, 3) if args.data_format == "channels_last" else (3, args.size, args.size)
    model = fc.models.vgg16_base(shape, data_format=args.data_format, weights=args.weights, seed=0)
    x = np.random.default_rng(0).uniform(0, 1, (args.batch, *shape)).astype(np.float32)
    print(
        f"VGG16 conv base, {model.count_params():,} parameters, weights: {args.weights or 'random init'}; "
        f"isa={fc.cpu_isa()} threads={fc.get_num_threads()}"
    )
    features = model.forward(x, training=False)  # warm-up
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        features = model.forward(x, training=False)
        times.append(time.perf_counter() - t0)
    t = float(np.median(times))
    flops = (
        2
        * sum(
            int(np.prod(model._shapes[i])) * (lyr.params["kernel"].size // lyr.filters)
            for i, lyr in enumerate(model.layers)
            if "kernel" in lyr.params
        )
        * args.batch
    )
    print(
        f"batch {x.shape} -> features {features.shape}: {t * 1e3:.1f} ms, "
        f"{args.batch / t:.2f} images/s, {flops / t / 1e9:.1f} GFLOP/s"
    )
    return features


if __name__ == "__main__":
    main()
