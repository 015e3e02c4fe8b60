// Small kernels that check the emulator itself (emulation build only): shared memory is per
// block, __syncthreads() is a real barrier, a divergent barrier is reported, FastDivmod divides;
// and deliberately broken kernels that the emulator's checkers must catch: a data race (found by
// running the threads in another order) and out-of-bounds accesses (found by AddressSanitizer
// in global memory and UBSan's bounds check in shared memory, in a -DFASTCONV_SANITIZE=ON build).
#pragma once
#include <cstdint>

#include "cuda_emu.h"

namespace fastconv {
namespace cuda {
namespace emu_selftest {

// out[b*threads + t] = in[b*threads + threads-1-t] through shared memory (needs the barrier).
cudaError_t reverse_in_block(const int32_t* in, int32_t* out, int blocks, int threads);
// reverse_in_block without its barrier: a thread may read shared memory before it is written.
cudaError_t racy_reverse_in_block(const int32_t* in, int32_t* out, int blocks, int threads);
// out[t] = in[t + 1] for t < threads: reads one element past the end of `in` (threads elements).
cudaError_t global_read_past_end(const int32_t* in, int32_t* out, int threads);
// A __shared__ array of `threads` elements (<= 256) written one past its end by the last thread.
cudaError_t shared_write_past_end(int32_t* out, int threads);
// Half of the threads of a block call __syncthreads(): must fail with cudaErrorLaunchFailure.
cudaError_t divergent_barrier(int32_t* out, int threads);
// FastDivmod(d) applied to n (host-side call of the device code).
void fast_divmod(int64_t d, int32_t n, int32_t* q, int32_t* r);

}  // namespace emu_selftest
}  // namespace cuda
}  // namespace fastconv
