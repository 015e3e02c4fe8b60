// Machine probes for the benchmark: FMA peak and copy bandwidth (peak_flops.cpp).
#pragma once
#include <cstdint>

#include "../cpu/runtime/runtime.h"

namespace fastconv {
namespace probe {
struct PeakResult {
  double wall_gflops;  // all threads' flops / wall time of the parallel region
  double cpu_gflops;   // sum over threads of flops / the thread's own CPU time
};
// FP32 GFLOP/s of `threads` threads each running independent FMA chains for `iters` loop trips
// (isa: avx2 or avx512; the float64 peak is half of it).
PeakResult fma_peak_gflops(Isa isa, int threads, int64_t iters);
// GB/s (bytes read + bytes written) of the fastest of `repeats` copies of `bytes` bytes split
// over `threads` threads, with ordinary or streaming (non-temporal) stores.
double copy_gbps(int64_t bytes, int threads, bool streaming, int repeats);
}  // namespace probe
}  // namespace fastconv
