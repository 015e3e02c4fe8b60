// Average pooling entry points (bodies in avgpool.inl, compiled per ISA by avgpool_avx2.cpp /
// avgpool_avx512.cpp and without ISA flags by avgpool_portable.cpp). Every build computes each
// output as the same sum in the same order, so the ISAs agree bit for bit.
//   forward   x -> y              (N,C,H,W)|(N,H,W,C) -> (N,C,P,Q)|(N,P,Q,C)
//   backward  grad_y -> grad_x    (overwritten)
// include_pad: divide by R*S (PyTorch's count_include_pad=True), else by the window's cells
// inside the input (Keras' 'same'). Every window holds at least one input cell (padding < kernel).
#pragma once
#include <cstdint>

#include "../common/params.h"

namespace fastconv {

template <typename T>
using AvgPoolFwd = void (*)(const Pool2dParams& p, bool include_pad, const T* x, T* y);
template <typename T>
using AvgPoolBwd = void (*)(const Pool2dParams& p, bool include_pad, const T* gy, T* gx);

namespace ref {
template <typename T> void avgpool2d_fwd(const Pool2dParams& p, bool include_pad, const T* x, T* y);
template <typename T> void avgpool2d_bwd(const Pool2dParams& p, bool include_pad, const T* gy, T* gx);
}  // namespace ref

namespace avx2 {
void avgpool2d_fwd_f32(const Pool2dParams& p, bool include_pad, const float* x, float* y);
void avgpool2d_fwd_f64(const Pool2dParams& p, bool include_pad, const double* x, double* y);
void avgpool2d_bwd_f32(const Pool2dParams& p, bool include_pad, const float* gy, float* gx);
void avgpool2d_bwd_f64(const Pool2dParams& p, bool include_pad, const double* gy, double* gx);
}  // namespace avx2

namespace avx512 {
void avgpool2d_fwd_f32(const Pool2dParams& p, bool include_pad, const float* x, float* y);
void avgpool2d_fwd_f64(const Pool2dParams& p, bool include_pad, const double* x, double* y);
void avgpool2d_bwd_f32(const Pool2dParams& p, bool include_pad, const float* gy, float* gx);
void avgpool2d_bwd_f64(const Pool2dParams& p, bool include_pad, const double* gy, double* gx);
}  // namespace avx512

}  // namespace fastconv
