// Adam, the optim family's body (contract in optim.h), compiled once per ISA: ref.cpp without ISA
// flags, avx2.cpp and avx512.cpp with theirs. Every build runs NumPy's operations in NumPy's
// order with no fused multiply-adds, so all give the same bits.
#pragma once  // once per translation unit: each build includes it for its own ISA
#ifndef FASTCONV_SIMD_NS
#error "include simd/portable.h, simd/avx2.h or simd/avx512.h before optim/optim.inl"
#endif

#include <cmath>

#include "../runtime/loops.h"
#include "optim.h"

namespace fastconv {
namespace FASTCONV_SIMD_NS {
namespace {

// m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  p -= step * (m / (sqrt(v / c2) + eps))
template <typename T>
void adam(int64_t n, T* p, const T* g, T* m, T* v, const AdamConstants<T>& k) {
  parallel_for_lines(n, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      m[i] = m[i] * k.b1 + k.one_minus_b1 * g[i];
      v[i] = v[i] * k.b2 + k.one_minus_b2 * (g[i] * g[i]);
      p[i] = p[i] - k.step * (m[i] / (std::sqrt(v[i] / k.c2) + k.eps));
    }
  });
}

}  // namespace

template <typename T>
OptimOps<T> optim_ops() {
  return OptimOps<T>{adam<T>};
}
template OptimOps<float> optim_ops<float>();
template OptimOps<double> optim_ops<double>();

}  // namespace FASTCONV_SIMD_NS
}  // namespace fastconv
