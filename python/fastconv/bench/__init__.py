"""`python -m fastconv.bench`: the CPU benchmark of fastconv against PyTorch (NCHW and
channels_last, when installed) and a plain-NumPy im2col baseline, interleaved in one run.

Layer lists live in fastconv/bench/shapes/*.txt (VGG16 at 224x224, the small MNIST CNN, the
cs231n shapes in float64). For every layer, pass (forward, backward-data, backward-weight;
pooling and ReLU forward/backward), batch and thread count it
  * checks fastconv's result against fastconv.reference first (a failure is reported, that
    contender is not timed and the exit status is 1);
  * times all contenders round-robin (warm-up, then repeats, median);
  * reports ms, GFLOP/s and % of the FMA peak it measured itself (csrc/bench/peak_flops.cpp),
    GB/s and % of the copy bandwidth it measured itself for pooling and ReLU, and the ratio
    to the best PyTorch layout and to NumPy;
and adds whole-network rows (VGG16 conv base forward at batch 1, the MNIST CNN training step).

First come the training-loop rows (loops.py): one training step as users write it with the
public API (the Keras seeds' MNIST CNN, VGG16 transfer learning with a frozen base, VGG16 full
training, the cs231n three-layer convnet through fastconv.compat.cs231n), against the same model
in PyTorch (and the course's NumPy im2col net), with the sum of the step's kernel times alone.

It runs in the environment it is started in, as users' loops do (no re-exec, no thread variables
set), and prints and stores the thread settings it found (loops.py's rows run at fastconv's
default thread count unless --threads is given). Writes bench.json, bench.md (tables, training
loops first) and bench.png (chart, needs matplotlib) to --out.

    python -m fastconv.bench --quick            # a few minutes (--no-loops: about a minute)
    python -m fastconv.bench --out bench/results
    python -m fastconv.bench --loops a,b,c,d,e --no-networks --layers '^$'   # the training loops only
    python -m fastconv.bench --device cuda      # the CUDA benchmark, when installed
"""

from __future__ import annotations


def main(argv=None) -> int:
    from .cli import main as _main  # noqa: PLC0415

    return _main(argv)


__all__ = ["main"]
