// Conversion of the parameter tuples built by python/fastconv/_spec.py into the C++ structs.
// Shared by the CPU and CUDA modules; the field order is fixed by Conv2dSpec.as_tuple() and
// Pool2dSpec.as_tuple() on the Python side.
#pragma once
#include <pybind11/pybind11.h>

#include <algorithm>
#include <climits>
#include <initializer_list>
#include <stdexcept>
#include <string>

#include "../common/params.h"

namespace fastconv {

// Throws unless the product of `factors` (all >= 1) fits in int64_t, so that every size the
// kernels compute from the parameters (element counts, multiply-adds, padded extents) is defined.
// Python checks the same before building the tuple; this keeps the C++ safe on its own.
inline void check_product(std::initializer_list<int64_t> factors, const char* what) {
  int64_t product = 1;
  for (int64_t f : factors)
    if (__builtin_mul_overflow(product, f, &product))
      throw std::invalid_argument(std::string("params: ") + what + " overflows 64 bits");
}

// The rows (or columns) a convolution or pooling window spans over the padded input,
// pad + (out - 1) * stride + (taps - 1) * dilation + 1: at most 2**31 - 1 (the limit Python
// applies), so that the padded buffers the kernels size from it cannot overflow. Returns it.
inline int64_t checked_span(int64_t out, int64_t stride, int64_t taps, int64_t dilation, int64_t pad,
                            const char* what) {
  int64_t a, b, span;
  if (__builtin_mul_overflow(out - 1, stride, &a) || __builtin_mul_overflow(taps - 1, dilation, &b) ||
      __builtin_add_overflow(a, b, &span) || __builtin_add_overflow(span, pad, &span) ||
      __builtin_add_overflow(span, int64_t(1), &span) || span > INT32_MAX)
    throw std::invalid_argument(std::string("params: the ") + what + " extent exceeds 2**31 - 1");
  return span;
}

inline Conv2dParams conv_params_from_tuple(const pybind11::tuple& t) {
  // (N, C, H, W, K, R, S, P, Q, stride_h, stride_w, pad_top, pad_left, dil_h, dil_w, nhwc, relu)
  if (t.size() != 17) throw std::invalid_argument("conv params: expected a 17-tuple");
  Conv2dParams p;
  int64_t* fields[] = {&p.N, &p.C, &p.H, &p.W, &p.K, &p.R, &p.S, &p.P, &p.Q,
                       &p.stride_h, &p.stride_w, &p.pad_top, &p.pad_left, &p.dil_h, &p.dil_w};
  for (size_t i = 0; i < 15; ++i) *fields[i] = t[i].cast<int64_t>();
  p.layout = t[15].cast<bool>() ? Layout::NHWC : Layout::NCHW;
  p.relu = t[16].cast<bool>();
  if (p.N < 1 || p.C < 1 || p.H < 1 || p.W < 1 || p.K < 1 || p.R < 1 || p.S < 1 || p.P < 1 ||
      p.Q < 1 || p.stride_h < 1 || p.stride_w < 1 || p.dil_h < 1 || p.dil_w < 1 ||
      p.pad_top < 0 || p.pad_left < 0)
    throw std::invalid_argument("conv params: sizes, strides and dilations must be positive");
  check_product({p.N, p.C, p.H, p.W}, "the input size");
  check_product({p.K, p.C, p.R, p.S}, "the weight size");
  check_product({p.N, p.K, p.P, p.Q, p.C, p.R, p.S}, "the multiply-add count");
  const int64_t rows = std::max(checked_span(p.P, p.stride_h, p.R, p.dil_h, p.pad_top, "row"), p.H);
  const int64_t cols = std::max(checked_span(p.Q, p.stride_w, p.S, p.dil_w, p.pad_left, "column"), p.W);
  check_product({p.N, std::max(p.C, p.K), rows, cols}, "the padded input size");
  return p;
}

inline Pool2dParams pool_params_from_tuple(const pybind11::tuple& t) {
  // (N, C, H, W, R, S, P, Q, stride_h, stride_w, pad_top, pad_left, nhwc)
  if (t.size() != 13) throw std::invalid_argument("pool params: expected a 13-tuple");
  Pool2dParams p;
  int64_t* fields[] = {&p.N, &p.C, &p.H, &p.W, &p.R, &p.S, &p.P, &p.Q,
                       &p.stride_h, &p.stride_w, &p.pad_top, &p.pad_left};
  for (size_t i = 0; i < 12; ++i) *fields[i] = t[i].cast<int64_t>();
  p.layout = t[12].cast<bool>() ? Layout::NHWC : Layout::NCHW;
  if (p.N < 1 || p.C < 1 || p.H < 1 || p.W < 1 || p.R < 1 || p.S < 1 || p.P < 1 || p.Q < 1 ||
      p.stride_h < 1 || p.stride_w < 1 || p.pad_top < 0 || p.pad_left < 0 || p.pad_top >= p.R ||
      p.pad_left >= p.S)
    throw std::invalid_argument("pool params: bad window, stride or padding");
  check_product({p.N, p.C, p.H, p.W}, "the input size");
  check_product({p.N, p.C, p.P, p.Q, p.R, p.S}, "the window visit count");
  const int64_t rows = std::max(checked_span(p.P, p.stride_h, p.R, 1, p.pad_top, "row"), p.H);
  const int64_t cols = std::max(checked_span(p.Q, p.stride_w, p.S, 1, p.pad_left, "column"), p.W);
  check_product({p.N, p.C, rows, cols}, "the padded input size");
  return p;
}

}  // namespace fastconv
