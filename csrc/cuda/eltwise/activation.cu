// Sigmoid, tanh and leaky ReLU forward/backward, elementwise over n elements with 64-bit indices
// (the contracts of csrc/cpu/eltwise/eltwise.h: backward reads the forward's output y).
// One grid-stride kernel per pass, templated on the activation and on the pack width V: 16-byte
// packs (4 floats / 2 doubles) when every pointer is 16-byte aligned (CuPy allocations are), the
// n % V tail by the first threads; V = 1 otherwise. y may alias x and gx may alias gy: each
// element is read before the same thread writes it.
#include <cmath>

#include "../common.cuh"
#include "../kernels.h"

namespace fastconv {
namespace cuda {
namespace {

constexpr int kThreads = 256;

template <Activation A, typename T>
__device__ __forceinline__ T activate_grad(T g, T y, T alpha) {
  if constexpr (A == Activation::sigmoid) return g * (y * (T(1) - y));
  else if constexpr (A == Activation::tanh) return g * (T(1) - y * y);
  else return y > T(0) ? g : alpha * g;
}

template <Activation A, typename T, int V>
__global__ void activation_fwd_kernel(const T* x, T* y, int64_t n, T alpha) {
  using P = Pack<T, V>;
  const int64_t packs = n / V, start = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  for (int64_t i = start; i < packs; i += int64_t(gridDim.x) * blockDim.x) {
    P v = reinterpret_cast<const P*>(x)[i];
#pragma unroll
    for (int j = 0; j < V; ++j) v.v[j] = activation_value<A>(v.v[j], alpha);
    reinterpret_cast<P*>(y)[i] = v;
  }
  if (start < n % V) y[packs * V + start] = activation_value<A>(x[packs * V + start], alpha);
}

template <Activation A, typename T, int V>
__global__ void activation_bwd_kernel(const T* gy, const T* y, T* gx, int64_t n, T alpha) {
  using P = Pack<T, V>;
  const int64_t packs = n / V, start = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  for (int64_t i = start; i < packs; i += int64_t(gridDim.x) * blockDim.x) {
    const P g = reinterpret_cast<const P*>(gy)[i], yv = reinterpret_cast<const P*>(y)[i];
    P out;
#pragma unroll
    for (int j = 0; j < V; ++j) out.v[j] = activate_grad<A>(g.v[j], yv.v[j], alpha);
    reinterpret_cast<P*>(gx)[i] = out;
  }
  const int64_t t = packs * V + start;
  if (start < n % V) gx[t] = activate_grad<A>(gy[t], y[t], alpha);
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

const char* activation_name(Activation a) {
  return a == Activation::sigmoid ? "sigmoid" : a == Activation::tanh ? "tanh" : "leaky_relu";
}

std::string kernel_name(Activation a, const char* pass, size_t dsize, int v) {
  return std::string(dtype_name(dsize)) + "_" + activation_name(a) + "_" + pass + "_vec" + std::to_string(v);
}

template <Activation A, typename T>
cudaError_t launch_fwd(const T* x, T* y, int64_t n, T alpha, cudaStream_t stream) {
  constexpr int V = 16 / sizeof(T);
  if (aligned16(x) && aligned16(y))
    return launch(kernel_name(A, "fwd", sizeof(T), V), activation_fwd_kernel<A, T, V>,
                  dim3(grid_for(std::max<int64_t>(n / V, 1), kThreads)), dim3(kThreads), stream, x, y, n, alpha);
  return launch(kernel_name(A, "fwd", sizeof(T), 1), activation_fwd_kernel<A, T, 1>, dim3(grid_for(n, kThreads)),
                dim3(kThreads), stream, x, y, n, alpha);
}

template <Activation A, typename T>
cudaError_t launch_bwd(const T* gy, const T* y, T* gx, int64_t n, T alpha, cudaStream_t stream) {
  constexpr int V = 16 / sizeof(T);
  if (aligned16(gy) && aligned16(y) && aligned16(gx))
    return launch(kernel_name(A, "bwd", sizeof(T), V), activation_bwd_kernel<A, T, V>,
                  dim3(grid_for(std::max<int64_t>(n / V, 1), kThreads)), dim3(kThreads), stream, gy, y, gx, n, alpha);
  return launch(kernel_name(A, "bwd", sizeof(T), 1), activation_bwd_kernel<A, T, 1>, dim3(grid_for(n, kThreads)),
                dim3(kThreads), stream, gy, y, gx, n, alpha);
}

}  // namespace

template <typename T>
cudaError_t activation_fwd(Activation a, T alpha, const T* x, T* y, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  switch (a) {
    case Activation::sigmoid:
      return launch_fwd<Activation::sigmoid>(x, y, n, alpha, stream);
    case Activation::tanh:
      return launch_fwd<Activation::tanh>(x, y, n, alpha, stream);
    default:
      return launch_fwd<Activation::leaky_relu>(x, y, n, alpha, stream);
  }
}

template <typename T>
cudaError_t activation_bwd(Activation a, T alpha, const T* gy, const T* y, T* gx, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  switch (a) {
    case Activation::sigmoid:
      return launch_bwd<Activation::sigmoid>(gy, y, gx, n, alpha, stream);
    case Activation::tanh:
      return launch_bwd<Activation::tanh>(gy, y, gx, n, alpha, stream);
    default:
      return launch_bwd<Activation::leaky_relu>(gy, y, gx, n, alpha, stream);
  }
}

template cudaError_t activation_fwd<float>(Activation, float, const float*, float*, int64_t, cudaStream_t);
template cudaError_t activation_fwd<double>(Activation, double, const double*, double*, int64_t, cudaStream_t);
template cudaError_t activation_bwd<float>(Activation, float, const float*, const float*, float*, int64_t,
                                           cudaStream_t);
template cudaError_t activation_bwd<double>(Activation, double, const double*, const double*, double*, int64_t,
                                            cudaStream_t);

}  // namespace cuda
}  // namespace fastconv
