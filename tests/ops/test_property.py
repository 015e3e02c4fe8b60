"""Hypothesis: random valid configurations, forward and every backward output against the reference."""

from __future__ import annotations

import numpy as np
from helpers import check_op, randn
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fastconv as fc
from fastconv.ops._shapes import conv_output_size, pair, resolve_padding

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

small = st.integers(1, 3)
hw_pair = st.one_of(small, st.tuples(small, small))
padding_forms = st.one_of(
    st.sampled_from(["same", "valid"]),
    st.integers(0, 2),
    st.tuples(st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)), st.tuples(st.integers(0, 2), st.integers(0, 2))),
)


def _output_hw(H, W, kernel, stride, padding, dilation=(1, 1)):
    pads = resolve_padding(padding, (H, W), kernel, stride, dilation)
    return (
        conv_output_size(H, kernel[0], stride[0], pads[0], pads[1], dilation[0]),
        conv_output_size(W, kernel[1], stride[1], pads[2], pads[3], dilation[1]),
    ), pads


class _Isa:
    """Run the body under one CPU path and put the previous one back."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.previous = fc.cpu_isa()
        fc.set_cpu_isa(self.name)

    def __exit__(self, *exc):
        fc.set_cpu_isa(self.previous)


@SETTINGS
@given(
    N=st.integers(1, 2),
    C=st.integers(1, 18),
    K=st.integers(1, 18),
    H=st.integers(1, 10),
    W=st.integers(1, 10),
    R=st.integers(1, 4),
    S=st.integers(1, 4),
    stride=hw_pair,
    dilation=st.one_of(st.just(1), st.tuples(st.integers(1, 2), st.integers(1, 2))),
    padding=padding_forms,
    layout=st.sampled_from(["NCHW", "NHWC"]),
    dtype=st.sampled_from([np.float32, np.float64]),
    use_bias=st.booleans(),
    activation=st.sampled_from([None, "relu"]),
    isa=st.sampled_from(fc.available_cpu_isas()),
    seed=st.integers(0, 2**16),
)
def test_conv2d_random_configurations(
    N, C, K, H, W, R, S, stride, dilation, padding, layout, dtype, use_bias, activation, isa, seed
):
    (P, Q), _ = _output_hw(H, W, (R, S), pair(stride, "stride"), padding, pair(dilation, "dilation"))
    assume(P >= 1 and Q >= 1)
    rng = np.random.default_rng(seed)
    x = randn(rng, (N, C, H, W) if layout == "NCHW" else (N, H, W, C), dtype)
    w = randn(rng, (K, C, R, S) if layout == "NCHW" else (R, S, C, K), dtype)
    b = randn(rng, (K,), dtype) if use_bias else None
    gy = randn(rng, (N, K, P, Q) if layout == "NCHW" else (N, P, Q, K), dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, layout=layout)
    with _Isa(isa):
        check_op("conv2d", x, w, b, activation=activation, **kw)
        check_op("conv2d_backward", gy, x, w, bias=use_bias, **kw)
        check_op("conv2d_backward_data", gy, w, x.shape, **kw)
        check_op("conv2d_backward_weight", gy, x, w.shape, bias=use_bias, **kw)


@SETTINGS
@given(
    N=st.integers(1, 2),
    C=st.integers(1, 18),
    H=st.integers(1, 10),
    W=st.integers(1, 10),
    kernel=hw_pair,
    stride=st.one_of(st.none(), hw_pair),
    padding=padding_forms,
    layout=st.sampled_from(["NCHW", "NHWC"]),
    dtype=st.sampled_from([np.float32, np.float64]),
    ties=st.booleans(),
    isa=st.sampled_from(fc.available_cpu_isas()),
    seed=st.integers(0, 2**16),
)
def test_max_pool2d_random_configurations(N, C, H, W, kernel, stride, padding, layout, dtype, ties, isa, seed):
    k = pair(kernel, "kernel_size")
    s = k if stride is None else pair(stride, "stride")
    (P, Q), pads = _output_hw(H, W, k, s, padding)
    assume(P >= 1 and Q >= 1)
    # every window must hold at least one real cell (padding of at most half the window)
    assume(max(pads[:2]) < k[0] and max(pads[2:]) < k[1])
    assume((P - 1) * s[0] - pads[0] < H and (Q - 1) * s[1] - pads[2] < W)
    rng = np.random.default_rng(seed)
    shape = (N, C, H, W) if layout == "NCHW" else (N, H, W, C)
    x = rng.integers(-2, 3, shape).astype(dtype) if ties else randn(rng, shape, dtype)
    kw = dict(stride=stride, padding=padding, layout=layout)
    with _Isa(isa):
        y, idx = check_op("max_pool2d", x, kernel, exact=True, **kw)
        check_op("max_pool2d_backward", randn(rng, y.shape, dtype), idx, x.shape, kernel, **kw)
        y = check_op("relu", x, exact=True)
        check_op("relu_backward", randn(rng, x.shape, dtype), y, exact=True)
