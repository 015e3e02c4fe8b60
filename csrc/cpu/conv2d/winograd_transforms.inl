// The Winograd F(4x4, 3x3) transforms and their tile plan, compiled once per ISA (included by
// conv2d/winograd.inl, whose header explains the algorithm): the 1-D input, weight and output
// transforms on vectors of channels, the weight / input / output transform loops and the NCHW
// -> NHWC copy the input transform reads from.
#pragma once  // once per translation unit: each ISA file includes it for its own ISA
#ifndef FASTCONV_SIMD_NS
#error "include simd/avx512.h or simd/avx2.h (and define gather_taps) before conv2d/winograd_transforms.inl"
#endif
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "../runtime/loops.h"
#include "../simd/vector_math.h"
#include "winograd.h"
#include "workspace.h"

namespace fastconv {
namespace FASTCONV_SIMD_NS {
namespace {

constexpr int kA = 6;         // input tile side (alpha = m + r - 1 = 4 + 3 - 1)
constexpr int kM = 4;         // output tile side
constexpr int kXi = kA * kA;  // 36 GEMMs
template <class V>
constexpr int64_t kKB = V::NV * V::W;  // output channels per register tile (32 | 16)
template <class V>
constexpr int64_t kTB = 8 * V::NJ;  // tiles per block (112 | 48)

// Arithmetic on V's registers with a scalar constant. a - b is fma(-1, b, a): exact, so the
// transforms round the same on every ISA.
// The constants are given in double and rounded once to the element type (cst, Reg and Elem
// are simd/vector_math.h's).
template <class V>
static inline Reg<V> mul(Reg<V> a, double s) {
  return V::fma(a, cst<V>(s), V::zero());
}
template <class V>
static inline Reg<V> fmadd(Reg<V> a, double s, Reg<V> c) {
  return V::fma(a, cst<V>(s), c);
}
template <class V>
static inline Reg<V> fnmadd(Reg<V> a, double s, Reg<V> c) {
  return V::fma(a, cst<V>(-s), c);
}
template <class V>
static inline Reg<V> add(Reg<V> a, Reg<V> b) {
  return V::add(a, b);
}
template <class V>
static inline Reg<V> sub(Reg<V> a, Reg<V> b) {
  return V::fma(cst<V>(-1.0), b, a);
}

// o = B^T d (6 -> 6), B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0;
//                            0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
template <class V>
static inline void input_1d(const Reg<V> d0, const Reg<V> d1, const Reg<V> d2, const Reg<V> d3, const Reg<V> d4,
                            const Reg<V> d5, Reg<V> o[6]) {
  const Reg<V> t0 = fnmadd<V>(d2, 4.0, d4), t1 = fnmadd<V>(d1, 4.0, d3);
  const Reg<V> t2 = sub<V>(d4, d2), t3 = mul<V>(sub<V>(d3, d1), 2.0);
  o[0] = fmadd<V>(d0, 4.0, fnmadd<V>(d2, 5.0, d4));
  o[1] = add<V>(t0, t1);
  o[2] = sub<V>(t0, t1);
  o[3] = add<V>(t2, t3);
  o[4] = sub<V>(t2, t3);
  o[5] = fmadd<V>(d1, 4.0, fnmadd<V>(d3, 5.0, d5));
}

// o = G g (3 -> 6), G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
template <class V>
static inline void weight_1d(const Reg<V> g0, const Reg<V> g1, const Reg<V> g2, Reg<V> o[6]) {
  const Reg<V> s02 = add<V>(g0, g2);
  const Reg<V> a = fmadd<V>(g0, 1.0 / 24, mul<V>(g2, 1.0 / 6));
  const Reg<V> b = mul<V>(g1, 1.0 / 12);
  o[0] = mul<V>(g0, 0.25);
  o[1] = mul<V>(add<V>(s02, g1), -1.0 / 6);
  o[2] = mul<V>(sub<V>(s02, g1), -1.0 / 6);
  o[3] = add<V>(a, b);
  o[4] = sub<V>(a, b);
  o[5] = g2;
}

// o = A^T m (6 -> 4), A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
template <class V>
static inline void output_1d(const Reg<V> m0, const Reg<V> m1, const Reg<V> m2, const Reg<V> m3, const Reg<V> m4,
                             const Reg<V> m5, Reg<V> o[4]) {
  const Reg<V> a = add<V>(m1, m2), b = sub<V>(m1, m2), c = add<V>(m3, m4), e = sub<V>(m3, m4);
  o[0] = add<V>(add<V>(m0, a), c);
  o[1] = fmadd<V>(e, 2.0, b);
  o[2] = fmadd<V>(c, 4.0, a);
  o[3] = add<V>(fmadd<V>(e, 8.0, b), m5);
}

struct Plan {
  int64_t N, C, H, W, K, Kp, P, Q, TH, TW, T;  // T = N*TH*TW tiles of 4x4 output pixels
  int64_t pad_top, pad_left;
};

// The tiling of convolution p for vectors of W lanes.
inline Plan make_plan(const Conv2dParams& p, int64_t W) {
  Plan pl;
  pl.N = p.N;
  pl.C = p.C;
  pl.H = p.H;
  pl.W = p.W;
  pl.K = p.K;
  pl.P = p.P;
  pl.Q = p.Q;
  pl.Kp = (p.K + W - 1) / W * W;
  pl.TH = (p.P + kM - 1) / kM;
  pl.TW = (p.Q + kM - 1) / kM;
  pl.T = p.N * pl.TH * pl.TW;
  pl.pad_top = p.pad_top;
  pl.pad_left = p.pad_left;
  return pl;
}

// Where the 9 taps of the filter (input channel c, output channel k) of the convolution being
// computed live in the caller's weights: w + c*c_stride + k*k_stride + tap[r*3 + s].
//   forward        w (K,C,3,3) | (3,3,C,K) as given;
//   backward-data  grad_x is the forward convolution of grad_y (K channels in, C out) with the
//                  flipped, transposed filter w'[c'=k][k'=c][r][s] = w[k][c][2-r][2-s], which is
//                  read in place through these strides (no transposed copy of the weights).
template <typename T>
struct WinogradWeights {
  const T* w = nullptr;
  int64_t k_stride = 1;  // between output channels (the vector lanes); 1: contiguous loads
  int64_t c_stride = 1;  // between input channels
  int64_t tap[9] = {};
};

template <typename T>
WinogradWeights<T> forward_weights(const T* w, Layout layout, int64_t C, int64_t K) {
  WinogradWeights<T> v;
  v.w = w;
  const bool nhwc = layout == Layout::NHWC;
  v.k_stride = nhwc ? 1 : C * 9;
  v.c_stride = nhwc ? K : 9;
  for (int rs = 0; rs < 9; ++rs) v.tap[rs] = nhwc ? rs * C * K : rs;
  return v;
}

// C, K: the layer's own sizes (w is (K,C,3,3) | (3,3,C,K)).
template <typename T>
WinogradWeights<T> backward_data_weights(const T* w, Layout layout, int64_t C, int64_t K) {
  WinogradWeights<T> v;
  v.w = w;
  const bool nhwc = layout == Layout::NHWC;
  v.k_stride = nhwc ? K : 9;      // lanes run over the layer's input channels c
  v.c_stride = nhwc ? 1 : C * 9;  // the reduction over its output channels k
  for (int rs = 0; rs < 9; ++rs) v.tap[rs] = nhwc ? (8 - rs) * C * K : 8 - rs;
  return v;
}

// 1. One input channel c and W output channels [k, k+W) of the filter:
// U[xi][c][k..k+W) = (G g G^T)[xi] stored at u + xi*ldxi (lanes past K are zero).
// gather_taps (defined by the ISA file) loads base[lane*k_stride + tap[rs]] when the lanes are
// not contiguous.
template <class V>
static inline void transform_weight_vector(const Plan& pl, const WinogradWeights<Elem<V>>& ww, int64_t c, int64_t k,
                                           Elem<V>* u, int64_t ldxi) {
  const int nk = static_cast<int>(std::clamp<int64_t>(pl.K - k, 0, V::W));
  const Elem<V>* base = ww.w + c * ww.c_stride + std::min(k, pl.K - 1) * ww.k_stride;
  Reg<V> g[9];
  if (ww.k_stride == 1) {
    for (int rs = 0; rs < 9; ++rs) g[rs] = V::load_n(base + ww.tap[rs], nk);
  } else {
    gather_taps(base, ww.k_stride, ww.tap, nk, g);
  }
  Reg<V> t[6][3];  // G g along r, one column s at a time
  for (int s = 0; s < 3; ++s) {
    Reg<V> o[6];
    weight_1d<V>(g[s], g[3 + s], g[6 + s], o);
    for (int i = 0; i < 6; ++i) t[i][s] = o[i];
  }
  for (int i = 0; i < 6; ++i) {
    Reg<V> o[6];
    weight_1d<V>(t[i][0], t[i][1], t[i][2], o);
    for (int j = 0; j < 6; ++j) V::store(u + (i * 6 + j) * ldxi, o[j]);
  }
}

// All weights -> u (36, C, Kp), parallel over c.
template <class V>
void transform_weights(const Plan& pl, const WinogradWeights<Elem<V>>& ww, Elem<V>* u, int threads) {
  parallel_for(threads, pl.C, [&](int64_t c_begin, int64_t c_end) {
    for (int64_t c = c_begin; c < c_end; ++c)
      for (int64_t k0 = 0; k0 < pl.Kp; k0 += V::W)
        transform_weight_vector<V>(pl, ww, c, k0, u + c * pl.Kp + k0, pl.C * pl.Kp);
  });
}

// Register transposes for NCHW input (2.) and the NCHW float output (3c.).
// 8 rows of 8 floats (src + i*lds) -> 8 columns (dst + j*ldd): unpack, shuffle, lane swap.
static inline void transpose_8x8(const float* src, int64_t lds, float* dst, int64_t ldd) {
  __m256 r[8], t[8], q[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lds);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    q[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    q[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    q[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    q[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(dst + i * ldd, _mm256_permute2f128_ps(q[i], q[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ldd, _mm256_permute2f128_ps(q[i], q[i + 4], 0x31));
  }
}

// 4 rows of 4 doubles -> 4 columns.
static inline void transpose_4x4(const double* src, int64_t lds, double* dst, int64_t ldd) {
  const __m256d r0 = _mm256_loadu_pd(src), r1 = _mm256_loadu_pd(src + lds);
  const __m256d r2 = _mm256_loadu_pd(src + 2 * lds), r3 = _mm256_loadu_pd(src + 3 * lds);
  const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
  const __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
  _mm256_storeu_pd(dst, _mm256_permute2f128_pd(t0, t2, 0x20));
  _mm256_storeu_pd(dst + ldd, _mm256_permute2f128_pd(t1, t3, 0x20));
  _mm256_storeu_pd(dst + 2 * ldd, _mm256_permute2f128_pd(t0, t2, 0x31));
  _mm256_storeu_pd(dst + 3 * ldd, _mm256_permute2f128_pd(t1, t3, 0x31));
}

// 3a. tiles [t0, t0 + nt), channels [c0, c0 + nc) of x (N,H,W,C) -> v (36, ldv, ldc):
// v[(xi*ldv + j)*ldc + c - c0] = (B^T d_j B)[xi]
template <class V>
void transform_input_channels(const Plan& pl, const Elem<V>* x, int64_t t0, int64_t nt, int64_t c0, int64_t nc,
                              int64_t ldv, int64_t ldc, Elem<V>* v) {
  const int64_t C = pl.C;
  const Reg<V> zero = V::zero();
  for (int64_t j = 0; j < nt; ++j) {
    const int64_t t = t0 + j, n = t / (pl.TH * pl.TW), th = (t / pl.TW) % pl.TH, tw = t % pl.TW;
    const int64_t ih0 = th * kM - pl.pad_top, iw0 = tw * kM - pl.pad_left;
    bool row_in[kA], col_in[kA];
    for (int r = 0; r < kA; ++r) row_in[r] = ih0 + r >= 0 && ih0 + r < pl.H;
    for (int s = 0; s < kA; ++s) col_in[s] = iw0 + s >= 0 && iw0 + s < pl.W;
    const int64_t base = ((n * pl.H + ih0) * pl.W + iw0) * C;  // only in-image pixels are read
    for (int64_t cv = 0; cv < nc; cv += V::W) {
      const int nl = static_cast<int>(std::min<int64_t>(V::W, nc - cv));
      Reg<V> tmp[kA][kA];  // B^T d: columns first
      for (int s = 0; s < kA; ++s) {
        Reg<V> d[kA];
        for (int r = 0; r < kA; ++r)
          d[r] = row_in[r] && col_in[s] ? V::load_n(x + base + (r * pl.W + s) * C + c0 + cv, nl) : zero;
        Reg<V> o[kA];
        input_1d<V>(d[0], d[1], d[2], d[3], d[4], d[5], o);
        for (int i = 0; i < kA; ++i) tmp[i][s] = o[i];
      }
      for (int i = 0; i < kA; ++i) {
        Reg<V> o[kA];
        input_1d<V>(tmp[i][0], tmp[i][1], tmp[i][2], tmp[i][3], tmp[i][4], tmp[i][5], o);
        for (int jj = 0; jj < kA; ++jj) V::store_n(v + ((i * kA + jj) * ldv + j) * ldc + cv, o[jj], nl);
      }
    }
  }
}

// All channels: v (36, ldv, C).
template <class V>
void transform_input_block(const Plan& pl, const Elem<V>* x, int64_t t0, int64_t nt, int64_t ldv, Elem<V>* v) {
  transform_input_channels<V>(pl, x, t0, nt, 0, pl.C, ldv, pl.C, v);
}

// 3c. m (36, ldm, Kp) channels [k0, k1) of tiles [t0, t0 + nt) -> y, + bias, epilogue
// m[(xi*ldm + j)*ldk + k - mk0] holds channel k of tile t0 + j.
template <class V>
void transform_output_block(const Plan& pl, Layout layout, Epilogue epilogue, Elem<V> alpha, const Elem<V>* m,
                            int64_t ldm, int64_t ldk, int64_t mk0, const Elem<V>* bias, int64_t t0, int64_t nt,
                            int64_t k0, int64_t k1, Elem<V>* y) {
  const int64_t Kp = ldk, K = pl.K, P = pl.P, Q = pl.Q;
  for (int64_t j = 0; j < nt; ++j) {
    const int64_t t = t0 + j, n = t / (pl.TH * pl.TW), th = (t / pl.TW) % pl.TH, tw = t % pl.TW;
    const int64_t oh0 = th * kM, ow0 = tw * kM;
    const int rows = static_cast<int>(std::min<int64_t>(kM, P - oh0));
    const int cols = static_cast<int>(std::min<int64_t>(kM, Q - ow0));
    for (int64_t kk = k0; kk < k1; kk += V::W) {
      const int nk = static_cast<int>(std::min<int64_t>(V::W, K - kk));
      if (nk <= 0) break;
      const Elem<V>* mt = m + j * Kp + kk - mk0;
      Reg<V> tmp[kM][kA];  // A^T m: columns first
      for (int s = 0; s < kA; ++s) {
        Reg<V> o[kM];
        output_1d<V>(V::load(mt + (0 * kA + s) * ldm * Kp), V::load(mt + (1 * kA + s) * ldm * Kp),
                     V::load(mt + (2 * kA + s) * ldm * Kp), V::load(mt + (3 * kA + s) * ldm * Kp),
                     V::load(mt + (4 * kA + s) * ldm * Kp), V::load(mt + (5 * kA + s) * ldm * Kp), o);
        for (int i = 0; i < kM; ++i) tmp[i][s] = o[i];
      }
      const Reg<V> b = V::load(bias + kk);  // padded to Kp
      alignas(64) Elem<V> buf[kM * kM][V::W];
      for (int i = 0; i < rows; ++i) {
        Reg<V> o[kM];
        output_1d<V>(tmp[i][0], tmp[i][1], tmp[i][2], tmp[i][3], tmp[i][4], tmp[i][5], o);
        for (int jj = 0; jj < cols; ++jj) {
          Reg<V> r = add<V>(o[jj], b);
          r = apply_epilogue<V>(epilogue, alpha, r);
          if (layout == Layout::NHWC) {
            Elem<V>* dst = y + ((n * P + oh0 + i) * Q + ow0 + jj) * K + kk;
            if (nk == V::W) V::store(dst, r);
            else V::store_n(dst, r, nk);
          } else {
            V::store(buf[i * kM + jj], r);
          }
        }
      }
      if (layout == Layout::NCHW) {
        // buf (4x4 pixels, lanes = k) -> y rows of 4 pixels per channel: 4 x 4 transposes.
        for (int i = 0; i < rows; ++i) {
          Elem<V>* dst = y + ((n * K + kk) * P + oh0 + i) * Q + ow0;
          int l = 0;
          if constexpr (std::is_same_v<Elem<V>, float>) {
            if (cols == kM)
              for (; l + 4 <= nk; l += 4) {
                __m128 c0 = _mm_load_ps(&buf[i * kM + 0][l]), c1 = _mm_load_ps(&buf[i * kM + 1][l]);
                __m128 c2 = _mm_load_ps(&buf[i * kM + 2][l]), c3 = _mm_load_ps(&buf[i * kM + 3][l]);
                _MM_TRANSPOSE4_PS(c0, c1, c2, c3);
                _mm_storeu_ps(dst + (l + 0) * P * Q, c0);
                _mm_storeu_ps(dst + (l + 1) * P * Q, c1);
                _mm_storeu_ps(dst + (l + 2) * P * Q, c2);
                _mm_storeu_ps(dst + (l + 3) * P * Q, c3);
              }
          }  // double: the scalar loop (4x4 register transposes measured 12% slower)
          for (; l < nk; ++l)
            for (int jj = 0; jj < cols; ++jj) dst[l * P * Q + jj] = buf[i * kM + jj][l];
        }
      }
    }
  }
}

// 2. x (N,C,H,W) -> xt (N,H,W,C), one image row at a time in B x B blocks (8 floats, 4 doubles), scalar edges.
template <typename T>
void nchw_to_nhwc(const T* x, int64_t N, int64_t C, int64_t H, int64_t W, T* xt, int threads) {
  constexpr int64_t B = 32 / sizeof(T);
  const int64_t CB = C / B * B, WB = W / B * B, HW = H * W;
  parallel_for(threads, N * H, [&](int64_t nh_begin, int64_t nh_end) {
    for (int64_t nh = nh_begin; nh < nh_end; ++nh) {
      const int64_t n = nh / H, h = nh % H;
      const T* s = x + n * C * HW + h * W;  // s[c*HW + w]
      T* d = xt + nh * W * C;               // d[w*C + c]
      for (int64_t w0 = 0; w0 < WB; w0 += B)
        for (int64_t c0 = 0; c0 < CB; c0 += B) {
          if constexpr (sizeof(T) == 4) transpose_8x8(s + c0 * HW + w0, HW, d + w0 * C + c0, C);
          else transpose_4x4(s + c0 * HW + w0, HW, d + w0 * C + c0, C);
        }
      for (int64_t ww = 0; ww < W; ++ww)
        for (int64_t c = (ww < WB ? CB : 0); c < C; ++c) d[ww * C + c] = s[c * HW + ww];
    }
  });
}
}  // namespace

}  // namespace FASTCONV_SIMD_NS
}  // namespace fastconv
