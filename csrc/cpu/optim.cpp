// Optimizer updates: one pass over a parameter array instead of the eight NumPy operations (and
// their temporaries) of optim.Adam's portable code. A training step of a small network updates
// many small arrays, where each NumPy call costs more than its arithmetic (MNIST CNN: 1.1 ms of
// a 23 ms step). The operations and their order are those of the NumPy code, element by element,
// so both give the same bits (tests/test_optim.py); that NumPy code stays the reference and the
// path for CuPy arrays.
#include "kernels.h"

#include <cmath>

#include "loops.h"

namespace fastconv {

// m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  p -= step * (m / (sqrt(v / c2) + eps))
// p, m, v (n) updated in place; g (n).
template <typename T>
void adam_update(int64_t n, T* p, const T* g, T* m, T* v, const AdamConstants<T>& k) {
  parallel_for_lines(n, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      m[i] = m[i] * k.b1 + k.one_minus_b1 * g[i];
      v[i] = v[i] * k.b2 + k.one_minus_b2 * (g[i] * g[i]);
      p[i] = p[i] - k.step * (m[i] / (std::sqrt(v[i] / k.c2) + k.eps));
    }
  });
}

template void adam_update<float>(int64_t, float*, const float*, float*, float*, const AdamConstants<float>&);
template void adam_update<double>(int64_t, double*, const double*, double*, double*, const AdamConstants<double>&);

}  // namespace fastconv
