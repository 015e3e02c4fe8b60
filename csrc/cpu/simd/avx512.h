// AVX-512 vector traits for the templated kernels (conv2d/*.inl, linear/linear.inl, eltwise/eltwise.inl).
// Only included by the families' avx512.cpp files, which are compiled with -mavx512f/bw/vl/dq.
//
// Register tile (conv2d/microkernel.inl, `tile_kernel`): NJ broadcast rows x NV vectors of output
// channels. fp32: 14 x 2 zmm = 14 pixels x 32 channels = 28 accumulators + 2 weight vectors
// + 1 broadcast = 31 of the 32 zmm registers. fp64 uses the same 14 x 2 shape (16 channels).
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <type_traits>

namespace fastconv {
namespace avx512 {

#define FASTCONV_VEC_INLINE static inline __attribute__((always_inline))

struct VecF32 {
  using T = float;
  using reg = __m512;
  static constexpr int W = 16;     // lanes
  static constexpr int NJ = 14;    // broadcast rows in the register tile
  static constexpr int NV = 2;     // vectors per row
  static constexpr int REGS = 32;  // vector registers
  static constexpr const char* name = "f32";
  FASTCONV_VEC_INLINE reg zero() { return _mm512_setzero_ps(); }
  FASTCONV_VEC_INLINE reg load(const T* p) { return _mm512_loadu_ps(p); }
  FASTCONV_VEC_INLINE reg load_n(const T* p, int n) { return _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p); }
  FASTCONV_VEC_INLINE reg set1(T v) { return _mm512_set1_ps(v); }
  FASTCONV_VEC_INLINE reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  FASTCONV_VEC_INLINE reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  // max(0, a) returns `a` when it is NaN (second operand), so NaN propagates like the reference.
  FASTCONV_VEC_INLINE reg relu(reg a) { return _mm512_max_ps(_mm512_setzero_ps(), a); }
  FASTCONV_VEC_INLINE void store(T* p, reg v) { _mm512_storeu_ps(p, v); }
  FASTCONV_VEC_INLINE void stream(T* p, reg v) { _mm512_stream_ps(p, v); }  // p 64-byte aligned
  FASTCONV_VEC_INLINE void store_n(T* p, reg v, int n) { _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), v); }
  // Elementwise math for the activations (simd/vector_math.h).
  FASTCONV_VEC_INLINE reg sub(reg a, reg b) { return _mm512_sub_ps(a, b); }
  FASTCONV_VEC_INLINE reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  FASTCONV_VEC_INLINE reg div(reg a, reg b) { return _mm512_div_ps(a, b); }
  FASTCONV_VEC_INLINE reg negate(reg a) { return _mm512_xor_ps(a, _mm512_set1_ps(-0.0f)); }
  FASTCONV_VEC_INLINE reg abs(reg a) { return _mm512_andnot_ps(_mm512_set1_ps(-0.0f), a); }
  FASTCONV_VEC_INLINE reg negative_abs(reg a) { return _mm512_or_ps(a, _mm512_set1_ps(-0.0f)); }
  FASTCONV_VEC_INLINE reg with_sign_of(reg magnitude, reg s) {  // magnitude >= 0
    return _mm512_or_ps(magnitude, _mm512_and_ps(s, _mm512_set1_ps(-0.0f)));
  }
  FASTCONV_VEC_INLINE reg min(reg c, reg x) { return _mm512_min_ps(c, x); }  // x when x is NaN
  FASTCONV_VEC_INLINE reg max(reg c, reg x) { return _mm512_max_ps(c, x); }
  FASTCONV_VEC_INLINE reg shift_into_exponent(reg t) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(t), 23));
  }
  FASTCONV_VEC_INLINE __mmask16 positive(reg x) { return _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ); }
  FASTCONV_VEC_INLINE __mmask16 nonnegative(reg x) { return _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ); }
  FASTCONV_VEC_INLINE reg select(__mmask16 m, reg if_true, reg if_false) {
    return _mm512_mask_blend_ps(m, if_false, if_true);
  }
  // x > 0 or NaN (the lanes ReLU passes through); keep(m, x): x in the lanes of m, else +0
  FASTCONV_VEC_INLINE __mmask16 positive_or_nan(reg x) {
    return _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_NLE_UQ);
  }
  FASTCONV_VEC_INLINE reg keep(__mmask16 m, reg x) { return _mm512_maskz_mov_ps(m, x); }
};

struct VecF64 {
  using T = double;
  using reg = __m512d;
  static constexpr int W = 8;
  static constexpr int NJ = 14;
  static constexpr int NV = 2;
  static constexpr int REGS = 32;
  static constexpr const char* name = "f64";
  FASTCONV_VEC_INLINE reg zero() { return _mm512_setzero_pd(); }
  FASTCONV_VEC_INLINE reg load(const T* p) { return _mm512_loadu_pd(p); }
  FASTCONV_VEC_INLINE reg load_n(const T* p, int n) { return _mm512_maskz_loadu_pd((__mmask8)((1u << n) - 1), p); }
  FASTCONV_VEC_INLINE reg set1(T v) { return _mm512_set1_pd(v); }
  FASTCONV_VEC_INLINE reg fma(reg a, reg b, reg c) { return _mm512_fmadd_pd(a, b, c); }
  FASTCONV_VEC_INLINE reg add(reg a, reg b) { return _mm512_add_pd(a, b); }
  FASTCONV_VEC_INLINE reg relu(reg a) { return _mm512_max_pd(_mm512_setzero_pd(), a); }
  FASTCONV_VEC_INLINE void store(T* p, reg v) { _mm512_storeu_pd(p, v); }
  FASTCONV_VEC_INLINE void stream(T* p, reg v) { _mm512_stream_pd(p, v); }  // p 64-byte aligned
  FASTCONV_VEC_INLINE void store_n(T* p, reg v, int n) { _mm512_mask_storeu_pd(p, (__mmask8)((1u << n) - 1), v); }
  // Elementwise math for the activations (simd/vector_math.h).
  FASTCONV_VEC_INLINE reg sub(reg a, reg b) { return _mm512_sub_pd(a, b); }
  FASTCONV_VEC_INLINE reg mul(reg a, reg b) { return _mm512_mul_pd(a, b); }
  FASTCONV_VEC_INLINE reg div(reg a, reg b) { return _mm512_div_pd(a, b); }
  FASTCONV_VEC_INLINE reg negate(reg a) { return _mm512_xor_pd(a, _mm512_set1_pd(-0.0)); }
  FASTCONV_VEC_INLINE reg abs(reg a) { return _mm512_andnot_pd(_mm512_set1_pd(-0.0), a); }
  FASTCONV_VEC_INLINE reg negative_abs(reg a) { return _mm512_or_pd(a, _mm512_set1_pd(-0.0)); }
  FASTCONV_VEC_INLINE reg with_sign_of(reg magnitude, reg s) {  // magnitude >= 0
    return _mm512_or_pd(magnitude, _mm512_and_pd(s, _mm512_set1_pd(-0.0)));
  }
  FASTCONV_VEC_INLINE reg min(reg c, reg x) { return _mm512_min_pd(c, x); }  // x when x is NaN
  FASTCONV_VEC_INLINE reg max(reg c, reg x) { return _mm512_max_pd(c, x); }
  FASTCONV_VEC_INLINE reg shift_into_exponent(reg t) {
    return _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_castpd_si512(t), 52));
  }
  FASTCONV_VEC_INLINE __mmask8 positive(reg x) { return _mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_GT_OQ); }
  FASTCONV_VEC_INLINE __mmask8 nonnegative(reg x) { return _mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_GE_OQ); }
  FASTCONV_VEC_INLINE reg select(__mmask8 m, reg if_true, reg if_false) {
    return _mm512_mask_blend_pd(m, if_false, if_true);
  }
  // x > 0 or NaN (the lanes ReLU passes through); keep(m, x): x in the lanes of m, else +0
  FASTCONV_VEC_INLINE __mmask8 positive_or_nan(reg x) {
    return _mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_NLE_UQ);
  }
  FASTCONV_VEC_INLINE reg keep(__mmask8 m, reg x) { return _mm512_maskz_mov_pd(m, x); }
};

// For Winograd's weight transform (conv2d/winograd.inl): g[rs] lane l = base[l*stride + tap[rs]]
// for lanes l < n (0 elsewhere): 16 (float) or 8 (double) output channels that are not adjacent in
// the weights.
inline void gather_taps(const float* base, int64_t stride, const int64_t tap[9], int n, __m512 g[9]) {
  const __mmask16 mask = static_cast<__mmask16>((1u << n) - 1);
  const __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                         _mm512_set1_epi32(static_cast<int>(stride)));
  for (int rs = 0; rs < 9; ++rs) g[rs] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mask, idx, base + tap[rs], 4);
}
inline void gather_taps(const double* base, int64_t stride, const int64_t tap[9], int n, __m512d g[9]) {
  const __mmask8 mask = static_cast<__mmask8>((1u << n) - 1);
  const __m256i idx =
      _mm256_mullo_epi32(_mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0), _mm256_set1_epi32(static_cast<int>(stride)));
  for (int rs = 0; rs < 9; ++rs) g[rs] = _mm512_mask_i32gather_pd(_mm512_setzero_pd(), mask, idx, base + tap[rs], 8);
}

#undef FASTCONV_VEC_INLINE

// The traits of element type T (a family's entry points are templates on T).
template <typename T>
using VecOf = std::conditional_t<std::is_same_v<T, float>, VecF32, VecF64>;

}  // namespace avx512
}  // namespace fastconv

#define FASTCONV_SIMD_NS avx512
#define FASTCONV_SIMD_NAME "avx512"
