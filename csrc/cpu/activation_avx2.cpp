// Sigmoid, tanh and leaky ReLU with AVX2 (8 floats / 4 doubles per ymm; vmaskmov loads and stores
// for the head and the tail). Compiled with -mavx2 -mfma, called only after the runtime check. The
// kernels are in activation_simd.inl (shared with activation_avx512.cpp); this file defines the
// vector operations they use. Reference: activation_ref.cpp.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "activation.h"
#include "loops.h"

namespace fastconv {
namespace avx2 {
namespace {

struct VecF32 {
  using T = float;
  using V = __m256;
  using M = __m256;   // all-ones / all-zeros per lane
  static constexpr int64_t L = 8;
  static M first(int64_t k) {
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)std::min<int64_t>(k, 8)),
                                                  _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
  }
  static V load(const T* p) { return _mm256_loadu_ps(p); }
  static V load(const T* p, M m) { return _mm256_maskload_ps(p, _mm256_castps_si256(m)); }
  static void store(T* p, V v) { _mm256_storeu_ps(p, v); }
  static void store(T* p, V v, M m) { _mm256_maskstore_ps(p, _mm256_castps_si256(m), v); }
  static void stream(T* p, V v) { _mm256_stream_ps(p, v); }
  static V set1(T c) { return _mm256_set1_ps(c); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V negate(V a) { return _mm256_xor_ps(a, _mm256_set1_ps(-0.0f)); }
  static V abs(V a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static V negative_abs(V a) { return _mm256_or_ps(a, _mm256_set1_ps(-0.0f)); }
  static V with_sign_of(V magnitude, V s) {   // magnitude >= 0
    return _mm256_or_ps(magnitude, _mm256_and_ps(s, _mm256_set1_ps(-0.0f)));
  }
  static V min(V c, V x) { return _mm256_min_ps(c, x); }   // x when x is NaN
  static V max(V c, V x) { return _mm256_max_ps(c, x); }
  static V shift_into_exponent(V t) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(t), 23)); }
  static M positive(V x) { return _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ); }
  static M nonnegative(V x) { return _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ); }
  static V select(M m, V if_true, V if_false) { return _mm256_blendv_ps(if_false, if_true, m); }
};

struct VecF64 {
  using T = double;
  using V = __m256d;
  using M = __m256d;
  static constexpr int64_t L = 4;
  static M first(int64_t k) {
    return _mm256_castsi256_pd(_mm256_cmpgt_epi64(_mm256_set1_epi64x(std::min<int64_t>(k, 4)),
                                                  _mm256_setr_epi64x(0, 1, 2, 3)));
  }
  static V load(const T* p) { return _mm256_loadu_pd(p); }
  static V load(const T* p, M m) { return _mm256_maskload_pd(p, _mm256_castpd_si256(m)); }
  static void store(T* p, V v) { _mm256_storeu_pd(p, v); }
  static void store(T* p, V v, M m) { _mm256_maskstore_pd(p, _mm256_castpd_si256(m), v); }
  static void stream(T* p, V v) { _mm256_stream_pd(p, v); }
  static V set1(T c) { return _mm256_set1_pd(c); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static V sub(V a, V b) { return _mm256_sub_pd(a, b); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static V div(V a, V b) { return _mm256_div_pd(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V negate(V a) { return _mm256_xor_pd(a, _mm256_set1_pd(-0.0)); }
  static V abs(V a) { return _mm256_andnot_pd(_mm256_set1_pd(-0.0), a); }
  static V negative_abs(V a) { return _mm256_or_pd(a, _mm256_set1_pd(-0.0)); }
  static V with_sign_of(V magnitude, V s) { return _mm256_or_pd(magnitude, _mm256_and_pd(s, _mm256_set1_pd(-0.0))); }
  static V min(V c, V x) { return _mm256_min_pd(c, x); }
  static V max(V c, V x) { return _mm256_max_pd(c, x); }
  static V shift_into_exponent(V t) { return _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(t), 52)); }
  static M positive(V x) { return _mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_GT_OQ); }
  static M nonnegative(V x) { return _mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_GE_OQ); }
  static V select(M m, V if_true, V if_false) { return _mm256_blendv_pd(if_false, if_true, m); }
};

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
