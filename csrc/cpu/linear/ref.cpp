// Portable dense-layer kernels (contracts in linear.h): the `scalar` path and the baseline the
// SIMD GEMM (linear.inl) is tested against; each output element sums over k in increasing order.
#include "../eltwise/eltwise.h"
#include "../runtime/loops.h"
#include "linear.h"

namespace fastconv {
namespace ref {

// a (M,K), b (K,N) by strides (GemmParams), bias (N) or null -> c (M,N) row-major
template <typename T>
void gemm(const GemmParams& g, const T* a, const T* b, const T* bias, T* c) {
  parallel_for(threads_for(g.macs()), g.M, [&](int64_t i_begin, int64_t i_end) {
    for (int64_t i = i_begin; i < i_end; ++i) {
      for (int64_t j = 0; j < g.N; ++j) {
        T acc = bias ? bias[j] : T(0);
        for (int64_t k = 0; k < g.K; ++k) acc += a[i * g.a_rs + k * g.a_cs] * b[k * g.b_rs + j * g.b_cs];
        c[i * g.N + j] = acc;
      }
      apply_epilogue(g.epilogue, T(g.alpha), g.N, c + i * g.N);
    }
  });
}

// x (M,N) row-major -> sums (N), rows added in order
template <typename T>
void column_sums(int64_t M, int64_t N, const T* x, T* sums) {
  parallel_for(threads_for(M * N), N, [&](int64_t j_begin, int64_t j_end) {
    for (int64_t j = j_begin; j < j_end; ++j) sums[j] = T(0);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = j_begin; j < j_end; ++j) sums[j] += x[i * N + j];
  });
}

template void gemm<float>(const GemmParams&, const float*, const float*, const float*, float*);
template void gemm<double>(const GemmParams&, const double*, const double*, const double*, double*);
template void column_sums<float>(int64_t, int64_t, const float*, float*);
template void column_sums<double>(int64_t, int64_t, const double*, double*);

template <typename T>
LinearOps<T> linear_ops() {
  return LinearOps<T>{gemm<T>, column_sums<T>};
}
template LinearOps<float> linear_ops<float>();
template LinearOps<double> linear_ops<double>();

}  // namespace ref
}  // namespace fastconv
