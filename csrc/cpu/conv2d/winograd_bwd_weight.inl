// Winograd F(4x4, 3x3) conv2d backward-weight, fp32 and fp64, both layouts; templated on the vector
// traits and compiled per ISA by conv2d/winograd_avx512.cpp / winograd_avx2.cpp.
//
// The forward pass computes, per 4x4 output tile, y = A^T [ U .* V ] A with U = G g G^T (the
// filter) and V = B^T d B (the 6x6 input tile). By linearity the weight gradient is
//
//   grad_g = G^T [ sum over tiles and pixels-in-tile of  M .* V ] G,   M = A dY A^T
//
// where dY is the tile's 4x4 block of grad_y (zero past P, Q) and M its 6x6 transform. Per
// element xi of the 6x6 domain that sum is a GEMM, dU[xi] (C x K) += V[xi]^T (C x tiles) @
// M[xi] (tiles x K): 36*C*K multiply-adds per tile instead of 16*9*C*K for the direct kernel,
// a 4x reduction (the same as the forward Winograd path).
//
// Work items are (tile split, 64 input channels, 64 output channels): an item walks its tiles
// in chunks of kTC, transforms the chunk's input (its 64 channels) and grad_y (its 64 output
// channels) into per-thread buffers that stay in L2, and adds the 36 products into its block
// of dU (36 x 64 x 64 floats, 590 KB, also in L2) with the register-tile microkernel of
// conv2d/microkernel.inl (j = 14 input channels, lanes = 32 output channels, t = tiles). Nothing of
// size tiles x channels ever goes to memory; the transforms are redone once per channel block
// of the other operand (a few % of the GEMM work). Layers with few channel blocks split the
// tiles into a fixed number of splits (a function of the shape only) whose partial dU blocks
// are added in split order before the final transform G^T dU G: the result does not depend on
// the thread count.
//
// Reference: ref::conv2d_bwd_weight (conv2d/ref.cpp). Not bit-exact; tests/test_winograd.py
// bounds the error against the float64 oracle.
#pragma once  // once per translation unit: each ISA file includes it for its own ISA
#ifndef FASTCONV_SIMD_NS
#error "include conv2d/winograd.inl's prerequisites first"
#endif
#include "winograd.inl"

namespace fastconv {
namespace FASTCONV_SIMD_NS {
namespace {

constexpr int64_t kBwCB = 64;  // input channels per work item (4-5 register tiles of 14)
constexpr int64_t kBwKB = 64;  // output channels per work item (2 register tiles of 32)
// tiles per chunk: V and M chunks 2 x 295 KB + dU 590 KB in L2 (float; half the tiles for double)
template <class V>
constexpr int64_t kBwTC = 128 / int64_t(sizeof(typename V::T));

// o = A m (4 -> 6), A = (A^T)^T = [1 0 0 0; 1 1 1 1; 1 -1 1 -1; 1 2 4 8; 1 -2 4 -8; 0 0 0 1]
template <class V>
static inline void grad_output_1d(const Reg<V> m0, const Reg<V> m1, const Reg<V> m2, const Reg<V> m3, Reg<V> o[6]) {
  const Reg<V> e = add<V>(m0, m2), f = add<V>(m1, m3);
  const Reg<V> g = fmadd<V>(m2, 4.0, m0), h = fmadd<V>(m3, 8.0, mul<V>(m1, 2.0));
  o[0] = m0;
  o[1] = add<V>(e, f);
  o[2] = sub<V>(e, f);
  o[3] = add<V>(g, h);
  o[4] = sub<V>(g, h);
  o[5] = m3;
}

// o = G^T u (6 -> 3), G^T = [1/4 -1/6 -1/6 1/24 1/24 0; 0 -1/6 1/6 1/12 -1/12 0;
//                            0 -1/6 -1/6 1/6 1/6 1]
template <class V>
static inline void grad_weight_1d(const Reg<V> u0, const Reg<V> u1, const Reg<V> u2, const Reg<V> u3, const Reg<V> u4,
                                  const Reg<V> u5, Reg<V> o[3]) {
  const Reg<V> a = add<V>(u1, u2), b = sub<V>(u1, u2), c = add<V>(u3, u4), d = sub<V>(u3, u4);
  o[0] = fmadd<V>(u0, 0.25, fmadd<V>(a, -1.0 / 6, mul<V>(c, 1.0 / 24)));
  o[1] = fmadd<V>(b, -1.0 / 6, mul<V>(d, 1.0 / 12));
  o[2] = add<V>(fmadd<V>(a, -1.0 / 6, mul<V>(c, 1.0 / 6)), u5);
}

// Tiles [t0, t0 + nt), output channels [k0, k0 + nk) of grad_y (N,P,Q,K) -> m (36, ldm, ldk):
// m[(xi*ldm + j)*ldk + k - k0] = (A dY_j A^T)[xi]; lanes up to the next vector boundary are 0.
template <class V>
void transform_grad_output_channels(const Plan& pl, const Elem<V>* gy, int64_t t0, int64_t nt, int64_t k0, int64_t nk,
                                    int64_t ldm, int64_t ldk, Elem<V>* m) {
  const int64_t K = pl.K, P = pl.P, Q = pl.Q;
  const Reg<V> zero = V::zero();
  for (int64_t j = 0; j < nt; ++j) {
    const int64_t t = t0 + j, n = t / (pl.TH * pl.TW), th = (t / pl.TW) % pl.TH, tw = t % pl.TW;
    const int64_t oh0 = th * kM, ow0 = tw * kM;
    const int rows = static_cast<int>(std::min<int64_t>(kM, P - oh0));
    const int cols = static_cast<int>(std::min<int64_t>(kM, Q - ow0));
    const Elem<V>* base = gy + ((n * P + oh0) * Q + ow0) * K + k0;
    for (int64_t kv = 0; kv < nk; kv += V::W) {
      const int nl = static_cast<int>(std::min<int64_t>(V::W, nk - kv));
      Reg<V> tmp[kA][kM];  // A dY: columns first
      for (int s = 0; s < kM; ++s) {
        Reg<V> d[kM];
        for (int r = 0; r < kM; ++r) d[r] = r < rows && s < cols ? V::load_n(base + (r * Q + s) * K + kv, nl) : zero;
        Reg<V> o[kA];
        grad_output_1d<V>(d[0], d[1], d[2], d[3], o);
        for (int i = 0; i < kA; ++i) tmp[i][s] = o[i];
      }
      for (int i = 0; i < kA; ++i) {
        Reg<V> o[kA];
        grad_output_1d<V>(tmp[i][0], tmp[i][1], tmp[i][2], tmp[i][3], o);
        for (int jj = 0; jj < kA; ++jj) V::store(m + ((i * kA + jj) * ldm + j) * ldk + kv, o[jj]);
      }
    }
  }
}

// Channels [c0, c0 + nc) x [k0, k0 + nk) of dU, the sum of `nparts` partial blocks
// du + part*part_stride, each (36, kBwCB, kBwKB) -> grad_w (K,C,3,3) | (3,3,C,K) = G^T dU G.
template <class V>
void transform_weight_grad_block(const Conv2dParams& p, const Elem<V>* du, int64_t nparts, int64_t part_stride,
                                 int64_t c0, int64_t nc, int64_t k0, int64_t nk, Elem<V>* gw) {
  constexpr int64_t ldxi = kBwCB * kBwKB;
  for (int64_t c = 0; c < nc; ++c)
    for (int64_t kv = 0; kv < nk; kv += V::W) {
      const int nl = static_cast<int>(std::min<int64_t>(V::W, nk - kv));
      Reg<V> t[3][kA];  // G^T dU along rows, one column at a time
      for (int s = 0; s < kA; ++s) {
        Reg<V> u[kA];
        for (int r = 0; r < kA; ++r) {
          const Elem<V>* src = du + (r * kA + s) * ldxi + c * kBwKB + kv;
          u[r] = V::load(src);
          for (int64_t q = 1; q < nparts; ++q) u[r] = add<V>(u[r], V::load(src + q * part_stride));
        }
        Reg<V> o[3];
        grad_weight_1d<V>(u[0], u[1], u[2], u[3], u[4], u[5], o);
        for (int i = 0; i < 3; ++i) t[i][s] = o[i];
      }
      alignas(64) Elem<V> buf[9][V::W];
      for (int i = 0; i < 3; ++i) {
        Reg<V> o[3];
        grad_weight_1d<V>(t[i][0], t[i][1], t[i][2], t[i][3], t[i][4], t[i][5], o);
        for (int jj = 0; jj < 3; ++jj) {
          if (p.layout == Layout::NHWC) V::store_n(gw + ((i * 3 + jj) * p.C + c0 + c) * p.K + k0 + kv, o[jj], nl);
          else V::store(buf[i * 3 + jj], o[jj]);
        }
      }
      if (p.layout == Layout::NCHW)  // (K,C,3,3): 9 taps contiguous per (k, c)
        for (int l = 0; l < nl; ++l) {
          Elem<V>* d = gw + ((k0 + kv + l) * p.C + c0 + c) * 9;
          for (int rs = 0; rs < 9; ++rs) d[rs] = buf[rs][l];
        }
    }
}

// grad_bias[k] = sum over all pixels of grad_y, deterministic (fixed order per channel).
// NHWC (pixels, K): threads own ranges of channel vectors and walk the pixels once, adding each
// row's vectors to per-thread accumulators. NCHW: each channel's planes are contiguous.
template <class V>
void grad_bias(const Elem<V>* gy, Layout layout, int64_t N, int64_t PQ, int64_t K, Elem<V>* gb, int threads) {
  using T = Elem<V>;
  if (layout == Layout::NCHW) {
    parallel_for(threads, K, [&](int64_t k_begin, int64_t k_end) {
      for (int64_t k = k_begin; k < k_end; ++k) {
        Reg<V> s = V::zero();
        for (int64_t n = 0; n < N; ++n) {
          const T* plane = gy + (n * K + k) * PQ;
          int64_t i = 0;
          for (; i + V::W <= PQ; i += V::W) s = add<V>(s, V::load(plane + i));
          if (i < PQ) s = add<V>(s, V::load_n(plane + i, static_cast<int>(PQ - i)));
        }
        alignas(64) T lanes[V::W];
        V::store(lanes, s);
        T total = 0;
        for (int l = 0; l < V::W; ++l) total += lanes[l];
        gb[k] = total;
      }
    });
    return;
  }
  const int64_t nvec = ceil_div(K, V::W), pixels = N * PQ;
  const int chunks = static_cast<int>(std::min<int64_t>(threads, nvec));
  parallel_for(threads, chunks, [&](int64_t ch_begin, int64_t ch_end) {
    for (int64_t ch = ch_begin; ch < ch_end; ++ch) {
      const int64_t v0 = nvec * ch / chunks, v1 = nvec * (ch + 1) / chunks;
      std::vector<Reg<V>> acc(v1 - v0, V::zero());
      for (int64_t i = 0; i < pixels; ++i) {
        const T* row = gy + i * K;
        for (int64_t v = v0; v < v1; ++v) {
          const int nl = static_cast<int>(std::min<int64_t>(V::W, K - v * V::W));
          acc[v - v0] = add<V>(acc[v - v0], nl == V::W ? V::load(row + v * V::W) : V::load_n(row + v * V::W, nl));
        }
      }
      for (int64_t v = v0; v < v1; ++v)
        V::store_n(gb + v * V::W, acc[v - v0], static_cast<int>(std::min<int64_t>(V::W, K - v * V::W)));
    }
  });
}

// grad_y (N,K,P,Q) | (N,P,Q,K), x (N,C,H,W) | (N,H,W,C) -> grad_w (K,C,3,3) | (3,3,C,K),
// grad_bias (K) or null. Requires 3x3, stride 1, dilation 1 (any padding).
template <class V>
void conv2d_bwd_weight_winograd(const Conv2dParams& p, const Elem<V>* gy, const Elem<V>* x, Elem<V>* gw, Elem<V>* gb) {
  KernelLog log;
  const Plan pl = make_plan(p, V::W);
  const int threads = threads_for(p.macs());

  const Elem<V>* xs = x;
  const Elem<V>* gys = gy;
  if (p.layout == Layout::NCHW) {  // the transforms read channel vectors
    Elem<V>* xt = scratch<Elem<V>>(slot::kWinoInputNhwc, p.x_size());
    nchw_to_nhwc(x, p.N, p.C, p.H, p.W, xt, threads);
    Elem<V>* gt = scratch<Elem<V>>(slot::kWinoGradNhwc, p.y_size());
    nchw_to_nhwc(gy, p.N, p.K, p.P, p.Q, gt, threads);
    xs = xt;
    gys = gt;
  }
  log.lap("input-layout");

  const int64_t ncb = ceil_div(p.C, kBwCB), nkb = ceil_div(p.K, kBwKB), blocks = ncb * nkb;
  // Tile splits: enough items for 8 threads when the channel blocks are few, at least 64 tiles
  // per split. A function of the shape only, so the sum order is the same for any thread count.
  const int64_t want = ceil_div(16, blocks);
  const int64_t split_len = ceil_div(pl.T, std::clamp<int64_t>(want, 1, std::max<int64_t>(1, pl.T / 64)));
  const int64_t nsplit = ceil_div(pl.T, split_len);
  constexpr int64_t block_elems = kXi * kBwCB * kBwKB;
  Elem<V>* parts = nsplit > 1 ? scratch<Elem<V>>(slot::kWinoSplitSums, nsplit * blocks * block_elems) : nullptr;
  const int64_t items = nsplit * blocks;

  parallel_for(threads, items, 1, [&](int64_t it_begin, int64_t it_end) {
    for (int64_t it = it_begin; it < it_end; ++it) {
      const int64_t split = it / blocks, b = it % blocks, cb = b / nkb, kb = b % nkb;
      const int64_t c0 = cb * kBwCB, nc = std::min(kBwCB, p.C - c0);
      const int64_t k0 = kb * kBwKB, nk = std::min(kBwKB, p.K - k0), nkv = ceil_div(nk, V::W);
      Elem<V>* du = parts ? parts + it * block_elems : scratch<Elem<V>>(slot::kWinoFilter, block_elems);
      Elem<V>* vb = scratch<Elem<V>>(slot::kWinoInput, kXi * kBwTC<V> * kBwCB);
      Elem<V>* mb = scratch<Elem<V>>(slot::kWinoProducts, kXi * kBwTC<V> * kBwKB);
      const int64_t t_begin = split * split_len, t_end = std::min(pl.T, t_begin + split_len);
      static const int64_t zero_off = 0;
      TileArgs<Elem<V>> g;
      g.aoff = g.boff = &zero_off;
      g.U = 1;
      g.a_js = 1;      // 14 adjacent input channels of one tile
      g.a_ts = kBwCB;  // next tile
      g.ldb = kBwKB;
      g.ldo = g.ldp = kBwKB;
      for (int64_t t0 = t_begin; t0 < t_end; t0 += kBwTC<V>) {
        const int64_t nt = std::min(kBwTC<V>, t_end - t0);
        transform_input_channels<V>(pl, xs, t0, nt, c0, nc, kBwTC<V>, kBwCB, vb);
        transform_grad_output_channels<V>(pl, gys, t0, nt, k0, nk, kBwTC<V>, kBwKB, mb);
        g.Tn = nt;
        g.init = t0 == t_begin ? Init::zero : Init::load;
        for (int64_t xi = 0; xi < kXi; ++xi)
          for (int64_t j0 = 0; j0 < nc; j0 += V::NJ)
            for (int64_t v0 = 0; v0 < nkv; v0 += V::NV) {
              const int64_t nv = std::min<int64_t>(V::NV, nkv - v0);
              g.A = vb + xi * kBwTC<V> * kBwCB + j0;
              g.B = mb + xi * kBwTC<V> * kBwKB + v0 * V::W;
              g.out = du + (xi * kBwCB + j0) * kBwKB + v0 * V::W;
              g.partial = g.out;
              g.kvalid = static_cast<int>(nv * V::W);
              tile_fn<V>(std::min<int64_t>(V::NJ, nc - j0), nv, false)(g);
            }
      }
      if (!parts) transform_weight_grad_block<V>(p, du, 1, 0, c0, nc, k0, nk, gw);
    }
  });
  if (parts) {
    parallel_for(threads, blocks, 1, [&](int64_t b_begin, int64_t b_end) {
      for (int64_t b = b_begin; b < b_end; ++b) {
        const int64_t c0 = (b / nkb) * kBwCB, k0 = (b % nkb) * kBwKB;
        transform_weight_grad_block<V>(p, parts + b * block_elems, nsplit, blocks * block_elems, c0,
                                       std::min(kBwCB, p.C - c0), k0, std::min(kBwKB, p.K - k0), gw);
      }
    });
  }
  log.lap("transforms+gemm");
  if (gb) grad_bias<V>(p.layout == Layout::NCHW ? gy : gys, p.layout, p.N, p.P * p.Q, p.K, gb, threads);
  log.lap("grad-bias");
  log.print(FASTCONV_SIMD_NAME, "conv2d_bwd_weight", V::name,
            "winograd F(4x4,3x3): 36 GEMMs over tiles, 64 c x 64 k blocks", V::NJ, V::NV * V::W);
}

}  // namespace
}  // namespace FASTCONV_SIMD_NS
}  // namespace fastconv
