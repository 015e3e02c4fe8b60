// ReLU forward/backward with AVX2 (8 floats / 4 doubles per vector). Compiled with -mavx2 -mfma
// and only called after the runtime check says the CPU supports it.
#include <immintrin.h>

#include "kernels.h"

namespace fastconv {
namespace avx2 {
namespace {
constexpr int64_t kChunk = 1 << 14;  // elements per OpenMP work item: 64 KiB of floats
}

// max(0, x) returns its second operand when either is NaN, so NaN propagates.
void relu_fwd_f32(int64_t n, const float* x, float* y) {
#pragma omp parallel for num_threads(num_threads()) schedule(static)
  for (int64_t b = 0; b < n; b += kChunk) {
    const int64_t e = b + kChunk < n ? b + kChunk : n;
    const __m256 zero = _mm256_setzero_ps();
    int64_t i = b;
    for (; i + 8 <= e; i += 8) _mm256_storeu_ps(y + i, _mm256_max_ps(zero, _mm256_loadu_ps(x + i)));
    for (; i < e; ++i) y[i] = x[i] > 0.f || x[i] != x[i] ? x[i] : 0.f;
  }
}

void relu_bwd_f32(int64_t n, const float* gy, const float* y, float* gx) {
#pragma omp parallel for num_threads(num_threads()) schedule(static)
  for (int64_t b = 0; b < n; b += kChunk) {
    const int64_t e = b + kChunk < n ? b + kChunk : n;
    const __m256 zero = _mm256_setzero_ps();
    int64_t i = b;
    for (; i + 8 <= e; i += 8) {
      const __m256 pos = _mm256_cmp_ps(_mm256_loadu_ps(y + i), zero, _CMP_GT_OQ);
      _mm256_storeu_ps(gx + i, _mm256_and_ps(pos, _mm256_loadu_ps(gy + i)));
    }
    for (; i < e; ++i) gx[i] = y[i] > 0.f ? gy[i] : 0.f;
  }
}

void relu_fwd_f64(int64_t n, const double* x, double* y) {
#pragma omp parallel for num_threads(num_threads()) schedule(static)
  for (int64_t b = 0; b < n; b += kChunk) {
    const int64_t e = b + kChunk < n ? b + kChunk : n;
    const __m256d zero = _mm256_setzero_pd();
    int64_t i = b;
    for (; i + 4 <= e; i += 4) _mm256_storeu_pd(y + i, _mm256_max_pd(zero, _mm256_loadu_pd(x + i)));
    for (; i < e; ++i) y[i] = x[i] > 0.0 || x[i] != x[i] ? x[i] : 0.0;
  }
}

void relu_bwd_f64(int64_t n, const double* gy, const double* y, double* gx) {
#pragma omp parallel for num_threads(num_threads()) schedule(static)
  for (int64_t b = 0; b < n; b += kChunk) {
    const int64_t e = b + kChunk < n ? b + kChunk : n;
    const __m256d zero = _mm256_setzero_pd();
    int64_t i = b;
    for (; i + 4 <= e; i += 4) {
      const __m256d pos = _mm256_cmp_pd(_mm256_loadu_pd(y + i), zero, _CMP_GT_OQ);
      _mm256_storeu_pd(gx + i, _mm256_and_pd(pos, _mm256_loadu_pd(gy + i)));
    }
    for (; i < e; ++i) gx[i] = y[i] > 0.0 ? gy[i] : 0.0;
  }
}

}  // namespace avx2
}  // namespace fastconv
