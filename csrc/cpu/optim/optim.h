// Optimizer updates (the optim family): one pass over a parameter array instead of the eight NumPy
// operations (and their temporaries) of optim.Adam's portable code. A training step of a small
// network updates many small arrays, where each NumPy call costs more than its arithmetic (MNIST
// CNN: 1.1 ms of a 23 ms step). The operations and their order are those of the NumPy code,
// element by element, so every build gives NumPy's bits (tests/test_optim.py); every file of the
// family is compiled with -ffp-contract=off (no fused multiply-adds).
//   adam  p, m, v (n) updated in place from g (n)
// Portable build: ref.cpp; SIMD builds: avx2.cpp and avx512.cpp (the same optim.inl, vectorized).
#pragma once
#include <cstdint>

#include "../runtime/runtime.h"

namespace fastconv {

// The scalars of one Adam step, already rounded to the parameter's dtype (optim.Adam):
// step = lr / (1 - b1^t), c2 = 1 - b2^t.
template <typename T>
struct AdamConstants {
  T b1, one_minus_b1, b2, one_minus_b2, c2, eps, step;
};

template <typename T>
struct OptimOps {
  void (*adam)(int64_t n, T* p, const T* g, T* m, T* v, const AdamConstants<T>& k);
};

FASTCONV_FAMILY_BUILDS(OptimOps, optim_ops)

}  // namespace fastconv
