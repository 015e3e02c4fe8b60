// CPU kernel entry points and the per-ISA dispatch table.
//
// Every operation has a portable implementation in namespace fastconv::ref (conv2d/ref.cpp,
// pool_ref.cpp, relu_ref.cpp, activation_ref.cpp, linear_ref.cpp): the `scalar` path, the fallback on any CPU and the baseline every
// SIMD kernel is tested against. ISA files (…_avx2.cpp, …_avx512.cpp) live in their own
// namespaces and override table entries; anything they do not provide stays the portable kernel.
#pragma once
#include <cstdint>

#include "../common/params.h"
#include "activation.h"
#include "avgpool.h"
#include "batchnorm.h"
#include "runtime.h"

namespace fastconv {

// C (M,N), row-major = epilogue(A (M,K) B (K,N) [+ bias (N)]), with A[i][k] = a[i*a_rs + k*a_cs] and
// B[k][j] = b[k*b_rs + j*b_cs]: the three passes of a dense layer (linear_simd.inl) read their
// operands in place whether they are stored as given or transposed.
struct GemmParams {
  int64_t M = 0, N = 0, K = 0;
  int64_t a_rs = 0, a_cs = 1, b_rs = 0, b_cs = 1;
  Epilogue epilogue = Epilogue::none;
  double alpha = 0.0;   // leaky_relu's slope
  int64_t macs() const { return M * N * K; }
};

// The scalars of one Adam step, already rounded to the parameter's dtype (optim.Adam):
// step = lr / (1 - b1^t), c2 = 1 - b2^t.
template <typename T>
struct AdamConstants {
  T b1, one_minus_b1, b2, one_minus_b2, c2, eps, step;
};
// Adam on n parameters in place (optim.cpp; portable, no ISA variants: memory-bound).
template <typename T>
void adam_update(int64_t n, T* p, const T* g, T* m, T* v, const AdamConstants<T>& k);

template <typename T>
struct CpuOps {
  // x, w, bias (nullable) -> y; applies p.epilogue
  void (*conv2d_fwd)(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y);
  // grad_y, w -> grad_x (overwritten)
  void (*conv2d_bwd_data)(const Conv2dParams& p, const T* gy, const T* w, T* gx);
  // grad_y, x -> grad_w (overwritten), grad_bias (nullable, overwritten)
  void (*conv2d_bwd_weight)(const Conv2dParams& p, const T* gy, const T* x, T* gw, T* gb);
  // x -> y, indices (flat h*W+w inside each (n, c) plane)
  void (*maxpool2d_fwd)(const Pool2dParams& p, const T* x, T* y, int64_t* indices);
  // grad_y, indices -> grad_x (overwritten); false when an index is outside [0, H*W)
  bool (*maxpool2d_bwd)(const Pool2dParams& p, const T* gy, const int64_t* indices, T* gx);
  void (*relu_fwd)(int64_t n, const T* x, T* y);                        // y may alias x
  void (*relu_bwd)(int64_t n, const T* gy, const T* y, T* gx);          // gx may alias gy
  // a, b, bias (nullable) -> c (overwritten); applies g.epilogue
  void (*gemm)(const GemmParams& g, const T* a, const T* b, const T* bias, T* c);
  // x (M,N) row-major -> sums (N) of its M rows, in row order (a dense layer's grad_bias)
  void (*column_sums)(int64_t M, int64_t N, const T* x, T* sums);
  ActivationFwd<T> activation_fwd;   // sigmoid / tanh / leaky ReLU (activation.h)
  ActivationBwd<T> activation_bwd;
  AvgPoolFwd<T> avgpool2d_fwd;       // average pooling (avgpool.h)
  AvgPoolBwd<T> avgpool2d_bwd;
  BatchNormOps<T> batchnorm;         // batch normalization (batchnorm.h)
};

struct CpuKernelTable {
  Isa isa;
  CpuOps<float> f32;
  CpuOps<double> f64;
};

// The table for the ISA currently in effect (current_isa()).
const CpuKernelTable& cpu_kernels();
const CpuKernelTable& cpu_kernels_for(Isa isa);

namespace ref {
template <typename T> void conv2d_fwd(const Conv2dParams&, const T*, const T*, const T*, T*);
template <typename T> void conv2d_bwd_data(const Conv2dParams&, const T*, const T*, T*);
template <typename T> void conv2d_bwd_weight(const Conv2dParams&, const T*, const T*, T*, T*);
template <typename T> void maxpool2d_fwd(const Pool2dParams&, const T*, T*, int64_t*);
template <typename T> bool maxpool2d_bwd(const Pool2dParams&, const T*, const int64_t*, T*);
template <typename T> void relu_fwd(int64_t, const T*, T*);
template <typename T> void relu_bwd(int64_t, const T*, const T*, T*);
template <typename T> void gemm(const GemmParams&, const T*, const T*, const T*, T*);
template <typename T> void column_sums(int64_t, int64_t, const T*, T*);
}  // namespace ref

namespace avx2 {
void relu_fwd_f32(int64_t n, const float* x, float* y);
void relu_bwd_f32(int64_t n, const float* gy, const float* y, float* gx);
void relu_fwd_f64(int64_t n, const double* x, double* y);
void relu_bwd_f64(int64_t n, const double* gy, const double* y, double* gx);
// conv2d/conv2d_<isa>.cpp: each pass picks its algorithm (conv2d/dispatch.inl)
void conv2d_fwd_f32(const Conv2dParams& p, const float* x, const float* w, const float* bias, float* y);
void conv2d_fwd_f64(const Conv2dParams& p, const double* x, const double* w, const double* bias, double* y);
void conv2d_bwd_data_f32(const Conv2dParams& p, const float* gy, const float* w, float* gx);
void conv2d_bwd_data_f64(const Conv2dParams& p, const double* gy, const double* w, double* gx);
void conv2d_bwd_weight_f32(const Conv2dParams& p, const float* gy, const float* x, float* gw, float* gb);
void conv2d_bwd_weight_f64(const Conv2dParams& p, const double* gy, const double* x, double* gw, double* gb);
// linear_avx2.cpp (template in linear_simd.inl)
void gemm_f32(const GemmParams& g, const float* a, const float* b, const float* bias, float* c);
void gemm_f64(const GemmParams& g, const double* a, const double* b, const double* bias, double* c);
void column_sums_f32(int64_t M, int64_t N, const float* x, float* sums);
void column_sums_f64(int64_t M, int64_t N, const double* x, double* sums);
}  // namespace avx2

namespace avx512 {
void relu_fwd_f32(int64_t n, const float* x, float* y);
void relu_bwd_f32(int64_t n, const float* gy, const float* y, float* gx);
void relu_fwd_f64(int64_t n, const double* x, double* y);
void relu_bwd_f64(int64_t n, const double* gy, const double* y, double* gx);
// conv2d/conv2d_<isa>.cpp: each pass picks its algorithm (conv2d/dispatch.inl)
void conv2d_fwd_f32(const Conv2dParams& p, const float* x, const float* w, const float* bias, float* y);
void conv2d_fwd_f64(const Conv2dParams& p, const double* x, const double* w, const double* bias, double* y);
void conv2d_bwd_data_f32(const Conv2dParams& p, const float* gy, const float* w, float* gx);
void conv2d_bwd_data_f64(const Conv2dParams& p, const double* gy, const double* w, double* gx);
void conv2d_bwd_weight_f32(const Conv2dParams& p, const float* gy, const float* x, float* gw, float* gb);
void conv2d_bwd_weight_f64(const Conv2dParams& p, const double* gy, const double* x, double* gw, double* gb);
// linear_avx512.cpp (template in linear_simd.inl)
void gemm_f32(const GemmParams& g, const float* a, const float* b, const float* bias, float* c);
void gemm_f64(const GemmParams& g, const double* a, const double* b, const double* bias, double* c);
void column_sums_f32(int64_t M, int64_t N, const float* x, float* sums);
void column_sums_f64(int64_t M, int64_t N, const double* x, double* sums);
}  // namespace avx512

}  // namespace fastconv
