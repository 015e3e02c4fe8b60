// Small helpers shared by the CPU kernels (portable and per-ISA): thread counts and index arithmetic.
#pragma once
#include <algorithm>
#include <cstdint>

#include "runtime.h"
#include "thread_pool.h"

namespace fastconv {

// Threads for a parallel region doing `work` multiply-adds or element visits. Smaller problems
// run on the calling thread. Measured on 2 cores (fastconv.bench coexist and a sweep of conv2d of x
// (N,3,16,16) with 3 and 16 filters): idle, 2 threads save 5-15% from 1.6e5 MACs (~90 us);
// with one busy neighbour process, 2 threads are 1.8-2.2x slower up to 4.4e5 MACs (waking a
// worker and waiting for its chunk costs a scheduler slice) and faster from 6.6e5.
// (The tests lower it with set_min_parallel_work so that small shapes exercise the threads too.)
constexpr int64_t kMinParallelWork = int64_t(1) << 19;
inline int threads_for(int64_t work) { return work < min_parallel_work() ? 1 : num_threads(); }

// body(begin, end) over chunks of [0, n) elements cut at multiples of 64 elements: no two
// threads write the same cache line, and a chunk starts where its first vector store is as
// aligned as the array itself (the streaming stores of the elementwise kernels rely on it).
template <class Body>
void parallel_for_lines(int64_t n, Body&& body) {
  const int64_t lines = (n + 63) / 64;
  parallel_for(threads_for(n), lines, [&](int64_t b, int64_t e) { body(b * 64, std::min(n, e * 64)); });
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }  // a >= 0, b > 0
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

inline int64_t floor_div(int64_t a, int64_t b) {  // b > 0
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

// Output positions o in [0, out) whose input position o*stride + offset lies in [0, in):
// returns the half-open range [*lo, *hi) with 0 <= *lo <= *hi <= out (empty when equal), so
// callers may loop over [0, lo) and [hi, out) as the positions outside it. Hoisting this out of
// the inner loops keeps them free of bounds checks.
inline void valid_output_range(int64_t out, int64_t in, int64_t stride, int64_t offset, int64_t* lo, int64_t* hi) {
  *lo = std::clamp<int64_t>(floor_div(-offset + stride - 1, stride), 0, out);
  *hi = std::clamp<int64_t>(floor_div(in - 1 - offset, stride) + 1, *lo, out);
}

}  // namespace fastconv
