// ReLU forward/backward: one grid-stride loop, 64-bit indices.
#include "kernels.h"

namespace fastconv {
namespace cuda {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void relu_forward_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    const T v = x[i];
    y[i] = (v > T(0) || v != v) ? v : T(0);
  }
}

template <typename T>
__global__ void relu_backward_kernel(const T* __restrict__ gy, const T* __restrict__ y,
                                     T* __restrict__ gx, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    gx[i] = y[i] > T(0) ? gy[i] : T(0);
}

unsigned grid_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 65535 * 8 ? (blocks > 0 ? blocks : 1) : 65535 * 8);
}

template <typename T>
cudaError_t launch_forward(const T* x, T* y, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  relu_forward_kernel<T><<<grid_for(n), kThreads, 0, stream>>>(x, y, n);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_backward(const T* gy, const T* y, T* gx, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  relu_backward_kernel<T><<<grid_for(n), kThreads, 0, stream>>>(gy, y, gx, n);
  return cudaGetLastError();
}

}  // namespace

cudaError_t relu_forward_f32(const float* x, float* y, int64_t n, cudaStream_t s) { return launch_forward(x, y, n, s); }
cudaError_t relu_forward_f64(const double* x, double* y, int64_t n, cudaStream_t s) { return launch_forward(x, y, n, s); }
cudaError_t relu_backward_f32(const float* gy, const float* y, float* gx, int64_t n, cudaStream_t s) { return launch_backward(gy, y, gx, n, s); }
cudaError_t relu_backward_f64(const double* gy, const double* y, double* gx, int64_t n, cudaStream_t s) { return launch_backward(gy, y, gx, n, s); }

}  // namespace cuda
}  // namespace fastconv
