// Batch normalization with the baseline x86-64 instructions (the scalar path): the loops of batchnorm.inl compiled without ISA flags.
// Reference: fastconv.reference.batch_norm (float64).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "batchnorm.h"
#include "loops.h"
#include "scratch.h"

namespace fastconv {
namespace ref {
namespace {
#include "batchnorm.inl"
}  // namespace

template <typename T>
BatchNormOps<T> batchnorm_ops() {
  return batchnorm_detail::ops<T>();
}
template BatchNormOps<float> batchnorm_ops<float>();
template BatchNormOps<double> batchnorm_ops<double>();

}  // namespace ref
}  // namespace fastconv
