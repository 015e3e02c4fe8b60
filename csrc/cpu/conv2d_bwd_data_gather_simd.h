// conv2d backward-data for stride > 1 by direct gather (no zero-interleaved grad_y).
// Included by conv2d_bwd_data_{avx2,avx512}.cpp after simd_*.h and conv2d_simd.h; reference:
// ref::conv2d_bwd_data in conv2d_ref.cpp.
//
//   grad_x[n, h, w, c] = sum over taps (r, s) with h + pad_top - r*dh = p*sh, w + pad_left - s*dw
//                        = q*sw (0 <= p < P, 0 <= q < Q) of  sum_k gy[n, p, q, k] * w[r, s, c, k]
//
// The zero-interleaving driver (conv2d_bwd_data in conv2d_simd.h) does sh*sw times the
// multiply-adds; here each grad_x pixel visits only its own taps (about R*S/(sh*sw) of them).
// Lanes run along k: grad_y is copied per call to (N, P, Q, Kp) and the weights to
// (R, S, C, Kp), Kp = K rounded up to the vector width with zero lanes, so every load is a full
// vector. One accumulator per channel c sums over taps and k-vectors; a single horizontal sum
// per (pixel, c) finishes it. Best when C*K is small (first layers): the per-pixel reduction
// cost then stays below the work saved (see use_bwd_data_gather).
#pragma once

namespace fastconv {
namespace FASTCONV_SIMD_NS {
namespace {

#ifdef __AVX512F__
inline float hsum(__m512 v) { return _mm512_reduce_add_ps(v); }
inline double hsum(__m512d v) { return _mm512_reduce_add_pd(v); }
#endif
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline double hsum(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
  return _mm_cvtsd_f64(s);
}

// Stride-1 zero-interleaving costs sh*sw x the useful work at tile efficiency; the gather pays
// one horizontal sum per (pixel, c) and runs below tile efficiency. Measured (1 thread) it wins
// clearly for first-layer shapes; keep the tile driver where C or K is large.
inline bool use_bwd_data_gather(const Conv2dParams& p) {
  return p.stride_h * p.stride_w > 1 && p.C <= 64 && p.K <= 256;
}
inline bool use_bwd_data_phase(const Conv2dParams& p) {
  return p.stride_h * p.stride_w > 1 && p.C <= kSmallC;
}

// Channels c0..c0+CB-1 of one grad_x pixel: out[c*ldo] = sum_i g[i][0:W] . w[i][c*Kp + 0:W]
// over the n (grad_y vector, weight vector) pairs of its valid taps and k-vectors. Two
// accumulators per channel (even/odd pairs) halve the FMA dependency chains.
template <class V, int CB>
inline void gather_channels(const typename V::T* const* g, const typename V::T* const* w,
                            int64_t n, int64_t Kp, int64_t c0, typename V::T* out, int64_t ldo) {
  using reg = typename V::reg;
  reg a0[CB], a1[CB];
  for (int c = 0; c < CB; ++c) a0[c] = a1[c] = V::zero();
  const int64_t off = c0 * Kp;
  int64_t i = 0;
  for (; i + 2 <= n; i += 2) {
    const reg g0 = V::load(g[i]), g1 = V::load(g[i + 1]);
    const typename V::T* w0 = w[i] + off;
    const typename V::T* w1 = w[i + 1] + off;
    for (int c = 0; c < CB; ++c) {
      a0[c] = V::fma(g0, V::load(w0 + c * Kp), a0[c]);
      a1[c] = V::fma(g1, V::load(w1 + c * Kp), a1[c]);
    }
  }
  if (i < n) {
    const reg g0 = V::load(g[i]);
    for (int c = 0; c < CB; ++c) a0[c] = V::fma(g0, V::load(w[i] + off + c * Kp), a0[c]);
  }
  for (int c = 0; c < CB; ++c) out[c * ldo] = hsum(V::add(a0[c], a1[c]));
}

template <class V>
using GatherFn = void (*)(const typename V::T* const*, const typename V::T* const*, int64_t,
                          int64_t, int64_t, typename V::T*, int64_t);

template <class V>
GatherFn<V> gather_fn(int64_t cb) {
  static const GatherFn<V> fns[8] = {gather_channels<V, 1>, gather_channels<V, 2>,
                                     gather_channels<V, 3>, gather_channels<V, 4>,
                                     gather_channels<V, 5>, gather_channels<V, 6>,
                                     gather_channels<V, 7>, gather_channels<V, 8>};
  return fns[cb - 1];
}

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

template <class V>
void conv2d_bwd_data_gather(const Conv2dParams& p, const typename V::T* gy,
                            const typename V::T* w, typename V::T* gx) {
  using T = typename V::T;
  KernelLog log;
  const int64_t Kp = round_up(p.K, V::W), RS = p.R * p.S, nkv = Kp / V::W;
  const bool nchw = p.layout == Layout::NCHW;
  const int threads = threads_for(p.macs());

  // Weights -> (R, S, C, Kp); NCHW weights are (K, C, R, S), NHWC weights (R, S, C, K).
  T* wk = scratch<T>(1, RS * p.C * Kp);
  for (int64_t rs = 0; rs < RS; ++rs)
    for (int64_t c = 0; c < p.C; ++c) {
      T* dst = wk + (rs * p.C + c) * Kp;
      for (int64_t k = 0; k < p.K; ++k)
        dst[k] = nchw ? w[(k * p.C + c) * RS + rs] : w[(rs * p.C + c) * p.K + k];
      std::fill(dst + p.K, dst + Kp, T(0));
    }
  // grad_y -> (N, P, Q, Kp) with zero lanes past K.
  const int64_t PQ = p.P * p.Q;
  T* gyk = scratch<T>(0, p.N * PQ * Kp);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t n = 0; n < p.N; ++n) {
    T* dst = gyk + n * PQ * Kp;
    if (nchw) {
      const T* src = gy + n * p.K * PQ;
      for (int64_t pq = 0; pq < PQ; ++pq) {
        T* d = dst + pq * Kp;
        for (int64_t k = 0; k < p.K; ++k) d[k] = src[k * PQ + pq];
        std::fill(d + p.K, d + Kp, T(0));
      }
    } else {
      const T* src = gy + n * PQ * p.K;
      for (int64_t pq = 0; pq < PQ; ++pq) {
        std::copy(src + pq * p.K, src + (pq + 1) * p.K, dst + pq * Kp);
        std::fill(dst + pq * Kp + p.K, dst + (pq + 1) * Kp, T(0));
      }
    }
  }
  log.lap("pack");

  const TapList rows(p.H, p.R, p.P, p.stride_h, p.pad_top, p.dil_h);
  const TapList cols(p.W, p.S, p.Q, p.stride_w, p.pad_left, p.dil_w);
  const int64_t items = p.N * p.H, chunk = dynamic_chunk(items, threads);
  const int64_t ldo = nchw ? p.H * p.W : 1;
#pragma omp parallel num_threads(threads)
  {
    // (grad_y vector, weight vector of channel 0) pairs of one pixel: taps x k-vectors.
    std::vector<const T*> gv(RS * nkv), wv(RS * nkv);
#pragma omp for schedule(dynamic, chunk)
    for (int64_t it = 0; it < items; ++it) {
      const int64_t n = it / p.H, h = it % p.H;
      for (int64_t x = 0; x < p.W; ++x) {
        int64_t m = 0;
        for (int64_t i = rows.start[h]; i < rows.start[h + 1]; ++i)
          for (int64_t j = cols.start[x]; j < cols.start[x + 1]; ++j) {
            const T* g = gyk + ((n * p.P + rows.src[i]) * p.Q + cols.src[j]) * Kp;
            const T* wt = wk + (rows.tap[i] * p.S + cols.tap[j]) * p.C * Kp;
            for (int64_t v = 0; v < Kp; v += V::W, ++m) {
              gv[m] = g + v;
              wv[m] = wt + v;
            }
          }
        T* out = nchw ? gx + ((n * p.C) * p.H + h) * p.W + x : gx + ((n * p.H + h) * p.W + x) * p.C;
        for (int64_t c = 0; c < p.C; c += 8)
          gather_fn<V>(std::min<int64_t>(8, p.C - c))(gv.data(), wv.data(), m, Kp, c,
                                                      out + c * ldo, ldo);
      }
    }
  }
  log.lap("gather");
  log.print("conv2d_bwd_data", V::name, "gather over valid taps (stride > 1)", int(p.C),
            int(Kp));
}

// Stride-phase form for few channels: lanes run along the grad_x pixels of one row and one
// column phase b (x = b + sw*j). For a tap s valid in phase b, q = j + q0(b, s): a stride-1 row
// convolution over grad_y copied as (N, P, K, Qb) rows padded with zero columns so every tap is
// valid for every j. The tile is the pixel-vector kernel of conv2d_simd.h (small_tile_fn):
//   acc[c][lanes] += w[r, s, k, c] (broadcast) * gyr[n, p, k, padL + q0 + j + lanes]
// over the valid (r, s) of the row and phase and all k; no zero work, no horizontal sums.
template <class V>
void conv2d_bwd_data_phase(const Conv2dParams& p, const typename V::T* gy,
                           const typename V::T* w, typename V::T* gx) {
  using T = typename V::T;
  KernelLog log;
  const int64_t RS = p.R * p.S, sw = p.stride_w, CB = std::min<int64_t>(p.C, kSmallC);
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
  T* wk = scratch<T>(1, RS * p.K * p.C);
  for (int64_t rs = 0; rs < RS; ++rs)
    for (int64_t k = 0; k < p.K; ++k)
      for (int64_t c = 0; c < p.C; ++c)
        wk[(rs * p.K + k) * p.C + c] = nchw ? w[(k * p.C + c) * RS + rs] : w[(rs * p.C + c) * p.K + k];
  // grad_y -> (N, P, K, Qb) rows with padL / padR zero columns; + PW: a tile's vectors may read
  // past the last row (those lanes are not stored).
  const int64_t rows_total = p.N * p.P * p.K;
  T* gyr = scratch<T>(0, rows_total * Qb + PW);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t row = 0; row < rows_total; ++row) {
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
  std::fill(gyr + rows_total * Qb, gyr + rows_total * Qb + PW, T(0));
  log.lap("pack");

  const TapList rows(p.H, p.R, p.P, p.stride_h, p.pad_top, p.dil_h);
  const int64_t items = p.N * p.H, chunk = dynamic_chunk(items, threads);
#pragma omp parallel num_threads(threads)
  {
    std::vector<int64_t> aoff(RS), boff(RS);
    std::vector<T> tmp(CB * PW);  // NCHW: one tile's channels, lanes contiguous
#pragma omp for schedule(dynamic, chunk)
    for (int64_t it = 0; it < items; ++it) {
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
  }
  log.lap("tiles");
  log.print("conv2d_bwd_data", V::name, "stride phases, pixel-vector tiles", int(CB), int(PW));
}

}  // namespace
}  // namespace FASTCONV_SIMD_NS
}  // namespace fastconv
