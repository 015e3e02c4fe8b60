// Host emulation of the small subset of CUDA that fastconv's kernels use, so that the same .cu
// sources compile as plain C++ (g++, -DFASTCONV_CUDA_EMU) and run on the CPU in the test suite.
//
// Model: a launch runs every block of the grid on a host worker thread; the threads of one block
// are fibers (ucontext) of that worker, run one after another until each reaches __syncthreads()
// or returns, then the next round starts. The order in which a round resumes the threads is a
// setting (set_thread_order): forward, reverse, or a seeded shuffle per block and round. A
// correct kernel gives the same bits in every order; a data race between two barriers (a missing
// __syncthreads, two threads writing one element) shows up as a difference, which is how the
// tests use it. So:
//   - threadIdx/blockIdx/blockDim/gridDim are thread_local variables the scheduler sets before it
//     resumes a fiber;
//   - __shared__ is `static thread_local`: one copy per worker, i.e. per running block;
//   - __syncthreads() switches back to the scheduler; a block whose threads do not all reach the
//     same number of barriers (a barrier in divergent code) fails the launch instead of hanging;
//   - atomics go through std::atomic_ref, because blocks on different workers do run concurrently.
// What is not emulated: warps (no shuffles/votes; the kernels use none), memory fences beyond
// sequential consistency of the atomics, streams (launches are synchronous), device memory
// (pointers are host pointers). Kernels that need GPU-only instructions (tensor-core mma, cp.async)
// must be compiled out of the emulation build with `#ifndef FASTCONV_CUDA_EMU` and say so.
#pragma once
#ifndef FASTCONV_CUDA_EMU
#error "cuda_emu.h is for the host emulation build only (define FASTCONV_CUDA_EMU)"
#endif

#include <atomic>
#include <cstdint>
#include <functional>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __shared__ static thread_local

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3 {
  unsigned x, y, z;
};

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorLaunchFailure = 719,
};
struct CUstream_st;
using cudaStream_t = CUstream_st*;

const char* cudaGetErrorString(cudaError_t err);
inline cudaError_t cudaGetLastError() { return cudaSuccess; }  // launches report their own error

// Set by the scheduler before it resumes a fiber (see cuda_emu.cpp).
inline thread_local uint3 threadIdx{0, 0, 0};
inline thread_local uint3 blockIdx{0, 0, 0};
inline thread_local dim3 blockDim{1, 1, 1};
inline thread_local dim3 gridDim{1, 1, 1};

// Barrier of the current block: yields to the scheduler (defined out of line so the compiler
// cannot move shared-memory accesses across it).
void __syncthreads();

template <typename T>
inline T atomicAdd(T* address, T value) {
  return std::atomic_ref<T>(*address).fetch_add(value);
}
inline int atomicOr(int* address, int value) { return std::atomic_ref<int>(*address).fetch_or(value); }
inline int atomicExch(int* address, int value) { return std::atomic_ref<int>(*address).exchange(value); }
inline int atomicMax(int* address, int value) {
  std::atomic_ref<int> a(*address);
  int old = a.load();
  while (old < value && !a.compare_exchange_weak(old, value)) {
  }
  return old;
}
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }

inline unsigned __umulhi(unsigned a, unsigned b) { return static_cast<unsigned>((static_cast<uint64_t>(a) * b) >> 32); }
template <typename T>
inline T __ldg(const T* p) {
  return *p;
}

namespace cuda_emu {

// Runs body() for every thread of every block of (grid, block) and returns when all are done.
// Fails with cudaErrorInvalidConfiguration for an empty grid or a block over 1024 threads, and
// with cudaErrorLaunchFailure when a block's threads disagree on the barriers they reach.
cudaError_t run_grid(dim3 grid, dim3 block, const std::function<void()>& body);

// Host threads that run blocks concurrently (FASTCONV_EMU_WORKERS, default min(2, cores)).
int workers();
void set_workers(int n);

// The order in which each round resumes a block's threads (default forward).
enum class ThreadOrder { forward, reverse, shuffled };
void set_thread_order(ThreadOrder order, uint64_t seed);

}  // namespace cuda_emu
