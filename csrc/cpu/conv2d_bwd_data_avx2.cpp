// conv2d backward-data, avx2: grad_y, w -> grad_x (both layouts).
// The forward direct kernel of conv2d_simd.h on flipped, transposed weights, or for stride > 1
// the stride-phase kernel (conv2d_bwd_data_strided_simd.h); reference:
// ref::conv2d_bwd_data in conv2d_ref.cpp.
#include "simd_avx2.h"
#include "conv2d_simd.h"
#include "conv2d_bwd_data_strided_simd.h"

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
