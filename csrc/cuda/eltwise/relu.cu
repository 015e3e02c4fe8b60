// ReLU forward/backward, elementwise over n elements with 64-bit indices.
// kernel1_scalar: grid-stride loop, one element per step.
// kernel2_vec: grid-stride loop over 16-byte packs (4 floats / 2 doubles); the n % V tail is done
// by the first threads. Used when every pointer is 16-byte aligned (CuPy allocations are).
// No __restrict__: y may alias x (in-place relu) and gx may alias gy; each element is read before
// it is written by the same thread, so aliasing is safe.
#include "../common.cuh"
#include "../kernels.h"

namespace fastconv {
namespace cuda {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void relu_fwd_kernel1_scalar(const T* x, T* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = relu_value(x[i]);
}

template <typename T>
__global__ void relu_bwd_kernel1_scalar(const T* gy, const T* y, T* gx, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    gx[i] = y[i] > T(0) ? gy[i] : T(0);
}

template <typename T, int V>
__global__ void relu_fwd_kernel2_vec(const T* x, T* y, int64_t n) {
  using P = Pack<T, V>;
  const int64_t packs = n / V, start = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  for (int64_t i = start; i < packs; i += int64_t(gridDim.x) * blockDim.x) {
    P v = reinterpret_cast<const P*>(x)[i];
#pragma unroll
    for (int j = 0; j < V; ++j) v.v[j] = relu_value(v.v[j]);
    reinterpret_cast<P*>(y)[i] = v;
  }
  if (start < n % V) y[packs * V + start] = relu_value(x[packs * V + start]);
}

template <typename T, int V>
__global__ void relu_bwd_kernel2_vec(const T* gy, const T* y, T* gx, int64_t n) {
  using P = Pack<T, V>;
  const int64_t packs = n / V, start = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  for (int64_t i = start; i < packs; i += int64_t(gridDim.x) * blockDim.x) {
    const P g = reinterpret_cast<const P*>(gy)[i], yv = reinterpret_cast<const P*>(y)[i];
    P out;
#pragma unroll
    for (int j = 0; j < V; ++j) out.v[j] = yv.v[j] > T(0) ? g.v[j] : T(0);
    reinterpret_cast<P*>(gx)[i] = out;
  }
  const int64_t t = packs * V + start;
  if (start < n % V) gx[t] = y[t] > T(0) ? gy[t] : T(0);
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

std::string relu_name(const char* op, size_t dsize, int version) {
  return std::string(dtype_name(dsize)) + "_relu_" + op +
         (version == 1 ? "_kernel1_scalar" : "_kernel2_vec" + std::to_string(16 / dsize));
}

}  // namespace

template <typename T>
cudaError_t relu_fwd(const T* x, T* y, int64_t n, int version, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  constexpr int V = 16 / sizeof(T);
  if (version != 1 && aligned16(x) && aligned16(y))
    return launch(relu_name("fwd", sizeof(T), 2), relu_fwd_kernel2_vec<T, V>,
                  dim3(grid_for(std::max<int64_t>(n / V, 1), kThreads)), dim3(kThreads), stream, x, y, n);
  return launch(relu_name("fwd", sizeof(T), 1), relu_fwd_kernel1_scalar<T>, dim3(grid_for(n, kThreads)), dim3(kThreads),
                stream, x, y, n);
}

template <typename T>
cudaError_t relu_bwd(const T* gy, const T* y, T* gx, int64_t n, int version, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  constexpr int V = 16 / sizeof(T);
  if (version != 1 && aligned16(gy) && aligned16(y) && aligned16(gx))
    return launch(relu_name("bwd", sizeof(T), 2), relu_bwd_kernel2_vec<T, V>,
                  dim3(grid_for(std::max<int64_t>(n / V, 1), kThreads)), dim3(kThreads), stream, gy, y, gx, n);
  return launch(relu_name("bwd", sizeof(T), 1), relu_bwd_kernel1_scalar<T>, dim3(grid_for(n, kThreads)), dim3(kThreads),
                stream, gy, y, gx, n);
}

template cudaError_t relu_fwd<float>(const float*, float*, int64_t, int, cudaStream_t);
template cudaError_t relu_fwd<double>(const double*, double*, int64_t, int, cudaStream_t);
template cudaError_t relu_bwd<float>(const float*, const float*, float*, int64_t, int, cudaStream_t);
template cudaError_t relu_bwd<double>(const double*, const double*, double*, int64_t, int, cudaStream_t);

}  // namespace cuda
}  // namespace fastconv
