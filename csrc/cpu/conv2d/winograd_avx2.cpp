// Winograd F(4x4,3x3) conv2d forward, backward-data and backward-weight, avx2, fp32 and fp64: the template of
// conv2d/winograd.inl and winograd_bwd_weight.inl compiled with this file's flags. References: ref::conv2d_fwd,
// ref::conv2d_bwd_data and ref::conv2d_bwd_weight (conv2d/ref.cpp).
#include "../simd/avx2.h"

namespace fastconv {
namespace avx2 {
namespace {
// g[rs] lane l = base[l*stride + tap[rs]] for lanes l < n (0 elsewhere): 8 (float) or 4
// (double) output channels that are not adjacent in the weights.
inline void gather_taps(const float* base, int64_t stride, const int64_t tap[9], int n, __m256 g[9]) {
  const __m256 mask = _mm256_castsi256_ps(VecF32::mask(n));
  const __m256i idx = _mm256_mullo_epi32(_mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0),
                                         _mm256_set1_epi32(static_cast<int>(stride)));
  for (int rs = 0; rs < 9; ++rs)
    g[rs] = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), base + tap[rs], idx, mask, 4);
}
inline void gather_taps(const double* base, int64_t stride, const int64_t tap[9], int n, __m256d g[9]) {
  const __m256d mask = _mm256_castsi256_pd(VecF64::mask(n));
  const __m128i idx = _mm_mullo_epi32(_mm_set_epi32(3, 2, 1, 0), _mm_set1_epi32(static_cast<int>(stride)));
  for (int rs = 0; rs < 9; ++rs)
    g[rs] = _mm256_mask_i32gather_pd(_mm256_setzero_pd(), base + tap[rs], idx, mask, 8);
}
}  // namespace
}  // namespace avx2
}  // namespace fastconv

#include "winograd_entries.inl"
