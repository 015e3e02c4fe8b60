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

// The Winograd kernel when it is switched on and `eligible` for p, else the direct kernel;
// `set_path` records which ran (the tests read it back).
template <class Eligible, class SetPath, class Winograd, class Direct, class... Args>
void pick(Eligible eligible, SetPath set_path, Winograd winograd, Direct direct,
          const Conv2dParams& p, Args... args) {
  if (winograd_enabled() && eligible(p)) {
    set_path("winograd_f4x4_3x3");
    winograd(p, args...);
  } else {
    set_path("direct");
    direct(p, args...);
  }
}

}  // namespace

void conv2d_fwd_f32_auto(const Conv2dParams& p, const float* x, const float* w, const float* bias,
                         float* y) {
  pick(winograd_fwd_eligible, set_last_conv2d_fwd_path, conv2d_fwd_winograd<VecF32>, conv2d_fwd_f32,
       p, x, w, bias, y);
}
void conv2d_fwd_f64_auto(const Conv2dParams& p, const double* x, const double* w,
                         const double* bias, double* y) {
  pick(winograd_fwd_eligible, set_last_conv2d_fwd_path, conv2d_fwd_winograd<VecF64>, conv2d_fwd_f64,
       p, x, w, bias, y);
}
void conv2d_bwd_data_f32_auto(const Conv2dParams& p, const float* gy, const float* w, float* gx) {
  pick(winograd_bwd_data_eligible, set_last_conv2d_bwd_data_path, conv2d_bwd_data_winograd<VecF32>,
       conv2d_bwd_data_f32, p, gy, w, gx);
}
void conv2d_bwd_data_f64_auto(const Conv2dParams& p, const double* gy, const double* w, double* gx) {
  pick(winograd_bwd_data_eligible, set_last_conv2d_bwd_data_path, conv2d_bwd_data_winograd<VecF64>,
       conv2d_bwd_data_f64, p, gy, w, gx);
}
void conv2d_bwd_weight_f32_auto(const Conv2dParams& p, const float* gy, const float* x, float* gw,
                                float* gb) {
  pick(winograd_bwd_weight_eligible, set_last_conv2d_bwd_weight_path,
       conv2d_bwd_weight_winograd<VecF32>, conv2d_bwd_weight_f32, p, gy, x, gw, gb);
}
void conv2d_bwd_weight_f64_auto(const Conv2dParams& p, const double* gy, const double* x,
                                double* gw, double* gb) {
  pick(winograd_bwd_weight_eligible, set_last_conv2d_bwd_weight_path,
       conv2d_bwd_weight_winograd<VecF64>, conv2d_bwd_weight_f64, p, gy, x, gw, gb);
}

}  // namespace FASTCONV_SIMD_NS
}  // namespace fastconv
