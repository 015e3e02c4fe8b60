// Batch normalization with AVX-512: the loops of batchnorm.inl compiled with -mavx512f/bw/vl/dq (called only on CPUs that have them).
// Reference: fastconv.reference.batch_norm (float64).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "batchnorm.h"
#include "loops.h"
#include "scratch.h"

namespace fastconv {
namespace avx512 {
namespace {
#include "batchnorm.inl"
}  // namespace

BatchNormOps<float> batchnorm_ops_f32() { return batchnorm_detail::ops<float>(); }
BatchNormOps<double> batchnorm_ops_f64() { return batchnorm_detail::ops<double>(); }

}  // namespace avx512
}  // namespace fastconv
