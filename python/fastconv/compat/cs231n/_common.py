"""What every compat function shares: the course's loose array inputs turned into one float dtype,
caches that keep their own copy of the inputs, and cache checks that name the mix-up."""
from __future__ import annotations

import numpy as np

from ..._arrays import array_module

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
            raise TypeError(f"{name} must be real-valued (float32/float64), got dtype {a.dtype}"
                            + ("; complex values would be truncated" if a.dtype.kind == "c" else ""))
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


def check_cache(cache, size, producer, arrays=0):
    """The cache a forward function returned (its first `arrays` items arrays), checked well
    enough to name the mistake."""
    if (not isinstance(cache, tuple) or len(cache) != size
            or not all(hasattr(a, "dtype") and hasattr(a, "shape") for a in cache[:arrays])):
        raise TypeError(f"cache must be the cache returned by {producer}, got {type(cache).__name__}"
                        + (f" of {len(cache)} items" if isinstance(cache, tuple) else ""))
    return cache


class NoColumns:
    """Stands where the course's conv caches keep the im2col columns (fastconv's kernels need
    none), so the course's own backward function, handed a fastconv cache, stops here with a
    message that says what to do instead."""

    def _refuse(self, *_):
        raise TypeError("this cache came from fastconv.compat.cs231n, which keeps no im2col columns; pass it to "
                        "fastconv's backward function of the same layer (conv_backward_fast, conv_relu_backward, "
                        f"conv_relu_pool_backward), {INSTALL_HINT}")

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        self._refuse()

    __array__ = __len__ = __getitem__ = __iter__ = _refuse

    def __repr__(self):
        return "<no im2col columns: a fastconv.compat.cs231n conv cache>"
