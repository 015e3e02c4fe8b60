// The kernel parameter structs (csrc/common/params.h) as Python classes, Conv2dParams and
// Pool2dParams, of each extension module (module-local: _cpu, _cuda and _cuda_emu each bind
// their own). python/fastconv/_spec.py builds them with keyword arguments once per shape; the
// constructors check every field, so the kernels are safe whatever Python passes.
#pragma once
#include <pybind11/pybind11.h>

#include <algorithm>
#include <climits>
#include <cmath>
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

inline Conv2dParams make_conv_params(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S,
                                     int64_t P, int64_t Q, int64_t stride_h, int64_t stride_w, int64_t pad_top,
                                     int64_t pad_left, int64_t dil_h, int64_t dil_w, bool nhwc,
                                     const std::string& activation, double alpha) {
  Conv2dParams p;
  p.N = N;
  p.C = C;
  p.H = H;
  p.W = W;
  p.K = K;
  p.R = R;
  p.S = S;
  p.P = P;
  p.Q = Q;
  p.stride_h = stride_h;
  p.stride_w = stride_w;
  p.pad_top = pad_top;
  p.pad_left = pad_left;
  p.dil_h = dil_h;
  p.dil_w = dil_w;
  p.layout = nhwc ? Layout::NHWC : Layout::NCHW;
  p.epilogue = epilogue_named(activation);
  p.alpha = alpha;
  if (!std::isfinite(alpha) || alpha < 0)
    throw std::invalid_argument("conv params: alpha (leaky_relu's slope) must be finite and >= 0");
  if (p.N < 1 || p.C < 1 || p.H < 1 || p.W < 1 || p.K < 1 || p.R < 1 || p.S < 1 || p.P < 1 || p.Q < 1 ||
      p.stride_h < 1 || p.stride_w < 1 || p.dil_h < 1 || p.dil_w < 1 || p.pad_top < 0 || p.pad_left < 0)
    throw std::invalid_argument("conv params: sizes, strides and dilations must be positive");
  check_product({p.N, p.C, p.H, p.W}, "the input size");
  check_product({p.K, p.C, p.R, p.S}, "the weight size");
  check_product({p.N, p.K, p.P, p.Q, p.C, p.R, p.S}, "the multiply-add count");
  const int64_t rows = std::max(checked_span(p.P, p.stride_h, p.R, p.dil_h, p.pad_top, "row"), p.H);
  const int64_t cols = std::max(checked_span(p.Q, p.stride_w, p.S, p.dil_w, p.pad_left, "column"), p.W);
  check_product({p.N, std::max(p.C, p.K), rows, cols}, "the padded input size");
  return p;
}

inline Pool2dParams make_pool_params(int64_t N, int64_t C, int64_t H, int64_t W, int64_t R, int64_t S, int64_t P,
                                     int64_t Q, int64_t stride_h, int64_t stride_w, int64_t pad_top, int64_t pad_left,
                                     bool nhwc) {
  Pool2dParams p;
  p.N = N;
  p.C = C;
  p.H = H;
  p.W = W;
  p.R = R;
  p.S = S;
  p.P = P;
  p.Q = Q;
  p.stride_h = stride_h;
  p.stride_w = stride_w;
  p.pad_top = pad_top;
  p.pad_left = pad_left;
  p.layout = nhwc ? Layout::NHWC : Layout::NCHW;
  if (p.N < 1 || p.C < 1 || p.H < 1 || p.W < 1 || p.R < 1 || p.S < 1 || p.P < 1 || p.Q < 1 || p.stride_h < 1 ||
      p.stride_w < 1 || p.pad_top < 0 || p.pad_left < 0 || p.pad_top >= p.R || p.pad_left >= p.S)
    throw std::invalid_argument("pool params: bad window, stride or padding");
  check_product({p.N, p.C, p.H, p.W}, "the input size");
  check_product({p.N, p.C, p.P, p.Q, p.R, p.S}, "the window visit count");
  const int64_t rows = std::max(checked_span(p.P, p.stride_h, p.R, 1, p.pad_top, "row"), p.H);
  const int64_t cols = std::max(checked_span(p.Q, p.stride_w, p.S, 1, p.pad_left, "column"), p.W);
  check_product({p.N, p.C, rows, cols}, "the padded input size");
  return p;
}

inline void bind_params(pybind11::module_& m) {
  namespace py = pybind11;
  using py::arg;
  py::class_<Conv2dParams>(m, "Conv2dParams", py::module_local(),
                           "x (N,C,H,W) | (N,H,W,C), w (K,C,R,S) | (R,S,C,K) -> y (N,K,P,Q) | (N,P,Q,K)")
      .def(py::init(&make_conv_params), py::kw_only(), arg("N"), arg("C"), arg("H"), arg("W"), arg("K"), arg("R"),
           arg("S"), arg("P"), arg("Q"), arg("stride_h"), arg("stride_w"), arg("pad_top"), arg("pad_left"),
           arg("dil_h"), arg("dil_w"), arg("nhwc"), arg("activation") = "none", arg("alpha") = 0.0)
      .def_readonly("N", &Conv2dParams::N)
      .def_readonly("C", &Conv2dParams::C)
      .def_readonly("H", &Conv2dParams::H)
      .def_readonly("W", &Conv2dParams::W)
      .def_readonly("K", &Conv2dParams::K)
      .def_readonly("P", &Conv2dParams::P)
      .def_readonly("Q", &Conv2dParams::Q);
  py::class_<Pool2dParams>(m, "Pool2dParams", py::module_local(),
                           "x (N,C,H,W) | (N,H,W,C) -> y, indices (N,C,P,Q) | (N,P,Q,C)")
      .def(py::init(&make_pool_params), py::kw_only(), arg("N"), arg("C"), arg("H"), arg("W"), arg("R"), arg("S"),
           arg("P"), arg("Q"), arg("stride_h"), arg("stride_w"), arg("pad_top"), arg("pad_left"), arg("nhwc"))
      .def_readonly("N", &Pool2dParams::N)
      .def_readonly("C", &Pool2dParams::C)
      .def_readonly("P", &Pool2dParams::P)
      .def_readonly("Q", &Pool2dParams::Q);
}

}  // namespace fastconv
