// Winograd F(4x4, 3x3) conv2d forward and backward-data, fp32 and fp64 (both layouts, fused
// bias + activation on the forward pass), templated on the vector traits and compiled once per ISA:
// conv2d/winograd_avx512.cpp and winograd_avx2.cpp include it after their traits header
// and a gather_taps() for weights whose output channels are not adjacent (NCHW forward, both
// layouts on backward-data).
//
// Backward-data of a 3x3 stride-1 layer is itself a 3x3 stride-1 convolution (of grad_y, with
// the filter flipped and its channel axes swapped, padding 2 - pad): the same kernel runs it,
// reading the weights through WinogradWeights strides.
//
//   y = A^T [ (G g G^T) .* (B^T d B) ] A     per 6x6 input tile d -> 4x4 output tile
//
// (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", interpolation points
// 0, +-1, +-2, inf.) Per output tile of 4x4 pixels the 36 element-wise products summed over the
// input channels are 36 independent GEMMs, (tiles x C) @ (C x K): 36*C*K multiply-adds per 16
// output pixels instead of 16*9*C*K, a 4x reduction, paid for by the transforms.
//
// Phases of one call (T = N * ceil(P/4) * ceil(Q/4) output tiles):
//   - NCHW input is transposed to NHWC once (the input transform reads channel vectors).
//   - input transform  V[xi][j][c] = (B^T d_j B)[xi], 16 channels a vector; zero outside the
//     image, which is where any padding and the ragged bottom/right tiles are handled;
//   - weight transform U[xi][c][k] = (G g_kc G^T)[xi], 16 output channels a vector (NCHW
//     weights gathered), k padded with zeros to Kp = 16*ceil(K/16);
//   - 36 GEMMs M[xi] = V[xi] (tiles x C) @ U[xi] (C x Kp) with the register-tile microkernel of
//     conv2d/microkernel.inl (tile_kernel: AVX-512 14 tiles x 2 zmm = 14 x 32 channels = 28 accumulators,
//     AVX2 6 x 2 ymm = 6 x 16; broadcast V, vectors of U);
//   - output transform A^T M_j A + bias, activation, stored to y (pixels past P, Q dropped).
// Two drivers, picked by which operand is bigger (both in OpenMP, batch 1 uses both cores):
//   tiles-outer (T > Kp):    U for all channels first; items = blocks of kTB = 112 tiles
//                            (x groups of k-blocks when blocks are few). Per item: V and M of
//                            its block in per-thread buffers; loop xi, k-block, 14-tile rows,
//                            so one (xi, k-block) U slice (C x 32, 64 KB at C = 512) is reused
//                            by all 8 register tiles and V[xi] (112 x C, 229 KB) by every
//                            k-block from the 2 MB L2.
//   channels-outer (T <= Kp): V for all tiles first; items = groups of 64 (or 32) output
//                            channels; per item the weights are transformed 64 input channels
//                            at a time into an L2 buffer (36 x 64 x 64 floats = 590 KB) and
//                            accumulated into M (36, T, 64): U never goes to memory.
//
// Reference: ref::conv2d_fwd (conv2d/ref.cpp). Error vs the float64 oracle measured on VGG16
// layers (random normal data): see tests/test_winograd.py and the report in the README.
#pragma once  // once per translation unit: each ISA file includes it for its own ISA
#ifndef FASTCONV_SIMD_NS
#error "include simd/avx512.h or simd/avx2.h (and define gather_taps) before conv2d/winograd.inl"
#endif
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../runtime/kernel_log.h"
#include "../runtime/loops.h"
#include "microkernel.inl"
#include "winograd.h"
#include "winograd_transforms.inl"
#include "workspace.h"

namespace fastconv {
namespace FASTCONV_SIMD_NS {
namespace {

// The register-tile GEMM of one (xi, 32-channel k-block) over nt tiles:
// m[j*ldm + 0..nv*16) (+)= sum_c a[j*lda + c] * b[c*ldb + 0..nv*16), in rows of 14 tiles.
template <class V>
void gemm_tiles(const Elem<V>* a, int64_t lda, int64_t nt, int64_t nc, const Elem<V>* b, int64_t ldb, int64_t nv,
                bool accumulate, Elem<V>* m, int64_t ldm) {
  TileArgs<Elem<V>> g;
  static const int64_t zero_off = 0;
  g.aoff = &zero_off;
  g.boff = &zero_off;
  g.U = 1;
  g.a_js = lda;  // tile j's channels are lda apart
  g.a_ts = 1;    // reduction over c
  g.B = b;
  g.ldb = ldb;
  g.Tn = nc;
  g.init = accumulate ? Init::load : Init::zero;
  g.ldo = g.ldp = ldm;
  g.kvalid = static_cast<int>(nv * V::W);
  for (int64_t j0 = 0; j0 < nt; j0 += V::NJ) {
    g.A = a + j0 * lda;
    g.out = m + j0 * ldm;
    g.partial = g.out;
    tile_fn<V>(std::min<int64_t>(V::NJ, nt - j0), nv, true)(g);
  }
}

// Many tiles (large images or batches): weights transformed once into u (36, C, Kp), then
// OpenMP over (block of up to kTB<V> tiles) x (group of k-blocks): each item transforms its tiles'
// input into a per-thread V (36, TB, C), runs the 36 GEMMs (U slices reused by the whole tile
// block) into a per-thread M (36, TB, Kp) and transforms M into y.
template <class V>
void winograd_tiles_outer(const Conv2dParams& p, const Plan& pl, const Elem<V>* xs, const WinogradWeights<Elem<V>>& ww,
                          const Elem<V>* bp, Elem<V>* y, int threads) {
  Elem<V>* u = scratch<Elem<V>>(slot::kWinoFilter, kXi * p.C * pl.Kp);
  transform_weights<V>(pl, ww, u, threads);

  // Few tile blocks would leave a core idle: the k-blocks are then split into groups, each item
  // redoing its block's (cheap) input transform.
  const int64_t nkb = ceil_div(pl.Kp, kKB<V>);
  const int64_t TB = std::min(kTB<V>, pl.T);
  const int64_t nblocks = ceil_div(pl.T, TB);
  int64_t nkg = 1;
  if (nblocks < 4 * threads) nkg = std::min(nkb, ceil_div(4 * threads, nblocks));
  const int64_t kbs_per_group = ceil_div(nkb, nkg);
  nkg = ceil_div(nkb, kbs_per_group);
  const int64_t items = nblocks * nkg;

  parallel_for(threads, items, 1, [&](int64_t it_begin, int64_t it_end) {
    for (int64_t it = it_begin; it < it_end; ++it) {
      const int64_t blk = it / nkg, kg = it % nkg;
      const int64_t t0 = blk * TB, nt = std::min(TB, pl.T - t0);
      const int64_t kb0 = kg * kbs_per_group, kb1 = std::min(nkb, kb0 + kbs_per_group);
      Elem<V>* vbuf = scratch<Elem<V>>(slot::kWinoInput, kXi * TB * p.C);
      Elem<V>* mbuf = scratch<Elem<V>>(slot::kWinoProducts, kXi * TB * pl.Kp);
      transform_input_block<V>(pl, xs, t0, nt, TB, vbuf);
      for (int64_t xi = 0; xi < kXi; ++xi)
        for (int64_t kb = kb0; kb < kb1; ++kb) {
          const int64_t k0 = kb * kKB<V>, nv = ceil_div(std::min(kKB<V>, pl.Kp - k0), V::W);
          gemm_tiles<V>(vbuf + xi * TB * p.C, p.C, nt, p.C, u + xi * p.C * pl.Kp + k0, pl.Kp, nv, false,
                        mbuf + xi * TB * pl.Kp + k0, pl.Kp);
        }
      transform_output_block<V>(pl, p.layout, p.epilogue, Elem<V>(p.alpha), mbuf, TB, pl.Kp, 0, bp, t0, nt,
                                kb0 * kKB<V>, std::min(pl.Kp, kb1 * kKB<V>), y);
    }
  });
}

// Few tiles (small images at batch 1): U (36*C*K values, 38 MB at C = K = 512) would be
// written to memory and read back for only a few dozen tiles. Instead the input of all tiles is
// transformed once into V (36, T, C), and OpenMP runs over groups of KG output channels: each
// item transforms its weights chunk by chunk (kCc input channels: (36, kCc, KG) stays in L2),
// accumulates the 36 GEMMs into a per-thread M (36, T, KG) and transforms it into y.
constexpr int64_t kCc = 64;
template <class V>
void winograd_channels_outer(const Conv2dParams& p, const Plan& pl, const Elem<V>* xs,
                             const WinogradWeights<Elem<V>>& ww, const Elem<V>* bp, Elem<V>* y, int threads) {
  const int64_t T = pl.T, C = p.C;
  Elem<V>* v = scratch<Elem<V>>(slot::kWinoInput, kXi * T * C);
  const int64_t nrows = ceil_div(T, V::NJ);
  parallel_for(threads, nrows, [&](int64_t r_begin, int64_t r_end) {
    for (int64_t r = r_begin; r < r_end; ++r) {
      const int64_t t0 = r * V::NJ;
      transform_input_block<V>(pl, xs, t0, std::min<int64_t>(V::NJ, T - t0), T, v + t0 * C);
    }
  });
  const int64_t KG = ceil_div(pl.Kp, 2 * kKB<V>) >= 2 * threads ? 2 * kKB<V> : kKB<V>;
  const int64_t items = ceil_div(pl.Kp, KG);
  parallel_for(threads, items, 1, [&](int64_t it_begin, int64_t it_end) {
    for (int64_t it = it_begin; it < it_end; ++it) {
      const int64_t k0 = it * KG, kg = std::min(KG, pl.Kp - k0);
      Elem<V>* ub = scratch<Elem<V>>(slot::kWinoFilter, kXi * kCc * KG);
      Elem<V>* mb = scratch<Elem<V>>(slot::kWinoProducts, kXi * T * KG);
      for (int64_t c0 = 0; c0 < C; c0 += kCc) {
        const int64_t nc = std::min(kCc, C - c0);
        for (int64_t c = c0; c < c0 + nc; ++c)
          for (int64_t k = k0; k < k0 + kg; k += V::W)
            transform_weight_vector<V>(pl, ww, c, k, ub + (c - c0) * KG + (k - k0), nc * KG);
        for (int64_t xi = 0; xi < kXi; ++xi)
          for (int64_t kb = 0; kb < kg; kb += kKB<V>) {
            const int64_t nv = ceil_div(std::min(kKB<V>, kg - kb), V::W);
            gemm_tiles<V>(v + xi * T * C + c0, C, T, nc, ub + xi * nc * KG + kb, KG, nv, c0 > 0, mb + xi * T * KG + kb,
                          KG);
          }
      }
      transform_output_block<V>(pl, p.layout, p.epilogue, Elem<V>(p.alpha), mb, T, KG, k0, bp, 0, T, k0, k0 + kg, y);
    }
  });
}

// The Winograd convolution x (N,C,H,W) | (N,H,W,C) -> y (N,K,P,Q) | (N,P,Q,K) of p, with the
// filter read through ww, + bias (K or null), then p.epilogue. `op` names it in the log.
template <class V>
void winograd_conv(const Conv2dParams& p, const Elem<V>* x, const WinogradWeights<Elem<V>>& ww, const Elem<V>* bias,
                   Elem<V>* y, const char* op) {
  KernelLog log;
  const Plan pl = make_plan(p, V::W);
  const int threads = threads_for(p.macs());

  Elem<V>* bp = scratch<Elem<V>>(slot::kWinoBias, pl.Kp);
  for (int64_t k = 0; k < pl.Kp; ++k) bp[k] = bias && k < p.K ? bias[k] : 0.0;
  const Elem<V>* xs = x;
  if (p.layout == Layout::NCHW) {
    Elem<V>* xt = scratch<Elem<V>>(slot::kWinoInputNhwc, p.x_size());
    nchw_to_nhwc(x, p.N, p.C, p.H, p.W, xt, threads);
    xs = xt;
  }
  log.lap("input-layout");
  // Tiles-outer writes U (36*C*Kp) to memory and re-reads it once per block of kTB<V> tiles;
  // channels-outer keeps U chunks in L2 but re-reads V (36*T*C) once per group of 64 output
  // channels. Measured (1 thread, VGG16 layers): channels-outer 2.1x faster at T = 49, 392
  // with K = 512 (V <= U), tiles-outer 1.3-1.8x faster at T = 784..3136 with K <= 256 (V > U):
  // pick the driver whose big operand is the smaller one.
  const bool channels_outer = pl.T <= pl.Kp;
  if (channels_outer) winograd_channels_outer<V>(p, pl, xs, ww, bp, y, threads);
  else winograd_tiles_outer<V>(p, pl, xs, ww, bp, y, threads);
  log.lap("transforms+gemm");
  log.print(FASTCONV_SIMD_NAME, op, V::name,
            channels_outer ? "winograd F(4x4,3x3), channels outer: 36 GEMMs of all tiles x 64 c x KB k"
                           : "winograd F(4x4,3x3), tiles outer: 36 GEMMs of 8*NJ tiles x C x KB k",
            V::NJ, kKB<V>);
}

// x (N,C,H,W) | (N,H,W,C), w (K,C,3,3) | (3,3,C,K), bias (K) or null -> y (N,K,P,Q) | (N,P,Q,K)
template <class V>
void conv2d_fwd_winograd(const Conv2dParams& p, const Elem<V>* x, const Elem<V>* w, const Elem<V>* bias, Elem<V>* y) {
  winograd_conv<V>(p, x, forward_weights(w, p.layout, p.C, p.K), bias, y, conv2d_fwd_op_name(p.epilogue));
}

// grad_y (N,K,P,Q) | (N,P,Q,K), w -> grad_x (N,C,H,W) | (N,H,W,C): the forward convolution of
// winograd_bwd_data_as_fwd(p) (conv2d_winograd.cpp) on grad_y with the flipped, transposed
// filter.
template <class V>
void conv2d_bwd_data_winograd(const Conv2dParams& p, const Elem<V>* gy, const Elem<V>* w, Elem<V>* gx) {
  winograd_conv<V>(winograd_bwd_data_as_fwd(p), gy, backward_data_weights(w, p.layout, p.C, p.K), nullptr, gx,
                   "conv2d_bwd_data");
}

}  // namespace

}  // namespace FASTCONV_SIMD_NS
}  // namespace fastconv
