// ReLU forward/backward with AVX2 (8 floats / 4 doubles per ymm). Compiled with -mavx2 -mfma
// and only called after the runtime check says the CPU supports it. Reference: relu_ref.cpp.
//
// Same plan as relu_avx512.cpp: contiguous chunks of whole cache lines (about 8 per thread), 4 vectors per loop trip,
// streaming (non-temporal) stores when the output exceeds kStreamBytes, after a scalar head
// that brings the output to a 32-byte boundary. y may alias x.
#include <immintrin.h>

#include <cstdint>

#include "kernels.h"
#include "loops.h"

namespace fastconv {
namespace avx2 {
namespace {

constexpr int64_t kStreamBytes = int64_t(16) << 20;  // VGG16 batch-1 activations (<= 12.8 MB) stay cached

// This file's VecF32 / VecF64: the few vector operations the ReLU loops need.
struct VecF32 {
  using T = float;
  using V = __m256;
  static constexpr int64_t L = 8;
  static V load(const T* p) { return _mm256_loadu_ps(p); }
  static void store(T* p, V v) { _mm256_storeu_ps(p, v); }
  static void stream(T* p, V v) { _mm256_stream_ps(p, v); }
  // x where x > 0 or x is NaN, else +0 (not max(0, x): vmaxps(0, -0) returns -0)
  static V max0(V x) { return _mm256_and_ps(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NLE_UQ), x); }
  static V pass_if_positive(V g, V y) { return _mm256_and_ps(_mm256_cmp_ps(y, _mm256_setzero_ps(), _CMP_GT_OQ), g); }
};
struct VecF64 {
  using T = double;
  using V = __m256d;
  static constexpr int64_t L = 4;
  static V load(const T* p) { return _mm256_loadu_pd(p); }
  static void store(T* p, V v) { _mm256_storeu_pd(p, v); }
  static void stream(T* p, V v) { _mm256_stream_pd(p, v); }
  static V max0(V x) { return _mm256_and_pd(_mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_NLE_UQ), x); }
  static V pass_if_positive(V g, V y) { return _mm256_and_pd(_mm256_cmp_pd(y, _mm256_setzero_pd(), _CMP_GT_OQ), g); }
};

template <class F, bool kStream, class Op, class ScalarOp>
void elementwise_slice(const typename F::T* a, const typename F::T* b, typename F::T* out,
                       int64_t begin, int64_t end, const Op& op, const ScalarOp& scalar) {
  int64_t i = begin;
  for (; i < end && ((uintptr_t)(out + i) & 31); ++i) out[i] = scalar(a[i], b[i]);
  for (; i + 4 * F::L <= end; i += 4 * F::L) {
    const typename F::V r0 = op(F::load(a + i), F::load(b + i));
    const typename F::V r1 = op(F::load(a + i + F::L), F::load(b + i + F::L));
    const typename F::V r2 = op(F::load(a + i + 2 * F::L), F::load(b + i + 2 * F::L));
    const typename F::V r3 = op(F::load(a + i + 3 * F::L), F::load(b + i + 3 * F::L));
    if (kStream) {
      F::stream(out + i, r0); F::stream(out + i + F::L, r1);
      F::stream(out + i + 2 * F::L, r2); F::stream(out + i + 3 * F::L, r3);
    } else {
      F::store(out + i, r0); F::store(out + i + F::L, r1);
      F::store(out + i + 2 * F::L, r2); F::store(out + i + 3 * F::L, r3);
    }
  }
  for (; i < end; ++i) out[i] = scalar(a[i], b[i]);
  if (kStream) _mm_sfence();  // streaming stores are weakly ordered: publish before returning
}

template <class F, class Op, class ScalarOp>
void elementwise(int64_t n, const typename F::T* a, const typename F::T* b, typename F::T* out,
                 const Op& op, const ScalarOp& scalar) {
  const bool stream = n * (int64_t)sizeof(typename F::T) >= kStreamBytes;
  parallel_for_lines(n, [&](int64_t begin, int64_t end) {
    if (stream) elementwise_slice<F, true>(a, b, out, begin, end, op, scalar);
    else elementwise_slice<F, false>(a, b, out, begin, end, op, scalar);
  });
}

template <class T>
T relu_scalar(T x, T) { return x > T(0) || x != x ? x : T(0); }
template <class T>
T relu_grad_scalar(T g, T y) { return y > T(0) ? g : T(0); }

}  // namespace

// x -> y = max(x, 0), NaN kept (y may be x)
void relu_fwd_f32(int64_t n, const float* x, float* y) {
  elementwise<VecF32>(n, x, x, y, [](__m256 v, __m256) { return VecF32::max0(v); }, relu_scalar<float>);
}
void relu_fwd_f64(int64_t n, const double* x, double* y) {
  elementwise<VecF64>(n, x, x, y, [](__m256d v, __m256d) { return VecF64::max0(v); }, relu_scalar<double>);
}
// grad_y, y -> grad_x = grad_y where y > 0, else 0 (gx may be gy)
void relu_bwd_f32(int64_t n, const float* gy, const float* y, float* gx) {
  elementwise<VecF32>(n, gy, y, gx, [](__m256 g, __m256 v) { return VecF32::pass_if_positive(g, v); }, relu_grad_scalar<float>);
}
void relu_bwd_f64(int64_t n, const double* gy, const double* y, double* gx) {
  elementwise<VecF64>(n, gy, y, gx, [](__m256d g, __m256d v) { return VecF64::pass_if_positive(g, v); }, relu_grad_scalar<double>);
}

}  // namespace avx2
}  // namespace fastconv
