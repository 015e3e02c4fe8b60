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
#ifdef _OPENMP
#include <omp.h>
#endif

#include <chrono>
#include <ctime>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "peak_flops.h"
#include "runtime.h"

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

}  // namespace

PeakResult fma_peak_gflops(Isa isa, int threads, int64_t iters) {
  if (isa > best_supported_isa()) throw std::invalid_argument("isa: not supported by this CPU");
  if (isa == Isa::scalar) throw std::invalid_argument("isa: the FMA probe needs avx2 or avx512");
  const int lanes = isa == Isa::avx512 ? 16 : 8;
  const double flops_per_thread = 2.0 * kChains * lanes * double(iters);
  volatile float sink = 0.f;
  double cpu_rate_sum = 0.0;
  const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : cpu_rate_sum)
  {
    const double c0 = thread_cpu_seconds();
    const float r = isa == Isa::avx512 ? chains_avx512(iters) : chains_avx2(iters);
    cpu_rate_sum += flops_per_thread / (thread_cpu_seconds() - c0);
    if (r == 12345.f) sink = r;  // never true; keeps the result alive
  }
  const double s = seconds_since(t0);
  (void)sink;
  return {flops_per_thread * threads / s / 1e9, cpu_rate_sum / 1e9};
}

double copy_gbps(int64_t bytes, int threads, bool streaming, int repeats) {
  const int64_t n = bytes / 64 * 16;  // floats, whole cache lines
  float* src = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));
  float* dst = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));
  if (!src || !dst) { std::free(src); std::free(dst); throw std::bad_alloc(); }
  double best = 1e30;
#pragma omp parallel num_threads(threads)
  {
#ifdef _OPENMP
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
    const int64_t t = 0, nt = 1;
#endif
    const int64_t b = n / 16 * t / nt * 16, e = n / 16 * (t + 1) / nt * 16;
    for (int64_t i = b; i < e; ++i) { src[i] = float(i & 255); dst[i] = 0.f; }  // first touch
    for (int r = 0; r < repeats; ++r) {
#pragma omp barrier
      std::chrono::steady_clock::time_point t0;
#pragma omp master
      t0 = std::chrono::steady_clock::now();
      if (streaming) {
        for (int64_t i = b; i < e; i += 4) _mm_stream_ps(dst + i, _mm_load_ps(src + i));
        _mm_sfence();
      } else {
        for (int64_t i = b; i < e; i += 4) _mm_store_ps(dst + i, _mm_load_ps(src + i));
      }
#pragma omp barrier
#pragma omp master
      {
        const double s = seconds_since(t0);
        if (s < best) best = s;
      }
    }
  }
  const bool ok = dst[n - 1] == src[n - 1];
  std::free(src);
  std::free(dst);
  if (!ok) throw std::runtime_error("copy probe: the copy is wrong");
  return 2.0 * double(n) * sizeof(float) / best / 1e9;  // bytes read + bytes written
}

}  // namespace probe
}  // namespace fastconv
