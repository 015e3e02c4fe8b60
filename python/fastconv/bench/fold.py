"""Conv2D + BatchNormalization at inference: the pair as trained, the pair folded into one conv,
and the conv alone, through the public layers (Keras' channels_last, batch 8 by default).

    python -m fastconv.bench fold [--batch 8] [--repeats 9] [--out FILE]

For VGG16 layer shapes (3x3 'same' convs), three models run model(x) (inference) interleaved:
  - as trained: Conv2D(K, 3) -> BatchNormalization -> ReLU, the normalization a second pass with
    the moving statistics;
  - folded: the same model after Sequential.fold_batch_norm() (one Conv2D with the normalization
    in its kernel and bias, then ReLU);
  - conv alone: Conv2D(K, 3) with a bias -> ReLU, no normalization at all.
The folded model must cost what the conv alone costs (one convolution); its output is checked
against the model as trained. With PyTorch installed, its conv + batch norm in eval mode and its
torch.nn.utils.fusion.fuse_conv_bn_eval are timed beside them (same threads, channels_last).
"""

from __future__ import annotations

import argparse

import numpy as np

import fastconv as fc
from fastconv.layers import BatchNormalization, Conv2D, ReLU

from . import harness, libs

# (name, C, K, H = W) of VGG16 convs, one per block after the first
SHAPES = (("conv2_1", 64, 128, 112), ("conv3_2", 256, 256, 56), ("conv4_2", 512, 512, 28), ("conv5_2", 512, 512, 14))


def _models(C, K, H, rng):
    """(as trained, folded, conv alone), built for (H, H, C) inputs, moving statistics random."""
    trained = fc.Sequential(
        [Conv2D(K, 3, padding="same", use_bias=False), BatchNormalization(), ReLU()], input_shape=(H, H, C)
    )
    trained.build()
    bn = trained.layers[1]
    bn.params["moving_mean"][...] = rng.standard_normal(K).astype(np.float32)
    bn.params["moving_variance"][...] = rng.uniform(0.5, 2.0, K).astype(np.float32)
    bn.params["gamma"][...] = rng.uniform(0.5, 1.5, K).astype(np.float32)
    bn.params["beta"][...] = rng.standard_normal(K).astype(np.float32)
    alone = fc.Sequential([Conv2D(K, 3, padding="same"), ReLU()], input_shape=(H, H, C))
    alone.build()
    return trained, trained.fold_batch_norm(), alone


def _torch_pair(torch, trained, x):
    """PyTorch's conv + batch norm in eval mode with the same parameters, unfused and fused."""
    conv_layer, bn_layer = trained.layers[0], trained.layers[1]
    kernel = conv_layer.params["kernel"]  # (R, S, C, K)
    conv = torch.nn.Conv2d(kernel.shape[2], kernel.shape[3], 3, padding=1, bias=False)
    bn = torch.nn.BatchNorm2d(kernel.shape[3], eps=bn_layer.epsilon)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))))
        bn.weight.copy_(torch.from_numpy(bn_layer.params["gamma"]))
        bn.bias.copy_(torch.from_numpy(bn_layer.params["beta"]))
        bn.running_mean.copy_(torch.from_numpy(bn_layer.params["moving_mean"]))
        bn.running_var.copy_(torch.from_numpy(bn_layer.params["moving_variance"]))
    conv, bn = conv.eval().to(memory_format=torch.channels_last), bn.eval()
    fused = torch.nn.utils.fusion.fuse_conv_bn_eval(conv, bn).to(memory_format=torch.channels_last)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2)  # NHWC memory: channels_last

    def unfused():
        with torch.no_grad():
            return torch.relu(bn(conv(xt)))

    def fused_run():
        with torch.no_grad():
            return torch.relu(fused(xt))

    return unfused, fused_run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--no-torch", action="store_true", help="leave PyTorch out even when installed")
    ap.add_argument("--out", default=None, help="also write the table to this file")
    args = ap.parse_args(argv)
    torch = None if args.no_torch else libs.torch_module()
    if torch is not None:
        torch.set_num_threads(fc.get_num_threads())
    rng = np.random.default_rng(0)
    head = ["layer", "as trained ms", "folded ms", "conv alone ms", "folded / conv alone", "folded vs trained"]
    if torch is not None:
        head += ["PyTorch conv+BN ms", "PyTorch fused ms"]
    lines = [
        f"Conv2D + BatchNormalization + ReLU at inference, batch {args.batch}, NHWC, float32, "
        f"{fc.get_num_threads()} threads, medians of {args.repeats} (interleaved)",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    print(lines[0])
    failed = False
    for name, C, K, H in SHAPES:
        x = rng.standard_normal((args.batch, H, H, C), dtype=np.float32)
        trained, folded, alone = _models(C, K, H, rng)
        err = float(np.abs(folded(x) - trained(x)).max() / np.abs(trained(x)).max())
        fns = {"trained": lambda: trained(x), "folded": lambda: folded(x), "alone": lambda: alone(x)}
        if torch is not None:
            fns["torch"], fns["torch fused"] = _torch_pair(torch, trained, x)
        t = {k: v * 1e3 for k, v in harness.time_interleaved(fns, args.repeats).items()}
        ok = err <= 1e-4
        failed |= not ok
        row = [
            name,
            f"{t['trained']:.2f}",
            f"{t['folded']:.2f}",
            f"{t['alone']:.2f}",
            f"{t['folded'] / t['alone']:.3f}",
            f"max err {err:.1e} {'ok' if ok else 'FAILED'}",
        ]
        if torch is not None:
            row += [f"{t['torch']:.2f}", f"{t['torch fused']:.2f}"]
        lines.append("| " + " | ".join(row) + " |")
        print(lines[-1])
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")
    return 1 if failed else 0
