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

void conv2d_fwd_f32_winograd(const Conv2dParams& p, const float* x, const float* w,
                             const float* bias, float* y) {
  conv2d_fwd_winograd<VecF32>(p, x, w, bias, y);
}

void conv2d_fwd_f32_auto(const Conv2dParams& p, const float* x, const float* w, const float* bias,
                         float* y) {
  if (winograd_enabled() && winograd_fwd_eligible(p)) {
    set_last_conv2d_fwd_path("winograd_f4x4_3x3");
    conv2d_fwd_f32_winograd(p, x, w, bias, y);
  } else {
    set_last_conv2d_fwd_path("direct");
    conv2d_fwd_f32(p, x, w, bias, y);
  }
}

void conv2d_bwd_data_f32_winograd(const Conv2dParams& p, const float* gy, const float* w, float* gx) {
  conv2d_bwd_data_winograd<VecF32>(p, gy, w, gx);
}

void conv2d_bwd_data_f32_auto(const Conv2dParams& p, const float* gy, const float* w, float* gx) {
  if (winograd_enabled() && winograd_bwd_data_eligible(p)) {
    set_last_conv2d_bwd_data_path("winograd_f4x4_3x3");
    conv2d_bwd_data_f32_winograd(p, gy, w, gx);
  } else {
    set_last_conv2d_bwd_data_path("direct");
    conv2d_bwd_data_f32(p, gy, w, gx);
  }
}

void conv2d_bwd_weight_f32_winograd(const Conv2dParams& p, const float* gy, const float* x,
                                    float* gw, float* gb) {
  conv2d_bwd_weight_winograd<VecF32>(p, gy, x, gw, gb);
}

void conv2d_bwd_weight_f32_auto(const Conv2dParams& p, const float* gy, const float* x, float* gw,
                                float* gb) {
  if (winograd_enabled() && winograd_bwd_weight_eligible(p)) {
    set_last_conv2d_bwd_weight_path("winograd_f4x4_3x3");
    conv2d_bwd_weight_f32_winograd(p, gy, x, gw, gb);
  } else {
    set_last_conv2d_bwd_weight_path("direct");
    conv2d_bwd_weight_f32(p, gy, x, gw, gb);
  }
}

}  // namespace FASTCONV_SIMD_NS
}  // namespace fastconv
