"""Keras' ImageDataGenerator on NumPy batches: random rotation, shifts, shear, zoom and flips,
vectorized over the batch (one bilinear resample of the whole batch, no Python loop per image).

    gen = fc.data.ImageDataGenerator(rotation_range=10, width_shift_range=0.1,
                                     height_shift_range=0.1, zoom_range=0.1, horizontal_flip=True)
    model.fit(gen.flow(x_train, y_train, batch_size=64), epochs=10)

The geometry is keras-preprocessing's apply_affine_transform with rows as the first axis: the
output pixel (r, c) samples the input at A (r, c) about the image centre, A = rotation @ shift @
shear @ zoom, angles in degrees, height_shift moving rows and width_shift columns (fractions of
the size, whole pixels for an int, or one of a list's values, as Keras draws them), zoom factors
drawn in [1 - z, 1 + z] per axis; bilinear interpolation; flips after the transform; rescale
last. (Keras 2.4+ swaps the two axes before the transform, which turns the shear into a slant
along the other axis: the distribution of augmented images is the same up to that mirror.) fill_mode for samples outside
the image: "nearest" (edge pixel), "constant" (cval), "reflect" (d c b a | a b c d | d c b a),
"wrap" (a b c d | a b c d | a b c d).
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterator, Sequence
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..ops._checks import flag
from ..ops._shapes import pair, positive_int

# A shift range after _shift_range: a fraction or pixel count, whole pixels, or values to pick from
ShiftRange: TypeAlias = float | int | tuple[float, ...]

__all__ = ["ImageDataGenerator", "ArrayIterator", "DirectoryIterator"]

_FILL_MODES = ("nearest", "constant", "reflect", "wrap")
_MAX_DEGREES = 360.0  # a range of a full turn each way already reaches every angle
_MAX_PIXELS = 1e6  # shifts and zoom factors beyond this only show the fill
_MAX_MATRIX_ENTRY = 1e30  # times an image size, far from float64's overflow
_IMAGE_KINDS = "biuf"  # bool, int, uint and float images; complex or object ones have no pixels to blend


def real_number(value: object, name: str) -> float:
    """value as a float: a Python or NumPy real number, finite, never a bool."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


def _number_in(value: object, name: str, low: float, high: float, allowed: str) -> float:
    v = real_number(value, name)
    if not low <= v <= high:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return v


def _zoom_range(value: object) -> tuple[float, float]:
    """Keras' zoom_range: a number z -> factors in [1 - z, 1 + z], or a [low, high] pair."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f"zoom_range must be a number or a [low, high] pair, got {value!r}")
        low, high = (real_number(v, "zoom_range") for v in value)
        if not 0 < low <= high <= _MAX_PIXELS:
            raise ValueError(f"zoom_range [low, high] must satisfy 0 < low <= high <= {_MAX_PIXELS:g}, got {value!r}")
        return low, high
    z = real_number(value, "zoom_range")
    if not 0 <= z < 1:
        raise ValueError(
            f"zoom_range must be a number in [0, 1) (zoom factors in [1 - z, 1 + z] stay "
            f"positive) or a [low, high] pair, got {value!r}"
        )
    return 1.0 - z, 1.0 + z


def _shift_range(value: object, name: str) -> ShiftRange:
    """A shift range as Keras takes it: a float, an int (whole pixels) or a list of values."""
    allowed = f"in [-{_MAX_PIXELS:g}, {_MAX_PIXELS:g}]"
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"{name} must be a number or a non-empty list of numbers, got {value!r}")
        return tuple(_number_in(v, name, -_MAX_PIXELS, _MAX_PIXELS, f"a list of numbers {allowed}") for v in value)
    v = _number_in(value, name, 0.0, _MAX_PIXELS, f"a number in [0, {_MAX_PIXELS:g}] or a list of numbers")
    is_int = isinstance(value, (numbers.Integral, np.integer))
    return int(v) if is_int and v >= 1 else v


def _choice(value: object, name: str, options: tuple[Any, ...]) -> Any:
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def rng_from_seed(seed: object, name: str = "seed") -> np.random.Generator:
    """A random generator from None, a non-negative int or a np.random.Generator."""
    if seed is None or isinstance(seed, np.random.Generator):
        return np.random.default_rng(seed)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be None, an int >= 0 or a np.random.Generator, got {seed!r}")
    if seed < 0:
        raise ValueError(f"{name} must be >= 0, got {seed!r}")
    return np.random.default_rng(int(seed))


def _image_batch(x: ArrayLike) -> NDArray[Any]:
    x = np.asarray(x)
    if x.dtype.kind not in _IMAGE_KINDS:
        raise TypeError(f"x must hold real pixel values (bool, int or float), got dtype {x.dtype}")
    if x.ndim != 4:
        raise ValueError(f"x must be a batch of images (N, H, W, C) or (N, C, H, W), got shape {x.shape}")
    return x


def _matrices(matrices: ArrayLike, n: int) -> NDArray[np.float64]:
    m = np.asarray(matrices, np.float64)
    if m.shape != (n, 2, 3):
        raise ValueError(f"matrices must have shape ({n}, 2, 3) for {n} images, got {m.shape}")
    bad = m[~(np.abs(m) <= _MAX_MATRIX_ENTRY)]
    if bad.size:
        raise ValueError(f"matrices must hold finite entries within +-{_MAX_MATRIX_ENTRY:g}, got {bad[0]!r}")
    return m


def _flips(flags: ArrayLike | None, n: int, name: str) -> NDArray[np.bool_] | None:
    """A boolean (N,) flip mask, or None when no image flips."""
    if flags is None:
        return None
    flags = np.asarray(flags)
    if flags.dtype != np.bool_ or flags.shape != (n,):
        raise ValueError(f"{name} must be a boolean array of shape ({n},), got {flags.dtype} {flags.shape}")
    return flags if flags.any() else None


def _fits(value: float, dtype: np.dtype[Any]) -> bool:
    """Whether the number value stays finite in the float dtype."""
    with np.errstate(over="ignore"):
        return bool(np.isfinite(dtype.type(value)))


def _indices(i: NDArray[np.integer[Any]], n: int, mode: str) -> tuple[NDArray[Any], NDArray[np.bool_] | None]:
    """Integer sample positions i (any ints) mapped into [0, n) by the fill mode; for "constant",
    also the mask of positions inside."""
    if mode == "nearest":
        return np.minimum(np.maximum(i, 0, out=i), n - 1, out=i), None
    if mode == "wrap":
        return np.mod(i, n), None
    if mode == "reflect":
        j = np.mod(i, 2 * n)
        return np.where(j >= n, 2 * n - 1 - j, j), None
    inside = (i >= 0) & (i < n)
    return np.minimum(np.maximum(i, 0), n - 1), inside


class ImageDataGenerator:
    """Random augmentation of image batches with Keras' arguments (data_format channels_last:
    (N, H, W, C); channels_first: (N, C, H, W))."""

    def __init__(
        self,
        rotation_range: float = 0.0,
        width_shift_range: float | Sequence[float] = 0.0,
        height_shift_range: float | Sequence[float] = 0.0,
        shear_range: float = 0.0,
        zoom_range: float | Sequence[float] = 0.0,
        horizontal_flip: bool = False,
        vertical_flip: bool = False,
        fill_mode: str = "nearest",
        cval: float = 0.0,
        rescale: float | None = None,
        data_format: str = "channels_last",
        seed: int | np.random.Generator | None = None,
    ) -> None:
        self.rotation_range = _number_in(
            rotation_range, "rotation_range", 0.0, _MAX_DEGREES, f"a number of degrees in [0, {_MAX_DEGREES:g}]"
        )
        self.width_shift_range = _shift_range(width_shift_range, "width_shift_range")
        self.height_shift_range = _shift_range(height_shift_range, "height_shift_range")
        self.shear_range = _number_in(
            shear_range, "shear_range", 0.0, _MAX_DEGREES, f"a number of degrees in [0, {_MAX_DEGREES:g}]"
        )
        self.zoom = _zoom_range(zoom_range)
        self.horizontal_flip = flag("horizontal_flip", horizontal_flip)
        self.vertical_flip = flag("vertical_flip", vertical_flip)
        self.fill_mode = _choice(fill_mode, "fill_mode", _FILL_MODES)
        self.cval = real_number(cval, "cval")
        # Keras: None or 0 means no rescaling
        self.rescale = None if rescale is None or real_number(rescale, "rescale") == 0 else float(rescale)
        self.data_format = _choice(data_format, "data_format", ("channels_last", "channels_first"))
        self.rng = rng_from_seed(seed)

    # ------------------------------------------------------------------ parameters
    def _geometry_active(self) -> bool:
        return bool(
            self.rotation_range
            or np.any(self.width_shift_range)
            or np.any(self.height_shift_range)
            or self.shear_range
            or self.zoom != (1.0, 1.0)
        )

    def random_matrices(self, n: int, h: int, w: int) -> NDArray[np.float64]:
        """(n, 2, 3) matrices mapping output (row, col, 1) to input positions, drawn as Keras does."""
        u = self.rng.uniform
        theta = np.deg2rad(u(-self.rotation_range, self.rotation_range, n)) if self.rotation_range else np.zeros(n)
        tx = self._shifts(self.height_shift_range, n, h)
        ty = self._shifts(self.width_shift_range, n, w)
        shear = np.deg2rad(u(-self.shear_range, self.shear_range, n)) if self.shear_range else np.zeros(n)
        if self.zoom != (1.0, 1.0):
            zx, zy = u(self.zoom[0], self.zoom[1], n), u(self.zoom[0], self.zoom[1], n)
        else:
            zx = zy = np.ones(n)
        return _keras_matrices(theta, tx, ty, shear, zx, zy, h, w)

    def _shifts(self, spec: ShiftRange, n: int, size: int) -> NDArray[np.float64]:
        """Keras' draw: an int k -> whole pixels in [-(k - 1), k - 1]; a list -> one of its values
        with a random sign; a float r -> uniform in [-r, r]; fractions (< 1) scaled by the size."""
        if isinstance(spec, tuple):
            t = self.rng.choice(np.asarray(spec, np.float64), n) * self.rng.choice([-1.0, 1.0], n)
        elif isinstance(spec, int):
            t = self.rng.integers(0, spec, n).astype(np.float64) * self.rng.choice([-1.0, 1.0], n)
        elif spec:
            t = self.rng.uniform(-spec, spec, n)
        else:
            return np.zeros(n)
        return t * size if np.max(np.abs(spec)) < 1 else t

    # ------------------------------------------------------------------ transforms
    def apply_transform(
        self,
        x: ArrayLike,
        matrices: ArrayLike | None = None,
        flip_h: ArrayLike | None = None,
        flip_v: ArrayLike | None = None,
    ) -> NDArray[Any]:
        """x transformed by per-image matrices (from random_matrices) and flips (boolean (N,)),
        then rescaled. None: no geometric transform / no flips."""
        x = _image_batch(x)
        n = x.shape[0]
        matrices = None if matrices is None else _matrices(matrices, n)
        flip_h, flip_v = _flips(flip_h, n, "flip_h"), _flips(flip_v, n, "flip_v")
        nhwc = x if self.data_format == "channels_last" else x.transpose(0, 2, 3, 1)
        if nhwc.dtype.kind != "f":  # integer images come out as float32, as in Keras
            nhwc = nhwc.astype(np.float32)
        if self.rescale is not None and not _fits(self.rescale, nhwc.dtype):
            raise ValueError(f"rescale={self.rescale!r} overflows the {nhwc.dtype} images")
        out = nhwc if matrices is None else self._resample(nhwc, matrices)
        if out is nhwc and (flip_h is not None or flip_v is not None):
            out = out.copy()  # the flips below write into out
        if flip_h is not None:
            out[flip_h] = out[flip_h][:, :, ::-1]
        if flip_v is not None:
            out[flip_v] = out[flip_v][:, ::-1]
        if self.rescale is not None:
            out = out * out.dtype.type(self.rescale)
        out = np.ascontiguousarray(out if self.data_format == "channels_last" else out.transpose(0, 3, 1, 2))
        return out if out is not x else out.copy()

    def random_transform_batch(self, x: ArrayLike) -> NDArray[Any]:
        """A randomly augmented copy of the batch x (float images keep their dtype)."""
        x = _image_batch(x)
        n = x.shape[0]
        if n == 0:
            return x.copy()
        h, w = x.shape[1:3] if self.data_format == "channels_last" else x.shape[2:4]
        matrices = self.random_matrices(n, h, w) if self._geometry_active() else None
        flip_h = self.rng.random(n) < 0.5 if self.horizontal_flip else None
        flip_v = self.rng.random(n) < 0.5 if self.vertical_flip else None
        return self.apply_transform(x, matrices, flip_h, flip_v)

    def _resample(self, x: NDArray[Any], matrices: NDArray[np.float64]) -> NDArray[Any]:
        """Bilinear samples of x (N, H, W, C) at A_n (r, c, 1) for every output pixel: the four
        neighbours gathered by flat index from the (N*H*W, C) view, weights in x's precision."""
        n, h, w, c = x.shape
        dt = x.dtype
        if self.fill_mode == "constant" and not _fits(self.cval, dt):
            raise ValueError(f"cval={self.cval!r} overflows the {dt} images")
        # positions in float64: a float16 one overflows past 65504, a float32 one far outside the
        # image loses the fraction that "wrap" and "reflect" keep
        rows = np.arange(h, dtype=np.float64)[:, None]
        cols = np.arange(w, dtype=np.float64)[None, :]
        m = matrices[:, :, :, None, None]
        # the (N, H, 1) and (N, 1, W) parts summed once at full size (N, H, W)
        src_r = self._in_int_range((m[:, 0, 0] * rows + m[:, 0, 2]) + m[:, 0, 1] * cols, h)
        src_c = self._in_int_range((m[:, 1, 0] * rows + m[:, 1, 2]) + m[:, 1, 1] * cols, w)
        r0, c0 = np.floor(src_r), np.floor(src_c)
        fr, fc = (src_r - r0).astype(dt), (src_c - c0).astype(dt)
        r0, c0 = r0.astype(np.int32), c0.astype(np.int32)
        base = (np.arange(n, dtype=np.int64) * h)[:, None, None]
        flat = x.reshape(n * h * w, c)
        col_taps = [(_indices(c0 + dc, w, self.fill_mode), wc) for dc, wc in ((0, 1 - fc), (1, fc))]
        out = None
        for dr, wr in ((0, 1 - fr), (1, fr)):
            ri, rin = _indices(r0 + dr, h, self.fill_mode)
            row_base = (base + ri) * w
            for (ci, cin), wc in col_taps:
                weight = wr * wc
                v = np.take(flat, (row_base + ci).reshape(-1), axis=0).reshape(n, h, w, c)
                if rin is not None and cin is not None:  # "constant": both masks, else neither
                    v = np.where((rin & cin)[..., None], v, dt.type(self.cval))
                term = weight[..., None] * v
                out = term if out is None else out + term
        assert out is not None  # the four taps above
        return out

    def _in_int_range(self, src: NDArray[np.float64], n: int) -> NDArray[np.float64]:
        """Sample positions src, where any lies past +-2**30, moved into [-2, 2n] with the same
        four neighbours after the fill mode (so the int32 casts cannot overflow): "wrap" and
        "reflect" repeat every n / 2n pixels; past one pixel outside, "nearest" and "constant"
        see only the edge / cval."""
        if src.min() > -(2.0**30) and src.max() < 2.0**30:
            return src
        if self.fill_mode == "wrap":
            return np.mod(src, n, out=src)
        if self.fill_mode == "reflect":
            return np.mod(src, 2 * n, out=src)
        return np.clip(src, -2, n + 1, out=src)

    def flow(
        self,
        x: ArrayLike,
        y: ArrayLike | None = None,
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int | np.random.Generator | None = None,
    ) -> ArrayIterator:
        """Batches of augmented x (with y) for fit or a hand loop: iterating gives one epoch (len()
        batches, a new order each time when shuffle); next() goes on forever, like Keras'."""
        return ArrayIterator(self, x, y, batch_size, shuffle, seed)

    def flow_from_directory(
        self,
        directory: str | os.PathLike[str],
        target_size: int | tuple[int, int] = (256, 256),
        color_mode: str = "rgb",
        class_mode: str | None = "categorical",
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int | np.random.Generator | None = None,
    ) -> DirectoryIterator:
        """Batches from a class-per-folder image tree (Keras' arguments and labels: one-hot for
        "categorical", 0/1 floats for "binary", ints for "sparse", none for None); images are
        resized to target_size, augmented, then rescaled. Needs Pillow."""
        return DirectoryIterator(self, directory, target_size, color_mode, class_mode, batch_size, shuffle, seed)


def _keras_matrices(
    theta: NDArray[np.float64],
    tx: NDArray[np.float64],
    ty: NDArray[np.float64],
    shear: NDArray[np.float64],
    zx: NDArray[np.float64],
    zy: NDArray[np.float64],
    h: int,
    w: int,
) -> NDArray[np.float64]:
    """Keras' transform_matrix (rotation @ shift @ shear @ zoom) about the centre, per image."""
    n = theta.shape[0]
    one, zero = np.ones(n), np.zeros(n)

    def stack(rows: list[list[NDArray[np.float64]]]) -> NDArray[np.float64]:
        return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)  # (n, 3, 3)

    rot = stack([[np.cos(theta), -np.sin(theta), zero], [np.sin(theta), np.cos(theta), zero], [zero, zero, one]])
    shift = stack([[one, zero, tx], [zero, one, ty], [zero, zero, one]])
    sh = stack([[one, -np.sin(shear), zero], [zero, np.cos(shear), zero], [zero, zero, one]])
    zoom = stack([[zx, zero, zero], [zero, zy, zero], [zero, zero, one]])
    t = rot @ shift @ sh @ zoom
    ox, oy = h / 2 - 0.5, w / 2 - 0.5
    offset = np.array([[1, 0, ox], [0, 1, oy], [0, 0, 1]], np.float64)
    reset = np.array([[1, 0, -ox], [0, 1, -oy], [0, 0, 1]], np.float64)
    return (offset @ t @ reset)[:, :2, :]


class _BatchIterator:
    """Augmented batches over n samples: iterating gives one epoch (len() batches, a new order
    each time when shuffle); next() goes on forever, like Keras' iterators."""

    def __init__(
        self,
        generator: ImageDataGenerator,
        n: int,
        batch_size: int,
        shuffle: bool,
        seed: int | np.random.Generator | None,
    ) -> None:
        self.generator, self.n = generator, n
        self.batch_size, self.shuffle = positive_int(batch_size, "batch_size"), flag("shuffle", shuffle)
        self.rng = rng_from_seed(seed)
        self._stream: Iterator[Any] | None = None

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        order = self.rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        for i in range(0, self.n, self.batch_size):
            yield self._batch(order[i : i + self.batch_size])

    def __next__(self) -> Any:
        while True:
            if self._stream is None:
                self._stream = iter(self)
            try:
                return next(self._stream)
            except StopIteration:
                self._stream = None

    def _batch(self, idx: NDArray[np.integer[Any]]) -> Any:
        raise NotImplementedError


class ArrayIterator(_BatchIterator):
    """Augmented batches of (x, y) from an ImageDataGenerator (see ImageDataGenerator.flow)."""

    def __init__(
        self,
        generator: ImageDataGenerator,
        x: ArrayLike,
        y: ArrayLike | None,
        batch_size: int,
        shuffle: bool,
        seed: int | np.random.Generator | None,
    ) -> None:
        x = _image_batch(x)
        if len(x) == 0:  # next() would look for a first batch forever
            raise ValueError(f"flow: x must hold at least one image, got shape {x.shape}")
        if y is not None:
            if np.ndim(y) == 0:
                raise TypeError(
                    f"flow: y must be None or an array with one row per image of x "
                    f"({len(x)} rows), got {type(y).__name__} {y!r}"
                )
            y = np.asarray(y)
            if len(y) != len(x):
                raise ValueError(f"flow: x has {len(x)} samples but y has {len(y)}")
        super().__init__(generator, len(x), batch_size, shuffle, seed)
        self.x, self.y = x, y

    def _batch(self, idx: NDArray[np.integer[Any]]) -> Any:
        xb = self.generator.random_transform_batch(self.x[idx])
        return xb if self.y is None else (xb, self.y[idx])


class DirectoryIterator(_BatchIterator):
    """Augmented batches read from a class-per-folder image tree (ImageDataGenerator.
    flow_from_directory): each batch decodes its files, so the set need not fit in memory.
    Attributes as Keras': filenames, classes, class_indices, samples."""

    _CLASS_MODES = ("categorical", "binary", "sparse", None)

    def __init__(
        self,
        generator: ImageDataGenerator,
        directory: str | os.PathLike[str],
        target_size: int | tuple[int, int],
        color_mode: str,
        class_mode: str | None,
        batch_size: int,
        shuffle: bool,
        seed: int | np.random.Generator | None,
    ) -> None:
        from . import datasets  # noqa: PLC0415 - keeps Pillow and the loaders out of the import

        if class_mode not in self._CLASS_MODES:
            raise ValueError(f"class_mode must be one of {self._CLASS_MODES}, got {class_mode!r}")
        self.target_size = pair(target_size, "target_size")
        self.color_mode = _choice(color_mode, "color_mode", tuple(datasets.COLOR_MODES))
        self.class_mode = class_mode
        self.filenames, self.classes, class_names = datasets.list_image_folder(directory)
        if class_mode == "binary" and len(class_names) != 2:
            raise ValueError(f"class_mode='binary' needs exactly 2 class folders, found {class_names}")
        super().__init__(generator, len(self.filenames), batch_size, shuffle, seed)
        self.class_indices = {name: i for i, name in enumerate(class_names)}
        self.samples = len(self.filenames)
        self._load = datasets.load_images

    def _batch(self, idx: NDArray[np.integer[Any]]) -> Any:
        images = self._load([self.filenames[i] for i in idx], self.target_size, self.color_mode)
        xb = self.generator.random_transform_batch(images)
        labels = self.classes[idx]
        if self.class_mode is None:
            return xb
        if self.class_mode == "categorical":
            return xb, np.eye(len(self.class_indices), dtype=np.float32)[labels]
        if self.class_mode == "binary":
            return xb, labels.astype(np.float32)
        return xb, labels
