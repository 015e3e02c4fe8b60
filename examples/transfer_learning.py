"""The course's transfer-learning recipe (cats vs dogs with a frozen VGG16 base) on fastconv:

    pip install ".[examples]"
    python examples/transfer_learning.py                         # offline image set, see below
    python examples/transfer_learning.py --data cats_and_dogs_small --weights vgg16.npz --size 150

1. Data: a class-per-folder tree read by ImageDataGenerator.flow_from_directory, with the seeds'
   augmentation (rotation 40, shifts 0.2, shear 20, zoom 0.2, horizontal flip, rescale 1/255).
   Without --data an offline two-class set is made from the two photographs scikit-learn ships
   (sklearn/datasets/images: china.jpg, flower.jpg): random crops of each, written to
   --workdir/{train,validation}/{china,flower}/. Nothing is downloaded.
2. Phase 1, feature extraction: VGG16 convolutional base (models.vgg16_base; pretrained weights
   from --weights, an .npz made by examples/convert_vgg16_weights.py, else random) frozen, with a
   Flatten -> Dense 256 relu -> Dropout 0.5 -> Dense 1 sigmoid head; RMSprop(2e-5 in the recipe,
   --lr), binary cross-entropy, accuracy.
3. Phase 2, fine-tuning: block5 unfrozen, learning rate / 10, a few more epochs.
Writes the loss/accuracy curves of both phases (History.plot) and saves the model (model.save).
The recipe needs pretrained weights: a random base gives near-chance accuracy (the script says so),
so without --weights it shows the workflow, not the result.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

import fastconv as fc
from fastconv.layers import Dense, Dropout, Flatten


def make_offline_set(workdir, size, per_class, seed):
    """Random size x size crops (scaled 1-2x) of scikit-learn's two sample photographs."""
    try:
        from PIL import Image
        from sklearn.datasets import load_sample_image
    except ImportError:
        sys.exit("the offline image set needs scikit-learn and Pillow: pip install 'fastconv[examples]'")
    rng = np.random.default_rng(seed)
    for name in ("china", "flower"):
        photo = Image.fromarray(load_sample_image(f"{name}.jpg"))
        for split, count in (("train", per_class), ("validation", max(2, per_class // 4))):
            folder = os.path.join(workdir, split, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                crop = int(size * rng.uniform(1.0, 2.0))
                left = int(rng.integers(0, photo.width - crop))
                top = int(rng.integers(0, photo.height - crop))
                photo.crop((left, top, left + crop, top + crop)).resize((size, size)).save(
                    os.path.join(folder, f"{i:03d}.png")
                )
    return workdir


def build_model(size, weights, seed):
    base = fc.models.vgg16_base((size, size, 3), weights=weights, seed=seed, trainable=False)
    return fc.Sequential(
        [
            base,
            Flatten(),
            Dense(256, activation="relu", seed=seed),
            Dropout(0.5, seed=seed),
            Dense(1, activation="sigmoid", seed=seed + 1),
        ],
        name="vgg16_transfer",
    )


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="VGG16 transfer learning with fastconv (feature extraction, then fine-tuning block5)."
    )
    ap.add_argument("--data", help="folder with train/ and validation/ class sub-folders (default: offline set)")
    ap.add_argument("--workdir", default="transfer_data", help="where the offline set is written")
    ap.add_argument("--weights", help="VGG16 base .npz (examples/convert_vgg16_weights.py); default: random")
    ap.add_argument("--size", type=int, default=64, help="image side (the course uses 150)")
    ap.add_argument("--per-class", type=int, default=24, help="offline set: training images per class")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=3, help="epochs of each phase")
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--plot",
        default=os.path.join("runs", "transfer_learning.png"),
        help="PNG of the curves (default runs/transfer_learning.png; '' for none)",
    )
    ap.add_argument("--save", default="", help="write the trained model to this .npz")
    args = ap.parse_args(argv)

    data_dir = args.data or make_offline_set(args.workdir, args.size, args.per_class, args.seed)
    train_gen = fc.data.ImageDataGenerator(
        rescale=1 / 255,
        rotation_range=40,
        width_shift_range=0.2,
        height_shift_range=0.2,
        shear_range=20,
        zoom_range=0.2,
        horizontal_flip=True,
        fill_mode="nearest",
        seed=args.seed,
    )
    train = train_gen.flow_from_directory(
        os.path.join(data_dir, "train"),
        target_size=(args.size, args.size),
        class_mode="binary",
        batch_size=args.batch_size,
        seed=args.seed,
    )
    x_val, y_val, names = fc.data.load_image_folder(os.path.join(data_dir, "validation"), (args.size, args.size))
    x_val = x_val.astype(np.float32) / 255
    print(
        f"classes {train.class_indices}: {train.samples} training images, {len(x_val)} validation images, "
        f"{args.size}x{args.size}"
    )

    if args.weights is None:
        print(
            "no --weights: the VGG16 base is randomly initialized, so the frozen features carry little "
            "signal and accuracy stays near chance; the recipe needs pretrained weights "
            "(examples/convert_vgg16_weights.py writes them from torchvision or Keras)"
        )
    model = build_model(args.size, args.weights, args.seed)
    model.compile(optimizer=fc.RMSprop(learning_rate=args.lr), loss="binary_crossentropy", metrics=["accuracy"])
    model.summary()
    history = {}
    phase1 = model.fit(train, epochs=args.epochs, validation_data=(x_val, y_val))

    for layer in [lyr for lyr in model.layers if lyr.name.startswith("block5")]:
        layer.trainable = True  # fine-tune the last convolutional block
    model.compile(optimizer=fc.RMSprop(learning_rate=args.lr / 10), loss="binary_crossentropy", metrics=["accuracy"])
    print(f"fine-tuning block5: {model.count_params(trainable=True):,} trainable parameters")
    phase2 = model.fit(train, epochs=args.epochs, validation_data=(x_val, y_val))

    for part in (phase1, phase2):
        for k, v in part.history.items():
            history.setdefault(k, []).extend(v)
    combined = fc.callbacks.History()
    combined.history, combined.epoch = history, list(range(len(history["loss"])))
    print(
        f"validation accuracy: {history['val_accuracy'][args.epochs - 1]:.3f} after feature extraction, "
        f"{history['val_accuracy'][-1]:.3f} after fine-tuning"
    )
    if args.plot:
        try:
            os.makedirs(os.path.dirname(args.plot) or ".", exist_ok=True)
            combined.plot(args.plot, title=f"VGG16 transfer learning ({args.epochs} + {args.epochs} epochs)")
            print(f"training curves written to {args.plot}")
        except ImportError:
            print("matplotlib is not installed: no plot")
    if args.save:
        model.save(args.save)
    return history


if __name__ == "__main__":
    main()
