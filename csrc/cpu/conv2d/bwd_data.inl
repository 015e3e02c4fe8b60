// conv2d backward-data of stride-1 layers, compiled once per ISA by conv2d/bwd_data_<isa>.cpp:
// the direct driver (conv2d/direct.inl) on grad_y with flipped, transposed weights, or for few
// input channels pixel-vector tiles. Stride > 1 runs the stride-phase kernel instead
// (bwd_data_strided.inl). Reference: ref::conv2d_bwd_data (conv2d/ref.cpp).
#pragma once  // once per translation unit: each ISA file includes it for its own ISA
#ifndef FASTCONV_SIMD_NS
#error "include simd/avx512.h or simd/avx2.h before conv2d/bwd_data.inl"
#endif

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../runtime/kernel_log.h"
#include "direct.inl"

namespace fastconv {
namespace FASTCONV_SIMD_NS {

// Backward-data for few input channels (C <= kSmallChannels, e.g. an RGB first layer; the rule is
// in algorithm.cpp), where a tile of channel lanes would be mostly empty: lanes run along a row
// of grad_x instead.
//   acc[c][lanes] += w'[r', s', k, c] (broadcast) * gy_p[ih + r'*dh, k, iw + s'*dw + lanes]
// with gy_p (grad_y shifted as in conv2d_bwd_data_direct below) in row-channel-column form (rows of
// pixels contiguous) and w' flipped as (R*S, K, C). Rows of gy_p are built per thread on
// demand (a ring of R rows), not for the whole tensor.
template <class V>
void conv2d_bwd_data_small_channels(const Conv2dParams& p, const typename V::T* gy, const typename V::T* w,
                                    typename V::T* gx) {
  using T = typename V::T;
  KernelLog log;
  const int64_t RS = p.R * p.S, nvmax = small_nv_max<V>(p.C), PW = nvmax * V::W;
  T* wp = scratch<T>(slot::kFlippedWeights, RS * p.K * p.C);
  pack_bwd_data_cblock(w, p.layout, p.K, p.C, RS, p.C, 0, wp);  // (R*S, K, C)
  log.lap("pack");

  const Padded g = padded_grad_output(p);
  const int64_t row = p.K * g.Wb;
  const int threads = threads_for(p.macs());
  const RowPlan<T> plan(g, true, 1);
  const bool nchw = p.layout == Layout::NCHW;
  const int64_t items = p.N * p.H, chunk = default_grain(items, threads);
  const int64_t span = (p.R - 1) * p.dil_h + 1;  // grad_y rows one grad_x row reads
  std::vector<int64_t> aoff(RS);
  for (int64_t u = 0; u < RS; ++u) aoff[u] = u * p.K * p.C;
  parallel_team(threads, items, chunk, [&](ChunkQueue& queue) {
    // This thread's ring of zero-padded grad_y rows in row-channel-column form, built on demand
    // (consecutive grad_x rows of a work chunk reuse span - 1 of their rows): grad_y is read
    // from memory once and never copied whole (a full copy cost as much as the tiles on
    // VGG16's conv1_1 at batch 8). + PW: the last tile's vectors may read past the last row
    // (those lanes are not stored).
    T* ring = scratch<T>(slot::kGradRows, span * row + PW);
    std::fill(ring + span * row, ring + span * row + PW, T(0));
    std::vector<int64_t> tag(span, -1), boff(RS);
    for (int64_t it_begin, it_end; queue.next(&it_begin, &it_end);)
      for (int64_t it = it_begin; it < it_end; ++it) {
        const int64_t n = it / p.H, ih = it % p.H;
        for (int64_t r = 0; r < p.R; ++r) {
          const int64_t i = ih + r * p.dil_h, slot = i % span;
          if (tag[slot] != n * g.Hb + i) {
            plan.fill(gy, n, i, ring + slot * row);
            tag[slot] = n * g.Hb + i;
          }
          for (int64_t sc = 0; sc < p.S; ++sc) boff[r * p.S + sc] = slot * row + sc * p.dil_w;
        }
        TileArgs<T> t;
        t.A = wp;
        t.aoff = aoff.data();
        t.a_ts = p.C;
        t.boff = boff.data();
        t.ldb = g.Wb;
        t.U = RS;
        t.Tn = p.K;
        t.out_transposed = !nchw;
        t.ldo = nchw ? p.H * p.W : p.C;
        for (int64_t iw0 = 0; iw0 < p.W; iw0 += PW) {
          const int64_t left = std::min(PW, p.W - iw0);
          t.B = ring + iw0;
          t.kvalid = static_cast<int>(left);
          t.out = nchw ? gx + (n * p.C * p.H + ih) * p.W + iw0 : gx + ((n * p.H + ih) * p.W + iw0) * p.C;
          small_tile_fn<V>(p.C, ceil_div(left, V::W))(t);
        }
      }
  });
  log.lap("grad_y-rows+tiles");
  log.print(FASTCONV_SIMD_NAME, "conv2d_bwd_data", V::name, "pixel-vector tiles for few channels", int(p.C), int(PW));
}

// grad_y (N,K,P,Q) | (N,P,Q,K), w -> grad_x (N,C,H,W) | (N,H,W,C); stride 1.
template <class V>
void conv2d_bwd_data_direct(const Conv2dParams& p, const typename V::T* gy, const typename V::T* w, typename V::T* gx) {
  using T = typename V::T;
  // grad_x[ih, iw, c] = sum_{r', s', k} gy_p[ih + r'*dh, iw + s'*dw, k] * w[R-1-r', S-1-s', c, k]
  // where gy_p is grad_y shifted by (R-1)*dh - pad_top rows and (S-1)*dw - pad_left columns
  // (zeros outside): a stride-1 forward convolution.
  KernelLog log;
  constexpr int64_t KB = V::NV * V::W;
  const int64_t RS = p.R * p.S;
  WeightBlocks<T> wb;
  wb.w = w;
  wb.layout = p.layout;
  wb.K = p.K;
  wb.C = p.C;
  wb.RS = RS;
  wb.bwd_data = true;

  DirectConv d;
  d.threads = threads_for(p.macs());
  d.N = p.N;
  d.C = p.K;
  d.K = p.C;
  d.P = p.H;
  d.Q = p.W;
  d.RS = RS;
  d.sh = 1;
  d.out_layout = p.layout;
  const Padded g = padded_grad_output(p);
  const RowPlan<T> plan(g, p.layout == Layout::NCHW, 1);
  const bool in_place = describe_input(g, p.R, p.S, 1, p.dil_h, p.dil_w, KB, plan.Wph, &d);
  direct_conv<V>(d, gy, in_place ? nullptr : &plan, wb, nullptr, gx);
  log.lap("input-rows+pack+tiles");
  log.print(FASTCONV_SIMD_NAME, "conv2d_bwd_data", V::name, "direct, flipped weights", V::NJ, KB);
}

}  // namespace FASTCONV_SIMD_NS
}  // namespace fastconv
