// The conv2d dispatch of one SIMD ISA: per pass, one function that picks the algorithm by the
// rules of algorithm.h, in order, records it (last_algorithm) and runs it. Compiled once per ISA
// by conv2d/<isa>.cpp, together with every algorithm; conv2d_ops at the end gives that ISA's
// entries (conv2d.h).
#pragma once  // once per translation unit: each ISA file includes it for its own ISA
#ifndef FASTCONV_SIMD_NS
#error "include simd/avx512.h or simd/avx2.h before conv2d/conv2d.inl"
#endif

#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "algorithm.h"
#include "bwd_data.inl"
#include "bwd_data_strided.inl"
#include "bwd_weight.inl"
#include "fwd.inl"
#include "winograd.h"
#include "winograd_bwd_weight.inl"

namespace fastconv {
namespace FASTCONV_SIMD_NS {
namespace {

// Largest |a[i]| of n elements, or +inf when one is NaN or infinite. On the bit patterns with
// the sign cleared, integer order is the order of magnitudes and every NaN and Inf lies above
// every finite value, so one integer max (vectorized with this ISA's flags) answers both.
template <typename T>
double max_abs_or_inf(const T* a, int64_t n) {
  using Bits = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  constexpr Bits kMagnitude = std::numeric_limits<Bits>::max();  // all bits but the sign
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

// Winograd runs when switched on, eligible for the shape and safe for the largest magnitudes of
// the two operands a (a_size elements) and b (b_size): the scan of the operands happens only
// when the first two hold.
template <typename T>
bool winograd_runs(ConvPass pass, const Conv2dParams& p, const T* a, int64_t a_size, const T* b, int64_t b_size) {
  if (!winograd_enabled() || !winograd_eligible(pass, p)) return false;
  const double a_max = max_abs_or_inf(a, a_size), b_max = max_abs_or_inf(b, b_size);
  const bool fp64 = sizeof(T) == 8;
  switch (pass) {
    case ConvPass::fwd:
      return winograd_fwd_safe(p, a_max, b_max, fp64);
    case ConvPass::bwd_data:
      return winograd_bwd_data_safe(p, a_max, b_max, fp64);
    case ConvPass::bwd_weight:
      return winograd_bwd_weight_safe(p, a_max, b_max, fp64);
  }
  return false;
}

// x, w, bias -> y
template <class V>
void conv2d_fwd(const Conv2dParams& p, const typename V::T* x, const typename V::T* w, const typename V::T* bias,
                typename V::T* y) {
  if (winograd_runs(ConvPass::fwd, p, x, p.x_size(), w, p.w_size())) {
    record_algorithm(ConvPass::fwd, ConvAlgorithm::winograd_f4x4_3x3);
    return conv2d_fwd_winograd<V>(p, x, w, bias, y);
  }
  record_algorithm(ConvPass::fwd, ConvAlgorithm::direct);
  conv2d_fwd_direct<V>(p, x, w, bias, y);
}

// grad_y, w -> grad_x
template <class V>
void conv2d_bwd_data(const Conv2dParams& p, const typename V::T* gy, const typename V::T* w, typename V::T* gx) {
  if (winograd_runs(ConvPass::bwd_data, p, gy, p.y_size(), w, p.w_size())) {
    record_algorithm(ConvPass::bwd_data, ConvAlgorithm::winograd_f4x4_3x3);
    return conv2d_bwd_data_winograd<V>(p, gy, w, gx);
  }
  if (use_stride_phase(p)) {
    record_algorithm(ConvPass::bwd_data, ConvAlgorithm::stride_phase);
    return conv2d_bwd_data_stride_phase<V>(p, gy, w, gx);
  }
  if (use_small_channels(p)) {
    record_algorithm(ConvPass::bwd_data, ConvAlgorithm::small_channels);
    return conv2d_bwd_data_small_channels<V>(p, gy, w, gx);
  }
  record_algorithm(ConvPass::bwd_data, ConvAlgorithm::direct);
  conv2d_bwd_data_direct<V>(p, gy, w, gx);
}

// grad_y, x -> grad_w, grad_bias (or null)
template <class V>
void conv2d_bwd_weight(const Conv2dParams& p, const typename V::T* gy, const typename V::T* x, typename V::T* gw,
                       typename V::T* gb) {
  if (winograd_runs(ConvPass::bwd_weight, p, gy, p.y_size(), x, p.x_size())) {
    record_algorithm(ConvPass::bwd_weight, ConvAlgorithm::winograd_f4x4_3x3);
    return conv2d_bwd_weight_winograd<V>(p, gy, x, gw, gb);
  }
  record_algorithm(ConvPass::bwd_weight, ConvAlgorithm::direct);
  conv2d_bwd_weight_direct<V>(p, gy, x, gw, gb);
}

}  // namespace

template <typename T>
Conv2dOps<T> conv2d_ops() {
  return Conv2dOps<T>{conv2d_fwd<VecOf<T>>, conv2d_bwd_data<VecOf<T>>, conv2d_bwd_weight<VecOf<T>>};
}
template Conv2dOps<float> conv2d_ops<float>();
template Conv2dOps<double> conv2d_ops<double>();

}  // namespace FASTCONV_SIMD_NS
}  // namespace fastconv
