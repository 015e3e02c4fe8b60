// 2-D convolution, the three passes (the conv2d family's entry points; conv2d/algorithm.h says
// which algorithm each pass runs on a SIMD ISA, conv2d.inl runs it).
//   fwd         x (N,C,H,W)|(N,H,W,C), w (K,C,R,S)|(R,S,C,K), bias (K) or null -> y (N,K,P,Q)|(N,P,Q,K);
//               applies p.epilogue
//   bwd_data    grad_y, w -> grad_x (overwritten)
//   bwd_weight  grad_y, x -> grad_w (overwritten), grad_bias (nullable, overwritten)
// Portable reference: ref.cpp (the `scalar` path); SIMD builds: avx2.cpp and avx512.cpp compile
// conv2d.inl, which includes every algorithm.
#pragma once
#include <cstdint>

#include "../../common/params.h"
#include "../runtime/runtime.h"

namespace fastconv {

template <typename T>
struct Conv2dOps {
  void (*fwd)(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y);
  void (*bwd_data)(const Conv2dParams& p, const T* gy, const T* w, T* gx);
  void (*bwd_weight)(const Conv2dParams& p, const T* gy, const T* x, T* gw, T* gb);
};

namespace ref {
template <typename T>
void conv2d_fwd(const Conv2dParams&, const T*, const T*, const T*, T*);
template <typename T>
void conv2d_bwd_data(const Conv2dParams&, const T*, const T*, T*);
template <typename T>
void conv2d_bwd_weight(const Conv2dParams&, const T*, const T*, T*, T*);
}  // namespace ref

FASTCONV_FAMILY_BUILDS(Conv2dOps, conv2d_ops)

}  // namespace fastconv
