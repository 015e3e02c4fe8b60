// Layout copies and weight packing of the direct conv2d kernels, compiled once per ISA (included
// by conv2d/direct.inl and bwd_weight.inl after a traits header): zero-padded input rows in the
// two forms the register tiles read, grad_y in k-blocks of pixels, and the per-k-block weight
// streams. Plain loops: the ISA's flags vectorize them.
#pragma once  // once per translation unit: each ISA file includes it for its own ISA
#ifndef FASTCONV_SIMD_NS
#error "include simd/avx512.h or simd/avx2.h before conv2d/layout.inl"
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../eltwise/eltwise.h"
#include "../runtime/loops.h"
#include "conv2d.h"

namespace fastconv {
namespace FASTCONV_SIMD_NS {

// ---------------------------------------------------------------- padded input rows
// A zero-padded view of an activation tensor src (N,C,Hs,Ws) | (N,Hs,Ws,C): buffer row i and
// column col hold src(i - off_h, col - off_w), or 0 outside the source.
struct Padded {
  int64_t N = 0, C = 0, Hs = 0, Ws = 0;
  Layout layout = Layout::NCHW;
  int64_t Hb = 0, Wb = 0;  // buffer rows and columns
  int64_t off_h = 0, off_w = 0;
};

// x as the forward pass (and backward-weight) reads it: the rows and columns every output
// window of p spans, shifted by the top/left padding.
inline Padded padded_input(const Conv2dParams& p) {
  Padded g;
  g.N = p.N;
  g.C = p.C;
  g.Hs = p.H;
  g.Ws = p.W;
  g.layout = p.layout;
  g.Hb = (p.P - 1) * p.stride_h + (p.R - 1) * p.dil_h + 1;
  g.Wb = (p.Q - 1) * p.stride_w + (p.S - 1) * p.dil_w + 1;
  g.off_h = p.pad_top;
  g.off_w = p.pad_left;
  return g;
}

// grad_y as stride-1 backward-data reads it (a "full" convolution with flipped weights):
// shifted by (R-1)*dh - pad_top rows and (S-1)*dw - pad_left columns, H x W output positions.
inline Padded padded_grad_output(const Conv2dParams& p) {
  Padded g;
  g.N = p.N;
  g.C = p.K;
  g.Hs = p.P;
  g.Ws = p.Q;
  g.layout = p.layout;
  g.Hb = p.H + (p.R - 1) * p.dil_h;
  g.Wb = p.W + (p.S - 1) * p.dil_w;
  g.off_h = (p.R - 1) * p.dil_h - p.pad_top;
  g.off_w = (p.S - 1) * p.dil_w - p.pad_left;
  return g;
}

// How to produce one row of a padded buffer from the source: either a "row-channel-column"
// row (C, sw, Wph) whose columns are split by phase, col = pos*sw + phase, so that output
// pixels ow, ow+1, ... of one tap are adjacent for any stride (rcc = true), or a padded NHWC
// row (Wb, C). From an NCHW source an rcc row is C shifted (or, for stride_w > 1, strided)
// copies; from an NHWC source (stride_w 1 only: backward-data for few channels) and for
// padded NHWC rows from NCHW it is a transpose in blocks of 16 columns.
template <typename T>
struct RowPlan {
  Padded g;
  bool rcc = false;
  int64_t sw = 1, Wph = 0, L = 0, row = 0;  // rcc: L = sw*Wph columns per channel
  int64_t lo = 0, hi = 0;                   // buffer columns [lo, hi) hold source columns
  std::vector<int64_t> ph_lo, ph_hi;        // phase ph: positions [ph_lo, ph_hi) hold source columns

  RowPlan(const Padded& pad, bool rcc_layout, int64_t stride_w) : g(pad), rcc(rcc_layout) {
    sw = rcc ? stride_w : 1;
    Wph = ceil_div(g.Wb, sw);
    L = rcc ? sw * Wph : g.Wb;
    row = g.C * L;
    lo = std::clamp<int64_t>(g.off_w, 0, L);
    hi = std::clamp<int64_t>(g.off_w + g.Ws, lo, L);
    ph_lo.assign(sw, 0);
    ph_hi.assign(sw, 0);
    for (int64_t ph = 0; ph < sw; ++ph)  // source column of position pos: pos*sw + ph - off_w
      valid_output_range(Wph, g.Ws, sw, ph - g.off_w, &ph_lo[ph], &ph_hi[ph]);
  }

  // Buffer row i of image n -> d (row elements).
  void fill(const T* src, int64_t n, int64_t i, T* d) const {
    const int64_t hs = i - g.off_h, C = g.C;
    if (hs < 0 || hs >= g.Hs) {
      std::fill(d, d + row, T(0));
      return;
    }
    if (rcc && g.layout == Layout::NCHW) {
      for (int64_t c = 0; c < C; ++c) {
        const T* s = src + ((n * C + c) * g.Hs + hs) * g.Ws;
        T* dr = d + c * L;
        if (sw == 1) {
          std::fill(dr, dr + lo, T(0));
          std::memcpy(dr + lo, s + (lo - g.off_w), (hi - lo) * sizeof(T));
          std::fill(dr + hi, dr + L, T(0));
        } else {  // columns split by phase: strided copies
          for (int64_t ph = 0; ph < sw; ++ph) {
            T* dp = dr + ph * Wph;
            const T* sp = s + ph - g.off_w;
            std::fill(dp, dp + ph_lo[ph], T(0));
            for (int64_t pos = ph_lo[ph]; pos < ph_hi[ph]; ++pos) dp[pos] = sp[pos * sw];
            std::fill(dp + ph_hi[ph], dp + Wph, T(0));
          }
        }
      }
    } else if (rcc) {  // NHWC source, columns [lo, hi) shifted: (Ws, C) -> (C, L)
      const T* s = src + ((n * g.Hs + hs) * g.Ws - g.off_w) * C;
      for (int64_t c = 0; c < C; ++c) {
        std::fill(d + c * L, d + c * L + lo, T(0));
        std::fill(d + c * L + hi, d + (c + 1) * L, T(0));
      }
      for (int64_t k0 = lo; k0 < hi; k0 += 16) {  // 16 columns x all channels per block
        const int64_t k1 = std::min(hi, k0 + 16);
        for (int64_t c = 0; c < C; ++c) {
          T* dr = d + c * L;
          for (int64_t k = k0; k < k1; ++k) dr[k] = s[k * C + c];
        }
      }
    } else if (g.layout == Layout::NHWC) {  // padded NHWC row from NHWC
      const T* s = src + (n * g.Hs + hs) * g.Ws * C;
      std::fill(d, d + lo * C, T(0));
      std::memcpy(d + lo * C, s + (lo - g.off_w) * C, (hi - lo) * C * sizeof(T));
      std::fill(d + hi * C, d + row, T(0));
    } else {  // padded NHWC row from NCHW: (C, Ws) -> (Wb, C)
      std::fill(d, d + lo * C, T(0));
      std::fill(d + hi * C, d + row, T(0));
      for (int64_t k0 = lo; k0 < hi; k0 += 16) {
        const int64_t k1 = std::min(hi, k0 + 16);
        for (int64_t c = 0; c < C; ++c) {
          const T* s = src + ((n * C + c) * g.Hs + hs) * g.Ws - g.off_w;
          for (int64_t k = k0; k < k1; ++k) d[k * C + c] = s[k];
        }
      }
    }
  }

  // The whole buffer (N, Hb, row), rows in parallel.
  void fill_all(const T* src, T* dst, int threads) const {
    parallel_for(threads, g.N * g.Hb, [&](int64_t ni_begin, int64_t ni_end) {
      for (int64_t ni = ni_begin; ni < ni_end; ++ni) fill(src, ni / g.Hb, ni % g.Hb, dst + ni * row);
    });
  }
};

// ---------------------------------------------------------------- grad_y in k-blocks
// contiguous stream of pixels (zero lanes past K), the vector operand of the weight-gradient
// tiles. From NHWC it is 4*KB-byte copies, from NCHW a transpose in blocks of 16 pixels.
template <typename T>
void to_kblocked_pixels(const T* src, Layout layout, int64_t N, int64_t K, int64_t PQ, int64_t KB, T* dst,
                        int threads) {
  const int64_t nb = ceil_div(PQ, 16), nkb = ceil_div(K, KB), NPQ = N * PQ;
  parallel_for(threads, N * nb, [&](int64_t b_begin, int64_t b_end) {
    for (int64_t b = b_begin; b < b_end; ++b) {
      const int64_t n = b / nb, i0 = (b % nb) * 16, i1 = std::min(PQ, i0 + 16);
      for (int64_t kb = 0; kb < nkb; ++kb) {
        const int64_t k0 = kb * KB, nk = std::min(KB, K - k0);
        T* d = dst + (kb * NPQ + n * PQ) * KB;
        if (layout == Layout::NHWC) {
          for (int64_t i = i0; i < i1; ++i) std::memcpy(d + i * KB, src + (n * PQ + i) * K + k0, nk * sizeof(T));
        } else {
          for (int64_t kk = 0; kk < nk; ++kk) {
            const T* s = src + (n * K + k0 + kk) * PQ;
            for (int64_t i = i0; i < i1; ++i) d[i * KB + kk] = s[i];
          }
        }
        if (nk < KB)
          for (int64_t i = i0; i < i1; ++i) std::fill(d + i * KB + nk, d + (i + 1) * KB, T(0));
      }
    }
  });
}

// ---------------------------------------------------------------- weight packing
// The direct driver packs weights one block of KB output channels at a time, inside the worker
// that uses them, into a per-thread buffer that stays in L2: each block is one contiguous stream
// for the register tiles (prefetch- and TLB-friendly), and the packed copy never goes to memory.

// Forward: k-block kb of w (K,C,R,S) | (R,S,C,K) -> (R*S, C, KB), zero lanes past K.
template <typename T>
void pack_fwd_kblock(const T* w, Layout layout, int64_t K, int64_t C, int64_t RS, int64_t KB, int64_t kb, T* d) {
  const int64_t k0 = kb * KB, nk = std::min(KB, K - k0);
  if (layout == Layout::NCHW) {
    for (int64_t c0 = 0; c0 < C; c0 += 16) {  // reads (c, rs) runs, writes stay in 16 rows
      const int64_t c1 = std::min(C, c0 + 16);
      for (int64_t kk = 0; kk < KB; ++kk)
        for (int64_t c = c0; c < c1; ++c)
          for (int64_t rs = 0; rs < RS; ++rs)
            d[(rs * C + c) * KB + kk] = kk < nk ? w[((k0 + kk) * C + c) * RS + rs] : T(0);
    }
  } else {
    for (int64_t rc = 0; rc < RS * C; ++rc) {
      std::memcpy(d + rc * KB, w + rc * K + k0, nk * sizeof(T));
      std::fill(d + rc * KB + nk, d + (rc + 1) * KB, T(0));
    }
  }
}

// Backward-data: c-block cb of w (K,C,R,S) | (R,S,C,K) -> (R*S, K, KB) with the taps flipped:
// d[r'*S + s'][k][cc] = w at (k, c = cb*KB + cc, R-1-r', S-1-s'), zero lanes past C.
template <typename T>
void pack_bwd_data_cblock(const T* w, Layout layout, int64_t K, int64_t C, int64_t RS, int64_t KB, int64_t cb, T* d) {
  const int64_t c0 = cb * KB, nc = std::min(KB, C - c0);
  if (layout == Layout::NCHW) {
    for (int64_t k = 0; k < K; ++k)
      for (int64_t cc = 0; cc < KB; ++cc)
        for (int64_t rs = 0; rs < RS; ++rs)
          d[(rs * K + k) * KB + cc] = cc < nc ? w[(k * C + c0 + cc) * RS + (RS - 1 - rs)] : T(0);
  } else {
    for (int64_t rs = 0; rs < RS; ++rs) {
      const T* s = w + (RS - 1 - rs) * C * K;
      for (int64_t k1 = 0; k1 < K; k1 += 16) {  // (C, K) -> (K, KB) in blocks of 16 k
        const int64_t k2 = std::min(K, k1 + 16);
        for (int64_t cc = 0; cc < KB; ++cc)
          for (int64_t k = k1; k < k2; ++k) d[(rs * K + k) * KB + cc] = cc < nc ? s[(c0 + cc) * K + k] : T(0);
      }
    }
  }
}

// The caller's weights and which packing the direct driver needs (K, C: the layer's sizes).
template <typename T>
struct WeightBlocks {
  const T* w = nullptr;
  Layout layout = Layout::NCHW;
  int64_t K = 0, C = 0, RS = 0;
  bool bwd_data = false;
  void pack(int64_t blk, int64_t KB, T* dst) const {
    if (bwd_data) pack_bwd_data_cblock(w, layout, K, C, RS, KB, blk, dst);
    else pack_fwd_kblock(w, layout, K, C, RS, KB, blk, dst);
  }
};

}  // namespace FASTCONV_SIMD_NS
}  // namespace fastconv
