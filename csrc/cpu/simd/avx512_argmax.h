// AVX-512 lanes for max pooling's argmax (pool2d/maxpool.inl, which lists the operations): values
// with the index of the window cell each lane holds, masks, gathers, deinterleaving loads and
// index stores (16 floats / 8 doubles per zmm, k-mask tails).
// Only included by pool2d/avx512.cpp, after simd/avx512.h.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <type_traits>

namespace fastconv {
namespace avx512 {

// 16 floats; winner indices in 16 int32 lanes, widened to int64 when stored.
struct ArgmaxF32 {
  using T = float;
  using Vec = __m512;
  using M = __mmask16;
  using I = __m512i;
  static constexpr int64_t L = 16;

  static M ones() { return 0xFFFF; }
  static M tail(int64_t n) { return (M)((1u << n) - 1); }
  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec load(const T* p) { return _mm512_loadu_ps(p); }
  static Vec load(const T* p, M m) { return _mm512_maskz_loadu_ps(m, p); }
  static I lanes() { return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
  static Vec gather(const T* p, int64_t s, M m) {
    const I off = _mm512_mullo_epi32(lanes(), _mm512_set1_epi32((int)s));
    return _mm512_mask_i32gather_ps(zero(), m, off, p, 4);
  }
  static I even() { return _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30); }
  static I odd() { return _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31); }
  static void deinterleave(const T* p, Vec* e, Vec* o) {
    const Vec a = _mm512_loadu_ps(p), b = _mm512_loadu_ps(p + 16);
    *e = _mm512_permutex2var_ps(a, even(), b);
    *o = _mm512_permutex2var_ps(a, odd(), b);
  }
  static Vec stride2(const T* p) {
    const Vec a = _mm512_loadu_ps(p), b = _mm512_maskz_loadu_ps(0x7FFF, p + 16);
    return _mm512_permutex2var_ps(a, even(), b);
  }
  // c > best, or c is NaN; never when best is already NaN.
  static M replaces(Vec c, Vec best) {
    return _mm512_mask_cmp_ps_mask(_mm512_cmp_ps_mask(best, best, _CMP_ORD_Q), c, best, _CMP_NLE_UQ);
  }
  static Vec select(M m, Vec a, Vec b) { return _mm512_mask_mov_ps(a, m, b); }
  static I select(M m, I a, I b) { return _mm512_mask_mov_epi32(a, m, b); }
  static I iota(int64_t base, int64_t step) {
    return _mm512_add_epi32(_mm512_set1_epi32((int)base), _mm512_mullo_epi32(lanes(), _mm512_set1_epi32((int)step)));
  }
  static I broadcast_index(int64_t i) { return _mm512_set1_epi32((int)i); }
  static void store(T* p, Vec v) { _mm512_storeu_ps(p, v); }
  static void store(T* p, Vec v, M m) { _mm512_mask_storeu_ps(p, m, v); }
  static void store_index(int64_t* p, I i) {
    _mm512_storeu_si512(p, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(i)));
    _mm512_storeu_si512(p + 8, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(i, 1)));
  }
  static void store_index(int64_t* p, I i, M m) {
    _mm512_mask_storeu_epi64(p, (__mmask8)(m & 0xFF), _mm512_cvtepi32_epi64(_mm512_castsi512_si256(i)));
    _mm512_mask_storeu_epi64(p + 8, (__mmask8)(m >> 8), _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(i, 1)));
  }
  using LI = __m512i;  // int32 lanes, saturated: an index >= 2^31 or < 0 matches nothing
  static LI narrow(__m512i lo, __m512i hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtsepi64_epi32(lo)), _mm512_cvtsepi64_epi32(hi), 1);
  }
  static LI load_index(const int64_t* p) { return narrow(_mm512_loadu_si512(p), _mm512_loadu_si512(p + 8)); }
  static LI load_index(const int64_t* p, M m) {
    return narrow(_mm512_maskz_loadu_epi64((__mmask8)(m & 0xFF), p),
                  _mm512_maskz_loadu_epi64((__mmask8)(m >> 8), p + 8));
  }
  static M index_eq(LI li, int64_t i) { return _mm512_cmpeq_epi32_mask(li, _mm512_set1_epi32((int)i)); }
  static M none() { return 0; }
  static M either(M a, M b) { return a | b; }
  static M both(M a, M b) { return a & b; }
  static bool same(M a, M b) { return a == b; }
  static Vec keep(M m, Vec v) { return _mm512_maskz_mov_ps(m, v); }
  static Vec plus_zero(Vec v) { return _mm512_add_ps(zero(), v); }
  // Non-temporal stores in 16-byte pieces: NumPy arrays are 16-byte, not 64-byte, aligned; the
  // four pieces of a line meet in one write-combining buffer.
  static void stream(T* p, Vec v) {
    _mm_stream_ps(p, _mm512_castps512_ps128(v));
    _mm_stream_ps(p + 4, _mm512_extractf32x4_ps(v, 1));
    _mm_stream_ps(p + 8, _mm512_extractf32x4_ps(v, 2));
    _mm_stream_ps(p + 12, _mm512_extractf32x4_ps(v, 3));
  }
  static void stream64(int64_t* p, __m512i v) {
    _mm_stream_si128((__m128i*)p, _mm512_castsi512_si128(v));
    _mm_stream_si128((__m128i*)(p + 2), _mm512_extracti32x4_epi32(v, 1));
    _mm_stream_si128((__m128i*)(p + 4), _mm512_extracti32x4_epi32(v, 2));
    _mm_stream_si128((__m128i*)(p + 6), _mm512_extracti32x4_epi32(v, 3));
  }
  static void stream_index(int64_t* p, I i) {
    stream64(p, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(i)));
    stream64(p + 8, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(i, 1)));
  }
};

// 8 doubles; winner indices in 8 int64 lanes.
struct ArgmaxF64 {
  using T = double;
  using Vec = __m512d;
  using M = __mmask8;
  using I = __m512i;
  static constexpr int64_t L = 8;

  static M ones() { return 0xFF; }
  static M tail(int64_t n) { return (M)((1u << n) - 1); }
  static Vec zero() { return _mm512_setzero_pd(); }
  static Vec load(const T* p) { return _mm512_loadu_pd(p); }
  static Vec load(const T* p, M m) { return _mm512_maskz_loadu_pd(m, p); }
  static Vec gather(const T* p, int64_t s, M m) {
    const __m256i off = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)s));
    return _mm512_mask_i32gather_pd(zero(), m, off, p, 8);
  }
  static __m512i even() { return _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14); }
  static __m512i odd() { return _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15); }
  static void deinterleave(const T* p, Vec* e, Vec* o) {
    const Vec a = _mm512_loadu_pd(p), b = _mm512_loadu_pd(p + 8);
    *e = _mm512_permutex2var_pd(a, even(), b);
    *o = _mm512_permutex2var_pd(a, odd(), b);
  }
  static Vec stride2(const T* p) {
    const Vec a = _mm512_loadu_pd(p), b = _mm512_maskz_loadu_pd(0x7F, p + 8);
    return _mm512_permutex2var_pd(a, even(), b);
  }
  static M replaces(Vec c, Vec best) {
    return _mm512_mask_cmp_pd_mask(_mm512_cmp_pd_mask(best, best, _CMP_ORD_Q), c, best, _CMP_NLE_UQ);
  }
  static Vec select(M m, Vec a, Vec b) { return _mm512_mask_mov_pd(a, m, b); }
  static I select(M m, I a, I b) { return _mm512_mask_mov_epi64(a, m, b); }
  static I iota(int64_t base, int64_t step) {
    return _mm512_add_epi64(_mm512_set1_epi64(base),
                            _mm512_mullo_epi64(_mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7), _mm512_set1_epi64(step)));
  }
  static I broadcast_index(int64_t i) { return _mm512_set1_epi64(i); }
  static void store(T* p, Vec v) { _mm512_storeu_pd(p, v); }
  static void store(T* p, Vec v, M m) { _mm512_mask_storeu_pd(p, m, v); }
  static void store_index(int64_t* p, I i) { _mm512_storeu_si512(p, i); }
  static void store_index(int64_t* p, I i, M m) { _mm512_mask_storeu_epi64(p, m, i); }
  using LI = __m512i;
  static LI load_index(const int64_t* p) { return _mm512_loadu_si512(p); }
  static LI load_index(const int64_t* p, M m) { return _mm512_maskz_loadu_epi64(m, p); }
  static M index_eq(LI li, int64_t i) { return _mm512_cmpeq_epi64_mask(li, _mm512_set1_epi64(i)); }
  static M none() { return 0; }
  static M either(M a, M b) { return a | b; }
  static M both(M a, M b) { return a & b; }
  static bool same(M a, M b) { return a == b; }
  static Vec keep(M m, Vec v) { return _mm512_maskz_mov_pd(m, v); }
  static Vec plus_zero(Vec v) { return _mm512_add_pd(zero(), v); }
  static void stream(T* p, Vec v) {  // 16-byte pieces, see ArgmaxF32
    _mm_stream_pd(p, _mm512_castpd512_pd128(v));
    _mm_stream_pd(p + 2, _mm512_extractf64x2_pd(v, 1));
    _mm_stream_pd(p + 4, _mm512_extractf64x2_pd(v, 2));
    _mm_stream_pd(p + 6, _mm512_extractf64x2_pd(v, 3));
  }
  static void stream_index(int64_t* p, I i) { ArgmaxF32::stream64(p, i); }
};

template <typename T>
using ArgmaxOf = std::conditional_t<std::is_same_v<T, float>, ArgmaxF32, ArgmaxF64>;

}  // namespace avx512
}  // namespace fastconv
