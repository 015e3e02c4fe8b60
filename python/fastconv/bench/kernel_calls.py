"""Which compiled kernels a training step calls, and each call timed alone (the training-loop
rows' kernel share, loops.py)."""

from __future__ import annotations

import collections
import functools

from .. import _cpu
from . import harness

KERNEL_PREFIXES = (
    "conv",
    "maxpool",
    "avgpool",
    "batchnorm",
    "relu",
    "activation",
    "linear",
    "gemm",
    "dense",
    "matmul",
    "sigmoid",
    "softmax",
    "dropout",
)


class KernelRecorder:
    """While active, records every call of a compiled kernel (the fastconv._cpu functions named
    KERNEL_PREFIXES*) and of the `extra` Python functions ((module, names, group) triples) as
    (group, name, function, args, kwargs) in `calls`."""

    def __init__(self, extra=()):
        self.targets = [
            (_cpu, n, "fastconv") for n in dir(_cpu) if n.startswith(KERNEL_PREFIXES) and callable(getattr(_cpu, n))
        ]
        self.targets += [(mod, n, group) for mod, names, group in extra for n in names]
        self.calls, self._saved = [], []

    def _wrap(self, fn, name, group):
        def recorded(*args, **kwargs):
            self.calls.append((group, name, fn, args, kwargs))
            return fn(*args, **kwargs)

        return recorded

    def __enter__(self):
        for mod, name, group in self.targets:
            fn = getattr(mod, name)
            self._saved.append((mod, name, fn))
            setattr(mod, name, self._wrap(fn, name, group))
        return self

    def __exit__(self, *exc):
        for mod, name, fn in reversed(self._saved):
            setattr(mod, name, fn)
        self._saved = []


def kernel_times(step, repeats, extra=()):
    """Run `step` once recording its kernel calls, then time each call alone (median of
    `repeats`; the recording run was each call's warm-up, with the same arguments and outputs).
    -> (calls [(group, name, seconds)], {name: count}; names outside fastconv as "group.name")."""
    with KernelRecorder(extra) as rec:
        step()
    timed = []
    for group, name, fn, args, kwargs in rec.calls:
        call = {name: functools.partial(fn, *args, **kwargs)}
        timed.append((group, name, harness.time_interleaved(call, repeats, warmup=0)[name]))
    return timed, dict(
        collections.Counter(name if group == "fastconv" else f"{group}.{name}" for group, name, _ in timed)
    )
