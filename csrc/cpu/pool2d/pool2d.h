// Pooling (the pool2d family): max pooling with the winners' indices, average pooling, and the
// global variants (windows covering the plane). Portable reference: ref.cpp; SIMD builds:
// avx2.cpp and avx512.cpp compile pool2d.inl (maxpool.inl on the argmax lanes of simd/, avgpool.inl).
//   max_fwd   x (N,C,H,W)|(N,H,W,C) -> y, indices (N,C,P,Q)|(N,P,Q,C): the flat index h*W+w of
//             each window's winner inside its (n, c) plane
//   max_bwd   grad_y, indices -> grad_x (overwritten); false when an index is outside [0, H*W)
//   avg_fwd   x -> y              the mean of each window
//   avg_bwd   grad_y -> grad_x    (overwritten)
// include_pad: divide by R*S (PyTorch's count_include_pad=True), else by the window's cells
// inside the input (Keras' 'same'). Every window holds at least one input cell (padding < kernel).
// Every build computes each average as the same sum in the same order, so the ISAs agree bit for
// bit.
#pragma once
#include <cstdint>

#include "../../common/params.h"
#include "../runtime/runtime.h"

namespace fastconv {

template <typename T>
struct Pool2dOps {
  void (*max_fwd)(const Pool2dParams& p, const T* x, T* y, int64_t* indices);
  bool (*max_bwd)(const Pool2dParams& p, const T* gy, const int64_t* indices, T* gx);
  void (*avg_fwd)(const Pool2dParams& p, bool include_pad, const T* x, T* y);
  void (*avg_bwd)(const Pool2dParams& p, bool include_pad, const T* gy, T* gx);
};

namespace ref {
// also the SIMD kernels' fallback for planes of 2^31 elements or more (32-bit index lanes)
template <typename T>
void maxpool2d_fwd(const Pool2dParams& p, const T* x, T* y, int64_t* indices);
}  // namespace ref

FASTCONV_FAMILY_BUILDS(Pool2dOps, pool2d_ops)

}  // namespace fastconv
