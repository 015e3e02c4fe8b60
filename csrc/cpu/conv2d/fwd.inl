// conv2d forward by the direct driver (conv2d/direct.inl), compiled once per ISA by
// conv2d/fwd_<isa>.cpp. Reference: ref::conv2d_fwd (conv2d/ref.cpp).
#pragma once  // once per translation unit: each ISA file includes it for its own ISA
#ifndef FASTCONV_SIMD_NS
#error "include simd/avx512.h or simd/avx2.h before conv2d/fwd.inl"
#endif

#include <algorithm>
#include <cstdint>

#include "../runtime/kernel_log.h"
#include "direct.inl"

namespace fastconv {
namespace FASTCONV_SIMD_NS {

// Large NHWC outputs whose rows keep every full register tile vector-aligned are written with
// non-temporal stores: a store-bound layer (VGG16 conv1_1: 27 multiply-adds per output value)
// then does not read each output line before overwriting it. Smaller outputs stay in cache for
// the next layer. Threshold: FASTCONV_STREAM_OUT_MB (default below).
inline bool stream_output(Layout layout, int64_t K, int64_t out_bytes, int W) {
  static const int64_t threshold = env_number("FASTCONV_STREAM_OUT_MB", 0, int64_t(1) << 30, 16) << 20;
  return layout == Layout::NHWC && K % W == 0 && out_bytes >= threshold;
}

// x (N,C,H,W) | (N,H,W,C), w (K,C,R,S) | (R,S,C,K), bias (K) or null -> y (N,K,P,Q) | (N,P,Q,K)
template <class V>
void conv2d_fwd_direct(const Conv2dParams& p, const typename V::T* x, const typename V::T* w, const typename V::T* bias,
                       typename V::T* y) {
  using T = typename V::T;
  KernelLog log;
  constexpr int64_t KB = V::NV * V::W;
  const int64_t Kp = round_up(p.K, KB), RS = p.R * p.S;
  WeightBlocks<T> wb;
  wb.w = w;
  wb.layout = p.layout;
  wb.K = p.K;
  wb.C = p.C;
  wb.RS = RS;
  T* bp = nullptr;
  if (bias) {
    bp = scratch<T>(slot::kFwdBias, Kp);
    std::copy(bias, bias + p.K, bp);
    std::fill(bp + p.K, bp + Kp, T(0));
  }
  DirectConv d;
  d.threads = threads_for(p.macs());
  d.N = p.N;
  d.C = p.C;
  d.K = p.K;
  d.P = p.P;
  d.Q = p.Q;
  d.RS = RS;
  d.sh = p.stride_h;
  d.out_layout = p.layout;
  d.epilogue = p.epilogue;
  d.alpha = p.alpha;
  d.stream_out = stream_output(p.layout, p.K, p.y_size() * int64_t(sizeof(T)), V::W);
  const Padded g = padded_input(p);
  const RowPlan<T> plan(g, p.layout == Layout::NCHW, p.stride_w);
  const bool in_place = describe_input(g, p.R, p.S, p.stride_w, p.dil_h, p.dil_w, KB, plan.Wph, &d);
  direct_conv<V>(d, x, in_place ? nullptr : &plan, wb, bp, y);
  log.lap("input-rows+pack+tiles");
  log.print(FASTCONV_SIMD_NAME, conv2d_fwd_op_name(p.epilogue), V::name,
            p.layout == Layout::NCHW ? "direct, row-channel-column input rows"
            : in_place               ? "direct, NHWC input in place"
                                     : "direct, padded NHWC input rows",
            V::NJ, KB);
}

}  // namespace FASTCONV_SIMD_NS
}  // namespace fastconv
