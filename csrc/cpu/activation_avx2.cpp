// Sigmoid, tanh and leaky ReLU with AVX2 (8 floats / 4 doubles per ymm; vmaskmov loads and stores
// for the head and the tail). Compiled with -mavx2 -mfma, called only after the runtime check. The
// kernels are in activation_simd.inl (shared with activation_avx512.cpp), the register math in
// simd/vector_math.h. Reference: activation_ref.cpp.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "activation.h"
#include "loops.h"
#include "simd/avx2.h"
#include "simd/vector_math.h"

namespace fastconv {
namespace avx2 {
namespace {

#include "activation_simd.inl"

}  // namespace

void activation_fwd_f32(Activation a, float alpha, int64_t n, const float* x, float* y) {
  activation_forward<VecF32>(a, alpha, n, x, y);
}
void activation_fwd_f64(Activation a, double alpha, int64_t n, const double* x, double* y) {
  activation_forward<VecF64>(a, alpha, n, x, y);
}
void activation_bwd_f32(Activation a, float alpha, int64_t n, const float* gy, const float* y, float* gx) {
  activation_backward<VecF32>(a, alpha, n, gy, y, gx);
}
void activation_bwd_f64(Activation a, double alpha, int64_t n, const double* gy, const double* y, double* gx) {
  activation_backward<VecF64>(a, alpha, n, gy, y, gx);
}

}  // namespace avx2
}  // namespace fastconv
