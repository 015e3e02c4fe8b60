// CUDA kernel launchers: plain C++ (device pointers, the shapes of csrc/common/params.h, the
// caller's stream), no pybind11. Each returns the cudaError_t of its launches; the binding turns a
// failure into a Python RuntimeError naming the kernel (last_kernel()). Outputs and workspaces are
// allocated by CuPy in Python, never here. Nothing synchronizes: every launch is queued on `stream`.
//
// The same sources build two ways: with nvcc into fastconv._cuda, and as host C++ through
// emu/cuda_emu.h into fastconv._cuda_emu (pointers are then host pointers, launches synchronous),
// which is how the test suite runs every kernel below without a GPU.
//
// Kernel versions (`version` argument; 0 = the best one for the shape), all kept callable:
//   conv2d (fwd, bwd_data, bwd_weight)        conv2d/{fwd,bwd_data,bwd_weight}.cu
//     1  kernel1_naive        one thread per output element, direct loops (the SIMT reference)
//     2  kernel2_smem_tiled   implicit GEMM, 16x16x16 shared-memory tiles, 1 output per thread
//     3  kernel3_regtile      implicit GEMM, 128x128x8 tiles (f32; 128x64 when N <= 64; f64 64x64x8),
//                             8x8 (f64 4x4) register tile per thread, register-prefetched loads
//   max pooling                               pool2d/maxpool.cu
//     1  kernel1_scalar       one thread per output (fwd) / per input element (bwd, gather)
//     2  kernel2_vec          NHWC with C % (16 / sizeof(T)) == 0: 16-byte channel packs
//   average pooling                           pool2d/avgpool.cu (one version: a thread per output /
//                                             input element, gathers in the backward pass)
//   relu                                      eltwise/relu.cu
//     1  kernel1_scalar       grid-stride loop
//     2  kernel2_vec          16-byte packs (when the pointers are 16-byte aligned)
//   sigmoid / tanh / leaky_relu               eltwise/activation.cu (one version: 16-byte packs when the
//                                             pointers are aligned, else one element per step)
//   batch normalization                       batchnorm/batchnorm.cu (one version: chunked statistics, then
//                                             an elementwise pass)
// A version that does not apply to a shape (e.g. kernel2_vec with odd channels) runs version 1.
#pragma once
#ifdef FASTCONV_CUDA_EMU
#include "emu/cuda_emu.h"
#else
#include <cuda_runtime.h>
#endif

#include <cstdint>
#include <string>

#include "../common/activation_kind.h"
#include "../common/params.h"

namespace fastconv {
namespace cuda {

// x, w, bias (nullable) -> y; applies p.epilogue after the bias (fused: no second pass over y).
//   NCHW: x (N,C,H,W), w (K,C,R,S) -> y (N,K,P,Q);  NHWC: x (N,H,W,C), w (R,S,C,K) -> y (N,P,Q,K)
template <typename T>
cudaError_t conv2d_fwd(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y, int version,
                       cudaStream_t stream);

// grad_y, w -> grad_x (overwritten): the transposed problem, M = N*H*W, N = C, K = K*R*S.
template <typename T>
cudaError_t conv2d_bwd_data(const Conv2dParams& p, const T* gy, const T* w, T* gx, int version, cudaStream_t stream);

// grad_y, x -> grad_w (overwritten), grad_bias (nullable, overwritten): a GEMM of M = K rows,
// N = C*R*S (+1 column of ones that yields grad_bias) and a reduction over N*P*Q, split into
// `splits` chunks (0 = choose) whose partial tiles go to `workspace`; a second kernel sums the
// chunks in a fixed order, so the result is bitwise reproducible.
template <typename T>
cudaError_t conv2d_bwd_weight(const Conv2dParams& p, const T* gy, const T* x, T* gw, T* gb, void* workspace,
                              int64_t workspace_bytes, int version, int splits, cudaStream_t stream);
// Bytes of workspace conv2d_bwd_weight needs for these arguments (0 for kernel1_naive).
int64_t conv2d_bwd_weight_workspace_bytes(const Conv2dParams& p, int dtype_size, bool with_bias, int version,
                                          int splits);

// x -> y, indices (flat h*W+w in the (n, c) plane; ties go to the first element in row-major
// order, NaN wins, padded cells never win).
template <typename T>
cudaError_t maxpool2d_fwd(const Pool2dParams& p, const T* x, T* y, int64_t* indices, int version, cudaStream_t stream);

// grad_y, indices -> grad_x (overwritten). Gathers: each input element sums, in output order,
// the grad_y of the windows whose index points at it, so no atomics and no zero-fill pass.
// Sets *bad_index (device int, zeroed by the caller) to 1 when an index lies outside its window.
template <typename T>
cudaError_t maxpool2d_bwd(const Pool2dParams& p, const T* gy, const int64_t* indices, T* gx, int* bad_index,
                          int version, cudaStream_t stream);

// Average pooling (csrc/cpu/pool2d/pool2d.h's contract): x -> y; grad_y -> grad_x (overwritten).
template <typename T>
cudaError_t avgpool2d_fwd(const Pool2dParams& p, bool include_pad, const T* x, T* y, cudaStream_t stream);
template <typename T>
cudaError_t avgpool2d_bwd(const Pool2dParams& p, bool include_pad, const T* gy, T* gx, cudaStream_t stream);

// Batch normalization (csrc/cpu/batchnorm/batchnorm.h's contracts and arithmetic). The statistics passes
// sum fixed chunks into `workspace` (batchnorm_workspace_bytes(s) bytes) and add the chunks in
// order, so results are bitwise reproducible. gamma / beta may be null (1 / 0).
//   train_fwd  x -> y, mean, var (biased), inv_std
//   normalize  y = (x - coef[c]) * coef[C + c] + coef[2C + c]  (inference; coef: 3C doubles)
//   bwd        grad_y, x, mean, inv_std -> grad_x, grad_gamma, grad_beta (training: through the
//              batch statistics, else through fixed statistics)
int64_t batchnorm_workspace_bytes(const BatchNormShape& s);
template <typename T>
cudaError_t batchnorm_train_fwd(const BatchNormShape& s, const T* x, const T* gamma, const T* beta, double eps, T* y,
                                T* mean, T* var, T* inv_std, void* workspace, cudaStream_t stream);
template <typename T>
cudaError_t batchnorm_normalize(const BatchNormShape& s, const T* x, const double* coef, T* y, cudaStream_t stream);
template <typename T>
cudaError_t batchnorm_bwd(const BatchNormShape& s, bool training, const T* gy, const T* x, const T* mean,
                          const T* inv_std, const T* gamma, T* gx, T* ggamma, T* gbeta, void* workspace,
                          cudaStream_t stream);

// x (n) -> y (n); y may alias x. NaN propagates.
template <typename T>
cudaError_t relu_fwd(const T* x, T* y, int64_t n, int version, cudaStream_t stream);
// grad_y, y (n) -> grad_x (n): grad_y where y > 0, else 0. gx may alias gy.
template <typename T>
cudaError_t relu_bwd(const T* gy, const T* y, T* gx, int64_t n, int version, cudaStream_t stream);

// sigmoid / tanh / leaky_relu (csrc/common/activation_kind.h), contracts of csrc/cpu/eltwise/eltwise.h:
// x (n) -> y (n), y may alias x; grad_y, y (the forward's output) -> grad_x, gx may alias gy.
template <typename T>
cudaError_t activation_fwd(Activation a, T alpha, const T* x, T* y, int64_t n, cudaStream_t stream);
template <typename T>
cudaError_t activation_bwd(Activation a, T alpha, const T* gy, const T* y, T* gx, int64_t n, cudaStream_t stream);

// The kernel most recently launched from this host thread, e.g. "conv2d_fwd_kernel3_regtile_...".
const std::string& last_kernel();
void clear_last_kernel();

// Testing knob: launches index at most this many elements with 32-bit arithmetic and split larger
// problems over the batch (default 2^31 - 1). Lowering it exercises the split paths on small data.
void set_max_launch_elements(int64_t n);
int64_t max_launch_elements();

}  // namespace cuda
}  // namespace fastconv
