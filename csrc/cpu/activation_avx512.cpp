// Sigmoid, tanh and leaky ReLU with AVX-512 (16 floats / 8 doubles per zmm; k-masks for the head
// and the tail). Compiled with -mavx512f/bw/vl/dq, called only on CPUs that have them. The
// kernels are in activation_simd.inl (shared with activation_avx2.cpp); this file defines the
// vector operations they use. Reference: activation_ref.cpp.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "activation.h"
#include "loops.h"

namespace fastconv {
namespace avx512 {
namespace {

struct VecF32 {
  using T = float;
  using V = __m512;
  using M = __mmask16;
  static constexpr int64_t L = 16;
  static M first(int64_t k) { return k >= 16 ? M(0xFFFF) : M((1u << k) - 1); }
  static V load(const T* p) { return _mm512_loadu_ps(p); }
  static V load(const T* p, M m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(T* p, V v) { _mm512_storeu_ps(p, v); }
  static void store(T* p, V v, M m) { _mm512_mask_storeu_ps(p, m, v); }
  static void stream(T* p, V v) { _mm512_stream_ps(p, v); }
  static V set1(T c) { return _mm512_set1_ps(c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V div(V a, V b) { return _mm512_div_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V negate(V a) { return _mm512_xor_ps(a, _mm512_set1_ps(-0.0f)); }
  static V abs(V a) { return _mm512_andnot_ps(_mm512_set1_ps(-0.0f), a); }
  static V negative_abs(V a) { return _mm512_or_ps(a, _mm512_set1_ps(-0.0f)); }
  static V with_sign_of(V magnitude, V s) {   // magnitude >= 0
    return _mm512_or_ps(magnitude, _mm512_and_ps(s, _mm512_set1_ps(-0.0f)));
  }
  static V min(V c, V x) { return _mm512_min_ps(c, x); }   // x when x is NaN
  static V max(V c, V x) { return _mm512_max_ps(c, x); }
  static V shift_into_exponent(V t) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(t), 23)); }
  static M positive(V x) { return _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ); }
  static M nonnegative(V x) { return _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ); }
  static V select(M m, V if_true, V if_false) { return _mm512_mask_blend_ps(m, if_false, if_true); }
};

struct VecF64 {
  using T = double;
  using V = __m512d;
  using M = __mmask8;
  static constexpr int64_t L = 8;
  static M first(int64_t k) { return k >= 8 ? M(0xFF) : M((1u << k) - 1); }
  static V load(const T* p) { return _mm512_loadu_pd(p); }
  static V load(const T* p, M m) { return _mm512_maskz_loadu_pd(m, p); }
  static void store(T* p, V v) { _mm512_storeu_pd(p, v); }
  static void store(T* p, V v, M m) { _mm512_mask_storeu_pd(p, m, v); }
  static void stream(T* p, V v) { _mm512_stream_pd(p, v); }
  static V set1(T c) { return _mm512_set1_pd(c); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static V sub(V a, V b) { return _mm512_sub_pd(a, b); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static V div(V a, V b) { return _mm512_div_pd(a, b); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V negate(V a) { return _mm512_xor_pd(a, _mm512_set1_pd(-0.0)); }
  static V abs(V a) { return _mm512_andnot_pd(_mm512_set1_pd(-0.0), a); }
  static V negative_abs(V a) { return _mm512_or_pd(a, _mm512_set1_pd(-0.0)); }
  static V with_sign_of(V magnitude, V s) { return _mm512_or_pd(magnitude, _mm512_and_pd(s, _mm512_set1_pd(-0.0))); }
  static V min(V c, V x) { return _mm512_min_pd(c, x); }
  static V max(V c, V x) { return _mm512_max_pd(c, x); }
  static V shift_into_exponent(V t) { return _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_castpd_si512(t), 52)); }
  static M positive(V x) { return _mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_GT_OQ); }
  static M nonnegative(V x) { return _mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_GE_OQ); }
  static V select(M m, V if_true, V if_false) { return _mm512_mask_blend_pd(m, if_false, if_true); }
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

}  // namespace avx512
}  // namespace fastconv
