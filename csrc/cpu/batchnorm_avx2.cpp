// Batch normalization with AVX2: the loops of batchnorm.inl compiled with -mavx2 -mfma (called only after the runtime check).
// Reference: fastconv.reference.batch_norm (float64).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "batchnorm.h"
#include "loops.h"
#include "scratch.h"

namespace fastconv {
namespace avx2 {
namespace {
#include "batchnorm.inl"
}  // namespace

BatchNormOps<float> batchnorm_ops_f32() { return batchnorm_detail::ops<float>(); }
BatchNormOps<double> batchnorm_ops_f64() { return batchnorm_detail::ops<double>(); }

}  // namespace avx2
}  // namespace fastconv
