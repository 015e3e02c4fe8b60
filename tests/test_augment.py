"""ImageDataGenerator: identity parameters return the input exactly, known shifts / flips /
rotations move known pixels, values stay in the input's range, flow feeds fit."""
from __future__ import annotations

import numpy as np
import pytest

import fastconv as fc
from fastconv import losses
from fastconv.data import ImageDataGenerator


def _images(n=5, h=9, w=11, c=2, seed=0):
    return np.random.default_rng(seed).random((n, h, w, c), dtype=np.float32)


def test_identity_parameters_return_the_input_exactly():
    x = _images()
    assert np.array_equal(ImageDataGenerator().random_transform_batch(x), x)
    gen = ImageDataGenerator(rotation_range=30)
    matrices = fc.augment._keras_matrices(*(np.zeros(5) for _ in range(4)), np.ones(5), np.ones(5), 9, 11)
    assert np.array_equal(gen.apply_transform(x, matrices), x)
    u8 = (x * 255).astype(np.uint8)
    out = ImageDataGenerator(rescale=1 / 255).random_transform_batch(u8)
    assert out.dtype == np.float32 and np.allclose(out, u8 / 255)


def test_a_known_shift_moves_known_pixels_and_fills_by_mode():
    x = _images(n=1)
    gen = ImageDataGenerator(fill_mode="constant", cval=-1.0)
    # Keras' convention: output (r, c) samples input (r + tx, c + ty)
    m = fc.augment._keras_matrices(np.zeros(1), np.array([2.0]), np.array([-3.0]), np.zeros(1),
                                   np.ones(1), np.ones(1), 9, 11)
    out = gen.apply_transform(x, m)
    assert np.array_equal(out[0, :7, 3:], x[0, 2:, :8])
    assert (out[0, 7:] == -1).all() and (out[0, :, :3] == -1).all()
    nearest = ImageDataGenerator(fill_mode="nearest").apply_transform(x, m)
    assert np.array_equal(nearest[0, 8, 3:], x[0, 8, :8]) and np.array_equal(nearest[0, 0, :3], np.repeat(x[0, 2, :1], 3, 0))
    wrap = ImageDataGenerator(fill_mode="wrap").apply_transform(x, m)
    assert np.array_equal(wrap[0], np.roll(np.roll(x[0], -2, axis=0), 3, axis=1))
    reflect = ImageDataGenerator(fill_mode="reflect").apply_transform(x, m)
    # rows 9 and 10 of the input reflect to 8 and 7: (.. g h i | i h g ..)
    assert np.array_equal(reflect[0, 7, 3:], x[0, 8, :8]) and np.array_equal(reflect[0, 8, 3:], x[0, 7, :8])


def test_flips_rotation_by_90_degrees_and_channels_first():
    x = _images(n=4, h=7, w=7)
    flip = ImageDataGenerator(horizontal_flip=True, seed=3)
    out = flip.random_transform_batch(x)
    flipped = [np.array_equal(out[i], x[i, :, ::-1]) for i in range(4)]
    kept = [np.array_equal(out[i], x[i]) for i in range(4)]
    assert all(f or k for f, k in zip(flipped, kept)) and any(flipped)
    gen = ImageDataGenerator()
    m = fc.augment._keras_matrices(np.full(4, np.pi / 2), np.zeros(4), np.zeros(4), np.zeros(4),
                                   np.ones(4), np.ones(4), 7, 7)
    rot = gen.apply_transform(x, m)
    np.testing.assert_allclose(rot, np.rot90(x, k=-1, axes=(1, 2)), atol=1e-5)
    cf = ImageDataGenerator(data_format="channels_first").apply_transform(x.transpose(0, 3, 1, 2), m)
    np.testing.assert_allclose(cf, rot.transpose(0, 3, 1, 2), atol=1e-5)


def test_random_augmentation_stays_in_range_and_is_seeded():
    x = _images(n=16, h=28, w=28, c=1)
    kw = dict(rotation_range=20, width_shift_range=0.2, height_shift_range=0.2, shear_range=15,
              zoom_range=0.2, horizontal_flip=True, fill_mode="nearest")
    a = ImageDataGenerator(seed=1, **kw).random_transform_batch(x)
    b = ImageDataGenerator(seed=1, **kw).random_transform_batch(x)
    assert np.array_equal(a, b) and not np.array_equal(a, x)
    assert a.min() >= x.min() - 1e-6 and a.max() <= x.max() + 1e-6      # bilinear: a convex mix


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="fill_mode"):
        ImageDataGenerator(fill_mode="mirror")
    with pytest.raises(ValueError, match="rotation_range"):
        ImageDataGenerator(rotation_range=-5)
    with pytest.raises(ValueError, match="zoom_range"):
        ImageDataGenerator(zoom_range=1.5)
    with pytest.raises(ValueError, match="batch of images"):
        ImageDataGenerator().random_transform_batch(np.ones((3, 4, 4)))
    with pytest.raises(ValueError, match="x has 4 samples but y has 3"):
        ImageDataGenerator().flow(np.ones((4, 3, 3, 1)), np.ones(3))


def test_flow_feeds_fit_and_next_goes_on():
    rng = np.random.default_rng(2)
    x = rng.random((40, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 3, 40)
    flow = ImageDataGenerator(width_shift_range=0.1, seed=0).flow(x, y, batch_size=16, seed=0)
    assert len(flow) == 3 and sum(len(b[0]) for b in flow) == 40
    for _ in range(5):
        xb, yb = next(flow)
        assert xb.shape[1:] == (8, 8, 1) and len(xb) == len(yb)
    model = fc.Sequential([fc.layers.Conv2D(4, 3, activation="relu", input_shape=(8, 8, 1), seed=0),
                           fc.layers.Flatten(), fc.layers.Dense(3, seed=1)])
    model.compile(optimizer="adam", loss=losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    history = model.fit(flow, epochs=2, verbose=0, validation_data=(x, y))
    assert len(history.history["loss"]) == 2 and "val_accuracy" in history.history
    with pytest.raises(ValueError, match="pass no y"):
        model.fit(flow, y)


def test_integer_and_list_shift_ranges_draw_like_keras():
    gen = ImageDataGenerator(width_shift_range=3, height_shift_range=[2.0, 5.0], seed=0)
    ty = gen._shifts(gen.width_shift_range, 400, 28)
    tx = gen._shifts(gen.height_shift_range, 400, 28)
    assert set(np.unique(ty)) == {-2.0, -1.0, 0.0, 1.0, 2.0}
    assert set(np.unique(tx)) == {-5.0, -2.0, 2.0, 5.0}
    frac = ImageDataGenerator(width_shift_range=0.25, seed=0)
    assert np.abs(frac._shifts(frac.width_shift_range, 400, 20)).max() <= 5.0
    with pytest.raises(ValueError, match="width_shift_range"):
        ImageDataGenerator(width_shift_range=[])
