"""ImageDataGenerator: identity parameters return the input exactly, known shifts / flips /
rotations move known pixels, values stay in the input's range, flow feeds fit."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import fastconv as fc
from fastconv import data, losses
from fastconv.data import ImageDataGenerator


def _images(n=5, h=9, w=11, c=2, seed=0):
    return np.random.default_rng(seed).random((n, h, w, c), dtype=np.float32)


def test_identity_parameters_return_the_input_exactly():
    x = _images()
    assert np.array_equal(ImageDataGenerator().random_transform_batch(x), x)
    gen = ImageDataGenerator(rotation_range=30)
    matrices = fc.data.augment._keras_matrices(*(np.zeros(5) for _ in range(4)), np.ones(5), np.ones(5), 9, 11)
    assert np.array_equal(gen.apply_transform(x, matrices), x)
    u8 = (x * 255).astype(np.uint8)
    out = ImageDataGenerator(rescale=1 / 255).random_transform_batch(u8)
    assert out.dtype == np.float32 and np.allclose(out, u8 / 255)


def test_a_known_shift_moves_known_pixels_and_fills_by_mode():
    x = _images(n=1)
    gen = ImageDataGenerator(fill_mode="constant", cval=-1.0)
    # Keras' convention: output (r, c) samples input (r + tx, c + ty)
    m = fc.data.augment._keras_matrices(
        np.zeros(1), np.array([2.0]), np.array([-3.0]), np.zeros(1), np.ones(1), np.ones(1), 9, 11
    )
    out = gen.apply_transform(x, m)
    assert np.array_equal(out[0, :7, 3:], x[0, 2:, :8])
    assert (out[0, 7:] == -1).all() and (out[0, :, :3] == -1).all()
    nearest = ImageDataGenerator(fill_mode="nearest").apply_transform(x, m)
    assert np.array_equal(nearest[0, 8, 3:], x[0, 8, :8]) and np.array_equal(
        nearest[0, 0, :3], np.repeat(x[0, 2, :1], 3, 0)
    )
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
    m = fc.data.augment._keras_matrices(
        np.full(4, np.pi / 2), np.zeros(4), np.zeros(4), np.zeros(4), np.ones(4), np.ones(4), 7, 7
    )
    rot = gen.apply_transform(x, m)
    np.testing.assert_allclose(rot, np.rot90(x, k=-1, axes=(1, 2)), atol=1e-5)
    cf = ImageDataGenerator(data_format="channels_first").apply_transform(x.transpose(0, 3, 1, 2), m)
    np.testing.assert_allclose(cf, rot.transpose(0, 3, 1, 2), atol=1e-5)


def test_random_augmentation_stays_in_range_and_is_seeded():
    x = _images(n=16, h=28, w=28, c=1)
    kw = dict(
        rotation_range=20,
        width_shift_range=0.2,
        height_shift_range=0.2,
        shear_range=15,
        zoom_range=0.2,
        horizontal_flip=True,
        fill_mode="nearest",
    )
    a = ImageDataGenerator(seed=1, **kw).random_transform_batch(x)
    b = ImageDataGenerator(seed=1, **kw).random_transform_batch(x)
    assert np.array_equal(a, b) and not np.array_equal(a, x)
    assert a.min() >= x.min() - 1e-6 and a.max() <= x.max() + 1e-6  # bilinear: a convex mix


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
    model = fc.Sequential(
        [
            fc.layers.Conv2D(4, 3, activation="relu", input_shape=(8, 8, 1), seed=0),
            fc.layers.Flatten(),
            fc.layers.Dense(3, seed=1),
        ]
    )
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


def test_flow_of_no_images_raises_instead_of_looping_forever():
    code = (
        "import numpy as np\nfrom fastconv.data import ImageDataGenerator\n"
        "next(ImageDataGenerator().flow(np.zeros((0, 8, 8, 3)), np.zeros(0)))\n"
    )
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("next() on a flow of 0 images did not return within 60 s")
    assert proc.returncode != 0 and "ValueError: flow: x must hold at least one image" in proc.stderr


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(zoom_range=[1e300, 1e300]), ValueError, r"zoom_range .*0 < low <= high <= 1e\+06, got \[1e\+300"),
        (dict(zoom_range=[10, 5]), ValueError, r"zoom_range .*low <= high.*got \[10, 5\]"),
        (dict(zoom_range=[1.5, 0.5]), ValueError, r"zoom_range .*got \[1.5, 0.5\]"),
        (dict(zoom_range=[0, 2]), ValueError, r"zoom_range .*0 < low"),
        (dict(zoom_range=[1, float("inf")]), ValueError, "zoom_range must be finite, got inf"),
        (dict(zoom_range=[1, 2, 3]), ValueError, r"zoom_range must be a number or a \[low, high\] pair"),
        (dict(zoom_range="0.2"), TypeError, "zoom_range must be a number, got str"),
        (
            dict(rotation_range=1e308),
            ValueError,
            r"rotation_range must be a number of degrees in \[0, 360\], got 1e\+308",
        ),
        (dict(rotation_range=[10, 5]), TypeError, r"rotation_range must be a number, got list \[10, 5\]"),
        (dict(rotation_range=True), TypeError, "rotation_range must be a number, got bool"),
        (dict(shear_range=float("nan")), ValueError, "shear_range must be finite, got nan"),
        (dict(shear_range=1e9), ValueError, r"shear_range must be .*\[0, 360\]"),
        (dict(width_shift_range=1e300), ValueError, r"width_shift_range must be a number in \[0, 1e\+06\]"),
        (dict(height_shift_range=10**30), ValueError, r"height_shift_range must be a number in \[0, 1e\+06\]"),
        (dict(height_shift_range=[1, float("nan")]), ValueError, "height_shift_range must be finite"),
        (dict(cval=float("inf")), ValueError, "cval must be finite, got inf"),
        (dict(cval=None), TypeError, "cval must be a number, got NoneType"),
        (dict(rescale=float("nan")), ValueError, "rescale must be finite, got nan"),
        (dict(rescale="1/255"), TypeError, "rescale must be a number, got str"),
        (dict(horizontal_flip="no"), TypeError, "horizontal_flip must be True or False, got str"),
        (dict(vertical_flip=1), TypeError, "vertical_flip must be True or False, got int"),
        (dict(fill_mode=np.array(["wrap"])), ValueError, "fill_mode must be one of"),
        (dict(data_format=None), ValueError, "data_format must be one of .*got None"),
        (dict(seed=-1), ValueError, "seed must be >= 0, got -1"),
        (dict(seed="a"), TypeError, "seed must be None, an int >= 0 or a np.random.Generator, got 'a'"),
    ],
)
def test_constructor_names_each_bad_argument_and_value(kwargs, error, match):
    with pytest.raises(error, match=match):
        ImageDataGenerator(**kwargs)


def test_numpy_scalars_are_numbers_and_bools_are_not():
    x = _images(n=6)
    python = dict(
        rotation_range=10,
        width_shift_range=2,
        height_shift_range=0.25,
        shear_range=5.0,
        zoom_range=0.25,
        fill_mode="constant",
        cval=0.5,
        rescale=0.5,
        seed=3,
    )
    numpy = dict(
        rotation_range=np.int32(10),
        width_shift_range=np.int64(2),
        height_shift_range=np.float32(0.25),
        shear_range=np.float64(5.0),
        zoom_range=np.float32(0.25),
        fill_mode="constant",
        cval=np.float16(0.5),
        rescale=np.float32(0.5),
        seed=np.int64(3),
    )
    expected = ImageDataGenerator(**python).random_transform_batch(x)
    assert np.array_equal(ImageDataGenerator(**numpy).random_transform_batch(x), expected)
    pair = ImageDataGenerator(zoom_range=(np.float32(0.5), np.float64(2.0)), seed=0).random_transform_batch(x)
    assert np.array_equal(pair, ImageDataGenerator(zoom_range=[0.5, 2.0], seed=0).random_transform_batch(x))
    with pytest.raises(TypeError, match="zoom_range must be a number, got bool"):
        ImageDataGenerator(zoom_range=np.bool_(True))
    with pytest.raises(TypeError, match="width_shift_range must be a number, got bool"):
        ImageDataGenerator(width_shift_range=[True, 2])


def test_complex_and_object_images_are_refused():
    x = _images(n=2)
    for bad in (x + 1j, x.astype(object)):
        with pytest.raises(TypeError, match=f"x must hold real pixel values .*got dtype {bad.dtype}"):
            ImageDataGenerator(rotation_range=10).random_transform_batch(bad)
        with pytest.raises(TypeError, match="x must hold real pixel values"):
            ImageDataGenerator().flow(bad)


def test_flow_arguments_are_named():
    x = np.ones((4, 3, 3, 1), np.float32)
    gen = ImageDataGenerator()
    with pytest.raises(
        TypeError,
        match=r"y must be None or an array with one row per image of x \(4 rows\), "
        "got int 5",
    ):
        gen.flow(x, 5)
    with pytest.raises(ValueError, match="x has 4 samples but y has 5"):
        gen.flow(x, np.ones(5))
    for batch_size in (0, "4", True, 2.0):
        with pytest.raises(ValueError, match=f"batch_size must be a positive int, got {batch_size!r}"):
            gen.flow(x, batch_size=batch_size)
    with pytest.raises(TypeError, match="shuffle must be True or False, got str"):
        gen.flow(x, shuffle="no")
    with pytest.raises(TypeError, match="seed must be None"):
        gen.flow(x, seed=1.5)
    xb, yb = next(gen.flow(x, [0, 1, 2, 3], batch_size=np.int64(4), shuffle=np.bool_(False)))
    assert xb.shape == (4, 3, 3, 1) and list(yb) == [0, 1, 2, 3]


def test_extreme_but_valid_geometry_stays_finite_and_in_range():
    x = _images(n=4, h=12, w=10, c=1)
    for fill_mode in ("nearest", "constant", "reflect", "wrap"):
        for kwargs in (
            dict(zoom_range=[1e6, 1e6]),
            dict(zoom_range=[1e-300, 1e-300]),
            dict(width_shift_range=1e6, height_shift_range=[-1e6, 1e6]),
            dict(rotation_range=360),
        ):
            for images in (x, x.astype(np.float16)):  # float16 positions would overflow past 65504
                out = ImageDataGenerator(fill_mode=fill_mode, seed=0, **kwargs).random_transform_batch(images)
                assert out.dtype == images.dtype and np.isfinite(out).all(), (fill_mode, kwargs, images.dtype)
                assert out.min() >= min(images.min(), 0) and out.max() <= images.max(), (fill_mode, kwargs)


def test_sample_positions_far_outside_the_image_use_the_fill_mode():
    x = _images(n=1, h=6, w=5)
    far_down = np.array([[[1.0, 0.0, 3e9], [0.0, 1.0, 0.0]]])  # row r samples row r + 3e9
    nearest = ImageDataGenerator(fill_mode="nearest").apply_transform(x, far_down)
    assert np.array_equal(nearest[0], np.broadcast_to(x[0, -1], x[0].shape))
    constant = ImageDataGenerator(fill_mode="constant", cval=-2.0).apply_transform(x, far_down)
    assert (constant == -2.0).all()
    one_turn = np.array([[[1.0, 0.0, 6.0 * 10**8], [0.0, 1.0, -5.0 * 10**8]]])  # whole periods
    assert np.array_equal(ImageDataGenerator(fill_mode="wrap").apply_transform(x, one_turn), x)
    two_heights = np.array([[[1.0, 0.0, 12.0 * 10**7], [0.0, 1.0, 0.0]]])
    assert np.array_equal(ImageDataGenerator(fill_mode="reflect").apply_transform(x, two_heights), x)


def test_apply_transform_checks_its_matrices_and_flips():
    x = _images(n=3, h=4, w=4)
    gen = ImageDataGenerator()
    with pytest.raises(ValueError, match=r"matrices must have shape \(3, 2, 3\) for 3 images, got \(2, 2, 3\)"):
        gen.apply_transform(x, np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match="matrices must hold finite entries within"):
        gen.apply_transform(x, np.full((3, 2, 3), np.nan))
    with pytest.raises(ValueError, match=r"flip_h must be a boolean array of shape \(3,\), got int64"):
        gen.apply_transform(x, flip_h=np.array([0, 1, 2]))
    flipped = gen.apply_transform(x, flip_v=np.array([False, True, False]))
    assert np.array_equal(flipped[1], x[1, ::-1]) and np.array_equal(flipped[[0, 2]], x[[0, 2]])


def test_rescale_follows_keras_and_must_fit_the_images():
    x = _images(n=2)
    assert np.array_equal(ImageDataGenerator(rescale=0).random_transform_batch(x), x)  # Keras: 0 is off
    with pytest.raises(ValueError, match=r"rescale=1e\+300 overflows the float32 images"):
        ImageDataGenerator(rescale=1e300).random_transform_batch(x)
    assert np.isfinite(ImageDataGenerator(rescale=1e300).random_transform_batch(x.astype(np.float64) * 1e-10)).all()
    with pytest.raises(ValueError, match=r"cval=1e\+300 overflows the float32 images"):
        ImageDataGenerator(rotation_range=10, fill_mode="constant", cval=1e300).random_transform_batch(x)


def test_batches_and_validation_split_take_flags_and_numbers():
    x, y = np.arange(10.0)[:, None], np.arange(10)
    with pytest.raises(TypeError, match="shuffle must be True or False, got str"):
        next(data.batches(x, y, shuffle="no"))
    with pytest.raises(TypeError, match="drop_last must be True or False, got int"):
        next(data.batches(x, y, drop_last=1))
    with pytest.raises(TypeError, match="seed must be None"):
        next(data.batches(x, y, seed=[1, 2]))
    numpy_args = dict(batch_size=np.int64(4), seed=np.int64(0), drop_last=np.bool_(True))
    assert [len(b) for b, _ in data.batches(x, y, **numpy_args)] == [4, 4]
    with pytest.raises(TypeError, match="validation_split must be a number, got str"):
        data.validation_split(x, y, "0.5")
    with pytest.raises(TypeError, match="validation_split must be a number, got bool"):
        data.validation_split(x, y, True)
    (xt, _), (xv, _) = data.validation_split(x, y, np.float32(0.25))
    assert len(xt) == 7 and len(xv) == 3


def test_an_empty_batch_transforms_to_an_empty_batch():
    empty = np.zeros((0, 8, 8, 3), np.float32)
    out = ImageDataGenerator(rotation_range=10, horizontal_flip=True, seed=0).random_transform_batch(empty)
    assert out.shape == empty.shape and out.dtype == empty.dtype
