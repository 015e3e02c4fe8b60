"""Convert pretrained VGG16 convolutional-base weights to fastconv's .npz format.

    # torchvision: a state_dict saved by torch.save(torchvision.models.vgg16(weights=...).state_dict(), p)
    python examples/convert_vgg16_weights.py --torch vgg16.pth -o vgg16_notop.npz
    # the same state_dict saved as arrays: np.savez(p, **{k: v.numpy() for k, v in sd.items()})
    python examples/convert_vgg16_weights.py --torch-npz vgg16_state_dict.npz -o vgg16_notop.npz
    # Keras: np.savez(p, *keras.applications.VGG16(include_top=False).get_weights())
    python examples/convert_vgg16_weights.py --keras-npz vgg16_keras_list.npz -o vgg16_notop.npz

then  model = fastconv.models.vgg16_base((224, 224, 3), weights="vgg16_notop.npz").

Output format (documented in fastconv.models.vgg16_base): one float32 entry per parameter,
"block{b}_conv{i}/kernel" (3, 3, C, K) and "block{b}_conv{i}/bias" (K,), b = 1..5.
torchvision's features.{0,2,5,7,10,12,14,17,19,21,24,26,28} map to the 13 conv layers in order;
their (K, C, 3, 3) kernels are transposed to (3, 3, C, K). classifier.* is dropped.
Preprocessing follows the source: torchvision weights expect RGB scaled to [0, 1] and normalized
by mean (0.485, 0.456, 0.406) / std (0.229, 0.224, 0.225); Keras weights expect BGR minus the
ImageNet pixel mean (103.939, 116.779, 123.68).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import fastconv as fc


def load_source(args):
    if args.torch:
        try:
            import torch
        except ImportError:
            sys.exit(
                "--torch needs PyTorch (pip install torch); or save the state_dict with np.savez and use --torch-npz"
            )
        state = torch.load(args.torch, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        return fc.models.vgg16_weights_from_torch(state)
    if args.torch_npz:
        with np.load(args.torch_npz) as f:
            return fc.models.vgg16_weights_from_torch({k: f[k] for k in f.files})
    with np.load(args.keras_npz) as f:
        names = sorted(f.files, key=lambda k: int(k.split("_")[1]))  # arr_0, arr_1, ..., arr_25
        return fc.models.vgg16_weights_from_keras([f[k] for k in names])


def main(argv=None):
    ap = argparse.ArgumentParser(description="Convert VGG16 conv-base weights to fastconv .npz")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--torch", help="torchvision vgg16 state_dict (.pth), needs torch")
    src.add_argument("--torch-npz", help=".npz of the state_dict arrays (features.0.weight, ...)")
    src.add_argument("--keras-npz", help=".npz of Keras VGG16(include_top=False).get_weights() (arr_0..arr_25)")
    ap.add_argument("-o", "--output", required=True, help="the fastconv .npz to write")
    args = ap.parse_args(argv)
    weights = load_source(args)
    np.savez(args.output, **weights)
    model = fc.models.vgg16_base((32, 32, 3), weights=args.output)  # check: it loads
    print(f"wrote {args.output}: {len(weights)} arrays, {model.count_params():,} parameters")


if __name__ == "__main__":
    main()
