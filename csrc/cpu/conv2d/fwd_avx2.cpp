// conv2d forward, avx2: x, w, bias -> y (both layouts, fused bias + ReLU): conv2d/fwd.inl
// compiled with this file's flags. Reference: ref::conv2d_fwd (conv2d/ref.cpp).
#include "../simd/avx2.h"
#include "fwd.inl"

namespace fastconv {
namespace avx2 {

void conv2d_fwd_f32(const Conv2dParams& p, const float* x, const float* w, const float* bias, float* y) {
  conv2d_fwd<VecF32>(p, x, w, bias, y);
}
void conv2d_fwd_f64(const Conv2dParams& p, const double* x, const double* w, const double* bias,
                    double* y) {
  conv2d_fwd<VecF64>(p, x, w, bias, y);
}

}  // namespace avx2
}  // namespace fastconv
