// The Winograd entry points of one ISA (declared in conv2d_winograd.h), shared by
// conv2d_winograd_avx512.cpp and conv2d_winograd_avx2.cpp: each includes this file once, after
// its traits header and gather_taps(), and so compiles it into its own namespace with its own
// flags. The *_auto functions are the f32 entries of that ISA's dispatch table: Winograd where
// enabled and eligible, else the direct kernels of conv2d_simd.h.
#ifndef FASTCONV_SIMD_NS
#error "include from conv2d_winograd_<isa>.cpp"
#endif
#include "conv2d_winograd_simd.h"
#include "conv2d_winograd_bwd_weight_simd.h"

namespace fastconv {
namespace FASTCONV_SIMD_NS {
namespace {

template <typename T>
using FwdFn = void (*)(const Conv2dParams&, const T*, const T*, const T*, T*);
template <typename T>
using BwdDataFn = void (*)(const Conv2dParams&, const T*, const T*, T*);
template <typename T>
using BwdWeightFn = void (*)(const Conv2dParams&, const T*, const T*, T*, T*);

template <class V, typename T = typename V::T>
void fwd_auto(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y, FwdFn<T> direct) {
  if (winograd_enabled() && winograd_fwd_eligible(p)) {
    set_last_conv2d_fwd_path("winograd_f4x4_3x3");
    conv2d_fwd_winograd<V>(p, x, w, bias, y);
  } else {
    set_last_conv2d_fwd_path("direct");
    direct(p, x, w, bias, y);
  }
}

template <class V, typename T = typename V::T>
void bwd_data_auto(const Conv2dParams& p, const T* gy, const T* w, T* gx, BwdDataFn<T> direct) {
  if (winograd_enabled() && winograd_bwd_data_eligible(p)) {
    set_last_conv2d_bwd_data_path("winograd_f4x4_3x3");
    conv2d_bwd_data_winograd<V>(p, gy, w, gx);
  } else {
    set_last_conv2d_bwd_data_path("direct");
    direct(p, gy, w, gx);
  }
}

template <class V, typename T = typename V::T>
void bwd_weight_auto(const Conv2dParams& p, const T* gy, const T* x, T* gw, T* gb,
                     BwdWeightFn<T> direct) {
  if (winograd_enabled() && winograd_bwd_weight_eligible(p)) {
    set_last_conv2d_bwd_weight_path("winograd_f4x4_3x3");
    conv2d_bwd_weight_winograd<V>(p, gy, x, gw, gb);
  } else {
    set_last_conv2d_bwd_weight_path("direct");
    direct(p, gy, x, gw, gb);
  }
}

}  // namespace

void conv2d_fwd_f32_auto(const Conv2dParams& p, const float* x, const float* w, const float* bias,
                         float* y) {
  fwd_auto<VecF32>(p, x, w, bias, y, conv2d_fwd_f32);
}
void conv2d_fwd_f64_auto(const Conv2dParams& p, const double* x, const double* w,
                         const double* bias, double* y) {
  fwd_auto<VecF64>(p, x, w, bias, y, conv2d_fwd_f64);
}
void conv2d_bwd_data_f32_auto(const Conv2dParams& p, const float* gy, const float* w, float* gx) {
  bwd_data_auto<VecF32>(p, gy, w, gx, conv2d_bwd_data_f32);
}
void conv2d_bwd_data_f64_auto(const Conv2dParams& p, const double* gy, const double* w, double* gx) {
  bwd_data_auto<VecF64>(p, gy, w, gx, conv2d_bwd_data_f64);
}
void conv2d_bwd_weight_f32_auto(const Conv2dParams& p, const float* gy, const float* x, float* gw,
                                float* gb) {
  bwd_weight_auto<VecF32>(p, gy, x, gw, gb, conv2d_bwd_weight_f32);
}
void conv2d_bwd_weight_f64_auto(const Conv2dParams& p, const double* gy, const double* x,
                                double* gw, double* gb) {
  bwd_weight_auto<VecF64>(p, gy, x, gw, gb, conv2d_bwd_weight_f64);
}

}  // namespace FASTCONV_SIMD_NS
}  // namespace fastconv
