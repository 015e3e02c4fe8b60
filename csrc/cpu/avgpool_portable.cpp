// Average pooling with the baseline x86-64 instructions (the scalar path): the loops of avgpool.inl compiled without ISA flags.
// Reference: fastconv.reference.avg_pool2d (float64).
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "../common/params.h"
#include "avgpool.h"
#include "loops.h"
#include "scratch.h"

namespace fastconv {
namespace ref {
namespace {
#include "avgpool.inl"
}  // namespace

template <typename T>
void avgpool2d_fwd(const Pool2dParams& p, bool include_pad, const T* x, T* y) {
  avgpool_detail::avgpool2d_forward(p, include_pad, x, y);
}
template <typename T>
void avgpool2d_bwd(const Pool2dParams& p, bool include_pad, const T* gy, T* gx) {
  avgpool_detail::avgpool2d_backward(p, include_pad, gy, gx);
}
template void avgpool2d_fwd<float>(const Pool2dParams&, bool, const float*, float*);
template void avgpool2d_fwd<double>(const Pool2dParams&, bool, const double*, double*);
template void avgpool2d_bwd<float>(const Pool2dParams&, bool, const float*, float*);
template void avgpool2d_bwd<double>(const Pool2dParams&, bool, const double*, double*);

}  // namespace ref
}  // namespace fastconv
