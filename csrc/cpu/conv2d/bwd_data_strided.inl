// conv2d backward-data for stride > 1 by stride phases, compiled once per ISA by
// conv2d/bwd_data_<isa>.cpp. Reference: ref::conv2d_bwd_data (conv2d/ref.cpp).
//
//   grad_x[n, c, h, x] = sum over taps (r, s) with h + pad_top - r*dh = p*sh and
//                        x + pad_left - s*dw = q*sw (0 <= p < P, 0 <= q < Q) of
//                        sum_k gy[n, k, p, q] * w[k, c, r, s]
//
// A grad_x row only visits its valid kernel rows r, and the pixels of one column phase b
// (x = b + sw*j) share their valid kernel columns s, with q = j + q0(b, s): each (row, phase)
// is a stride-1 row convolution over a sub-kernel, so no multiply-add meets a zero (running the
// stride-1 driver over grad_y with zeros interleaved would do sh*sw times the work).
#pragma once  // once per translation unit: each ISA file includes it for its own ISA
#ifndef FASTCONV_SIMD_NS
#error "include simd/avx512.h or simd/avx2.h before conv2d/bwd_data_strided.inl"
#endif

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../runtime/kernel_log.h"
#include "../runtime/loops.h"
#include "microkernel.inl"
#include "workspace.h"

namespace fastconv {
namespace FASTCONV_SIMD_NS {
namespace {

// Valid taps of one grad_x coordinate (row or column): taps t with
// i + pad - t*dil = o*stride, 0 <= o < out; returned as (t, o) pairs, computed once per call.
struct TapList {
  std::vector<int64_t> start, tap, src;  // entries of coordinate i: [start[i], start[i+1])
  TapList(int64_t in, int64_t taps, int64_t out, int64_t stride, int64_t pad, int64_t dil) {
    start.push_back(0);
    for (int64_t i = 0; i < in; ++i) {
      for (int64_t t = 0; t < taps; ++t) {
        const int64_t u = i + pad - t * dil;
        if (u < 0 || u % stride != 0 || u / stride >= out) continue;
        tap.push_back(t);
        src.push_back(u / stride);
      }
      start.push_back(static_cast<int64_t>(tap.size()));
    }
  }
};

// Lanes run along the grad_x pixels of one row h and one column phase b (x = b + sw*j); grad_y
// is copied as (N, P, K, Qb) rows with zero columns on both sides so every tap valid in phase b
// is valid for every j. The tile is the pixel-vector kernel of conv2d/microkernel.inl (small_tile_fn):
//   acc[c][lanes] += w[r, s, k, c] (broadcast) * gyr[n, p, k, padL + q0 + j + lanes]
// over the valid (r, s) of (h, b) and all k, for blocks of up to kSmallChannels channels (larger C
// re-reads the grad_y rows once per block, from L1/L2).
template <class V>
void conv2d_bwd_data_stride_phase(const Conv2dParams& p, const typename V::T* gy, const typename V::T* w,
                                  typename V::T* gx) {
  using T = typename V::T;
  KernelLog log;
  const int64_t RS = p.R * p.S, sw = p.stride_w, CB = std::min<int64_t>(p.C, kSmallChannels);
  const int64_t nvmax = small_nv_max<V>(CB), PW = nvmax * V::W;
  const bool nchw = p.layout == Layout::NCHW;
  const int threads = threads_for(p.macs());

  // Per column phase b: pixels J[b] and the valid taps (s, q0); pad columns so q stays in range.
  std::vector<int64_t> J(sw), tstart(sw + 1, 0), tap_s, tap_q0;
  int64_t padL = 0, padR = 0;
  for (int64_t b = 0; b < sw; ++b) {
    J[b] = b < p.W ? ceil_div(p.W - b, sw) : 0;
    for (int64_t s = 0; s < p.S && J[b] > 0; ++s) {
      const int64_t u = b + p.pad_left - s * p.dil_w;  // q = j + u / sw when sw divides u
      if (((u % sw) + sw) % sw != 0) continue;
      const int64_t q0 = (u - ((u % sw) + sw) % sw) / sw;
      tap_s.push_back(s);
      tap_q0.push_back(q0);
      padL = std::max(padL, -q0);
      padR = std::max(padR, q0 + J[b] - p.Q);
    }
    tstart[b + 1] = static_cast<int64_t>(tap_s.size());
  }
  const int64_t Qb = padL + p.Q + padR;

  // Weights -> (R, S, K, C); NCHW weights are (K, C, R, S), NHWC weights (R, S, C, K).
  T* wk = scratch<T>(slot::kFlippedWeights, RS * p.K * p.C);
  for (int64_t rs = 0; rs < RS; ++rs)
    for (int64_t k = 0; k < p.K; ++k)
      for (int64_t c = 0; c < p.C; ++c)
        wk[(rs * p.K + k) * p.C + c] = nchw ? w[(k * p.C + c) * RS + rs] : w[(rs * p.C + c) * p.K + k];
  // grad_y -> (N, P, K, Qb) rows with padL / padR zero columns; + PW: a tile's vectors may read
  // past the last row (those lanes are not stored).
  const int64_t rows_total = p.N * p.P * p.K;
  T* gyr = scratch<T>(slot::kGradRows, rows_total * Qb + PW);
  parallel_for(threads, rows_total, [&](int64_t row_begin, int64_t row_end) {
    for (int64_t row = row_begin; row < row_end; ++row) {
      const int64_t k = row % p.K, np = row / p.K, n = np / p.P, pp = np % p.P;
      T* dst = gyr + row * Qb;
      std::fill(dst, dst + padL, T(0));
      std::fill(dst + padL + p.Q, dst + Qb, T(0));
      if (nchw) {
        const T* src = gy + ((n * p.K + k) * p.P + pp) * p.Q;
        std::copy(src, src + p.Q, dst + padL);
      } else {
        const T* src = gy + (n * p.P + pp) * p.Q * p.K + k;
        for (int64_t q = 0; q < p.Q; ++q) dst[padL + q] = src[q * p.K];
      }
    }
  });
  std::fill(gyr + rows_total * Qb, gyr + rows_total * Qb + PW, T(0));
  log.lap("pack");

  const TapList rows(p.H, p.R, p.P, p.stride_h, p.pad_top, p.dil_h);
  const int64_t items = p.N * p.H, chunk = default_grain(items, threads);
  parallel_team(threads, items, chunk, [&](ChunkQueue& queue) {
    std::vector<int64_t> aoff(RS), boff(RS);
    std::vector<T> tmp(CB * PW);  // NCHW: one tile's channels, lanes contiguous
    for (int64_t it_begin, it_end; queue.next(&it_begin, &it_end);)
      for (int64_t it = it_begin; it < it_end; ++it) {
        const int64_t n = it / p.H, h = it % p.H;
        for (int64_t b = 0; b < sw; ++b) {
          int64_t U = 0;
          for (int64_t i = rows.start[h]; i < rows.start[h + 1]; ++i)
            for (int64_t e = tstart[b]; e < tstart[b + 1]; ++e, ++U) {
              aoff[U] = (rows.tap[i] * p.S + tap_s[e]) * p.K * p.C;
              boff[U] = (n * p.P + rows.src[i]) * p.K * Qb + padL + tap_q0[e];
            }
          for (int64_t c0 = 0; c0 < p.C; c0 += CB) {
            const int64_t cb = std::min(CB, p.C - c0);
            for (int64_t j0 = 0; j0 < J[b]; j0 += PW) {
              const int64_t left = std::min(PW, J[b] - j0);
              TileArgs<T> t;
              t.A = wk + c0;
              t.aoff = aoff.data();
              t.a_ts = p.C;
              t.B = gyr + j0;
              t.boff = boff.data();
              t.ldb = Qb;
              t.U = U;  // 0 when no tap reaches these pixels: the tile stores zeros
              t.Tn = p.K;
              t.kvalid = static_cast<int>(left);
              const int64_t x0 = b + sw * j0;
              if (nchw) {
                t.out = tmp.data();
                t.ldo = PW;
              } else {
                t.out = gx + ((n * p.H + h) * p.W + x0) * p.C + c0;
                t.out_transposed = true;
                t.ldo = sw * p.C;
              }
              small_tile_fn<V>(cb, ceil_div(left, V::W))(t);
              if (nchw)
                for (int64_t c = 0; c < cb; ++c) {
                  T* o = gx + ((n * p.C + c0 + c) * p.H + h) * p.W + x0;
                  for (int64_t l = 0; l < left; ++l) o[l * sw] = tmp[c * PW + l];
                }
            }
          }
        }
      }
  });
  log.lap("tiles");
  log.print(FASTCONV_SIMD_NAME, "conv2d_bwd_data", V::name, "stride phases, pixel-vector tiles", int(CB), int(PW));
}

}  // namespace
}  // namespace FASTCONV_SIMD_NS
}  // namespace fastconv
