// conv2d backward-weight, avx2: grad_y, x -> grad_w, grad_bias (both layouts, deterministic):
// conv2d/bwd_weight.inl compiled with this file's flags. Reference: ref::conv2d_bwd_weight
// (conv2d/ref.cpp).
#include "../simd/avx2.h"
#include "bwd_weight.inl"

namespace fastconv {
namespace avx2 {

void conv2d_bwd_weight_f32(const Conv2dParams& p, const float* gy, const float* x, float* gw, float* gb) {
  conv2d_bwd_weight<VecF32>(p, gy, x, gw, gb);
}
void conv2d_bwd_weight_f64(const Conv2dParams& p, const double* gy, const double* x, double* gw,
                           double* gb) {
  conv2d_bwd_weight<VecF64>(p, gy, x, gw, gb);
}

}  // namespace avx2
}  // namespace fastconv
