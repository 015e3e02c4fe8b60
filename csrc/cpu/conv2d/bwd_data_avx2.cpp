// conv2d backward-data, avx2: grad_y, w -> grad_x (both layouts): conv2d/bwd_data.inl, or for
// stride > 1 bwd_data_strided.inl, compiled with this file's flags. Reference:
// ref::conv2d_bwd_data (conv2d/ref.cpp).
#include "../simd/avx2.h"
#include "bwd_data.inl"
#include "bwd_data_strided.inl"

namespace fastconv {
namespace avx2 {

void conv2d_bwd_data_f32(const Conv2dParams& p, const float* gy, const float* w, float* gx) {
  if (use_bwd_data_phase(p)) return conv2d_bwd_data_phase<VecF32>(p, gy, w, gx);
  conv2d_bwd_data<VecF32>(p, gy, w, gx);
}
void conv2d_bwd_data_f64(const Conv2dParams& p, const double* gy, const double* w, double* gx) {
  if (use_bwd_data_phase(p)) return conv2d_bwd_data_phase<VecF64>(p, gy, w, gx);
  conv2d_bwd_data<VecF64>(p, gy, w, gx);
}

}  // namespace avx2
}  // namespace fastconv
