// AVX2 lanes for max pooling's argmax (pool2d/maxpool.inl, which lists the operations): values
// with the index of the window cell each lane holds, masks, gathers, deinterleaving loads and
// index stores (8 floats / 4 doubles per ymm; lane masks are vectors, tails use vmaskmov loads and
// stores and masked gathers).
// Only included by pool2d/avx2.cpp, after simd/avx2.h.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <type_traits>

namespace fastconv {
namespace avx2 {

// 8 floats; winner indices in 8 int32 lanes, widened to int64 when stored.
struct ArgmaxF32 {
  using T = float;
  using Vec = __m256;
  using M = __m256;  // all-ones / all-zeros per lane
  using I = __m256i;
  static constexpr int64_t L = 8;

  static __m256i lanes() { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }
  static M ones() { return _mm256_castsi256_ps(_mm256_set1_epi32(-1)); }
  static M tail(int64_t n) { return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), lanes())); }
  static Vec zero() { return _mm256_setzero_ps(); }
  static Vec load(const T* p) { return _mm256_loadu_ps(p); }
  static Vec load(const T* p, M m) { return _mm256_maskload_ps(p, _mm256_castps_si256(m)); }
  static Vec gather(const T* p, int64_t s, M m) {
    const __m256i off = _mm256_mullo_epi32(lanes(), _mm256_set1_epi32((int)s));
    return _mm256_mask_i32gather_ps(zero(), p, off, m, 4);
  }
  // a = p[0..8), b = p[8..16): shuffle picks the even (odd) floats of each 128-bit half, the
  // 64-bit permute puts the halves in order.
  static Vec evens(Vec a, Vec b) {
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
  }
  static Vec odds(Vec a, Vec b) {
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
  }
  static void deinterleave(const T* p, Vec* e, Vec* o) {
    const Vec a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
    *e = evens(a, b);
    *o = odds(a, b);
  }
  static Vec stride2(const T* p) { return evens(_mm256_loadu_ps(p), load(p + 8, tail(7))); }
  // c > best, or c is NaN; never when best is already NaN.
  static M replaces(Vec c, Vec best) {
    return _mm256_and_ps(_mm256_cmp_ps(c, best, _CMP_NLE_UQ), _mm256_cmp_ps(best, best, _CMP_ORD_Q));
  }
  static Vec select(M m, Vec a, Vec b) { return _mm256_blendv_ps(a, b, m); }
  static I select(M m, I a, I b) { return _mm256_blendv_epi8(a, b, _mm256_castps_si256(m)); }
  static I iota(int64_t base, int64_t step) {
    return _mm256_add_epi32(_mm256_set1_epi32((int)base), _mm256_mullo_epi32(lanes(), _mm256_set1_epi32((int)step)));
  }
  static I broadcast_index(int64_t i) { return _mm256_set1_epi32((int)i); }
  static void store(T* p, Vec v) { _mm256_storeu_ps(p, v); }
  static void store(T* p, Vec v, M m) { _mm256_maskstore_ps(p, _mm256_castps_si256(m), v); }
  static __m256i widen_lo(__m256i v) { return _mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)); }
  static __m256i widen_hi(__m256i v) { return _mm256_cvtepi32_epi64(_mm256_extracti128_si256(v, 1)); }
  static void store_index(int64_t* p, I i) {
    _mm256_storeu_si256((__m256i*)p, widen_lo(i));
    _mm256_storeu_si256((__m256i*)(p + 4), widen_hi(i));
  }
  static void store_index(int64_t* p, I i, M m) {
    const __m256i mi = _mm256_castps_si256(m);  // sign-extending -1 / 0 gives 64-bit lane masks
    _mm256_maskstore_epi64((long long*)p, widen_lo(mi), widen_lo(i));
    _mm256_maskstore_epi64((long long*)(p + 4), widen_hi(mi), widen_hi(i));
  }
  // Non-temporal stores in 16-byte pieces (NumPy arrays are 16-byte aligned).
  static void stream(T* p, Vec v) {
    _mm_stream_ps(p, _mm256_castps256_ps128(v));
    _mm_stream_ps(p + 4, _mm256_extractf128_ps(v, 1));
  }
  static void stream64(int64_t* p, __m256i v) {
    _mm_stream_si128((__m128i*)p, _mm256_castsi256_si128(v));
    _mm_stream_si128((__m128i*)(p + 2), _mm256_extracti128_si256(v, 1));
  }
  static void stream_index(int64_t* p, I i) {
    stream64(p, widen_lo(i));
    stream64(p + 4, widen_hi(i));
  }
  struct LI {
    __m256i lo, hi;
  };  // 4 + 4 int64 indices
  static LI load_index(const int64_t* p) {
    return {_mm256_loadu_si256((const __m256i*)p), _mm256_loadu_si256((const __m256i*)(p + 4))};
  }
  static LI load_index(const int64_t* p, M m) {
    const __m256i mi = _mm256_castps_si256(m);
    return {_mm256_maskload_epi64((const long long*)p, widen_lo(mi)),
            _mm256_maskload_epi64((const long long*)(p + 4), widen_hi(mi))};
  }
  // 64-bit compares, then the low dword of each 64-bit lane mask, lo half then hi half.
  static M index_eq(const LI& li, int64_t i) {
    const __m256i v = _mm256_set1_epi64x(i), pick = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
    const __m256i lo = _mm256_permutevar8x32_epi32(_mm256_cmpeq_epi64(li.lo, v), pick);
    const __m256i hi = _mm256_permutevar8x32_epi32(_mm256_cmpeq_epi64(li.hi, v), pick);
    return _mm256_castsi256_ps(_mm256_blend_epi32(lo, hi, 0xF0));
  }
  static M none() { return _mm256_setzero_ps(); }
  static M either(M a, M b) { return _mm256_or_ps(a, b); }
  static M both(M a, M b) { return _mm256_and_ps(a, b); }
  static bool same(M a, M b) { return _mm256_movemask_ps(a) == _mm256_movemask_ps(b); }
  static Vec keep(M m, Vec v) { return _mm256_and_ps(m, v); }
  static Vec plus_zero(Vec v) { return _mm256_add_ps(zero(), v); }
};

// 4 doubles; winner indices in 4 int64 lanes.
struct ArgmaxF64 {
  using T = double;
  using Vec = __m256d;
  using M = __m256d;
  using I = __m256i;
  static constexpr int64_t L = 4;

  static M ones() { return _mm256_castsi256_pd(_mm256_set1_epi64x(-1)); }
  static M tail(int64_t n) {
    return _mm256_castsi256_pd(_mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3)));
  }
  static Vec zero() { return _mm256_setzero_pd(); }
  static Vec load(const T* p) { return _mm256_loadu_pd(p); }
  static Vec load(const T* p, M m) { return _mm256_maskload_pd(p, _mm256_castpd_si256(m)); }
  static Vec gather(const T* p, int64_t s, M m) {
    const __m128i off = _mm_mullo_epi32(_mm_setr_epi32(0, 1, 2, 3), _mm_set1_epi32((int)s));
    return _mm256_mask_i32gather_pd(zero(), p, off, m, 8);
  }
  // unpacklo(a, b) = a0 b0 a2 b2; the 64-bit permute (0,2,1,3) makes it a0 a2 b0 b2.
  static Vec evens(Vec a, Vec b) { return _mm256_permute4x64_pd(_mm256_unpacklo_pd(a, b), 0xD8); }
  static Vec odds(Vec a, Vec b) { return _mm256_permute4x64_pd(_mm256_unpackhi_pd(a, b), 0xD8); }
  static void deinterleave(const T* p, Vec* e, Vec* o) {
    const Vec a = _mm256_loadu_pd(p), b = _mm256_loadu_pd(p + 4);
    *e = evens(a, b);
    *o = odds(a, b);
  }
  static Vec stride2(const T* p) { return evens(_mm256_loadu_pd(p), load(p + 4, tail(3))); }
  static M replaces(Vec c, Vec best) {
    return _mm256_and_pd(_mm256_cmp_pd(c, best, _CMP_NLE_UQ), _mm256_cmp_pd(best, best, _CMP_ORD_Q));
  }
  static Vec select(M m, Vec a, Vec b) { return _mm256_blendv_pd(a, b, m); }
  static I select(M m, I a, I b) { return _mm256_blendv_epi8(a, b, _mm256_castpd_si256(m)); }
  static I iota(int64_t base, int64_t step) {
    return _mm256_setr_epi64x(base, base + step, base + 2 * step, base + 3 * step);
  }
  static I broadcast_index(int64_t i) { return _mm256_set1_epi64x(i); }
  static void store(T* p, Vec v) { _mm256_storeu_pd(p, v); }
  static void store(T* p, Vec v, M m) { _mm256_maskstore_pd(p, _mm256_castpd_si256(m), v); }
  static void store_index(int64_t* p, I i) { _mm256_storeu_si256((__m256i*)p, i); }
  static void store_index(int64_t* p, I i, M m) { _mm256_maskstore_epi64((long long*)p, _mm256_castpd_si256(m), i); }
  using LI = __m256i;
  static LI load_index(const int64_t* p) { return _mm256_loadu_si256((const __m256i*)p); }
  static LI load_index(const int64_t* p, M m) {
    return _mm256_maskload_epi64((const long long*)p, _mm256_castpd_si256(m));
  }
  static M index_eq(LI li, int64_t i) { return _mm256_castsi256_pd(_mm256_cmpeq_epi64(li, _mm256_set1_epi64x(i))); }
  static M none() { return _mm256_setzero_pd(); }
  static M either(M a, M b) { return _mm256_or_pd(a, b); }
  static M both(M a, M b) { return _mm256_and_pd(a, b); }
  static bool same(M a, M b) { return _mm256_movemask_pd(a) == _mm256_movemask_pd(b); }
  static Vec keep(M m, Vec v) { return _mm256_and_pd(m, v); }
  static Vec plus_zero(Vec v) { return _mm256_add_pd(zero(), v); }
  static void stream(T* p, Vec v) {  // 16-byte pieces, see ArgmaxF32
    _mm_stream_pd(p, _mm256_castpd256_pd128(v));
    _mm_stream_pd(p + 2, _mm256_extractf128_pd(v, 1));
  }
  static void stream_index(int64_t* p, I i) { ArgmaxF32::stream64(p, i); }
};

template <typename T>
using ArgmaxOf = std::conditional_t<std::is_same_v<T, float>, ArgmaxF32, ArgmaxF64>;

}  // namespace avx2
}  // namespace fastconv
