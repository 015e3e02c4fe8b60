"""Bad inputs raise ValueError/TypeError whose message names the offending argument."""

from __future__ import annotations

import numpy as np
import pytest

import fastconv as fc

F32 = np.float32
RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 3, 8, 8)).astype(F32)  # NCHW
W = RNG.standard_normal((4, 3, 3, 3)).astype(F32)  # KCRS
B = RNG.standard_normal(4).astype(F32)
GY = RNG.standard_normal((2, 4, 6, 6)).astype(F32)  # conv2d(X, W) output shape
X_NHWC = np.ascontiguousarray(X.transpose(0, 2, 3, 1))
W_RSCK = np.ascontiguousarray(W.transpose(2, 3, 1, 0))
PY, PI = fc.max_pool2d(X, 2)  # (2, 3, 4, 4)

# (id, thunk, exception type(s), regex the message must contain)
CASES = [
    # ---- ndim
    ("conv_x_3d", lambda: fc.conv2d(X[0], W), ValueError, r"\bx\b"),
    ("conv_x_5d", lambda: fc.conv2d(X[None], W), ValueError, r"\bx\b"),
    ("conv_w_3d", lambda: fc.conv2d(X, W[0]), ValueError, "weight"),
    ("conv_bias_2d", lambda: fc.conv2d(X, W, B[None]), ValueError, "bias"),
    ("pool_x_3d", lambda: fc.max_pool2d(X[0]), ValueError, r"\bx\b"),
    ("conv_x_empty_batch", lambda: fc.conv2d(X[:0], W), ValueError, r"\bx\b.*empty"),
    ("conv_w_no_filters", lambda: fc.conv2d(X, W[:0]), ValueError, r"weight.*empty"),
    ("pool_x_empty_batch", lambda: fc.max_pool2d(X[:0]), ValueError, r"\bx\b.*empty"),
    ("bwd_grad_y_3d", lambda: fc.conv2d_backward(GY[0], X, W), ValueError, "grad_y"),
    ("bwd_data_x_shape_3", lambda: fc.conv2d_backward_data(GY, W, X.shape[1:]), ValueError, "x_shape|shape"),
    ("bwd_weight_w_shape_3", lambda: fc.conv2d_backward_weight(GY, X, W.shape[1:]), ValueError, "weight_shape|shape"),
    # ---- dtype
    ("conv_x_int32", lambda: fc.conv2d(X.astype(np.int32), W), TypeError, "int32"),
    ("conv_x_float16", lambda: fc.conv2d(X.astype(np.float16), W), TypeError, "float16"),
    ("conv_w_int32", lambda: fc.conv2d(X, W.astype(np.int32)), TypeError, "int32"),
    ("pool_x_float16", lambda: fc.max_pool2d(X.astype(np.float16)), TypeError, "float16"),
    ("relu_x_int32", lambda: fc.relu(X.astype(np.int32)), TypeError, "int32"),
    ("relu_x_complex", lambda: fc.relu(X.astype(np.complex64)), TypeError, "complex64"),
    ("relu_bwd_float16", lambda: fc.relu_backward(X.astype(np.float16), X), TypeError, "float16"),
    ("bwd_grad_y_int32", lambda: fc.conv2d_backward(GY.astype(np.int32), X, W), TypeError, "int32"),
    (
        "pool_indices_float",
        lambda: fc.max_pool2d_backward(PY, PI.astype(F32), X.shape),
        (TypeError, ValueError),
        "indices",
    ),
    # ---- mixed float32 / float64
    ("conv_mixed_w", lambda: fc.conv2d(X, W.astype(np.float64)), (TypeError, ValueError), "dtype|float64|weight"),
    ("conv_mixed_bias", lambda: fc.conv2d(X, W, B.astype(np.float64)), (TypeError, ValueError), "dtype|float64|bias"),
    (
        "bwd_mixed_grad_y",
        lambda: fc.conv2d_backward(GY.astype(np.float64), X, W),
        (TypeError, ValueError),
        "dtype|float64|grad_y",
    ),
    (
        "relu_bwd_mixed",
        lambda: fc.relu_backward(X.astype(np.float64), X),
        (TypeError, ValueError),
        "dtype|float64|grad_y",
    ),
    # ---- shapes that do not fit together
    ("conv_channels", lambda: fc.conv2d(X, W[:, :2]), ValueError, "channel|weight"),
    ("conv_channels_nhwc", lambda: fc.conv2d(X_NHWC, W_RSCK[:, :, :2], layout="NHWC"), ValueError, "channel|weight"),
    ("conv_bias_len", lambda: fc.conv2d(X, W, B[:3]), ValueError, "bias"),
    ("conv_bias_len_nhwc", lambda: fc.conv2d(X_NHWC, W_RSCK, B[:3], layout="NHWC"), ValueError, "bias"),
    ("conv_out_small", lambda: fc.conv2d(X[:, :, :2, :2], W), ValueError, "output|size|shape"),
    ("conv_out_small_dilation", lambda: fc.conv2d(X, W, dilation=4), ValueError, "output|size|shape"),
    ("pool_out_small", lambda: fc.max_pool2d(X, 9), ValueError, "output|size|shape"),
    ("bwd_grad_y_shape", lambda: fc.conv2d_backward(GY[:, :, :5], X, W), ValueError, "grad_y"),
    ("bwd_grad_y_channels", lambda: fc.conv2d_backward(GY[:, :3], X, W), ValueError, "grad_y"),
    ("bwd_grad_y_batch", lambda: fc.conv2d_backward(GY[:1], X, W), ValueError, "grad_y"),
    ("bwd_data_grad_y_shape", lambda: fc.conv2d_backward_data(GY, W, (2, 3, 9, 9)), ValueError, "grad_y"),
    ("bwd_weight_grad_y_shape", lambda: fc.conv2d_backward_weight(GY, X, (4, 3, 5, 5)), ValueError, "grad_y"),
    ("bwd_weight_channels", lambda: fc.conv2d_backward_weight(GY, X, (4, 2, 3, 3)), ValueError, "channel|weight"),
    ("pool_bwd_grad_y_shape", lambda: fc.max_pool2d_backward(PY[:, :, :3], PI, X.shape), ValueError, "grad_y"),
    ("pool_bwd_indices_shape", lambda: fc.max_pool2d_backward(PY, PI[:, :, :3], X.shape), ValueError, "indices"),
    ("relu_bwd_shape", lambda: fc.relu_backward(X[:1], X), ValueError, "grad_y|shape"),
    # ---- max-pool indices out of range
    (
        "pool_indices_negative",
        lambda: fc.max_pool2d_backward(PY, np.where(PI == PI.flat[0], -1, PI), X.shape),
        ValueError,
        "indices",
    ),
    ("pool_indices_too_big", lambda: fc.max_pool2d_backward(PY, PI + 64, X.shape), ValueError, "indices"),
    # ---- stride / dilation / kernel_size
    ("stride_0", lambda: fc.conv2d(X, W, stride=0), ValueError, "stride"),
    ("stride_negative", lambda: fc.conv2d(X, W, stride=(1, -1)), ValueError, "stride"),
    ("stride_float", lambda: fc.conv2d(X, W, stride=1.5), TypeError, "stride"),
    ("stride_str", lambda: fc.conv2d(X, W, stride="1"), TypeError, "stride"),
    ("stride_triple", lambda: fc.conv2d(X, W, stride=(1, 1, 1)), (TypeError, ValueError), "stride"),
    ("stride_bool", lambda: fc.conv2d(X, W, stride=True), TypeError, "stride"),
    ("dilation_0", lambda: fc.conv2d(X, W, dilation=0), ValueError, "dilation"),
    ("dilation_float", lambda: fc.conv2d(X, W, dilation=2.0), TypeError, "dilation"),
    ("bwd_stride_0", lambda: fc.conv2d_backward(GY, X, W, stride=0), ValueError, "stride"),
    ("bwd_data_dilation_neg", lambda: fc.conv2d_backward_data(GY, W, X.shape, dilation=-1), ValueError, "dilation"),
    ("bwd_weight_stride_float", lambda: fc.conv2d_backward_weight(GY, X, W.shape, stride=0.5), TypeError, "stride"),
    ("pool_kernel_0", lambda: fc.max_pool2d(X, 0), ValueError, "kernel_size"),
    ("pool_kernel_float", lambda: fc.max_pool2d(X, 2.0), TypeError, "kernel_size"),
    ("pool_stride_0", lambda: fc.max_pool2d(X, 2, stride=0), ValueError, "stride"),
    ("pool_bwd_kernel_0", lambda: fc.max_pool2d_backward(PY, PI, X.shape, 0), ValueError, "kernel_size"),
    # ---- padding
    ("padding_negative", lambda: fc.conv2d(X, W, padding=-1), ValueError, "padding"),
    ("padding_negative_pair", lambda: fc.conv2d(X, W, padding=((0, 1), (-1, 0))), ValueError, "padding"),
    ("padding_string", lambda: fc.conv2d(X, W, padding="full"), ValueError, "padding"),
    ("padding_float", lambda: fc.conv2d(X, W, padding=1.0), TypeError, "padding"),
    ("padding_triple", lambda: fc.conv2d(X, W, padding=(1, 1, 1)), (TypeError, ValueError), "padding"),
    ("padding_bad_pairs", lambda: fc.conv2d(X, W, padding=((1, 1, 1), (1, 1))), (TypeError, ValueError), "padding"),
    ("pool_padding_negative", lambda: fc.max_pool2d(X, 3, padding=-1), ValueError, "padding"),
    ("pool_padding_string", lambda: fc.max_pool2d(X, 3, padding="full"), ValueError, "padding"),
    ("bwd_padding_negative", lambda: fc.conv2d_backward(GY, X, W, padding=-2), ValueError, "padding"),
    # ---- layout / activation / other arguments
    ("layout_bad_order", lambda: fc.conv2d(X, W, layout="NCWH"), ValueError, "layout"),
    ("layout_bad", lambda: fc.conv2d(X, W, layout="CHWN"), ValueError, "layout"),
    ("pool_layout_bad", lambda: fc.max_pool2d(X, layout="NWHC"), ValueError, "layout"),
    ("bwd_layout_bad", lambda: fc.conv2d_backward(GY, X, W, layout=None), (TypeError, ValueError), "layout"),
    ("activation_bad", lambda: fc.conv2d(X, W, activation="gelu"), ValueError, "activation"),
    ("conv_bias_scalar", lambda: fc.conv2d(X, W, 1.0), (TypeError, ValueError), "bias"),
]


@pytest.mark.parametrize("thunk,exc,pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises(thunk, exc, pattern):
    with pytest.raises(exc, match=pattern):
        thunk()


def test_valid_calls_behind_the_error_cases_work():
    """The fixtures above are themselves valid, so each error case isolates one mistake."""
    assert fc.conv2d(X, W, B).shape == GY.shape
    assert fc.conv2d(X_NHWC, W_RSCK, B, layout="NHWC").shape == (2, 6, 6, 4)
    assert fc.conv2d_backward(GY, X, W)[0].shape == X.shape
    assert fc.max_pool2d_backward(PY, PI, X.shape).shape == X.shape
    assert fc.relu_backward(X, X).shape == X.shape
