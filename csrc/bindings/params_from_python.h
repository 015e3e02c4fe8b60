// Conversion of the parameter tuples built by python/fastconv/_spec.py into the C++ structs.
// Shared by the CPU and CUDA modules; the field order is fixed by Conv2dSpec.as_tuple() and
// Pool2dSpec.as_tuple() on the Python side.
#pragma once
#include <pybind11/pybind11.h>

#include <stdexcept>

#include "../common/params.h"

namespace fastconv {

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
  return p;
}

}  // namespace fastconv
