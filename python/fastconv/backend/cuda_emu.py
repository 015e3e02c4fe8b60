"""The CUDA backend on the CPU: fastconv's CUDA kernels compiled as host C++ (fastconv._cuda_emu,
see csrc/cuda/emu/cuda_emu.h) run on NumPy arrays through the same KernelRunner as the GPU.

For tests and debugging, not speed (every GPU thread is a fiber). backend() is the object, with
the interface of base.py plus `using` to pick kernel versions:

    from fastconv.backend import cuda_emu as emu
    with emu.backend().using(version=2):
        y = emu.backend().conv2d_forward(spec, x, w, b)
"""

from __future__ import annotations

import numpy as np

from .. import _cuda_emu
from .runner import KernelRunner


class EmulatedCuda(KernelRunner):
    def contiguous(self, a):
        """A C-contiguous array. In the sanitized build (.ci/run's sanitizer job) always a fresh
        copy that ends exactly where its allocation ends, so AddressSanitizer reports a read past
        it instead of letting it see a neighbour's bytes; the copy keeps the address modulo 16, so
        the kernels' alignment rules choose the same path."""
        if not _cuda_emu.sanitized:
            return np.ascontiguousarray(a)
        a = np.asarray(a)
        shift = a.ctypes.data % 16
        copy = np.empty(a.nbytes + shift, np.uint8)[shift:].view(a.dtype).reshape(a.shape)
        copy[...] = a
        return copy


_EMULATION = EmulatedCuda(
    np,
    _cuda_emu,
    ptr=lambda a: a.ctypes.data,
    stream=lambda: 0,  # emulated launches run synchronously
    to_host=np.asarray,
)


def backend() -> EmulatedCuda:
    return _EMULATION
