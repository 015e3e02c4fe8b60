// Templated SIMD conv2d kernels shared by the ISA files (conv2d_*_avx512.cpp, conv2d_*_avx2.cpp).
//
// Include it after an ISA traits header (simd_avx512.h or simd_avx2.h): that header defines
// FASTCONV_SIMD_NS and the vector traits VecF32 / VecF64, and everything below is compiled into
// namespace fastconv::<isa> with that file's flags, so no AVX-512 code can leak into the AVX2 or
// portable paths through a shared inline function.
//
// One microkernel does all three passes. It keeps an NJ x NV register tile of accumulators
//   acc[j][v] += sum_u sum_t A[aoff[u] + j + t*a_ts] * B[boff[u] + t*ldb + v*W .. +W)
// i.e. an outer product of NJ broadcast scalars and NV vectors of W lanes per step t.
// (AVX-512: NJ=14, NV=2 -> 28 zmm accumulators; AVX2: 6 x 2 -> 12 ymm.) The broadcast
// operand is contiguous in j, so its addresses are constant offsets from one pointer.
//
//   forward         j = 14 output pixels of one row, lanes = output channels, t = input
//                   channels, u = (r, s) taps; the input is first copied into a zero-padded
//                   "row-channel-column" layout (N, Hb, C, stride_w, Wb/stride_w) in which the
//                   14 pixels a tap reads are adjacent even for stride 2 (columns split by
//                   phase). Weights are packed once per call as (R, S, C, K padded).
//   backward-data   the forward driver on grad_y with flipped, transposed weights (R, S, K, C)
//                   (a stride-1 "full" convolution). For stride > 1 the row-channel-column copy
//                   of grad_y interleaves zeros (correct; does stride_h*stride_w more FMAs).
//   backward-weight j = 14 consecutive (s, c) entries of one filter row (the input is made
//                   zero-padded NHWC, where x[ih, iw+s, c] is contiguous over (s, c) when
//                   dilation_w = 1), lanes = output channels, t = output pixels of a row,
//                   u = (n, output row). The pixel reduction is cut into chunks that fit L2;
//                   each thread owns a fixed set of output tiles for every chunk, so the
//                   summation order is fixed and the result deterministic for any thread count.
//
// The portable kernels in conv2d_ref.cpp compute the same thing with plain loops; the tests
// compare both (exactly, with small-integer data).
#ifndef FASTCONV_SIMD_NS
#error "include simd_avx512.h or simd_avx2.h before conv2d_simd.h"
#endif

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "kernels.h"

namespace fastconv {
namespace FASTCONV_SIMD_NS {
namespace {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// ------------------------------------------------------------------------------ scratch
// Per-calling-thread buffers that grow and are kept between calls: re-allocating tens of MB
// every call would cost page faults comparable to the convolution itself.
struct ScratchSlot {
  void* ptr = nullptr;
  size_t bytes = 0;
  ~ScratchSlot() { std::free(ptr); }
};

template <typename T>
T* scratch(int slot, int64_t count) {
  static thread_local ScratchSlot slots[4];
  const size_t bytes = static_cast<size_t>(round_up(std::max<int64_t>(count, 1) * sizeof(T), 64));
  ScratchSlot& s = slots[slot];
  if (s.bytes < bytes) {
    std::free(s.ptr);
    s.ptr = std::aligned_alloc(64, bytes);
    s.bytes = s.ptr ? bytes : 0;
    if (!s.ptr) throw std::bad_alloc();
  }
  return static_cast<T*>(s.ptr);
}

// ------------------------------------------------------------------------------ microkernel
enum class Init { zero, bias, load };

template <typename T>
struct TileArgs {
  const T* A = nullptr;          // broadcast operand: A[aoff[u] + j + t*a_ts]
  const int64_t* aoff = nullptr;
  int64_t a_ts = 0;
  const T* B = nullptr;          // vector operand: B[boff[u] + t*ldb + lane]
  const int64_t* boff = nullptr;
  int64_t ldb = 0;
  int64_t U = 0, Tn = 0;         // reduction extents
  Init init = Init::zero;        // accumulators start at 0, bias[lane], or out (row-major)
  const T* bias = nullptr;       // NV*W values
  bool relu = false;
  T* out = nullptr;
  bool out_transposed = false;   // false: out[j*ldo + lane]; true: out[lane*ldo + j]
  int64_t ldo = 0;
  int kvalid = 0;                // lanes of the tile that exist in `out` (<= NV*W)
};

// NJ broadcast rows x NV vectors, accumulated over (u, t); then bias/ReLU and the store.
template <class V, int NJ, int NV>
void tile_kernel(const TileArgs<typename V::T>& g) {
  using T = typename V::T;
  using reg = typename V::reg;
  constexpr int W = V::W;
  reg acc[NJ][NV];
  if (g.init == Init::load) {
#pragma GCC unroll 16
    for (int j = 0; j < NJ; ++j)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[j][v] = V::load(g.out + j * g.ldo + v * W);
  } else {
    reg b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b[v] = g.init == Init::bias ? V::load(g.bias + v * W) : V::zero();
#pragma GCC unroll 16
    for (int j = 0; j < NJ; ++j)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[j][v] = b[v];
  }

  for (int64_t u = 0; u < g.U; ++u) {
    const T* a = g.A + g.aoff[u];
    const T* b = g.B + g.boff[u];
    for (int64_t t = 0; t < g.Tn; ++t) {
      reg w[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) w[v] = V::load(b + v * W);
#pragma GCC unroll 16
      for (int j = 0; j < NJ; ++j) {
        const reg x = V::set1(a[j]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[j][v] = V::fma(x, w[v], acc[j][v]);
      }
      a += g.a_ts;
      b += g.ldb;
    }
  }

  if (g.relu) {
#pragma GCC unroll 16
    for (int j = 0; j < NJ; ++j)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[j][v] = V::relu(acc[j][v]);
  }

  if (!g.out_transposed) {
#pragma GCC unroll 16
    for (int j = 0; j < NJ; ++j)
#pragma GCC unroll 4
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
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) V::store(&buf[j][v * W], acc[j][v]);
    for (int k = 0; k < g.kvalid; ++k) {
      T* o = g.out + k * g.ldo;
      for (int j = 0; j < NJ; ++j) o[j] = buf[j][k];
    }
  }
}

template <class V>
using TileFn = void (*)(const TileArgs<typename V::T>&);

template <class V, int NJ, size_t... I>
constexpr std::array<TileFn<V>, V::NV> tile_row(std::index_sequence<I...>) {
  return {{&tile_kernel<V, NJ, static_cast<int>(I) + 1>...}};
}
template <class V, size_t... J>
constexpr std::array<std::array<TileFn<V>, V::NV>, V::NJ> tile_table(std::index_sequence<J...>) {
  return {{tile_row<V, static_cast<int>(J) + 1>(std::make_index_sequence<V::NV>())...}};
}

// The tile kernel for nj broadcast rows (1..NJ) and nv vectors (1..NV).
template <class V>
TileFn<V> tile_fn(int64_t nj, int64_t nv) {
  static constexpr auto table = tile_table<V>(std::make_index_sequence<V::NJ>());
  return table[nj - 1][nv - 1];
}

// ------------------------------------------------------------------------------ data movement
// Source row/column of a padded (and, for backward-data with stride, zero-interleaved)
// position i: (i - off) / up when exact and inside [0, n), else -1 (a zero).
inline int64_t source_index(int64_t i, int64_t off, int64_t up, int64_t n) {
  const int64_t d = i - off;
  if (d < 0 || d % up) return -1;
  return d / up < n ? d / up : -1;
}

// Geometry of the "row-channel-column" copy the forward microkernel reads:
// src (N,C,Hs,Ws) | (N,Hs,Ws,C) -> dst (N, Hb, C, sw, Wph); dst(n, i, c, phase, pos) holds
// src(n, c, source_index(i, off_h, up_h), source_index(pos*sw + phase, off_w, up_w)).
struct RowChannelCol {
  int64_t N = 0, C = 0, Hs = 0, Ws = 0;
  Layout layout = Layout::NCHW;
  int64_t Hb = 0, sw = 1, Wph = 0;
  int64_t off_h = 0, off_w = 0, up_h = 1, up_w = 1;
  int64_t chan() const { return sw * Wph; }   // elements between channels
  int64_t row() const { return C * chan(); }  // elements per (n, i) row
  int64_t size() const { return N * Hb * row(); }
};

template <typename T>
void to_row_channel_col(const RowChannelCol& g, const T* src, T* dst) {
  const int64_t L = g.chan(), row = g.row();
  std::vector<int64_t> col(L);
  for (int64_t ph = 0; ph < g.sw; ++ph)
    for (int64_t pos = 0; pos < g.Wph; ++pos)
      col[ph * g.Wph + pos] = source_index(pos * g.sw + ph, g.off_w, g.up_w, g.Ws);
  // Plain shifted copy when columns are neither split by phase nor interleaved with zeros.
  const bool shifted = g.sw == 1 && g.up_w == 1;
  const int64_t lo = std::clamp<int64_t>(g.off_w, 0, L);
  const int64_t hi = std::clamp<int64_t>(g.off_w + g.Ws, lo, L);
#pragma omp parallel for num_threads(num_threads()) schedule(static)
  for (int64_t ni = 0; ni < g.N * g.Hb; ++ni) {
    const int64_t n = ni / g.Hb, i = ni % g.Hb;
    T* d = dst + ni * row;
    const int64_t hs = source_index(i, g.off_h, g.up_h, g.Hs);
    if (hs < 0) {
      std::fill(d, d + row, T(0));
      continue;
    }
    if (g.layout == Layout::NCHW) {
      for (int64_t c = 0; c < g.C; ++c) {
        const T* s = src + ((n * g.C + c) * g.Hs + hs) * g.Ws;
        T* dr = d + c * L;
        if (shifted) {
          std::fill(dr, dr + lo, T(0));
          std::memcpy(dr + lo, s + (lo - g.off_w), (hi - lo) * sizeof(T));
          std::fill(dr + hi, dr + L, T(0));
        } else {
          for (int64_t k = 0; k < L; ++k) dr[k] = col[k] >= 0 ? s[col[k]] : T(0);
        }
      }
    } else {
      // (Ws, C) -> (C, L) transpose in blocks of 16 columns: reads stay within 16 pixels.
      const T* s = src + (n * g.Hs + hs) * g.Ws * g.C;
      for (int64_t k0 = 0; k0 < L; k0 += 16) {
        const int64_t k1 = std::min(L, k0 + 16);
        for (int64_t c = 0; c < g.C; ++c) {
          T* dr = d + c * L;
          for (int64_t k = k0; k < k1; ++k) dr[k] = col[k] >= 0 ? s[col[k] * g.C + c] : T(0);
        }
      }
    }
  }
}

// src (N,C,H,W) | (N,H,W,C) -> dst (N, Hb, Wb, C), dst(n, i, jw, c) = src(n, c, i - pt, jw - pl)
// or 0 outside.
template <typename T>
void to_padded_nhwc(const T* src, Layout layout, int64_t N, int64_t C, int64_t H, int64_t W,
                    int64_t Hb, int64_t Wb, int64_t pt, int64_t pl, T* dst) {
  const int64_t row = Wb * C;
  const int64_t lo = std::clamp<int64_t>(pl, 0, Wb), hi = std::clamp<int64_t>(pl + W, lo, Wb);
#pragma omp parallel for num_threads(num_threads()) schedule(static)
  for (int64_t ni = 0; ni < N * Hb; ++ni) {
    const int64_t n = ni / Hb, h = ni % Hb - pt;
    T* d = dst + ni * row;
    if (h < 0 || h >= H) {
      std::fill(d, d + row, T(0));
      continue;
    }
    std::fill(d, d + lo * C, T(0));
    std::fill(d + hi * C, d + row, T(0));
    if (layout == Layout::NHWC) {
      std::memcpy(d + lo * C, src + ((n * H + h) * W + (lo - pl)) * C, (hi - lo) * C * sizeof(T));
    } else {
      for (int64_t w0 = lo; w0 < hi; w0 += 16) {  // (C, W) -> (W, C) in blocks of 16 columns
        const int64_t w1 = std::min(hi, w0 + 16);
        for (int64_t c = 0; c < C; ++c) {
          const T* s = src + ((n * C + c) * H + h) * W - pl;
          for (int64_t jw = w0; jw < w1; ++jw) d[jw * C + c] = s[jw];
        }
      }
    }
  }
}

// grad_y (N,K,P,Q) | (N,P,Q,K) -> dst (N*P*Q, ldk) with zeros in columns [K, ldk).
template <typename T>
void to_pixel_rows(const T* src, Layout layout, int64_t N, int64_t K, int64_t PQ, int64_t ldk,
                   T* dst) {
#pragma omp parallel for num_threads(num_threads()) schedule(static)
  for (int64_t b = 0; b < N * ceil_div(PQ, 16); ++b) {
    const int64_t n = b / ceil_div(PQ, 16), i0 = (b % ceil_div(PQ, 16)) * 16;
    const int64_t i1 = std::min(PQ, i0 + 16);
    T* d = dst + (n * PQ) * ldk;
    if (layout == Layout::NHWC) {
      for (int64_t i = i0; i < i1; ++i) {
        std::memcpy(d + i * ldk, src + (n * PQ + i) * K, K * sizeof(T));
        std::fill(d + i * ldk + K, d + (i + 1) * ldk, T(0));
      }
    } else {
      for (int64_t k = 0; k < K; ++k) {
        const T* s = src + (n * K + k) * PQ;
        for (int64_t i = i0; i < i1; ++i) d[i * ldk + k] = s[i];
      }
      for (int64_t i = i0; i < i1; ++i) std::fill(d + i * ldk + K, d + (i + 1) * ldk, T(0));
    }
  }
}

// Weight packing: dst[(rs*A + a)*ldd + b] = src[rs*sr + a*sa + b*sb] for rs < RS, a < A,
// b < B, zeros in columns [B, ldd). Blocks of 16 x 16 keep the strided side in cache.
template <typename T>
void pack_rows(const T* src, int64_t RS, int64_t A, int64_t B, int64_t sr, int64_t sa,
               int64_t sb, int64_t ldd, T* dst) {
  const int64_t nab = ceil_div(A, 16);
#pragma omp parallel for num_threads(num_threads()) schedule(static)
  for (int64_t blk = 0; blk < RS * nab; ++blk) {
    const int64_t rs = blk / nab, a0 = (blk % nab) * 16, a1 = std::min(A, a0 + 16);
    for (int64_t b0 = 0; b0 < B; b0 += 16) {
      const int64_t b1 = std::min(B, b0 + 16);
      for (int64_t a = a0; a < a1; ++a) {
        const T* s = src + rs * sr + a * sa;
        T* d = dst + (rs * A + a) * ldd;
        for (int64_t b = b0; b < b1; ++b) d[b] = s[b * sb];
      }
    }
    for (int64_t a = a0; a < a1; ++a)
      std::fill(dst + (rs * A + a) * ldd + B, dst + (rs * A + a + 1) * ldd, T(0));
  }
}

// ------------------------------------------------------------------------------ forward driver
// out[n, k, oh, ow] = bias[k] + sum_{r,s,c} in[n, oh*sh + r*dh, c, ow*sw + s*dw] * w[r, s, c, k]
// (then ReLU), `in` in row-channel-column form, w packed (R, S, C, ldw), out NCHW or NHWC.
struct DirectConv {
  int64_t N = 0, C = 0, K = 0, P = 0, Q = 0, R = 0, S = 0;
  int64_t sh = 1, sw = 1, dh = 1, dw = 1;
  RowChannelCol in;
  int64_t ldw = 0;
  Layout out_layout = Layout::NCHW;
  bool relu = false;
};

template <class V>
void direct_conv(const DirectConv& d, const typename V::T* xt, const typename V::T* wp,
                 const typename V::T* bias, typename V::T* y) {
  using T = typename V::T;
  constexpr int64_t KB = V::NV * V::W;  // output channels per register tile
  const int64_t nkb = ceil_div(d.K, KB), row = d.in.row();
  std::vector<int64_t> aoff(d.R * d.S), boff(d.R * d.S);
  for (int64_t r = 0; r < d.R; ++r)
    for (int64_t s = 0; s < d.S; ++s) {
      const int64_t u = r * d.S + s;
      aoff[u] = r * d.dh * row + (s * d.dw) % d.sw * d.in.Wph + (s * d.dw) / d.sw;
      boff[u] = u * d.C * d.ldw;
    }
  // Work items (k-block, n, oh), k-block outermost: with a static split each thread keeps
  // the packed weights of its own k-blocks hot in L2 while it walks the rows.
  const int64_t items = nkb * d.N * d.P;
#pragma omp parallel for num_threads(num_threads()) schedule(static)
  for (int64_t it = 0; it < items; ++it) {
    const int64_t kb = it / (d.N * d.P), np = it % (d.N * d.P);
    const int64_t n = np / d.P, oh = np % d.P, k0 = kb * KB;
    TileArgs<T> g;
    g.aoff = aoff.data();
    g.a_ts = d.in.chan();
    g.B = wp + k0;
    g.boff = boff.data();
    g.ldb = d.ldw;
    g.U = d.R * d.S;
    g.Tn = d.C;
    g.init = bias ? Init::bias : Init::zero;
    g.bias = bias ? bias + k0 : nullptr;
    g.relu = d.relu;
    g.kvalid = static_cast<int>(std::min(KB, d.K - k0));
    g.out_transposed = d.out_layout == Layout::NCHW;
    g.ldo = g.out_transposed ? d.P * d.Q : d.K;
    const int64_t nv = ceil_div(g.kvalid, V::W);
    const T* arow = xt + (n * d.in.Hb + oh * d.sh) * row;
    for (int64_t ow0 = 0; ow0 < d.Q; ow0 += V::NJ) {
      const int64_t nj = std::min<int64_t>(V::NJ, d.Q - ow0);
      g.A = arow + ow0;
      g.out = g.out_transposed ? y + ((n * d.K + k0) * d.P + oh) * d.Q + ow0
                               : y + ((n * d.P + oh) * d.Q + ow0) * d.K + k0;
      tile_fn<V>(nj, nv)(g);
    }
  }
}

inline void log_tile(const char* op, const char* dtype, const char* how, int nj, int kb) {
  if (verbose())
    std::fprintf(stderr, "fastconv:   kernel %s_%s_%dx%d_%s (%s)\n", dtype, op, nj, kb,
                 FASTCONV_SIMD_NAME, how);
}

// ------------------------------------------------------------------------------ entry points
// x (N,C,H,W) | (N,H,W,C), w (K,C,R,S) | (R,S,C,K), bias (K) or null -> y (N,K,P,Q) | (N,P,Q,K)
template <class V>
void conv2d_fwd(const Conv2dParams& p, const typename V::T* x, const typename V::T* w,
                const typename V::T* bias, typename V::T* y) {
  using T = typename V::T;
  DirectConv d;
  d.N = p.N; d.C = p.C; d.K = p.K; d.P = p.P; d.Q = p.Q; d.R = p.R; d.S = p.S;
  d.sh = p.stride_h; d.sw = p.stride_w; d.dh = p.dil_h; d.dw = p.dil_w;
  d.out_layout = p.layout;
  d.relu = p.relu;
  d.in.N = p.N; d.in.C = p.C; d.in.Hs = p.H; d.in.Ws = p.W; d.in.layout = p.layout;
  d.in.Hb = (p.P - 1) * p.stride_h + (p.R - 1) * p.dil_h + 1;
  d.in.sw = p.stride_w;
  d.in.Wph = ceil_div((p.Q - 1) * p.stride_w + (p.S - 1) * p.dil_w + 1, p.stride_w);
  d.in.off_h = p.pad_top;
  d.in.off_w = p.pad_left;

  // NHWC weights (R,S,C,K) already are the packed layout when K fills whole vectors.
  const bool direct_w = p.layout == Layout::NHWC && p.K % V::W == 0;
  d.ldw = direct_w ? p.K : round_up(p.K, V::W);
  const T* wp = w;
  if (!direct_w) {
    T* buf = scratch<T>(1, p.R * p.S * p.C * d.ldw);
    if (p.layout == Layout::NCHW)   // (K,C,R,S) -> (R,S,C,ldw)
      pack_rows(w, p.R * p.S, p.C, p.K, 1, p.R * p.S, p.C * p.R * p.S, d.ldw, buf);
    else                            // (R,S,C,K) -> (R,S,C,ldw)
      pack_rows(w, p.R * p.S, p.C, p.K, p.C * p.K, p.K, 1, d.ldw, buf);
    wp = buf;
  }
  T* bp = nullptr;
  if (bias) {
    bp = scratch<T>(2, d.ldw);
    std::copy(bias, bias + p.K, bp);
    std::fill(bp + p.K, bp + d.ldw, T(0));
  }
  T* xt = scratch<T>(0, d.in.size());
  to_row_channel_col(d.in, x, xt);
  log_tile(p.relu ? "conv2d_fwd_relu" : "conv2d_fwd", V::name, "direct, row-channel-column input",
           V::NJ, V::NV * V::W);
  direct_conv<V>(d, xt, wp, bp, y);
}

// grad_y (N,K,P,Q) | (N,P,Q,K), w -> grad_x (N,C,H,W) | (N,H,W,C)
template <class V>
void conv2d_bwd_data(const Conv2dParams& p, const typename V::T* gy, const typename V::T* w,
                     typename V::T* gx) {
  using T = typename V::T;
  // grad_x[ih, iw, c] = sum_{r', s', k} gy_up[ih + r'*dh, iw + s'*dw, k] * w[R-1-r', S-1-s', c, k]
  // where gy_up is grad_y with (stride-1) zeros between rows/columns, shifted by
  // (R-1)*dh - pad_top rows and (S-1)*dw - pad_left columns.
  DirectConv d;
  d.N = p.N; d.C = p.K; d.K = p.C; d.P = p.H; d.Q = p.W; d.R = p.R; d.S = p.S;
  d.sh = 1; d.sw = 1; d.dh = p.dil_h; d.dw = p.dil_w;
  d.out_layout = p.layout;
  d.in.N = p.N; d.in.C = p.K; d.in.Hs = p.P; d.in.Ws = p.Q; d.in.layout = p.layout;
  d.in.Hb = p.H + (p.R - 1) * p.dil_h;
  d.in.sw = 1;
  d.in.Wph = p.W + (p.S - 1) * p.dil_w;
  d.in.off_h = (p.R - 1) * p.dil_h - p.pad_top;
  d.in.off_w = (p.S - 1) * p.dil_w - p.pad_left;
  d.in.up_h = p.stride_h;
  d.in.up_w = p.stride_w;

  d.ldw = round_up(p.C, V::W);
  T* wp = scratch<T>(1, p.R * p.S * p.K * d.ldw);
  const int64_t RS = p.R * p.S;
  // rows (r', s', k), columns c; the source tap is (R-1-r', S-1-s') = RS-1 - (r'*S + s').
  if (p.layout == Layout::NCHW)   // w (K,C,R,S)
    pack_rows(w + (RS - 1), RS, p.K, p.C, -1, p.C * RS, RS, d.ldw, wp);
  else                            // w (R,S,C,K)
    pack_rows(w + (RS - 1) * p.C * p.K, RS, p.K, p.C, -p.C * p.K, 1, p.K, d.ldw, wp);
  T* gyt = scratch<T>(0, d.in.size());
  to_row_channel_col(d.in, gy, gyt);
  log_tile("conv2d_bwd_data", V::name,
           p.stride_h * p.stride_w > 1 ? "direct on zero-interleaved grad_y, flipped weights"
                                       : "direct, flipped weights",
           V::NJ, V::NV * V::W);
  direct_conv<V>(d, gyt, wp, nullptr, gx);
}

// grad_y (N,K,P,Q) | (N,P,Q,K), x -> grad_w (K,C,R,S) | (R,S,C,K), grad_bias (K) or null
template <class V>
void conv2d_bwd_weight(const Conv2dParams& p, const typename V::T* gy, const typename V::T* x,
                       typename V::T* gw, typename V::T* gb) {
  using T = typename V::T;
  using reg = typename V::reg;
  constexpr int64_t W = V::W, KB = V::NV * V::W;
  const int64_t RS = p.R * p.S, PQ = p.P * p.Q;

  // x as zero-padded NHWC (N, xH, xW, C); NHWC input without padding is used in place.
  const int64_t Hb = (p.P - 1) * p.stride_h + (p.R - 1) * p.dil_h + 1;
  const int64_t Wb = (p.Q - 1) * p.stride_w + (p.S - 1) * p.dil_w + 1;
  const T* xb = x;
  int64_t xH = p.H, xW = p.W;
  if (!(p.layout == Layout::NHWC && p.pad_top == 0 && p.pad_left == 0 && Hb <= p.H && Wb <= p.W)) {
    T* buf = scratch<T>(0, p.N * Hb * Wb * p.C);
    to_padded_nhwc(x, p.layout, p.N, p.C, p.H, p.W, Hb, Wb, p.pad_top, p.pad_left, buf);
    xb = buf;
    xH = Hb;
    xW = Wb;
  }
  // grad_y as pixel rows of ldg channels (zero-padded to whole vectors).
  const bool direct_gy = p.layout == Layout::NHWC && p.K % W == 0;
  const int64_t ldg = direct_gy ? p.K : round_up(p.K, W);
  const T* gyb = gy;
  if (!direct_gy) {
    T* buf = scratch<T>(1, p.N * PQ * ldg);
    to_pixel_rows(gy, p.layout, p.N, p.K, PQ, ldg, buf);
    gyb = buf;
  }
  // grad_w accumulates as (R, S, C, ldo); in place when that is the caller's layout.
  const bool direct_gw = p.layout == Layout::NHWC && p.K % W == 0;
  const int64_t ldo = direct_gw ? p.K : round_up(p.K, W);
  T* gwt = direct_gw ? gw : scratch<T>(2, RS * p.C * ldo);

  // Filter rows grouped so that one group's entries are contiguous in xb: with dilation_w 1
  // the (s, c) pairs of a filter row r are (x[ih, iw .. iw+S-1, :]), else one (r, s) per group.
  const bool fuse_s = p.dil_w == 1;
  const int64_t G = fuse_s ? p.R : RS, J = fuse_s ? p.S * p.C : p.C;
  std::vector<int64_t> g_a(G), g_row(G);
  for (int64_t g = 0; g < G; ++g) {
    const int64_t r = fuse_s ? g : g / p.S, s = fuse_s ? 0 : g % p.S;
    g_a[g] = (r * p.dil_h * xW + s * p.dil_w) * p.C;
    g_row[g] = (r * p.S + s) * p.C;
  }
  const int64_t njb = ceil_div(J, V::NJ), nkb = ceil_div(p.K, KB);
  const int64_t items = G * njb * nkb;

  // Reduction rows u = (n, oh) and their operand offsets.
  const int64_t NP = p.N * p.P;
  std::vector<int64_t> aoff(NP), boff(NP);
  for (int64_t u = 0; u < NP; ++u) {
    const int64_t n = u / p.P, oh = u % p.P;
    aoff[u] = (n * xH + oh * p.stride_h) * xW * p.C;
    boff[u] = u * p.Q * ldg;
  }
  // Rows per chunk: about 1 MiB of grad_y and x per chunk stays in L2 across all tiles.
  const int64_t row_bytes = (p.Q * ldg + p.stride_h * xW * p.C) * int64_t(sizeof(T));
  const int64_t chunk = std::max<int64_t>(1, (int64_t(1) << 20) / row_bytes);

  log_tile("conv2d_bwd_weight", V::name,
           fuse_s ? "pixel-reduction, (s,c) rows fused" : "pixel-reduction", V::NJ, KB);
#pragma omp parallel num_threads(num_threads())
  {
    for (int64_t u0 = 0; u0 < NP; u0 += chunk) {
      // Same iteration count and static schedule every chunk: each thread owns the same tiles.
#pragma omp for schedule(static) nowait
      for (int64_t it = 0; it < items; ++it) {
        const int64_t kb = it % nkb, jb = (it / nkb) % njb, g = it / (nkb * njb);
        const int64_t j0 = jb * V::NJ, k0 = kb * KB;
        TileArgs<T> t;
        t.A = xb + g_a[g] + j0;
        t.aoff = aoff.data() + u0;
        t.a_ts = p.stride_w * p.C;
        t.B = gyb + k0;
        t.boff = boff.data() + u0;
        t.ldb = ldg;
        t.U = std::min(chunk, NP - u0);
        t.Tn = p.Q;
        t.init = u0 == 0 ? Init::zero : Init::load;
        t.out = gwt + (g_row[g] + j0) * ldo + k0;
        t.ldo = ldo;
        t.kvalid = static_cast<int>(std::min(KB, ldo - k0));
        tile_fn<V>(std::min<int64_t>(V::NJ, J - j0), ceil_div(t.kvalid, W))(t);
      }
    }
  }

  if (!direct_gw) {
    if (p.layout == Layout::NHWC) {   // (R,S,C,ldo) -> (R,S,C,K)
#pragma omp parallel for num_threads(num_threads()) schedule(static)
      for (int64_t i = 0; i < RS * p.C; ++i) std::copy(gwt + i * ldo, gwt + i * ldo + p.K, gw + i * p.K);
    } else {                          // (R,S,C,ldo) -> (K,C,R,S)
      pack_rows(gwt, p.K, p.C, RS, 1, ldo, p.C * ldo, RS, gw);  // rows (k, c), columns rs
    }
  }

  if (gb) {
    // grad_bias[k] = sum over pixels: each thread owns whole vectors of channels and sums the
    // pixels in a fixed order (4 interleaved partial sums, then combined): deterministic.
    const int64_t pixels = p.N * PQ, nvec = ceil_div(p.K, W);
#pragma omp parallel for num_threads(num_threads()) schedule(static)
    for (int64_t kv = 0; kv < nvec; ++kv) {
      const T* col = gyb + kv * W;
      reg s[4] = {V::zero(), V::zero(), V::zero(), V::zero()};
      int64_t i = 0;
      for (; i + 4 <= pixels; i += 4)
        for (int q = 0; q < 4; ++q) s[q] = V::add(s[q], V::load(col + (i + q) * ldg));
      for (; i < pixels; ++i) s[0] = V::add(s[0], V::load(col + i * ldg));
      const reg total = V::add(V::add(s[0], s[1]), V::add(s[2], s[3]));
      const int64_t left = p.K - kv * W;
      if (left >= W) V::store(gb + kv * W, total);
      else V::store_n(gb + kv * W, total, static_cast<int>(left));
    }
  }
}

}  // namespace
}  // namespace FASTCONV_SIMD_NS
}  // namespace fastconv
