// Dense layers: the GEMM behind fc.linear and its backward passes, and the column sums that give
// grad_bias (the linear family's entry points).
//   gemm         a, b, bias (nullable) -> c (overwritten); applies g.epilogue
//   column_sums  x (M,N) row-major -> sums (N) of its M rows, in row order
// Portable reference: ref.cpp (each output element sums over k in increasing order); SIMD builds:
// avx2.cpp and avx512.cpp compile linear.inl, which drives conv2d's register tile.
#pragma once
#include <cstdint>

#include "../../common/params.h"
#include "../runtime/runtime.h"

namespace fastconv {

// C (M,N), row-major = epilogue(A (M,K) B (K,N) [+ bias (N)]), with A[i][k] = a[i*a_rs + k*a_cs] and
// B[k][j] = b[k*b_rs + j*b_cs]: the three passes of a dense layer read their operands in place
// whether they are stored as given or transposed.
struct GemmParams {
  int64_t M = 0, N = 0, K = 0;
  int64_t a_rs = 0, a_cs = 1, b_rs = 0, b_cs = 1;
  Epilogue epilogue = Epilogue::none;
  double alpha = 0.0;  // leaky_relu's slope
  int64_t macs() const { return M * N * K; }
};

template <typename T>
struct LinearOps {
  void (*gemm)(const GemmParams& g, const T* a, const T* b, const T* bias, T* c);
  void (*column_sums)(int64_t M, int64_t N, const T* x, T* sums);
};

FASTCONV_FAMILY_BUILDS(LinearOps, linear_ops)

}  // namespace fastconv
