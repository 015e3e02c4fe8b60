// conv2d backward-weight by pixel reduction, compiled once per ISA by
// conv2d/bwd_weight_<isa>.cpp. Reference: ref::conv2d_bwd_weight (conv2d/ref.cpp).
//
// Register tiles (conv2d/microkernel.inl): j = 14 consecutive (s, c) entries of one filter row
// (the input is made zero-padded NHWC, where x[ih, iw+s, c] is contiguous over (s, c) when
// dilation_w = 1), lanes = output channels, t = output pixels of a row, u = (n, output row).
// The pixel reduction is cut into chunks that fit L2; each thread slice owns a fixed set of
// output tiles and adds their chunks in order, so the result is the same for any thread count.
#pragma once  // once per translation unit: each ISA file includes it for its own ISA
#ifndef FASTCONV_SIMD_NS
#error "include simd/avx512.h or simd/avx2.h before conv2d/bwd_weight.inl"
#endif

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../runtime/kernel_log.h"
#include "../runtime/loops.h"
#include "layout.inl"
#include "microkernel.inl"
#include "workspace.h"

namespace fastconv {
namespace FASTCONV_SIMD_NS {

template <class V>
void conv2d_bwd_weight_direct(const Conv2dParams& p, const typename V::T* gy, const typename V::T* x, typename V::T* gw,
                              typename V::T* gb) {
  using T = typename V::T;
  constexpr int64_t W = V::W, KB = V::NV * V::W;
  const int64_t RS = p.R * p.S, PQ = p.P * p.Q;
  KernelLog log;
  const int threads = threads_for(p.macs());

  // x as zero-padded NHWC (N, xH, xW, C); NHWC input without padding is used in place.
  const Padded g = padded_input(p);
  const T* xb = x;
  int64_t xH = p.H, xW = p.W;
  if (!(p.layout == Layout::NHWC && p.pad_top == 0 && p.pad_left == 0 && g.Hb <= p.H && g.Wb <= p.W)) {
    T* buf = scratch<T>(slot::kPaddedInput, p.N * g.Hb * g.Wb * p.C);
    RowPlan<T>(g, false, 1).fill_all(x, buf, threads);
    xb = buf;
    xH = g.Hb;
    xW = g.Wb;
  }
  // grad_y as the tiles' vector operand, pixel t of reduction row u at boff[u] + t*gy_ld.
  // NHWC is used in place (k-block kb at column kb*KB, pixels K apart) when whole vectors never
  // run past K; otherwise (NCHW, K % W != 0) it is copied in k-blocks (K/KB, N*P*Q, KB).
  // (The copy used to be made for NHWC too: on conv1_1 at batch 8 it cost as much as the tiles.)
  const int64_t NPQ = p.N * PQ;
  const bool gy_in_place = p.layout == Layout::NHWC && p.K % W == 0;
  const T* gyb = gy;
  const int64_t gy_ld = gy_in_place ? p.K : KB, gy_kb_stride = gy_in_place ? KB : NPQ * KB;
  if (!gy_in_place) {
    T* buf = scratch<T>(slot::kBlockedGrad, ceil_div(p.K, KB) * NPQ * KB);
    to_kblocked_pixels(gy, p.layout, p.N, p.K, PQ, KB, buf, threads);
    gyb = buf;
  }
  // grad_w accumulates as (R, S, C, ldo); in place when that is the caller's layout.
  const bool direct_gw = p.layout == Layout::NHWC && p.K % W == 0;
  const int64_t ldo = direct_gw ? p.K : round_up(p.K, W);
  T* gwt = direct_gw ? gw : scratch<T>(slot::kWeightGradTiles, RS * p.C * ldo);
  log.lap("input-copy");

  // Filter rows grouped so that one group's entries are contiguous in xb: with dilation_w 1
  // the (s, c) pairs of a filter row r are x[ih, iw .. iw+S-1, :], else one (r, s) per group.
  const bool fuse_s = p.dil_w == 1;
  const int64_t G = fuse_s ? p.R : RS, J = fuse_s ? p.S * p.C : p.C;
  std::vector<int64_t> g_a(G), g_row(G);
  for (int64_t q = 0; q < G; ++q) {
    const int64_t r = fuse_s ? q : q / p.S, s = fuse_s ? 0 : q % p.S;
    g_a[q] = (r * p.dil_h * xW + s * p.dil_w) * p.C;
    g_row[q] = (r * p.S + s) * p.C;
  }
  const int64_t njb = ceil_div(J, V::NJ), nkb = ceil_div(p.K, KB);
  const int64_t items = G * njb * nkb;
  // grad_bias rides along as nkb more items: 1 x KB tiles whose broadcast operand is the
  // constant 1 (a_ts = 0), so the pixel sums are taken from the same L2-resident chunks of
  // grad_y instead of another pass over it through memory. Like the weight tiles, each is
  // owned by one thread and adds the chunks in order: deterministic.
  const int64_t bias_items = gb ? nkb : 0;
  T* gbt = gb ? scratch<T>(slot::kBiasGradTiles, nkb * KB) : nullptr;
  static const T kOne = T(1);

  // Reduction rows u = (n, oh) and their operand offsets.
  const int64_t NP = p.N * p.P;
  std::vector<int64_t> aoff(NP), boff(NP), no_off(NP, 0);
  for (int64_t u = 0; u < NP; ++u) {
    const int64_t n = u / p.P, oh = u % p.P;
    aoff[u] = (n * xH + oh * p.stride_h) * xW * p.C;
    boff[u] = u * p.Q * gy_ld;
  }
  // Rows per chunk: about 1 MiB of grad_y and x per chunk stays in L2 across all tiles.
  // (Measured with grad_y in place: its rows carry all K channels, hence round_up(K, KB).)
  const int64_t row_bytes = (p.Q * round_up(p.K, KB) + p.stride_h * xW * p.C) * int64_t(sizeof(T));
  const int64_t chunk = std::max<int64_t>(1, (int64_t(1) << 20) / row_bytes);

  // Tiles are split into one fixed slice per thread; a slice runs every pixel chunk u0 in order
  // over its tiles (each tile adds its chunks in order, so the result is the same for any
  // thread count, and no barrier is needed between chunks: a barrier costs a scheduler time
  // slice when the other core is busy). A slice whose thread is late is run by another thread.
  const int64_t tiles = items + bias_items, slices = std::min<int64_t>(threads, tiles);
  parallel_for(threads, slices, 1, [&](int64_t s_begin, int64_t s_end) {
    for (int64_t sl = s_begin; sl < s_end; ++sl)
      for (int64_t u0 = 0; u0 < NP; u0 += chunk)
        for (int64_t it = tiles * sl / slices; it < tiles * (sl + 1) / slices; ++it) {
          const bool bias_item = it >= items;
          const int64_t kb = bias_item ? it - items : it % nkb, k0 = kb * KB;
          const int64_t jb = (it / nkb) % njb, q = it / (nkb * njb), j0 = jb * V::NJ;
          TileArgs<T> t;
          t.B = gyb + kb * gy_kb_stride;
          t.boff = boff.data() + u0;
          t.ldb = gy_ld;
          t.U = std::min(chunk, NP - u0);
          t.Tn = p.Q;
          t.init = u0 == 0 ? Init::zero : Init::load;
          if (bias_item) {
            t.A = &kOne;
            t.aoff = no_off.data() + u0;
            t.a_ts = 0;
            t.out = gbt + k0;
            t.kvalid = static_cast<int>(std::min(KB, round_up(p.K, W) - k0));
          } else {
            t.A = xb + g_a[q] + j0;
            t.aoff = aoff.data() + u0;
            t.a_ts = p.stride_w * p.C;
            t.out = gwt + (g_row[q] + j0) * ldo + k0;
            t.kvalid = static_cast<int>(std::min(KB, ldo - k0));
          }
          t.ldo = ldo;
          t.partial = t.out;
          t.ldp = ldo;
          tile_fn<V>(bias_item ? 1 : std::min<int64_t>(V::NJ, J - j0), ceil_div(t.kvalid, W), false)(t);
        }
  });
  log.lap("tiles");

  if (!direct_gw) {
    if (p.layout == Layout::NHWC) {  // (R,S,C,ldo) -> (R,S,C,K)
      parallel_for(threads, RS * p.C, [&](int64_t i_begin, int64_t i_end) {
        for (int64_t i = i_begin; i < i_end; ++i) std::copy(gwt + i * ldo, gwt + i * ldo + p.K, gw + i * p.K);
      });
    } else {  // (R,S,C,ldo) -> (K,C,R,S): 16 k x 16 c blocks, taps innermost so that each
              // block reads 16*RS source lines and fills 16 runs of 16*RS destination values.
              // (Storing the tiles straight into (K,C,R,S) instead measured 2x slower tiles.)
      const int64_t nk16 = ceil_div(p.K, 16), nc16 = ceil_div(p.C, 16);
      parallel_for(threads, nk16 * nc16, [&](int64_t blk_begin, int64_t blk_end) {
        for (int64_t blk = blk_begin; blk < blk_end; ++blk) {
          const int64_t k0 = (blk / nc16) * 16, k1 = std::min(p.K, k0 + 16);
          const int64_t c0 = (blk % nc16) * 16, c1 = std::min(p.C, c0 + 16);
          for (int64_t k = k0; k < k1; ++k)
            for (int64_t c = c0; c < c1; ++c) {
              T* d = gw + (k * p.C + c) * RS;
              const T* src = gwt + c * ldo + k;
              for (int64_t rs = 0; rs < RS; ++rs) d[rs] = src[rs * p.C * ldo];
            }
        }
      });
    }
  }
  log.lap("unpack");

  if (gb) std::copy(gbt, gbt + p.K, gb);
  log.lap("grad-bias");
  log.print(FASTCONV_SIMD_NAME, "conv2d_bwd_weight", V::name,
            fuse_s ? "pixel-reduction, (s,c) rows fused" : "pixel-reduction", V::NJ, KB);
}

}  // namespace FASTCONV_SIMD_NS
}  // namespace fastconv
