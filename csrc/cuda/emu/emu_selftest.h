// Small kernels that check the emulator itself (emulation build only): shared memory is per
// block, __syncthreads() is a real barrier, a divergent barrier is reported, FastDivmod divides.
#pragma once
#include <cstdint>

#include "cuda_emu.h"

namespace fastconv {
namespace cuda {
namespace emu_selftest {

// out[b*threads + t] = in[b*threads + threads-1-t] through shared memory (needs the barrier).
cudaError_t reverse_in_block(const int32_t* in, int32_t* out, int blocks, int threads);
// Half of the threads of a block call __syncthreads(): must fail with cudaErrorLaunchFailure.
cudaError_t divergent_barrier(int32_t* out, int threads);
// FastDivmod(d) applied to n (host-side call of the device code).
void fast_divmod(int64_t d, int32_t n, int32_t* q, int32_t* r);

}  // namespace emu_selftest
}  // namespace cuda
}  // namespace fastconv
