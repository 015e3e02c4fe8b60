// Shared by every .cu file: the launch helper (the one place that differs between the CUDA build
// and the host emulation), 32-bit fast division, aligned vector packs and small device helpers.
#pragma once
#ifdef FASTCONV_CUDA_EMU
#include "emu/cuda_emu.h"
#else
#include <cuda_runtime.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <tuple>
#include <type_traits>

#include "../common/params.h"

namespace fastconv {
namespace cuda {

// Name of the last kernel launched from this host thread: for error messages and FASTCONV_VERBOSE.
inline thread_local std::string g_last_kernel;

// Largest element count one launch may index with 32-bit arithmetic; launchers split bigger
// problems over the batch. A variable so the tests can make it small (set_max_launch_elements).
inline int64_t g_max_launch_elements = INT32_MAX;

// Launches kernel<<<grid, block, 0, stream>>>(args...) and returns the launch error.
// In the emulation build the grid runs synchronously on the host (cuda_emu::run_grid).
template <typename... Params, typename... Args>
cudaError_t launch(const std::string& name, void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t stream,
                   Args... args) {
  g_last_kernel = name;
#ifdef FASTCONV_CUDA_EMU
  (void)stream;
  std::tuple<std::decay_t<Params>...> packed(args...);
  return cuda_emu::run_grid(grid, block, [&] { std::apply(kernel, packed); });
#else
  kernel<<<grid, block, 0, stream>>>(args...);
  return cudaGetLastError();
#endif
}

// n / d and n % d for 0 <= n < 2^31 and 1 <= d < 2^31 with one multiply-high, an add and a shift
// (integer division is ~20 instructions on the GPU, 64-bit ~70). With s = ceil(log2 d) and
// mul = floor(2^32 (2^s - d) / d) + 1 < 2^32:  n / d = (umulhi(n, mul) + n) >> s  (round-up
// method, Granlund & Montgomery 1994; the add cannot overflow because n < 2^31).
struct FastDivmod {
  uint32_t d = 1, mul = 1, shift = 0;
  FastDivmod() = default;
  explicit FastDivmod(int64_t divisor) : d(static_cast<uint32_t>(divisor)) {
    shift = 0;
    while (shift < 32 && (uint64_t(1) << shift) < d) ++shift;
    mul = static_cast<uint32_t>(((uint64_t(1) << 32) * ((uint64_t(1) << shift) - d)) / d + 1);
  }
  __device__ __forceinline__ int div(int n) const {
    const uint32_t t = __umulhi(static_cast<uint32_t>(n), mul);
    return static_cast<int>((t + static_cast<uint32_t>(n)) >> shift);
  }
  // q = n / d, r = n - q * d
  __device__ __forceinline__ void divmod(int n, int& q, int& r) const {
    q = div(n);
    r = n - q * static_cast<int>(d);
  }
};

// V elements of T in one aligned struct: loads and stores of a Pack compile to one 16-byte
// vector instruction on the GPU (ld.global.v4.f32 / v2.f64) when sizeof(Pack) == 16.
template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

template <typename T>
__device__ __forceinline__ T relu_value(T v) {  // NaN propagates, like the CPU kernels
  return (v > T(0) || v != v) ? v : T(0);
}

__device__ __forceinline__ float exp_of(float v) { return expf(v); }
__device__ __forceinline__ double exp_of(double v) { return exp(v); }
__device__ __forceinline__ float tanh_of(float v) { return tanhf(v); }
__device__ __forceinline__ double tanh_of(double v) { return tanh(v); }

// Activation A of x (eltwise/activation.cu's kernels, the conv2d epilogue). sigmoid from e = e^-|x| on
// both sides: no overflow, relative accuracy for large negative x.
template <Activation A, typename T>
__device__ __forceinline__ T activation_value(T x, T alpha) {
  if constexpr (A == Activation::sigmoid) {
    const T e = exp_of(x > T(0) ? -x : x);
    return (x >= T(0) ? T(1) : e) / (T(1) + e);
  } else if constexpr (A == Activation::tanh) {
    return tanh_of(x);
  } else {
    return x > T(0) ? x : alpha * x;
  }
}

// A conv2d forward epilogue on one output, after the bias.
template <typename T>
__device__ __forceinline__ T epilogue_value(Epilogue e, T alpha, T v) {
  switch (e) {
    case Epilogue::none:
      return v;
    case Epilogue::relu:
      return relu_value(v);
    case Epilogue::sigmoid:
      return activation_value<Activation::sigmoid>(v, alpha);
    case Epilogue::tanh:
      return activation_value<Activation::tanh>(v, alpha);
    default:
      return activation_value<Activation::leaky_relu>(v, alpha);
  }
}

inline unsigned ceil_div_u(int64_t a, int64_t b) { return static_cast<unsigned>((a + b - 1) / b); }

// Grid size of a grid-stride loop over n items: enough blocks to fill any GPU, no more than
// needed; at least 1.
inline unsigned grid_for(int64_t n, int threads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 65535 * 8 ? 65535 * 8 : blocks));
}

inline const char* dtype_name(size_t size) { return size == 4 ? "f32" : "f64"; }
inline const char* layout_name(Layout l) { return l == Layout::NCHW ? "nchw" : "nhwc"; }

}  // namespace cuda
}  // namespace fastconv
