// Machine probes for the benchmark (python -m fastconv.bench): the FMA peak of this CPU and
// its memory copy bandwidth, measured here rather than taken from a datasheet, so "% of peak"
// and "% of copy bandwidth" are relative to what this machine (VM, frequency, neighbours)
// really delivers. Not used by any kernel.
//
// Peak: every thread runs kChains independent FMA chains on registers (no memory traffic).
// Two rates come back: flops / wall time of the whole parallel region, and the sum over threads
// of flops / that thread's CPU time. On a machine shared with other processes the wall-time
// rate drops whenever a thread waits for a core; the CPU-time rate is what the cores deliver
// while running (it may read a little high if turbo clocks are higher with one core busy).
// 16 chains cover the FMA latency (4 cycles) times two FMA ports with room to spare; the ISA
// is picked per function with target attributes, so this file needs no ISA flags.
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../cpu/runtime/runtime.h"
#include "peak_flops.h"

namespace fastconv {
namespace probe {
namespace {

constexpr int kChains = 16;

// a = a * m + c keeps every value finite and normal (a -> c / (1 - m)). The two versions are
// the same loop; each is compiled for its ISA through its target attribute.
__attribute__((target("avx512f,fma"))) float chains_avx512(int64_t iters) {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(1.0f + 0.01f * i);
  const __m512 m = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(0.001f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], m, c);
  }
  for (int i = 1; i < kChains; ++i) acc[0] = _mm512_add_ps(acc[0], acc[i]);
  return _mm512_reduce_add_ps(acc[0]);
}

__attribute__((target("avx2,fma"))) float chains_avx2(int64_t iters) {
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(1.0f + 0.01f * i);
  const __m256 m = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(0.001f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], m, c);
  }
  for (int i = 1; i < kChains; ++i) acc[0] = _mm256_add_ps(acc[0], acc[i]);
  return _mm_cvtss_f32(_mm256_castps256_ps128(acc[0]));
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// Runs body(t) on `threads` threads at once (t = 0 is the caller). The probes need every thread
// running at the same time, which the kernels' chunk pool (thread_pool.h) does not promise.
template <class Body>
void run_together(int threads, const Body& body) {
  std::vector<std::thread> team;
  for (int t = 1; t < threads; ++t) team.emplace_back([&body, t] { body(t); });
  body(0);
  for (auto& th : team) th.join();
}

// All `threads` threads wait here until the last one arrives (spinning: the probes time it).
class SpinBarrier {
 public:
  explicit SpinBarrier(int threads) : threads_(threads) {}
  void wait() {
    const int gen = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == threads_) {
      arrived_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
      return;
    }
    while (generation_.load(std::memory_order_acquire) == gen) _mm_pause();
  }

 private:
  const int threads_;
  std::atomic<int> arrived_{0}, generation_{0};
};

}  // namespace

PeakResult fma_peak_gflops(Isa isa, int threads, int64_t iters) {
  if (isa > best_supported_isa()) throw std::invalid_argument("isa: not supported by this CPU");
  if (isa == Isa::scalar) throw std::invalid_argument("isa: the FMA probe needs avx2 or avx512");
  const int lanes = isa == Isa::avx512 ? 16 : 8;
  const double flops_per_thread = 2.0 * kChains * lanes * double(iters);
  std::vector<double> cpu_rate(threads, 0.0);
  std::atomic<float> sink{0.f};
  const auto t0 = std::chrono::steady_clock::now();
  run_together(threads, [&](int t) {
    const double c0 = thread_cpu_seconds();
    const float r = isa == Isa::avx512 ? chains_avx512(iters) : chains_avx2(iters);
    cpu_rate[t] = flops_per_thread / (thread_cpu_seconds() - c0);
    if (r == 12345.f) sink.store(r);  // never true; keeps the result alive
  });
  const double s = seconds_since(t0);
  double cpu_rate_sum = 0.0;
  for (double r : cpu_rate) cpu_rate_sum += r;
  return {flops_per_thread * threads / s / 1e9, cpu_rate_sum / 1e9};
}

double copy_gbps(int64_t bytes, int threads, bool streaming, int repeats) {
  const int64_t n = bytes / 64 * 16;  // floats, whole cache lines
  float* src = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));
  float* dst = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));
  if (!src || !dst) {
    std::free(src);
    std::free(dst);
    throw std::bad_alloc();
  }
  double best = 1e30;
  SpinBarrier barrier(threads);
  run_together(threads, [&](int t) {
    const int64_t b = n / 16 * t / threads * 16, e = n / 16 * (t + 1) / threads * 16;
    for (int64_t i = b; i < e; ++i) {
      src[i] = float(i & 255);
      dst[i] = 0.f;
    }  // first touch
    for (int r = 0; r < repeats; ++r) {
      barrier.wait();
      const auto t0 = std::chrono::steady_clock::now();
      if (streaming) {
        for (int64_t i = b; i < e; i += 4) _mm_stream_ps(dst + i, _mm_load_ps(src + i));
        _mm_sfence();
      } else {
        for (int64_t i = b; i < e; i += 4) _mm_store_ps(dst + i, _mm_load_ps(src + i));
      }
      barrier.wait();
      if (t == 0) best = std::min(best, seconds_since(t0));
    }
  });
  const bool ok = dst[n - 1] == src[n - 1];
  std::free(src);
  std::free(dst);
  if (!ok) throw std::runtime_error("copy probe: the copy is wrong");
  return 2.0 * double(n) * sizeof(float) / best / 1e9;  // bytes read + bytes written
}

}  // namespace probe
}  // namespace fastconv
