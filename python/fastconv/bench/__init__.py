"""`python -m fastconv.bench`: the CPU benchmark of fastconv against PyTorch (NCHW and
channels_last, when installed) and a plain-NumPy im2col baseline, interleaved in one run.

Layer lists live in fastconv/bench/shapes/*.txt (VGG16 at 224x224, the small MNIST CNN, the
cs231n shapes in float64). For every layer, pass (forward, backward-data, backward-weight;
pooling and ReLU forward/backward), batch and thread count it
  * checks fastconv's result against fastconv.reference first (a failure is reported, that
    contender is not timed and the exit status is 1);
  * times all contenders round-robin (warm-up, then repeats, median);
  * reports ms, GFLOP/s and % of the FMA peak it measured itself (csrc/cpu/peak_flops.cpp),
    GB/s and % of the copy bandwidth it measured itself for pooling and ReLU, and the ratio
    to the best PyTorch layout and to NumPy;
and adds whole-network rows (VGG16 conv base forward at batch 1, the MNIST CNN training step).
Writes bench.json, bench.md (tables) and bench.png (chart, needs matplotlib) to --out.

    python -m fastconv.bench --quick            # about a minute
    python -m fastconv.bench --out bench/results
    python -m fastconv.bench --device cuda      # the CUDA benchmark, when installed
"""
from __future__ import annotations


def main(argv=None) -> int:
    from .cli import main as _main  # noqa: PLC0415
    return _main(argv)


__all__ = ["main"]
