// Average pooling with AVX2: the loops of avgpool.inl compiled with -mavx2 -mfma (called only after the runtime check).
// Reference: fastconv.reference.avg_pool2d (float64).
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "../common/params.h"
#include "avgpool.h"
#include "loops.h"
#include "scratch.h"

namespace fastconv {
namespace avx2 {
namespace {
#include "avgpool.inl"
}  // namespace

void avgpool2d_fwd_f32(const Pool2dParams& p, bool include_pad, const float* x, float* y) {
  avgpool_detail::avgpool2d_forward(p, include_pad, x, y);
}
void avgpool2d_fwd_f64(const Pool2dParams& p, bool include_pad, const double* x, double* y) {
  avgpool_detail::avgpool2d_forward(p, include_pad, x, y);
}
void avgpool2d_bwd_f32(const Pool2dParams& p, bool include_pad, const float* gy, float* gx) {
  avgpool_detail::avgpool2d_backward(p, include_pad, gy, gx);
}
void avgpool2d_bwd_f64(const Pool2dParams& p, bool include_pad, const double* gy, double* gx) {
  avgpool_detail::avgpool2d_backward(p, include_pad, gy, gx);
}

}  // namespace avx2
}  // namespace fastconv
