// Winograd F(4x4,3x3) conv2d forward, backward-data and backward-weight, avx512, fp32 and fp64: the template of
// conv2d/winograd.inl and winograd_bwd_weight.inl compiled with this file's flags. References: ref::conv2d_fwd,
// ref::conv2d_bwd_data and ref::conv2d_bwd_weight (conv2d/ref.cpp).
#include "../simd/avx512.h"

namespace fastconv {
namespace avx512 {
namespace {
// g[rs] lane l = base[l*stride + tap[rs]] for lanes l < n (0 elsewhere): 16 (float) or 8
// (double) output channels that are not adjacent in the weights.
inline void gather_taps(const float* base, int64_t stride, const int64_t tap[9], int n, __m512 g[9]) {
  const __mmask16 mask = static_cast<__mmask16>((1u << n) - 1);
  const __m512i idx = _mm512_mullo_epi32(
      _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
      _mm512_set1_epi32(static_cast<int>(stride)));
  for (int rs = 0; rs < 9; ++rs)
    g[rs] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mask, idx, base + tap[rs], 4);
}
inline void gather_taps(const double* base, int64_t stride, const int64_t tap[9], int n, __m512d g[9]) {
  const __mmask8 mask = static_cast<__mmask8>((1u << n) - 1);
  const __m256i idx = _mm256_mullo_epi32(_mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0),
                                         _mm256_set1_epi32(static_cast<int>(stride)));
  for (int rs = 0; rs < 9; ++rs)
    g[rs] = _mm512_mask_i32gather_pd(_mm512_setzero_pd(), mask, idx, base + tap[rs], 8);
}
}  // namespace
}  // namespace avx512
}  // namespace fastconv

#include "winograd_entries.inl"
