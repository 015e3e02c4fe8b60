"""The row type of the kernel-family table and the helpers every family module uses."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

from fastconv.ops._shapes import pair, window_output

DTYPES = (np.float32, np.float64)
LAYOUTS = ("NCHW", "NHWC")


@dataclass(frozen=True)
class Call:
    """One call of an op: fastconv.<op>(*args, **kwargs) and reference.<op>(*args, **kwargs)."""

    args: tuple
    kwargs: dict = field(default_factory=dict)

    def map_arrays(self, fn):
        """The same call with fn applied to every NumPy array argument."""

        def one(a):
            return fn(a) if isinstance(a, np.ndarray) else a

        return Call(tuple(one(a) for a in self.args), {k: one(v) for k, v in self.kwargs.items()})


@dataclass(frozen=True)
class Grad:
    """One finite-difference check in float64: for each input it names, backward(g, **inputs)
    must equal the derivative of sum(forward(**inputs) * g) with respect to that input."""

    inputs: dict
    forward: Callable
    backward: Callable


@dataclass(frozen=True)
class Bad:
    """A call with one mistake: it must raise `error` with a message matching `match`."""

    id: str
    call: Callable[[], object]
    error: type | tuple
    match: str


@dataclass(frozen=True)
class Row:
    """One public op of a kernel family, as every shared test file sees it.

    draw(config, rng, dtype, make) -> Call builds valid inputs from a config dict, drawing every
    array with make(rng, shape, dtype) (helpers.randn, or exact_data for the exact checks)."""

    op: str  # fastconv.<op> against reference.<op>
    draw: Callable
    cases: dict  # id -> config: the edge grid (odd sizes, batch 1, channels around the SIMD widths)
    configs: st.SearchStrategy | None = None  # hypothesis: random valid configs of the same form
    rtol: dict | None = None  # dtype -> tolerance relative to max|expected| (None: helpers.RTOL)
    exact: bool = False  # equal to the reference on any data (max, relu: no arithmetic)
    exact_data: Callable | None = None  # a data maker on which every result is exact
    noncontiguous: tuple = ()  # case-id prefixes also run with non-contiguous arrays: same bits as contiguous
    grad: Callable | None = None  # (config, rng) -> Grad
    grad_cases: dict = field(default_factory=dict)  # id -> config for grad
    grad_rtol: float = 1e-8  # relative to max|numerical gradient| (measured: 3e-9 at worst)
    grad_eps: float = 1e-6
    valid: Callable | None = None  # the valid call the bad ones alter: it must work
    bad: tuple = ()
    name: str = ""  # test id: the op, or "op[variant]" when one op needs two rows

    def __post_init__(self):
        if not self.name:
            object.__setattr__(self, "name", self.op)

    def noncontiguous_cases(self):
        return [c for c in self.cases if any(c == p or c.startswith(p + "-") for p in self.noncontiguous)]

    def tolerance(self, dtype):
        return None if self.rtol is None else self.rtol[np.dtype(dtype)]


def tolerances(f32, f64):
    return {np.dtype(np.float32): f32, np.dtype(np.float64): f64}


def grid(base, **axes):
    """Every base config (id -> dict) combined with every value of each axis: {id: config}.
    A value of None leaves the key out of the config (the op's default)."""
    out = {}
    names = list(axes)
    for (base_id, cfg), *values in itertools.product(base.items(), *(axes[n] for n in names)):
        parts = [base_id] + [f"{n}={v}" for n, v in zip(names, values)]
        out["-".join(parts)] = {**cfg, **{n: v for n, v in zip(names, values) if v is not None}}
    return out


def nchw(layout, N, C, H, W):
    return (N, C, H, W) if layout == "NCHW" else (N, H, W, C)


def output_hw(cfg, kernel, stride, dilation=1):
    (P, Q), pads = window_output(
        (cfg["H"], cfg["W"]), pair(kernel, "kernel"), pair(stride, "stride"), cfg["padding"], pair(dilation, "d")
    )
    return P, Q, pads


# ----------------------------------------------------------------------------- hypothesis pieces

small = st.integers(1, 3)
hw_pair = st.one_of(small, st.tuples(small, small))
padding_forms = st.one_of(
    st.sampled_from(["same", "valid"]),
    st.integers(0, 2),
    st.tuples(st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)), st.tuples(st.integers(0, 2), st.integers(0, 2))),
)
layouts = st.sampled_from(LAYOUTS)
