// AVX2 + FMA vector traits for the templated kernels (conv2d/*.inl, linear/linear.inl, eltwise/eltwise.inl).
// Only included by the families' avx2.cpp files, which are compiled with -mavx2 -mfma.
//
// Register tile: 6 broadcast rows x 2 ymm = 12 accumulators + 2 weight vectors + 1 broadcast
// = 15 of the 16 ymm registers (fp32: 6 pixels x 16 channels; fp64: 6 x 8).
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace fastconv {
namespace avx2 {

#define FASTCONV_VEC_INLINE static inline __attribute__((always_inline))

// Lane masks for maskload/maskstore: the first n lanes set.
alignas(32) static const int32_t kLaneMask32[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
alignas(32) static const int64_t kLaneMask64[8] = {-1, -1, -1, -1, 0, 0, 0, 0};

struct VecF32 {
  using T = float;
  using reg = __m256;
  static constexpr int W = 8;
  static constexpr int NJ = 6;
  static constexpr int NV = 2;
  static constexpr int REGS = 16;
  static constexpr const char* name = "f32";
  FASTCONV_VEC_INLINE __m256i mask(int n) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kLaneMask32 + 8 - n));
  }
  FASTCONV_VEC_INLINE reg zero() { return _mm256_setzero_ps(); }
  FASTCONV_VEC_INLINE reg load(const T* p) { return _mm256_loadu_ps(p); }
  FASTCONV_VEC_INLINE reg load_n(const T* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  FASTCONV_VEC_INLINE reg set1(T v) { return _mm256_set1_ps(v); }
  FASTCONV_VEC_INLINE reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  FASTCONV_VEC_INLINE reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  // max(0, a) returns `a` when it is NaN (second operand), so NaN propagates like the reference.
  FASTCONV_VEC_INLINE reg relu(reg a) { return _mm256_max_ps(_mm256_setzero_ps(), a); }
  FASTCONV_VEC_INLINE void store(T* p, reg v) { _mm256_storeu_ps(p, v); }
  FASTCONV_VEC_INLINE void stream(T* p, reg v) { _mm256_stream_ps(p, v); }  // p 32-byte aligned
  FASTCONV_VEC_INLINE void store_n(T* p, reg v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
  // Elementwise math for the activations (simd/vector_math.h); a lane mask is all ones or all zeros.
  FASTCONV_VEC_INLINE reg sub(reg a, reg b) { return _mm256_sub_ps(a, b); }
  FASTCONV_VEC_INLINE reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
  FASTCONV_VEC_INLINE reg div(reg a, reg b) { return _mm256_div_ps(a, b); }
  FASTCONV_VEC_INLINE reg negate(reg a) { return _mm256_xor_ps(a, _mm256_set1_ps(-0.0f)); }
  FASTCONV_VEC_INLINE reg abs(reg a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  FASTCONV_VEC_INLINE reg negative_abs(reg a) { return _mm256_or_ps(a, _mm256_set1_ps(-0.0f)); }
  FASTCONV_VEC_INLINE reg with_sign_of(reg magnitude, reg s) {  // magnitude >= 0
    return _mm256_or_ps(magnitude, _mm256_and_ps(s, _mm256_set1_ps(-0.0f)));
  }
  FASTCONV_VEC_INLINE reg min(reg c, reg x) { return _mm256_min_ps(c, x); }  // x when x is NaN
  FASTCONV_VEC_INLINE reg max(reg c, reg x) { return _mm256_max_ps(c, x); }
  FASTCONV_VEC_INLINE reg shift_into_exponent(reg t) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(t), 23));
  }
  FASTCONV_VEC_INLINE reg positive(reg x) { return _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ); }
  FASTCONV_VEC_INLINE reg nonnegative(reg x) { return _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ); }
  FASTCONV_VEC_INLINE reg select(reg m, reg if_true, reg if_false) { return _mm256_blendv_ps(if_false, if_true, m); }
  // x > 0 or NaN (the lanes ReLU passes through); keep(m, x): x in the lanes of m, else +0
  FASTCONV_VEC_INLINE reg positive_or_nan(reg x) { return _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NLE_UQ); }
  FASTCONV_VEC_INLINE reg keep(reg m, reg x) { return _mm256_and_ps(m, x); }
};

struct VecF64 {
  using T = double;
  using reg = __m256d;
  static constexpr int W = 4;
  static constexpr int NJ = 6;
  static constexpr int NV = 2;
  static constexpr int REGS = 16;
  static constexpr const char* name = "f64";
  FASTCONV_VEC_INLINE __m256i mask(int n) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kLaneMask64 + 4 - n));
  }
  FASTCONV_VEC_INLINE reg zero() { return _mm256_setzero_pd(); }
  FASTCONV_VEC_INLINE reg load(const T* p) { return _mm256_loadu_pd(p); }
  FASTCONV_VEC_INLINE reg load_n(const T* p, int n) { return _mm256_maskload_pd(p, mask(n)); }
  FASTCONV_VEC_INLINE reg set1(T v) { return _mm256_set1_pd(v); }
  FASTCONV_VEC_INLINE reg fma(reg a, reg b, reg c) { return _mm256_fmadd_pd(a, b, c); }
  FASTCONV_VEC_INLINE reg add(reg a, reg b) { return _mm256_add_pd(a, b); }
  FASTCONV_VEC_INLINE reg relu(reg a) { return _mm256_max_pd(_mm256_setzero_pd(), a); }
  FASTCONV_VEC_INLINE void store(T* p, reg v) { _mm256_storeu_pd(p, v); }
  FASTCONV_VEC_INLINE void stream(T* p, reg v) { _mm256_stream_pd(p, v); }  // p 32-byte aligned
  FASTCONV_VEC_INLINE void store_n(T* p, reg v, int n) { _mm256_maskstore_pd(p, mask(n), v); }
  // Elementwise math for the activations (simd/vector_math.h); a lane mask is all ones or all zeros.
  FASTCONV_VEC_INLINE reg sub(reg a, reg b) { return _mm256_sub_pd(a, b); }
  FASTCONV_VEC_INLINE reg mul(reg a, reg b) { return _mm256_mul_pd(a, b); }
  FASTCONV_VEC_INLINE reg div(reg a, reg b) { return _mm256_div_pd(a, b); }
  FASTCONV_VEC_INLINE reg negate(reg a) { return _mm256_xor_pd(a, _mm256_set1_pd(-0.0)); }
  FASTCONV_VEC_INLINE reg abs(reg a) { return _mm256_andnot_pd(_mm256_set1_pd(-0.0), a); }
  FASTCONV_VEC_INLINE reg negative_abs(reg a) { return _mm256_or_pd(a, _mm256_set1_pd(-0.0)); }
  FASTCONV_VEC_INLINE reg with_sign_of(reg magnitude, reg s) {  // magnitude >= 0
    return _mm256_or_pd(magnitude, _mm256_and_pd(s, _mm256_set1_pd(-0.0)));
  }
  FASTCONV_VEC_INLINE reg min(reg c, reg x) { return _mm256_min_pd(c, x); }  // x when x is NaN
  FASTCONV_VEC_INLINE reg max(reg c, reg x) { return _mm256_max_pd(c, x); }
  FASTCONV_VEC_INLINE reg shift_into_exponent(reg t) {
    return _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(t), 52));
  }
  FASTCONV_VEC_INLINE reg positive(reg x) { return _mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_GT_OQ); }
  FASTCONV_VEC_INLINE reg nonnegative(reg x) { return _mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_GE_OQ); }
  FASTCONV_VEC_INLINE reg select(reg m, reg if_true, reg if_false) { return _mm256_blendv_pd(if_false, if_true, m); }
  // x > 0 or NaN (the lanes ReLU passes through); keep(m, x): x in the lanes of m, else +0
  FASTCONV_VEC_INLINE reg positive_or_nan(reg x) { return _mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_NLE_UQ); }
  FASTCONV_VEC_INLINE reg keep(reg m, reg x) { return _mm256_and_pd(m, x); }
};

// For Winograd's weight transform (conv2d/winograd.inl): g[rs] lane l = base[l*stride + tap[rs]]
// for lanes l < n (0 elsewhere): 8 (float) or 4 (double) output channels that are not adjacent in
// the weights.
inline void gather_taps(const float* base, int64_t stride, const int64_t tap[9], int n, __m256 g[9]) {
  const __m256 mask = _mm256_castsi256_ps(VecF32::mask(n));
  const __m256i idx =
      _mm256_mullo_epi32(_mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0), _mm256_set1_epi32(static_cast<int>(stride)));
  for (int rs = 0; rs < 9; ++rs) g[rs] = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), base + tap[rs], idx, mask, 4);
}
inline void gather_taps(const double* base, int64_t stride, const int64_t tap[9], int n, __m256d g[9]) {
  const __m256d mask = _mm256_castsi256_pd(VecF64::mask(n));
  const __m128i idx = _mm_mullo_epi32(_mm_set_epi32(3, 2, 1, 0), _mm_set1_epi32(static_cast<int>(stride)));
  for (int rs = 0; rs < 9; ++rs) g[rs] = _mm256_mask_i32gather_pd(_mm256_setzero_pd(), base + tap[rs], idx, mask, 8);
}

#undef FASTCONV_VEC_INLINE

// The traits of element type T (a family's entry points are templates on T).
template <typename T>
using VecOf = std::conditional_t<std::is_same_v<T, float>, VecF32, VecF64>;

}  // namespace avx2
}  // namespace fastconv

#define FASTCONV_SIMD_NS avx2
#define FASTCONV_SIMD_NAME "avx2"
