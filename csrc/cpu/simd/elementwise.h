// The streaming elementwise loop every elementwise kernel uses (eltwise/eltwise.inl: ReLU,
// sigmoid, tanh, leaky ReLU, forward and backward): out[i] = op(a[i], b[i]) on vector registers of
// the ISA's traits. Compiled once per ISA: a TU includes it after its traits header.
//
// Memory speed: threads take contiguous chunks of whole cache lines (parallel_for_lines), one
// masked vector brings the output to a vector boundary, the body moves 4 vectors per trip with the
// inputs prefetched ahead (kPrefetchAhead), a masked vector does the tail, and outputs larger than
// kStreamBytes are written with streaming stores (no read-for-ownership of the output lines, a
// third of the traffic; below that size the next layer reads y from cache). Every element goes
// through the same vector code (no scalar head or tail), so a result does not depend on the
// array's alignment or the thread count. out may alias a or b: each vector is read before the
// store that overwrites it.
#pragma once  // once per translation unit: each ISA file includes it for its own ISA
#ifndef FASTCONV_SIMD_NS
#error "include simd/avx512.h or simd/avx2.h before simd/elementwise.h"
#endif

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "../runtime/loops.h"
#include "vector_math.h"

namespace fastconv {
namespace FASTCONV_SIMD_NS {

constexpr int64_t kStreamBytes = int64_t(16) << 20;  // VGG16 batch-1 activations (<= 12.8 MB) stay cached
// Inputs are prefetched this many elements ahead: sigmoid and tanh spend long enough on each
// vector that the hardware prefetcher alone falls behind, and the loop then waits for memory and
// computes in turn. Measured (python -m fastconv.bench --networks activations, batch 8, 2 threads,
// 103 MB per call): sigmoid forward 20 -> 37 GB/s, tanh 25 -> 45 GB/s; 256 / 4096 ahead: within 5%.
// ReLU, a select per vector, keeps up with the hardware prefetcher: the extra prefetches cost it
// about 10% on 1 x 64 x 224 x 224 in cache (kPrefetch = false).
constexpr int64_t kPrefetchAhead = 1024;

// out[i] = op(a[i], b[i]) over [begin, end).
template <class F, bool kStream, bool kPrefetch, class Op>
void elementwise_slice(const Elem<F>* a, const Elem<F>* b, Elem<F>* out, int64_t begin, int64_t end, const Op& op) {
  using T = Elem<F>;
  constexpr int64_t L = F::W;
  int64_t i = begin;
  const int64_t misalign = (int64_t)(((uintptr_t)(out + i)) % (L * sizeof(T))) / (int64_t)sizeof(T);
  if (misalign && i < end) {
    const int n = static_cast<int>(std::min(end - i, L - misalign));
    F::store_n(out + i, op(F::load_n(a + i, n), F::load_n(b + i, n)), n);
    i += L - misalign;
  }
  for (; i + 4 * L <= end; i += 4 * L) {
    for (int64_t line = 0; kPrefetch && line < 4 * L; line += 64 / (int64_t)sizeof(T)) {
      _mm_prefetch(reinterpret_cast<const char*>(a + i + line + kPrefetchAhead), _MM_HINT_T0);
      if (b != a) _mm_prefetch(reinterpret_cast<const char*>(b + i + line + kPrefetchAhead), _MM_HINT_T0);
    }
    const Reg<F> r0 = op(F::load(a + i), F::load(b + i));
    const Reg<F> r1 = op(F::load(a + i + L), F::load(b + i + L));
    const Reg<F> r2 = op(F::load(a + i + 2 * L), F::load(b + i + 2 * L));
    const Reg<F> r3 = op(F::load(a + i + 3 * L), F::load(b + i + 3 * L));
    if (kStream) {
      F::stream(out + i, r0);
      F::stream(out + i + L, r1);
      F::stream(out + i + 2 * L, r2);
      F::stream(out + i + 3 * L, r3);
    } else {
      F::store(out + i, r0);
      F::store(out + i + L, r1);
      F::store(out + i + 2 * L, r2);
      F::store(out + i + 3 * L, r3);
    }
  }
  for (; i < end; i += L) {
    const int n = static_cast<int>(std::min(end - i, L));
    F::store_n(out + i, op(F::load_n(a + i, n), F::load_n(b + i, n)), n);
  }
  if (kStream) _mm_sfence();  // streaming stores are weakly ordered: publish before returning
}

template <class F, bool kPrefetch = true, class Op>
void elementwise(int64_t n, const Elem<F>* a, const Elem<F>* b, Elem<F>* out, const Op& op) {
  const bool stream = n * (int64_t)sizeof(Elem<F>) >= kStreamBytes;
  parallel_for_lines(n, [&](int64_t begin, int64_t end) {
    if (stream) elementwise_slice<F, true, kPrefetch>(a, b, out, begin, end, op);
    else elementwise_slice<F, false, kPrefetch>(a, b, out, begin, end, op);
  });
}

}  // namespace FASTCONV_SIMD_NS
}  // namespace fastconv
