// The Winograd entry points of one ISA (declared in conv2d/winograd.h), shared by
// conv2d/winograd_avx512.cpp and winograd_avx2.cpp: each includes this file once, after
// its traits header and gather_taps(), and so compiles it into its own namespace with its own
// flags. The *_auto functions are the f32 and f64 entries of that ISA's dispatch table: Winograd
// where enabled, eligible and safe for the operands, else the direct kernels.
#ifndef FASTCONV_SIMD_NS
#error "include from conv2d/winograd_<isa>.cpp"
#endif
#include "winograd.inl"
#include "winograd_bwd_weight.inl"

#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

namespace fastconv {
namespace FASTCONV_SIMD_NS {
namespace {

// Largest |a[i]| of n elements, or +inf when one is NaN or infinite. On the bit patterns with
// the sign cleared, integer order is the order of magnitudes and every NaN and Inf lies above
// every finite value, so one integer max (vectorized with this ISA's flags) answers both.
template <typename T>
double max_abs_or_inf(const T* a, int64_t n) {
  using Bits = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  constexpr Bits kMagnitude = std::numeric_limits<Bits>::max();   // all bits but the sign
  constexpr int64_t kChunk = int64_t(1) << 14;
  std::atomic<Bits> largest{0};
  parallel_for(threads_for(n), (n + kChunk - 1) / kChunk, [&](int64_t c_begin, int64_t c_end) {
    Bits m = 0;
    for (int64_t i = c_begin * kChunk, end = std::min(n, c_end * kChunk); i < end; ++i) {
      Bits b;
      std::memcpy(&b, a + i, sizeof b);
      b &= kMagnitude;
      m = b > m ? b : m;
    }
    Bits seen = largest.load(std::memory_order_relaxed);
    while (m > seen && !largest.compare_exchange_weak(seen, m)) {
    }
  });
  T v;
  const Bits m = largest.load();
  std::memcpy(&v, &m, sizeof v);
  return std::isfinite(v) ? double(v) : std::numeric_limits<double>::infinity();
}

// The Winograd kernel when it is switched on, `eligible` for p and `safe` for the largest
// magnitudes of the operands a and b (of a_size and b_size elements), else the direct kernel;
// `set_path` records which ran (the tests read it back).
template <class Eligible, class Safe, class SetPath, class Winograd, class Direct, class T,
          class... Rest>
void pick(Eligible eligible, Safe safe, int64_t a_size, int64_t b_size, SetPath set_path,
          Winograd winograd, Direct direct, const Conv2dParams& p, const T* a, const T* b,
          Rest... rest) {
  const bool fp64 = sizeof(T) == 8;
  if (winograd_enabled() && eligible(p) &&
      safe(p, max_abs_or_inf(a, a_size), max_abs_or_inf(b, b_size), fp64)) {
    set_path("winograd_f4x4_3x3");
    winograd(p, a, b, rest...);
  } else {
    set_path("direct");
    direct(p, a, b, rest...);
  }
}

}  // namespace

void conv2d_fwd_f32_auto(const Conv2dParams& p, const float* x, const float* w, const float* bias,
                         float* y) {
  pick(winograd_fwd_eligible, winograd_fwd_safe, p.x_size(), p.w_size(), set_last_conv2d_fwd_path,
       conv2d_fwd_winograd<VecF32>, conv2d_fwd_f32, p, x, w, bias, y);
}
void conv2d_fwd_f64_auto(const Conv2dParams& p, const double* x, const double* w,
                         const double* bias, double* y) {
  pick(winograd_fwd_eligible, winograd_fwd_safe, p.x_size(), p.w_size(), set_last_conv2d_fwd_path,
       conv2d_fwd_winograd<VecF64>, conv2d_fwd_f64, p, x, w, bias, y);
}
void conv2d_bwd_data_f32_auto(const Conv2dParams& p, const float* gy, const float* w, float* gx) {
  pick(winograd_bwd_data_eligible, winograd_bwd_data_safe, p.y_size(), p.w_size(),
       set_last_conv2d_bwd_data_path, conv2d_bwd_data_winograd<VecF32>, conv2d_bwd_data_f32, p, gy,
       w, gx);
}
void conv2d_bwd_data_f64_auto(const Conv2dParams& p, const double* gy, const double* w, double* gx) {
  pick(winograd_bwd_data_eligible, winograd_bwd_data_safe, p.y_size(), p.w_size(),
       set_last_conv2d_bwd_data_path, conv2d_bwd_data_winograd<VecF64>, conv2d_bwd_data_f64, p, gy,
       w, gx);
}
void conv2d_bwd_weight_f32_auto(const Conv2dParams& p, const float* gy, const float* x, float* gw,
                                float* gb) {
  pick(winograd_bwd_weight_eligible, winograd_bwd_weight_safe, p.y_size(), p.x_size(),
       set_last_conv2d_bwd_weight_path, conv2d_bwd_weight_winograd<VecF32>, conv2d_bwd_weight_f32,
       p, gy, x, gw, gb);
}
void conv2d_bwd_weight_f64_auto(const Conv2dParams& p, const double* gy, const double* x,
                                double* gw, double* gb) {
  pick(winograd_bwd_weight_eligible, winograd_bwd_weight_safe, p.y_size(), p.x_size(),
       set_last_conv2d_bwd_weight_path, conv2d_bwd_weight_winograd<VecF64>, conv2d_bwd_weight_f64,
       p, gy, x, gw, gb);
}

}  // namespace FASTCONV_SIMD_NS
}  // namespace fastconv
