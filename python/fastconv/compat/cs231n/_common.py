"""What every compat function shares: the course's loose array inputs turned into one float dtype,
caches that keep their own copy of the inputs, and cache checks that name the mix-up."""

from __future__ import annotations

import numpy as np

from ...backend.arrays import array_module

INSTALL_HINT = "or call fastconv.compat.cs231n.install() so the course's modules all use fastconv"


def common_float(**named):
    """The named arrays (array-likes such as lists are accepted, like the course's NumPy code) in
    their common float dtype: float32 only when every float input is float32."""
    arrays = []
    for name, a in named.items():
        if a is None:
            raise TypeError(f"{name} must be an array, got None")
        if not hasattr(a, "dtype") or not hasattr(a, "shape"):
            try:
                a = np.asarray(a)
            except (TypeError, ValueError) as e:
                raise TypeError(f"{name} must be an array or array-like of numbers: {e}") from None
        if a.dtype.kind not in "fiub":
            raise TypeError(
                f"{name} must be real-valued (float32/float64), got dtype {a.dtype}"
                + ("; complex values would be truncated" if a.dtype.kind == "c" else "")
            )
        arrays.append(a)
    xp = array_module(arrays[0])
    dtype = np.result_type(*[a.dtype for a in arrays])
    if dtype not in (np.float32, np.float64):
        dtype = np.dtype(np.float64)
    return [xp.asarray(a, dtype=dtype) for a in arrays]


def kept(converted, original):
    """`converted` as an array the caller cannot reach: a cache must not change when the caller
    edits its input in place between forward and backward (x += ..., an augmentation buffer)."""
    xp = array_module(converted)
    if converted is original or (hasattr(original, "shape") and xp.may_share_memory(converted, original)):
        return converted.copy()
    return converted


def kept_inputs(**named):
    """common_float(**named) with every array private to the cache (see kept)."""
    return [kept(a, named[n]) for n, a in zip(named, common_float(**named))]


def grad_dtype(dout, *cached):
    """dout as an array, and the dtype of the gradients: the common type of dout and the cached
    arrays (or dtypes), as NumPy would give (a float64 dout on a float32 layer gives float64)."""
    (dout,) = common_float(dout=dout)
    return dout, np.result_type(dout.dtype, *[getattr(a, "dtype", a) for a in cached])


def as_dtype(dtype, *arrays):
    xp = array_module(arrays[0])
    return [xp.asarray(a, dtype=dtype) for a in arrays]


def param_value(value):
    """A conv_param / pool_param / bn_param value with a 0-d array unwrapped to its NumPy scalar:
    the course's NumPy arithmetic takes {'pad': np.array(1)}, fastconv's checks take np.int64(1)."""
    return value[()] if isinstance(value, np.ndarray) and value.ndim == 0 else value


class FastconvCache(tuple):
    """The cache of a layer whose items differ from the course's (convolution, max pooling, batch
    norm). A course backward function handed one stops at its `a, b, ... = cache` (whatever number
    of items it unpacks) or its cache[0] / cache['x'] with a message naming the mix-up; cache[:]
    gives the items as a plain tuple, which is how check_cache reads them. forward and backward
    name the functions the cache belongs to."""

    def __new__(cls, items, forward="", backward=""):
        cache = super().__new__(cls, items)
        cache.forward, cache.backward = forward, backward
        return cache

    def _refuse(self):
        raise TypeError(
            f"this cache came from fastconv.compat.cs231n.{self.forward}, which the course's backward "
            f"functions cannot read; pass it to fastconv's {self.backward}, {INSTALL_HINT}"
        )

    def __iter__(self):
        self._refuse()

    def __getitem__(self, key):
        if not isinstance(key, slice):
            self._refuse()
        return super().__getitem__(key)


def check_cache(cache, size, producer, arrays=0):
    """The items of the cache a forward function returned (its first `arrays` items arrays),
    checked well enough to name the mistake; a FastconvCache must come from `producer`."""
    if isinstance(cache, FastconvCache) and cache.forward != producer:
        raise TypeError(f"cache came from {cache.forward}; pass it to {cache.backward}")
    if (
        not isinstance(cache, tuple)
        or len(cache) != size
        or not all(hasattr(a, "dtype") and hasattr(a, "shape") for a in cache[:arrays])
    ):
        raise TypeError(
            f"cache must be the cache returned by {producer}, got {type(cache).__name__}"
            + (f" of {len(cache)} items" if isinstance(cache, tuple) else "")
        )
    return cache[:]  # a plain tuple, which unpacks
