// Portable ReLU forward/backward. NaN propagates through the forward pass (like PyTorch);
// the backward pass lets the gradient through where y > 0.
#include "kernels.h"
#include "loops.h"

namespace fastconv {
namespace ref {

template <typename T>
void relu_fwd(int64_t n, const T* x, T* y) {
  parallel_for(threads_for(n), n, [&](int64_t i_begin, int64_t i_end) {
    for (int64_t i = i_begin; i < i_end; ++i) y[i] = x[i] > T(0) || x[i] != x[i] ? x[i] : T(0);
  });
}

template <typename T>
void relu_bwd(int64_t n, const T* gy, const T* y, T* gx) {
  parallel_for(threads_for(n), n, [&](int64_t i_begin, int64_t i_end) {
    for (int64_t i = i_begin; i < i_end; ++i) gx[i] = y[i] > T(0) ? gy[i] : T(0);
  });
}

template void relu_fwd<float>(int64_t, const float*, float*);
template void relu_fwd<double>(int64_t, const double*, double*);
template void relu_bwd<float>(int64_t, const float*, const float*, float*);
template void relu_bwd<double>(int64_t, const double*, const double*, double*);

}  // namespace ref
}  // namespace fastconv
