// Kernels that check the emulator itself; see emu_selftest.h.
#include "emu_selftest.h"

#include "../common.cuh"

namespace fastconv {
namespace cuda {
namespace emu_selftest {
namespace {

__global__ void reverse_in_block_kernel(const int32_t* in, int32_t* out) {
  __shared__ int32_t buf[1024];
  const int t = threadIdx.x, n = blockDim.x;
  const int64_t base = int64_t(blockIdx.x) * n;
  buf[t] = in[base + t];
  __syncthreads();  // without a real barrier thread t would read buf[n-1-t] before it is written
  out[base + t] = buf[n - 1 - t];
}

__global__ void racy_reverse_in_block_kernel(const int32_t* in, int32_t* out) {
  __shared__ int32_t buf[1024];
  const int t = threadIdx.x, n = blockDim.x;
  const int64_t base = int64_t(blockIdx.x) * n;
  buf[t] = in[base + t];
  out[base + t] = buf[n - 1 - t];  // the missing barrier: the race the checker must find
}

__global__ void global_read_past_end_kernel(const int32_t* in, int32_t* out) {
  const int t = threadIdx.x;
  out[t] = in[t + 1];  // t + 1 == blockDim.x for the last thread: out of bounds
}

__global__ void shared_write_past_end_kernel(int32_t* out) {
  __shared__ int32_t buf[256];
  const int t = threadIdx.x;
  buf[t + 256 - blockDim.x + 1] = t;  // the last thread writes buf[256]
  __syncthreads();
  out[t] = buf[t];
}

__global__ void divergent_barrier_kernel(int32_t* out) {
  if (threadIdx.x % 2 == 0) __syncthreads();  // illegal: not reached by every thread
  out[threadIdx.x] = 1;
}

}  // namespace

cudaError_t reverse_in_block(const int32_t* in, int32_t* out, int blocks, int threads) {
  return launch("emu_selftest_reverse_in_block", reverse_in_block_kernel, dim3(blocks), dim3(threads), nullptr, in,
                out);
}

cudaError_t racy_reverse_in_block(const int32_t* in, int32_t* out, int blocks, int threads) {
  return launch("emu_selftest_racy_reverse_in_block", racy_reverse_in_block_kernel, dim3(blocks), dim3(threads),
                nullptr, in, out);
}

cudaError_t global_read_past_end(const int32_t* in, int32_t* out, int threads) {
  return launch("emu_selftest_global_read_past_end", global_read_past_end_kernel, dim3(1), dim3(threads), nullptr, in,
                out);
}

cudaError_t shared_write_past_end(int32_t* out, int threads) {
  return launch("emu_selftest_shared_write_past_end", shared_write_past_end_kernel, dim3(1), dim3(threads), nullptr,
                out);
}

cudaError_t divergent_barrier(int32_t* out, int threads) {
  return launch("emu_selftest_divergent_barrier", divergent_barrier_kernel, dim3(1), dim3(threads), nullptr, out);
}

void fast_divmod(int64_t d, int32_t n, int32_t* q, int32_t* r) {
  int qq, rr;
  FastDivmod(d).divmod(n, qq, rr);
  *q = qq;
  *r = rr;
}

}  // namespace emu_selftest
}  // namespace cuda
}  // namespace fastconv
