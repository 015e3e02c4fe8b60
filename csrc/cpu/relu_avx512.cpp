// ReLU forward/backward with AVX-512 (16 floats / 8 doubles per zmm, k-mask head and tail).
// Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq, called only on CPUs that have them.
// Reference: relu_ref.cpp.
//
// Memory speed: threads stream contiguous chunks of whole cache lines (parallel_for_lines), the loop
// moves 4 vectors per trip, and when the output is larger than kStreamBytes it is written with
// non-temporal stores (no read-for-ownership of the output lines, which saves a third of the
// traffic; below that size the output is better left in cache for the next layer). The output
// pointer is first brought to a 64-byte boundary with one masked vector, since streaming stores
// need aligned addresses. y may alias x (fc.relu(x, out=x)): every element is read before the
// store that overwrites it.
#include <immintrin.h>

#include <cstdint>

#include "kernels.h"
#include "loops.h"

namespace fastconv {
namespace avx512 {
namespace {

constexpr int64_t kStreamBytes = int64_t(16) << 20;  // VGG16 batch-1 activations (<= 12.8 MB) stay cached

// This file's VecF32 / VecF64: the few vector operations the ReLU loops need (the conv traits
// of simd/ are a different set, in other translation units).
struct VecF32 {
  using T = float;
  using V = __m512;
  using M = __mmask16;
  static constexpr int64_t L = 16;
  static M first(int64_t k) { return k >= 16 ? M(0xFFFF) : M((1u << k) - 1); }
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const T* p) { return _mm512_loadu_ps(p); }
  static V load(const T* p, M m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(T* p, V v) { _mm512_storeu_ps(p, v); }
  static void stream(T* p, V v) { _mm512_stream_ps(p, v); }
  static void store(T* p, V v, M m) { _mm512_mask_storeu_ps(p, m, v); }
  // x where x > 0 or x is NaN, else +0 (not max(0, x): vmaxps(0, -0) returns -0)
  static V max0(V x) { return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, zero(), _CMP_NLE_UQ), x); }
  static V pass_if_positive(V g, V y) { return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y, zero(), _CMP_GT_OQ), g); }
};
struct VecF64 {
  using T = double;
  using V = __m512d;
  using M = __mmask8;
  static constexpr int64_t L = 8;
  static M first(int64_t k) { return k >= 8 ? M(0xFF) : M((1u << k) - 1); }
  static V zero() { return _mm512_setzero_pd(); }
  static V load(const T* p) { return _mm512_loadu_pd(p); }
  static V load(const T* p, M m) { return _mm512_maskz_loadu_pd(m, p); }
  static void store(T* p, V v) { _mm512_storeu_pd(p, v); }
  static void stream(T* p, V v) { _mm512_stream_pd(p, v); }
  static void store(T* p, V v, M m) { _mm512_mask_storeu_pd(p, m, v); }
  static V max0(V x) { return _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(x, zero(), _CMP_NLE_UQ), x); }
  static V pass_if_positive(V g, V y) { return _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(y, zero(), _CMP_GT_OQ), g); }
};

// out[i] = op(a[i], b[i]) over [b0, e0): masked head up to out's 64-byte boundary, 4-vector
// body with ordinary or streaming stores, masked tail.
template <class F, bool kStream, class Op>
void elementwise_slice(const typename F::T* a, const typename F::T* b, typename F::T* out,
                       int64_t begin, int64_t end, const Op& op) {
  using T = typename F::T;
  int64_t i = begin;
  const int64_t misalign = (int64_t)(((uintptr_t)(out + i)) & 63) / (int64_t)sizeof(T);
  if (misalign) {
    const typename F::M m = F::first(end - i < F::L - misalign ? end - i : F::L - misalign);
    F::store(out + i, op(F::load(a + i, m), F::load(b + i, m)), m);
    i += F::L - misalign;
  }
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
  for (; i < end; i += F::L) {
    const typename F::M m = F::first(end - i);
    F::store(out + i, op(F::load(a + i, m), F::load(b + i, m)), m);
  }
  if (kStream) _mm_sfence();  // streaming stores are weakly ordered: publish before returning
}

template <class F, class Op>
void elementwise(int64_t n, const typename F::T* a, const typename F::T* b, typename F::T* out, const Op& op) {
  const bool stream = n * (int64_t)sizeof(typename F::T) >= kStreamBytes;
  parallel_for_lines(n, [&](int64_t begin, int64_t end) {
    if (stream) elementwise_slice<F, true>(a, b, out, begin, end, op);
    else elementwise_slice<F, false>(a, b, out, begin, end, op);
  });
}

}  // namespace

// x -> y = max(x, 0), NaN kept (y may be x)
void relu_fwd_f32(int64_t n, const float* x, float* y) {
  elementwise<VecF32>(n, x, x, y, [](__m512 v, __m512) { return VecF32::max0(v); });
}
void relu_fwd_f64(int64_t n, const double* x, double* y) {
  elementwise<VecF64>(n, x, x, y, [](__m512d v, __m512d) { return VecF64::max0(v); });
}
// grad_y, y -> grad_x = grad_y where y > 0, else 0 (gx may be gy)
void relu_bwd_f32(int64_t n, const float* gy, const float* y, float* gx) {
  elementwise<VecF32>(n, gy, y, gx, [](__m512 g, __m512 v) { return VecF32::pass_if_positive(g, v); });
}
void relu_bwd_f64(int64_t n, const double* gy, const double* y, double* gx) {
  elementwise<VecF64>(n, gy, y, gx, [](__m512d g, __m512d v) { return VecF64::pass_if_positive(g, v); });
}

}  // namespace avx512
}  // namespace fastconv
