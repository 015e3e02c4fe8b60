// Templated SIMD conv2d kernels shared by the ISA files (conv2d_*_avx512.cpp, conv2d_*_avx2.cpp).
//
// Include it after an ISA traits header (simd_avx512.h or simd_avx2.h): that header defines
// FASTCONV_SIMD_NS and the vector traits VecF32 / VecF64, and everything below is compiled into
// namespace fastconv::<isa> with that file's flags, so no AVX-512 code can leak into the AVX2 or
// portable paths through a shared inline function.
//
// One microkernel (tile_kernel) does all three passes. It keeps an NJ x NV register tile
//   acc[j][v] += sum_u sum_t A[aoff[u] + j*a_js + t*a_ts] * B[boff[u] + t*ldb + v*W .. +W)
// i.e. an outer product of NJ broadcast scalars and NV vectors of W lanes per step t.
// AVX-512: NJ=14, NV=2 -> 28 zmm accumulators (14 pixels x 32 fp32 / 16 fp64 channels);
// AVX2: 6 x 2 -> 12 ymm. Name of a tile in FASTCONV_VERBOSE output:
// <dtype>_<op>_<NJ>x<NV*W>_<isa>, e.g. f32_conv2d_fwd_relu_14x32_avx512.
//
//   forward         j = 14 output pixels of one row, lanes = 32 output channels, the
//                   reduction runs over (r, s, c). Weights are packed per k-block as
//                   (R, S, C, KB), by the thread that uses them, into an L2-resident buffer:
//                   one contiguous stream per register tile of KB = NV*W output channels.
//                   Input: NHWC is read in place when no padding is needed, else its
//                   zero-padded rows are built on demand into a per-thread ring of rows that
//                   stays in L2; each filter row's (s, c) pairs form one contiguous loop. NCHW
//                   rows are built the same way in a "row-channel-column" layout
//                   (C, stride_w, Wb/stride_w) where the pixels of one tap are adjacent even
//                   for stride 2 (columns split by phase). Bias and ReLU are applied to the
//                   accumulators; NCHW output is transposed through the stack on the store.
//   backward-data   the forward driver on grad_y with flipped, transposed weights (R, S, K, C)
//                   (a stride-1 "full" convolution). For C <= 8 (first layers) lanes run
//                   along a row of grad_x instead of over channels. Stride > 1 does not come
//                   here: the entry points send it to the stride-phase kernel in
//                   conv2d_bwd_data_strided_simd.h (this driver would interleave zeros into
//                   grad_y and do stride_h*stride_w times the FMAs).
//   backward-weight j = 14 consecutive (s, c) entries of one filter row (the input is made
//                   zero-padded NHWC, where x[ih, iw+s, c] is contiguous over (s, c) when
//                   dilation_w = 1), lanes = output channels, t = output pixels of a row,
//                   u = (n, output row). The pixel reduction is cut into chunks that fit L2;
//                   each thread slice owns a fixed set of output tiles and adds
//                   their chunks in order, so the result is the same for any thread count.
// Threads (thread_pool.h): chunks of (k-block group, n, output row) items for forward/backward-data (batch 1
// splits rows, so both cores work) and over output tiles for backward-weight.
//
// 3x3 stride-1 layers with C, K >= 32 (float32 and float64; the size rule is in
// conv2d_winograd.cpp) do not come here when Winograd is on: see conv2d_winograd.h.
//
// The portable kernels in conv2d_ref.cpp compute the same thing with plain loops; the tests
// (tests/test_conv_simd.py) compare both, exactly with small-integer data.
#pragma once  // once per translation unit: each ISA file includes it for its own ISA
#ifndef FASTCONV_SIMD_NS
#error "include simd_avx512.h or simd_avx2.h before conv2d_simd.h"
#endif

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

#include "kernels.h"
#include "loops.h"
#include "scratch.h"

namespace fastconv {
namespace FASTCONV_SIMD_NS {
namespace {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Every parallel region of one convolution uses threads_for(p.macs()) threads (loops.h):
// problems too small to pay for waking the team run on the calling thread.

// ------------------------------------------------------------------------------ microkernel
enum class Init { zero, bias, load };

template <typename T>
struct TileArgs {
  const T* A = nullptr;          // broadcast operand: A[aoff[u] + j*a_js + t*a_ts]
  const int64_t* aoff = nullptr;
  int64_t a_js = 1, a_ts = 0;
  const T* B = nullptr;          // vector operand: B[boff[u] + t*ldb + lane]
  const int64_t* boff = nullptr;
  int64_t ldb = 0;
  int64_t U = 0, Tn = 0;         // reduction extents
  Init init = Init::zero;        // accumulators start at 0, bias[lane] or partial sums
  const T* bias = nullptr;       // NV*W values
  const T* partial = nullptr;    // Init::load: partial[j*ldp + lane]
  int64_t ldp = 0;
  bool relu = false;
  T* out = nullptr;
  bool out_transposed = false;   // false: out[j*ldo + lane]; true: out[lane*ldo + j]
  bool out_stream = false;       // non-transposed, all lanes valid, out and ldo vector-aligned:
                                 // non-temporal stores (the caller issues the sfence)
  int64_t ldo = 0;
  int kvalid = 0;                // lanes of the tile that exist in `out` (<= NV*W)
};

// NJ broadcast rows x NV vectors, accumulated over (u, t); then ReLU and the store.
// STRIDED = false: the NJ broadcast values are adjacent (a_js = 1, constant displacements).
// STRIDED = true: they are a_js apart (NHWC pixels); addresses come from one pointer per three
// rows plus a_js*{0,1,2}, which x86 addressing encodes without extra instructions.
// TOUTER = true: loop order t outer, u inner (for operands that are reused across u).
template <class V, int NJ, int NV, bool STRIDED, bool TOUTER = false>
void tile_kernel(const TileArgs<typename V::T>& g) {
  using T = typename V::T;
  using reg = typename V::reg;
  constexpr int W = V::W;
  constexpr int NP = STRIDED ? (NJ + 2) / 3 : 1;
  reg acc[NJ][NV];
  if (g.init == Init::load) {
#pragma GCC unroll 16
    for (int j = 0; j < NJ; ++j)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[j][v] = V::load(g.partial + j * g.ldp + v * W);
  } else {
    reg b[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) b[v] = g.init == Init::bias ? V::load(g.bias + v * W) : V::zero();
#pragma GCC unroll 16
    for (int j = 0; j < NJ; ++j)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[j][v] = b[v];
  }

  const int64_t js = g.a_js;
  if (TOUTER) {
    // t outer, u inner: one t's operand rows are reused by every u while still in L1.
    for (int64_t t = 0; t < g.Tn; ++t) {
      for (int64_t u = 0; u < g.U; ++u) {
        const T* a = g.A + g.aoff[u] + t * g.a_ts;
        const T* b = g.B + g.boff[u] + t * g.ldb;
        reg w[NV];
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) w[v] = V::load(b + v * W);
#pragma GCC unroll 16
        for (int j = 0; j < NJ; ++j) {
          const reg x = V::set1(a[j]);
#pragma GCC unroll 8
          for (int v = 0; v < NV; ++v) acc[j][v] = V::fma(x, w[v], acc[j][v]);
        }
      }
    }
  } else {
    for (int64_t u = 0; u < g.U; ++u) {
      const T* a = g.A + g.aoff[u];
      const T* b = g.B + g.boff[u];
      const T* ap[NP];
#pragma GCC unroll 8
      for (int q = 0; q < NP; ++q) ap[q] = a + 3 * q * js;
      for (int64_t t = 0; t < g.Tn; ++t) {
        reg w[NV];
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) w[v] = V::load(b + v * W);
#pragma GCC unroll 16
        for (int j = 0; j < NJ; ++j) {
          const reg x = STRIDED ? V::set1(ap[j / 3][(j % 3) * js]) : V::set1(a[j]);
#pragma GCC unroll 8
          for (int v = 0; v < NV; ++v) acc[j][v] = V::fma(x, w[v], acc[j][v]);
        }
        if (STRIDED) {
#pragma GCC unroll 8
          for (int q = 0; q < NP; ++q) ap[q] += g.a_ts;
        } else {
          a += g.a_ts;
        }
        b += g.ldb;
      }
    }
  }

  if (g.relu) {
#pragma GCC unroll 16
    for (int j = 0; j < NJ; ++j)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[j][v] = V::relu(acc[j][v]);
  }

  if (g.out_stream) {
#pragma GCC unroll 16
    for (int j = 0; j < NJ; ++j)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) V::stream(g.out + j * g.ldo + v * W, acc[j][v]);
  } else if (!g.out_transposed) {
#pragma GCC unroll 16
    for (int j = 0; j < NJ; ++j)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) {
        T* o = g.out + j * g.ldo + v * W;
        if ((v + 1) * W <= g.kvalid) V::store(o, acc[j][v]);
        else if (v * W < g.kvalid) V::store_n(o, acc[j][v], g.kvalid - v * W);
      }
  } else {
    // NCHW output: lanes are channels, j runs along a row; transpose through the stack.
    alignas(64) T buf[NJ][NV * W];
#pragma GCC unroll 16
    for (int j = 0; j < NJ; ++j)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) V::store(&buf[j][v * W], acc[j][v]);
    for (int k = 0; k < g.kvalid; ++k) {
      T* o = g.out + k * g.ldo;
      for (int j = 0; j < NJ; ++j) o[j] = buf[j][k];
    }
  }
}

template <class V>
using TileFn = void (*)(const TileArgs<typename V::T>&);
template <class V>
using TileTable = std::array<std::array<TileFn<V>, V::NV>, V::NJ>;

template <class V, bool ST, int NJ, size_t... I>
constexpr std::array<TileFn<V>, V::NV> tile_row(std::index_sequence<I...>) {
  return {{&tile_kernel<V, NJ, static_cast<int>(I) + 1, ST>...}};
}
template <class V, bool ST, size_t... J>
constexpr TileTable<V> tile_table(std::index_sequence<J...>) {
  return {{tile_row<V, ST, static_cast<int>(J) + 1>(std::make_index_sequence<V::NV>())...}};
}

// The tile kernel for nj broadcast rows (1..NJ), nv vectors (1..NV), adjacent or strided rows.
template <class V>
TileFn<V> tile_fn(int64_t nj, int64_t nv, bool strided) {
  static constexpr TileTable<V> adjacent = tile_table<V, false>(std::make_index_sequence<V::NJ>());
  static constexpr TileTable<V> apart = tile_table<V, true>(std::make_index_sequence<V::NJ>());
  return (strided ? apart : adjacent)[nj - 1][nv - 1];
}

// Tiles for few broadcast rows and many vectors (the pixel-vector backward-data path for
// C <= kSmallC): NJ rows x nv (1..NVmax) vectors with NVmax = min(8, (REGS-1)/(NJ+1)), i.e.
// NJ*NVmax accumulators + NVmax operand vectors + 1 broadcast fit the register file
// (AVX-512, NJ = 3: 3 x 7 zmm = 112 pixels of 3 channels).
constexpr int kSmallC = 8;
template <class V, int NJ>
constexpr int small_nv() { return std::min(8, (V::REGS - 1) / (NJ + 1)); }

template <class V, int NJ, size_t... I>
constexpr std::array<TileFn<V>, 8> small_row(std::index_sequence<I...>) {
  return {{(static_cast<int>(I) < small_nv<V, NJ>()
                ? &tile_kernel<V, NJ, std::min(static_cast<int>(I) + 1, small_nv<V, NJ>()), false, true>
                : nullptr)...}};
}
template <class V>
TileFn<V> small_tile_fn(int64_t nj, int64_t nv) {
  static constexpr std::array<std::array<TileFn<V>, 8>, kSmallC> table = {{
      small_row<V, 1>(std::make_index_sequence<8>()), small_row<V, 2>(std::make_index_sequence<8>()),
      small_row<V, 3>(std::make_index_sequence<8>()), small_row<V, 4>(std::make_index_sequence<8>()),
      small_row<V, 5>(std::make_index_sequence<8>()), small_row<V, 6>(std::make_index_sequence<8>()),
      small_row<V, 7>(std::make_index_sequence<8>()), small_row<V, 8>(std::make_index_sequence<8>())}};
  return table[nj - 1][nv - 1];
}
template <class V>
int64_t small_nv_max(int64_t nj) {
  static constexpr int nvs[kSmallC] = {small_nv<V, 1>(), small_nv<V, 2>(), small_nv<V, 3>(),
                                       small_nv<V, 4>(), small_nv<V, 5>(), small_nv<V, 6>(),
                                       small_nv<V, 7>(), small_nv<V, 8>()};
  return nvs[nj - 1];
}

// ------------------------------------------------------------------------------ data movement
// Source row/column of a padded (and, for backward-data with stride, zero-interleaved)
// position i: (i - off) / up when exact and inside [0, n), else -1 (a zero).
inline int64_t source_index(int64_t i, int64_t off, int64_t up, int64_t n) {
  const int64_t d = i - off;
  if (d < 0 || d % up) return -1;
  return d / up < n ? d / up : -1;
}

// A zero-padded copy of an activation tensor src (N,C,Hs,Ws) | (N,Hs,Ws,C): buffer position
// (i, col) holds src(source_index(i, off_h, up_h, Hs), source_index(col, off_w, up_w, Ws)) or 0.
struct Padded {
  int64_t N = 0, C = 0, Hs = 0, Ws = 0;
  Layout layout = Layout::NCHW;
  int64_t Hb = 0, Wb = 0;                     // buffer rows and columns
  int64_t off_h = 0, off_w = 0, up_h = 1, up_w = 1;
};

// How to produce one row of a padded buffer from the source: either a "row-channel-column"
// row (C, sw, Wph) whose columns are split by phase, col = pos*sw + phase, so that output
// pixels ow, ow+1, ... of one tap are adjacent for any stride (rcc = true), or a padded NHWC
// row (Wb, C). From an NCHW source an rcc row is C shifted copies (no transpose); the other
// two combinations are transposes in blocks of 16 columns.
template <typename T>
struct RowPlan {
  Padded g;
  bool rcc = false;
  int64_t sw = 1, Wph = 0, L = 0, row = 0;  // rcc: L = sw*Wph columns per channel
  std::vector<int64_t> col;                // source column of each buffer column, or -1
  int64_t lo = 0, hi = 0;                  // shifted copy: buffer columns [lo, hi) are source
  std::vector<int64_t> ph_lo, ph_hi;       // phase split: positions [ph_lo, ph_hi) are source
  int64_t src_lo = 0, src_hi = 0;          // zero interleave: source columns that land inside

  RowPlan(const Padded& pad, bool rcc_layout, int64_t stride_w) : g(pad), rcc(rcc_layout) {
    sw = rcc ? stride_w : 1;
    Wph = ceil_div(g.Wb, sw);
    L = rcc ? sw * Wph : g.Wb;
    row = g.C * L;
    col.resize(L);
    for (int64_t ph = 0; ph < sw; ++ph)
      for (int64_t pos = 0; pos < Wph; ++pos)
        if (ph * Wph + pos < L) col[ph * Wph + pos] = source_index(pos * sw + ph, g.off_w, g.up_w, g.Ws);
    lo = std::clamp<int64_t>(g.off_w, 0, L);
    hi = std::clamp<int64_t>(g.off_w + g.Ws, lo, L);
    ph_lo.assign(sw, 0);
    ph_hi.assign(sw, 0);
    for (int64_t ph = 0; ph < sw; ++ph) {
      int64_t p0 = Wph, p1 = 0;
      for (int64_t pos = 0; pos < Wph; ++pos)
        if (col[ph * Wph + pos] >= 0) { p0 = std::min(p0, pos); p1 = pos + 1; }
      ph_lo[ph] = std::min(p0, p1);
      ph_hi[ph] = p1;
    }
    if (g.up_w > 1) {
      src_lo = ceil_div(std::max<int64_t>(-g.off_w, 0), g.up_w);
      src_hi = std::clamp<int64_t>(ceil_div(L - g.off_w, g.up_w), src_lo, g.Ws);
    }
  }

  // Buffer row i of image n -> d (row elements).
  void fill(const T* src, int64_t n, int64_t i, T* d) const {
    const int64_t hs = source_index(i, g.off_h, g.up_h, g.Hs), C = g.C;
    if (hs < 0) {
      std::fill(d, d + row, T(0));
      return;
    }
    const bool shifted = sw == 1 && g.up_w == 1;
    if (rcc && g.layout == Layout::NCHW) {
      for (int64_t c = 0; c < C; ++c) {
        const T* s = src + ((n * C + c) * g.Hs + hs) * g.Ws;
        T* dr = d + c * L;
        if (shifted) {
          std::fill(dr, dr + lo, T(0));
          std::memcpy(dr + lo, s + (lo - g.off_w), (hi - lo) * sizeof(T));
          std::fill(dr + hi, dr + L, T(0));
        } else if (g.up_w > 1) {  // zero-interleaved (backward-data with stride; sw == 1)
          std::fill(dr, dr + L, T(0));
          for (int64_t x = src_lo; x < src_hi; ++x) dr[g.off_w + x * g.up_w] = s[x];
        } else {                  // columns split by phase: strided copies
          for (int64_t ph = 0; ph < sw; ++ph) {
            T* dp = dr + ph * Wph;
            const T* sp = s + ph - g.off_w;
            std::fill(dp, dp + ph_lo[ph], T(0));
            for (int64_t pos = ph_lo[ph]; pos < ph_hi[ph]; ++pos) dp[pos] = sp[pos * sw];
            std::fill(dp + ph_hi[ph], dp + Wph, T(0));
          }
        }
      }
    } else if (rcc && shifted) {  // NHWC source, columns [lo, hi) shifted: (Ws, C) -> (C, L)
      const T* s = src + ((n * g.Hs + hs) * g.Ws - g.off_w) * C;
      for (int64_t c = 0; c < C; ++c) {
        std::fill(d + c * L, d + c * L + lo, T(0));
        std::fill(d + c * L + hi, d + (c + 1) * L, T(0));
      }
      for (int64_t k0 = lo; k0 < hi; k0 += 16) {   // 16 columns x all channels per block
        const int64_t k1 = std::min(hi, k0 + 16);
        for (int64_t c = 0; c < C; ++c) {
          T* dr = d + c * L;
          for (int64_t k = k0; k < k1; ++k) dr[k] = s[k * C + c];
        }
      }
    } else if (rcc) {             // NHWC source: (Ws, C) -> (C, L)
      const T* s = src + (n * g.Hs + hs) * g.Ws * C;
      for (int64_t k0 = 0; k0 < L; k0 += 16) {
        const int64_t k1 = std::min(L, k0 + 16);
        for (int64_t c = 0; c < C; ++c) {
          T* dr = d + c * L;
          for (int64_t k = k0; k < k1; ++k) dr[k] = col[k] >= 0 ? s[col[k] * C + c] : T(0);
        }
      }
    } else if (g.layout == Layout::NHWC) {   // padded NHWC row from NHWC
      const T* s = src + (n * g.Hs + hs) * g.Ws * C;
      if (g.up_w == 1) {
        std::fill(d, d + lo * C, T(0));
        std::memcpy(d + lo * C, s + (lo - g.off_w) * C, (hi - lo) * C * sizeof(T));
        std::fill(d + hi * C, d + row, T(0));
      } else {
        for (int64_t k = 0; k < L; ++k) {
          if (col[k] >= 0) std::memcpy(d + k * C, s + col[k] * C, C * sizeof(T));
          else std::fill(d + k * C, d + (k + 1) * C, T(0));
        }
      }
    } else if (g.up_w == 1) {     // padded NHWC row from NCHW: (C, Ws) -> (Wb, C)
      std::fill(d, d + lo * C, T(0));
      std::fill(d + hi * C, d + row, T(0));
      for (int64_t k0 = lo; k0 < hi; k0 += 16) {
        const int64_t k1 = std::min(hi, k0 + 16);
        for (int64_t c = 0; c < C; ++c) {
          const T* s = src + ((n * C + c) * g.Hs + hs) * g.Ws - g.off_w;
          for (int64_t k = k0; k < k1; ++k) d[k * C + c] = s[k];
        }
      }
    } else {
      for (int64_t k0 = 0; k0 < L; k0 += 16) {
        const int64_t k1 = std::min(L, k0 + 16);
        for (int64_t c = 0; c < C; ++c) {
          const T* s = src + ((n * C + c) * g.Hs + hs) * g.Ws;
          for (int64_t k = k0; k < k1; ++k) d[k * C + c] = col[k] >= 0 ? s[col[k]] : T(0);
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

// grad_y (N,K,P,Q) | (N,P,Q,K) -> dst (K/KB, N*P*Q, KB): each k-block of KB channels is one
// contiguous stream of pixels (zero lanes past K), the vector operand of the weight-gradient
// tiles. From NHWC it is 4*KB-byte copies, from NCHW a transpose in blocks of 16 pixels.
template <typename T>
void to_kblocked_pixels(const T* src, Layout layout, int64_t N, int64_t K, int64_t PQ,
                        int64_t KB, T* dst, int threads) {
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

// ------------------------------------------------------------------------------ weight packing
// The direct driver packs weights one block of KB output channels at a time, inside the worker
// that uses them, into a per-thread buffer that stays in L2: each block is one contiguous stream
// for the register tiles (prefetch- and TLB-friendly), and the packed copy never goes to memory.

// Forward: k-block kb of w (K,C,R,S) | (R,S,C,K) -> (R*S, C, KB), zero lanes past K.
template <typename T>
void pack_fwd_kblock(const T* w, Layout layout, int64_t K, int64_t C, int64_t RS, int64_t KB,
                     int64_t kb, T* d) {
  const int64_t k0 = kb * KB, nk = std::min(KB, K - k0);
  if (layout == Layout::NCHW) {
    for (int64_t c0 = 0; c0 < C; c0 += 16) {   // reads (c, rs) runs, writes stay in 16 rows
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
void pack_bwd_data_cblock(const T* w, Layout layout, int64_t K, int64_t C, int64_t RS,
                          int64_t KB, int64_t cb, T* d) {
  const int64_t c0 = cb * KB, nc = std::min(KB, C - c0);
  if (layout == Layout::NCHW) {
    for (int64_t k = 0; k < K; ++k)
      for (int64_t cc = 0; cc < KB; ++cc)
        for (int64_t rs = 0; rs < RS; ++rs)
          d[(rs * K + k) * KB + cc] = cc < nc ? w[(k * C + c0 + cc) * RS + (RS - 1 - rs)] : T(0);
  } else {
    for (int64_t rs = 0; rs < RS; ++rs) {
      const T* s = w + (RS - 1 - rs) * C * K;
      for (int64_t k1 = 0; k1 < K; k1 += 16) {   // (C, K) -> (K, KB) in blocks of 16 k
        const int64_t k2 = std::min(K, k1 + 16);
        for (int64_t cc = 0; cc < KB; ++cc)
          for (int64_t k = k1; k < k2; ++k)
            d[(rs * K + k) * KB + cc] = cc < nc ? s[(c0 + cc) * K + k] : T(0);
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

// ------------------------------------------------------------------------------ forward driver
// out[n, k, oh, ow] = bias[k] + sum_{r,s,c} in(n, oh*sh + r*dh, ow*sw + s*dw, c) * w[r, s, c, k]
// (then ReLU). `in` is a padded buffer of rows; the element for output column ow, reduction
// step (u, t) sits at row(oh*sh + u_row[u]*dh) + ow*js + aoff[u] + t*a_ts. Weights are packed
// per k-block as (U, Tn, KB).
struct DirectConv {
  int64_t N = 0, C = 0, K = 0, P = 0, Q = 0, RS = 0, sh = 1, dh = 1;
  int64_t Hb = 0, row = 0, js = 1, a_ts = 1;
  // Reduction as U x Tn steps: A at aoff[u] + t*a_ts in input row u_row[u], packed weights at
  // boff[u] + t*KB. (R*S taps x C channels; NHWC with dilation_w 1 fuses each filter row's
  // (s, c) pairs, which are contiguous in both operands: R x S*C, fewer and longer loops.)
  int64_t U = 0, Tn = 0;
  std::vector<int64_t> aoff, boff, u_row;
  Layout out_layout = Layout::NCHW;
  bool relu = false;
  bool stream_out = false;   // NHWC output written with non-temporal stores (see stream_output)
  int threads = 1;
};

// Geometry of the forward driver's input: NCHW sources become row-channel-column rows (adjacent
// pixels: js = 1); NHWC sources padded NHWC rows (pixels js = sw*C apart). Returns true when
// the NHWC source can be read in place (no padding needed); otherwise the driver builds the
// padded rows on demand with `plan`.
inline bool describe_input(const Padded& g, int64_t R, int64_t S, int64_t sw, int64_t dh,
                           int64_t dw, int64_t KB, int64_t Wph, DirectConv* d) {
  d->Hb = g.Hb;
  d->dh = dh;
  d->U = R * S;
  d->Tn = g.C;
  d->aoff.resize(R * S);
  d->boff.resize(R * S);
  d->u_row.resize(R * S);
  for (int64_t u = 0; u < R * S; ++u) {
    d->boff[u] = u * g.C * KB;
    d->u_row[u] = u / S;
  }
  if (g.layout == Layout::NCHW) {
    d->row = g.C * sw * Wph;
    d->js = 1;
    d->a_ts = sw * Wph;
    for (int64_t r = 0; r < R; ++r)
      for (int64_t s = 0; s < S; ++s) d->aoff[r * S + s] = (s * dw) % sw * Wph + (s * dw) / sw;
    return false;
  }
  const bool in_place = g.off_h == 0 && g.off_w == 0 && g.up_h == 1 && g.up_w == 1 &&
                        g.Hb <= g.Hs && g.Wb <= g.Ws;
  const int64_t Wb = in_place ? g.Ws : g.Wb;
  if (in_place) d->Hb = g.Hs;
  d->row = Wb * g.C;
  d->js = sw * g.C;
  d->a_ts = 1;
  if (dw == 1) {  // fuse (s, c): x[.., col + s, c] is contiguous over (s, c)
    d->U = R;
    d->Tn = S * g.C;
    d->aoff.assign(R, 0);
    d->boff.resize(R);
    d->u_row.resize(R);
    for (int64_t r = 0; r < R; ++r) {
      d->boff[r] = r * S * g.C * KB;
      d->u_row[r] = r;
    }
  } else {
    for (int64_t r = 0; r < R; ++r)
      for (int64_t s = 0; s < S; ++s) d->aoff[r * S + s] = s * dw * g.C;
  }
  return in_place;
}

// Reduction steps t per block (input channels, or (s, c) pairs): the block's packed weights,
// U*tb*KB values, stay in
// L2 (1 MiB) while a group of tiles along the row reuses them. (Blocking for L1 instead, about
// 20 KiB of weights, measured 10% slower on VGG16 layers: the extra partial-sum traffic costs
// more than the L2 weight stream, which the hardware prefetcher keeps up with.) All VGG16
// layers fit in one block.
template <class V>
int64_t reduction_block(int64_t Tn, int64_t U) {
  constexpr int64_t KB = V::NV * V::W;
  const int64_t tb = std::max<int64_t>(4, (1 << 20) / (U * KB * int64_t(sizeof(typename V::T))));
  if (Tn <= tb) return Tn;
  return ceil_div(Tn, ceil_div(Tn, tb));  // equal blocks
}

// `src` is the caller's input; with `plan` its padded rows are built on demand, by the thread
// that needs them, into a small per-thread ring of rows that stays in L2 (consecutive output
// rows of a work chunk reuse R-1 of their R input rows); without, src already is the buffer.
template <class V>
void direct_conv(const DirectConv& d, const typename V::T* src,
                 const RowPlan<typename V::T>* plan,
                 const WeightBlocks<typename V::T>& weights, const typename V::T* bias,
                 typename V::T* y) {
  using T = typename V::T;
  constexpr int64_t KB = V::NV * V::W;                 // output channels per register tile
  constexpr int64_t kGroup = (64 + V::NJ - 1) / V::NJ;  // tiles sharing one weight block
  const int64_t nkb = ceil_div(d.K, KB), tb = reduction_block<V>(d.Tn, d.U);
  const bool strided = d.js != 1;
  // Work items (k-block group, n, oh), each running the k-blocks of its group over one output
  // row. A group's packed weights (R*S*C*KB values per k-block, contiguous) are at most
  // 320 KiB, so they stay in L2 while a thread walks the rows, and the few input rows an item
  // reads are reused from L2 by every k-block of the group: the 224x224 VGG16 layers read their
  // input from memory once instead of once per k-block (+8%); larger groups measured slower.
  const int64_t kb_elems = d.RS * d.C * KB, kb_bytes = kb_elems * int64_t(sizeof(T));
  const int64_t kbg = std::clamp<int64_t>((320 << 10) / kb_bytes, 1, nkb);
  const int64_t ngroups = ceil_div(nkb, kbg);
  const int64_t items = ngroups * d.N * d.P, chunk = default_grain(items, d.threads);
  const int64_t max_row = *std::max_element(d.u_row.begin(), d.u_row.end());
  parallel_team(d.threads, items, chunk, [&](ChunkQueue& queue) {
    // Partial sums of one tile group while the channel blocks go by (row-major, KB wide).
    std::vector<T, std::allocator<T>> partial(kGroup * V::NJ * KB);
    // This thread's packed weights of one k-block group (kept between calls).
    T* wbuf = scratch<T>(3, kbg * kb_elems);
    int64_t packed_group = -1;
    // This thread's ring of padded input rows, tagged with n*Hb + i.
    const int64_t span = (max_row + 1) * d.dh;            // rows one output row can touch
    const int64_t ring_rows = plan ? span + d.sh : 0;
    T* ring = plan ? scratch<T>(4, ring_rows * d.row) : nullptr;
    std::vector<int64_t> ring_tag(ring_rows, -1), aoff_item(d.U);
    std::vector<int64_t> rowoff(max_row + 1);
    for (int64_t it_begin, it_end; queue.next(&it_begin, &it_end);)
      for (int64_t it = it_begin; it < it_end; ++it) {
        const int64_t grp = it / (d.N * d.P), np = it % (d.N * d.P);
        const int64_t n = np / d.P, oh = np % d.P;
        if (grp != packed_group) {
          for (int64_t kb = grp * kbg; kb < std::min(nkb, (grp + 1) * kbg); ++kb)
            weights.pack(kb, KB, wbuf + (kb - grp * kbg) * kb_elems);
          packed_group = grp;
        }
        // Offsets of this output row's input rows from `base`, then of every reduction step u.
        const T* base = plan ? ring : src;
        for (int64_t r = 0; r <= max_row; ++r) {
          const int64_t i = oh * d.sh + r * d.dh;
          if (plan) {
            const int64_t slot = i % ring_rows;
            if (ring_tag[slot] != n * d.Hb + i) {
              plan->fill(src, n, i, ring + slot * d.row);
              ring_tag[slot] = n * d.Hb + i;
            }
            rowoff[r] = slot * d.row;
          } else {
            rowoff[r] = (n * d.Hb + i) * d.row;
          }
        }
        for (int64_t u = 0; u < d.U; ++u) aoff_item[u] = rowoff[d.u_row[u]] + d.aoff[u];
        for (int64_t kb = grp * kbg; kb < std::min(nkb, (grp + 1) * kbg); ++kb) {
          const int64_t k0 = kb * KB;
          TileArgs<T> g;
          g.aoff = aoff_item.data();
          g.a_js = d.js;
          g.a_ts = d.a_ts;
          g.boff = d.boff.data();
          g.ldb = KB;
          g.U = d.U;
          g.bias = bias ? bias + k0 : nullptr;
          const int kvalid = static_cast<int>(std::min(KB, d.K - k0));
          const int64_t nv = ceil_div(kvalid, V::W);
          const bool nchw = d.out_layout == Layout::NCHW;
          const T* arow = base;
          const T* wkb = wbuf + (kb - grp * kbg) * kb_elems;
          for (int64_t q0 = 0; q0 < d.Q; q0 += kGroup * V::NJ) {
            const int64_t q1 = std::min(d.Q, q0 + kGroup * V::NJ);
            for (int64_t t0 = 0; t0 < d.Tn; t0 += tb) {
              const bool first = t0 == 0, last = t0 + tb >= d.Tn;
              g.B = wkb + t0 * KB;
              g.Tn = std::min(tb, d.Tn - t0);
              g.init = !first ? Init::load : bias ? Init::bias : Init::zero;
              g.relu = last && d.relu;
              for (int64_t ow0 = q0; ow0 < q1; ow0 += V::NJ) {
                const int64_t nj = std::min<int64_t>(V::NJ, q1 - ow0);
                T* part = partial.data() + (ow0 - q0) * KB;
                g.A = arow + ow0 * d.js + t0 * d.a_ts;
                g.partial = part;
                g.ldp = KB;
                if (last) {
                  g.out_transposed = nchw;
                  g.ldo = nchw ? d.P * d.Q : d.K;
                  g.out = nchw ? y + ((n * d.K + k0) * d.P + oh) * d.Q + ow0
                               : y + ((n * d.P + oh) * d.Q + ow0) * d.K + k0;
                  g.kvalid = kvalid;
                  g.out_stream = d.stream_out && kvalid == KB &&
                                 reinterpret_cast<uintptr_t>(g.out) % (V::W * sizeof(T)) == 0;
                } else {
                  g.out_stream = false;
                  g.out_transposed = false;
                  g.out = part;
                  g.ldo = KB;
                  g.kvalid = static_cast<int>(nv * V::W);
                }
                tile_fn<V>(nj, nv, strided)(g);
              }
            }
          }
        }
      }
    if (d.stream_out) _mm_sfence();
  });
}

// FASTCONV_VERBOSE=1: which kernel ran and how long each phase (packing, layout copies, the
// register-tile loop) took.
class KernelLog {
 public:
  KernelLog() : on_(verbose()), last_(std::chrono::steady_clock::now()) {}
  void lap(const char* phase) {
    if (!on_) return;
    const auto now = std::chrono::steady_clock::now();
    const double ms = std::chrono::duration<double, std::milli>(now - last_).count();
    last_ = now;
    const int n = std::snprintf(buf_ + len_, sizeof(buf_) - len_, " %s %.3f ms", phase, ms);
    if (n > 0) len_ = std::min<int>(sizeof(buf_) - 1, len_ + n);
  }
  void print(const char* op, const char* dtype, const char* how, int nj, int kb) const {
    if (on_)
      std::fprintf(stderr, "fastconv:   kernel %s_%s_%dx%d_%s (%s):%s\n", dtype, op, nj, kb,
                   FASTCONV_SIMD_NAME, how, buf_);
  }

 private:
  bool on_;
  std::chrono::steady_clock::time_point last_;
  char buf_[256] = {0};
  int len_ = 0;
};

// ------------------------------------------------------------------------------ entry points
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
void conv2d_fwd(const Conv2dParams& p, const typename V::T* x, const typename V::T* w,
                const typename V::T* bias, typename V::T* y) {
  using T = typename V::T;
  KernelLog log;
  constexpr int64_t KB = V::NV * V::W;
  const int64_t Kp = round_up(p.K, KB), RS = p.R * p.S;
  WeightBlocks<T> wb;
  wb.w = w; wb.layout = p.layout; wb.K = p.K; wb.C = p.C; wb.RS = RS;
  T* bp = nullptr;
  if (bias) {
    bp = scratch<T>(2, Kp);
    std::copy(bias, bias + p.K, bp);
    std::fill(bp + p.K, bp + Kp, T(0));
  }
  DirectConv d;
  d.threads = threads_for(p.macs());
  d.N = p.N; d.C = p.C; d.K = p.K; d.P = p.P; d.Q = p.Q; d.RS = RS; d.sh = p.stride_h;
  d.out_layout = p.layout;
  d.relu = p.relu;
  d.stream_out = stream_output(p.layout, p.K, p.y_size() * int64_t(sizeof(T)), V::W);
  Padded g;
  g.N = p.N; g.C = p.C; g.Hs = p.H; g.Ws = p.W; g.layout = p.layout;
  g.Hb = (p.P - 1) * p.stride_h + (p.R - 1) * p.dil_h + 1;
  g.Wb = (p.Q - 1) * p.stride_w + (p.S - 1) * p.dil_w + 1;
  g.off_h = p.pad_top;
  g.off_w = p.pad_left;
  const RowPlan<T> plan(g, p.layout == Layout::NCHW, p.stride_w);
  const bool in_place = describe_input(g, p.R, p.S, p.stride_w, p.dil_h, p.dil_w, KB, plan.Wph, &d);
  direct_conv<V>(d, x, in_place ? nullptr : &plan, wb, bp, y);
  log.lap("input-rows+pack+tiles");
  log.print(p.relu ? "conv2d_fwd_relu" : "conv2d_fwd", V::name,
            p.layout == Layout::NCHW ? "direct, row-channel-column input rows"
                                     : in_place ? "direct, NHWC input in place"
                                                : "direct, padded NHWC input rows",
            V::NJ, KB);
}

// Backward-data for few input channels (C <= kSmallC = 8, e.g. an RGB first layer), where a tile
// of channel lanes would be mostly empty: lanes run along a row of grad_x instead (4-5x faster
// than the channel-lane tiles for C = 3..5).
//   acc[c][lanes] += w'[r', s', k, c] (broadcast) * gy_up[ih + r'*dh, k, iw + s'*dw + lanes]
// with gy_up in row-channel-column form (rows of pixels contiguous) and w' flipped as (R*S, K, C).
// Rows of gy_up are built per thread on demand (a ring of R rows), not for the whole tensor.
template <class V>
void conv2d_bwd_data_small_c(const Conv2dParams& p, const typename V::T* gy,
                             const typename V::T* w, typename V::T* gx, KernelLog& log) {
  using T = typename V::T;
  const int64_t RS = p.R * p.S, nvmax = small_nv_max<V>(p.C), PW = nvmax * V::W;
  T* wp = scratch<T>(1, RS * p.K * p.C);
  pack_bwd_data_cblock(w, p.layout, p.K, p.C, RS, p.C, 0, wp);   // (R*S, K, C)
  log.lap("pack");

  Padded g;
  g.N = p.N; g.C = p.K; g.Hs = p.P; g.Ws = p.Q; g.layout = p.layout;
  g.Hb = p.H + (p.R - 1) * p.dil_h;
  g.Wb = p.W + (p.S - 1) * p.dil_w;
  g.off_h = (p.R - 1) * p.dil_h - p.pad_top;
  g.off_w = (p.S - 1) * p.dil_w - p.pad_left;
  g.up_h = p.stride_h;
  g.up_w = p.stride_w;
  const int64_t row = p.K * g.Wb;
  const int threads = threads_for(p.macs());
  const RowPlan<T> plan(g, true, 1);
  const bool nchw = p.layout == Layout::NCHW;
  const int64_t items = p.N * p.H, chunk = default_grain(items, threads);
  const int64_t span = (p.R - 1) * p.dil_h + 1;   // grad_y rows one grad_x row reads
  std::vector<int64_t> aoff(RS);
  for (int64_t u = 0; u < RS; ++u) aoff[u] = u * p.K * p.C;
  parallel_team(threads, items, chunk, [&](ChunkQueue& queue) {
    // This thread's ring of zero-padded grad_y rows in row-channel-column form, built on demand
    // (consecutive grad_x rows of a work chunk reuse span - 1 of their rows): grad_y is read
    // from memory once and never copied whole (a full copy cost as much as the tiles on
    // VGG16's conv1_1 at batch 8). + PW: the last tile's vectors may read past the last row
    // (those lanes are not stored).
    T* ring = scratch<T>(0, span * row + PW);
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
  log.print("conv2d_bwd_data", V::name, "pixel-vector tiles for few channels", int(p.C),
            int(PW));
}

// grad_y (N,K,P,Q) | (N,P,Q,K), w -> grad_x (N,C,H,W) | (N,H,W,C)
template <class V>
void conv2d_bwd_data(const Conv2dParams& p, const typename V::T* gy, const typename V::T* w,
                     typename V::T* gx) {
  using T = typename V::T;
  // grad_x[ih, iw, c] = sum_{r', s', k} gy_up[ih + r'*dh, iw + s'*dw, k] * w[R-1-r', S-1-s', c, k]
  // where gy_up is grad_y with (stride-1) zeros between rows/columns, shifted by
  // (R-1)*dh - pad_top rows and (S-1)*dw - pad_left columns: a stride-1 forward convolution.
  KernelLog log;
  if (p.C <= kSmallC) return conv2d_bwd_data_small_c<V>(p, gy, w, gx, log);
  constexpr int64_t KB = V::NV * V::W;
  const int64_t RS = p.R * p.S;
  WeightBlocks<T> wb;
  wb.w = w; wb.layout = p.layout; wb.K = p.K; wb.C = p.C; wb.RS = RS; wb.bwd_data = true;

  DirectConv d;
  d.threads = threads_for(p.macs());
  d.N = p.N; d.C = p.K; d.K = p.C; d.P = p.H; d.Q = p.W; d.RS = RS; d.sh = 1;
  d.out_layout = p.layout;
  Padded g;
  g.N = p.N; g.C = p.K; g.Hs = p.P; g.Ws = p.Q; g.layout = p.layout;
  g.Hb = p.H + (p.R - 1) * p.dil_h;
  g.Wb = p.W + (p.S - 1) * p.dil_w;
  g.off_h = (p.R - 1) * p.dil_h - p.pad_top;
  g.off_w = (p.S - 1) * p.dil_w - p.pad_left;
  g.up_h = p.stride_h;
  g.up_w = p.stride_w;
  const RowPlan<T> plan(g, p.layout == Layout::NCHW, 1);
  const bool in_place = describe_input(g, p.R, p.S, 1, p.dil_h, p.dil_w, KB, plan.Wph, &d);
  direct_conv<V>(d, gy, in_place ? nullptr : &plan, wb, nullptr, gx);
  log.lap("input-rows+pack+tiles");
  log.print("conv2d_bwd_data", V::name,
            p.stride_h * p.stride_w > 1 ? "direct on zero-interleaved grad_y, flipped weights"
                                        : "direct, flipped weights",
            V::NJ, KB);
}

// grad_y (N,K,P,Q) | (N,P,Q,K), x -> grad_w (K,C,R,S) | (R,S,C,K), grad_bias (K) or null
template <class V>
void conv2d_bwd_weight(const Conv2dParams& p, const typename V::T* gy, const typename V::T* x,
                       typename V::T* gw, typename V::T* gb) {
  using T = typename V::T;
  constexpr int64_t W = V::W, KB = V::NV * V::W;
  const int64_t RS = p.R * p.S, PQ = p.P * p.Q;
  KernelLog log;
  const int threads = threads_for(p.macs());

  // x as zero-padded NHWC (N, xH, xW, C); NHWC input without padding is used in place.
  Padded g;
  g.N = p.N; g.C = p.C; g.Hs = p.H; g.Ws = p.W; g.layout = p.layout;
  g.Hb = (p.P - 1) * p.stride_h + (p.R - 1) * p.dil_h + 1;
  g.Wb = (p.Q - 1) * p.stride_w + (p.S - 1) * p.dil_w + 1;
  g.off_h = p.pad_top;
  g.off_w = p.pad_left;
  const T* xb = x;
  int64_t xH = p.H, xW = p.W;
  if (!(p.layout == Layout::NHWC && p.pad_top == 0 && p.pad_left == 0 && g.Hb <= p.H &&
        g.Wb <= p.W)) {
    T* buf = scratch<T>(0, p.N * g.Hb * g.Wb * p.C);
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
    T* buf = scratch<T>(1, ceil_div(p.K, KB) * NPQ * KB);
    to_kblocked_pixels(gy, p.layout, p.N, p.K, PQ, KB, buf, threads);
    gyb = buf;
  }
  // grad_w accumulates as (R, S, C, ldo); in place when that is the caller's layout.
  const bool direct_gw = p.layout == Layout::NHWC && p.K % W == 0;
  const int64_t ldo = direct_gw ? p.K : round_up(p.K, W);
  T* gwt = direct_gw ? gw : scratch<T>(2, RS * p.C * ldo);
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
  T* gbt = gb ? scratch<T>(3, nkb * KB) : nullptr;
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
    if (p.layout == Layout::NHWC) {   // (R,S,C,ldo) -> (R,S,C,K)
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
  log.print("conv2d_bwd_weight", V::name,
            fuse_s ? "pixel-reduction, (s,c) rows fused" : "pixel-reduction", V::NJ, KB);
}

}  // namespace
}  // namespace FASTCONV_SIMD_NS
}  // namespace fastconv
