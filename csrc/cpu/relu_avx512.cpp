// ReLU forward/backward with AVX-512 (16 floats / 8 doubles per vector, masked tails).
// Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq, called only on CPUs that have them.
#include <immintrin.h>

#include "kernels.h"

namespace fastconv {
namespace avx512 {
namespace {
constexpr int64_t kChunk = 1 << 14;  // elements per OpenMP work item

inline __mmask16 tail16(int64_t left) { return left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1); }
inline __mmask8 tail8(int64_t left) { return left >= 8 ? 0xFF : (__mmask8)((1u << left) - 1); }
}  // namespace

// max(0, x) returns its second operand when either is NaN, so NaN propagates.
void relu_fwd_f32(int64_t n, const float* x, float* y) {
#pragma omp parallel for num_threads(num_threads()) schedule(static)
  for (int64_t b = 0; b < n; b += kChunk) {
    const int64_t e = b + kChunk < n ? b + kChunk : n;
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t i = b; i < e; i += 16) {
      const __mmask16 m = tail16(e - i);
      _mm512_mask_storeu_ps(y + i, m, _mm512_max_ps(zero, _mm512_maskz_loadu_ps(m, x + i)));
    }
  }
}

void relu_bwd_f32(int64_t n, const float* gy, const float* y, float* gx) {
#pragma omp parallel for num_threads(num_threads()) schedule(static)
  for (int64_t b = 0; b < n; b += kChunk) {
    const int64_t e = b + kChunk < n ? b + kChunk : n;
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t i = b; i < e; i += 16) {
      const __mmask16 m = tail16(e - i);
      const __mmask16 pos = _mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, y + i), zero, _CMP_GT_OQ);
      _mm512_mask_storeu_ps(gx + i, m, _mm512_maskz_loadu_ps(pos, gy + i));
    }
  }
}

void relu_fwd_f64(int64_t n, const double* x, double* y) {
#pragma omp parallel for num_threads(num_threads()) schedule(static)
  for (int64_t b = 0; b < n; b += kChunk) {
    const int64_t e = b + kChunk < n ? b + kChunk : n;
    const __m512d zero = _mm512_setzero_pd();
    for (int64_t i = b; i < e; i += 8) {
      const __mmask8 m = tail8(e - i);
      _mm512_mask_storeu_pd(y + i, m, _mm512_max_pd(zero, _mm512_maskz_loadu_pd(m, x + i)));
    }
  }
}

void relu_bwd_f64(int64_t n, const double* gy, const double* y, double* gx) {
#pragma omp parallel for num_threads(num_threads()) schedule(static)
  for (int64_t b = 0; b < n; b += kChunk) {
    const int64_t e = b + kChunk < n ? b + kChunk : n;
    const __m512d zero = _mm512_setzero_pd();
    for (int64_t i = b; i < e; i += 8) {
      const __mmask8 m = tail8(e - i);
      const __mmask8 pos = _mm512_mask_cmp_pd_mask(m, _mm512_maskz_loadu_pd(m, y + i), zero, _CMP_GT_OQ);
      _mm512_mask_storeu_pd(gx + i, m, _mm512_maskz_loadu_pd(pos, gy + i));
    }
  }
}

}  // namespace avx512
}  // namespace fastconv
