// Batch normalization kernels (contracts in batchnorm.h), compiled once per ISA: ref.cpp without
// ISA flags (the scalar path), avx2.cpp and avx512.cpp with theirs. Like pool2d/avgpool.inl, the
// loops are written for the compiler to vectorize (contiguous inner loops over elements or channels, GCC vector lanes
// where it would otherwise vectorize the wrong loop); the independent check is the float64
// oracle fastconv.reference.batch_norm.
//
// Arithmetic: the statistics and the backward pass in double (a variance or a grad_x can be far
// smaller than the terms it comes from), y in the element type (the mean split into two T parts).
//
// Work split, per pass: channel sums, NCHW one channel a task (its N planes in order, each summed
// in interleaved partial sums combined in a fixed order), NHWC one block of kBlockPixels pixels
// a task (all channels as vector lanes), the blocks' partial sums then added in block order.
// Elementwise passes, NCHW one (n, c) plane a task, NHWC blocks of pixels.

#pragma once  // once per translation unit: each build includes it for its own ISA
#ifndef FASTCONV_SIMD_NS
#error "include simd/portable.h, simd/avx2.h or simd/avx512.h before batchnorm/batchnorm.inl"
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "../runtime/loops.h"
#include "../runtime/scratch.h"
#include "batchnorm.h"

namespace fastconv {
namespace FASTCONV_SIMD_NS {
namespace {

constexpr int64_t kBlockPixels = 256;  // NHWC: pixels one statistics task sums (all channels)

// NHWC statistics: s1 / s2 = the sums of the blocks' rows of partial sums (part holds, for each
// block, a row of C first sums then a row of C second sums), added in block order.
inline void add_block_rows(const double* part, int64_t blocks, int64_t C, double* s1, double* s2) {
  std::fill(s1, s1 + C, 0.0);
  std::fill(s2, s2 + C, 0.0);
  for (int64_t blk = 0; blk < blocks; ++blk)
    for (int64_t c = 0; c < C; ++c) {
      s1[c] += part[2 * blk * C + c];
      s2[c] += part[(2 * blk + 1) * C + c];
    }
}

template <typename T>
struct Lanes16;  // 16 lanes of T (GCC's vector extension, split into the ISA's registers)
template <>
struct Lanes16<float> {
  typedef float type __attribute__((vector_size(64)));
};
template <>
struct Lanes16<double> {
  typedef double type __attribute__((vector_size(128)));
};

// v where keep, else +0, as relu_backward does, without a branch: a plain select compiled to one
// (20x slower on a ReLU's random mask), and v * keep would turn an infinite or NaN v into NaN.
template <typename T>
struct BitsOf;
template <>
struct BitsOf<float> {
  using type = uint32_t;
};
template <>
struct BitsOf<double> {
  using type = uint64_t;
};

template <typename T>
inline T masked(T v, bool keep) {
  using U = typename BitsOf<T>::type;
  U u;
  std::memcpy(&u, &v, sizeof u);
  u &= U(0) - U(keep);
  std::memcpy(&v, &u, sizeof v);
  return v;
}

// The channel sums of both passes, in double: s1[c] = sum of g and s2[c] = sum of g (x - xk[c])
// over channel c, where g counts only where y > 0 when y (a fused ReLU's output) is given, as
// relu_backward. Differences of float data are exact in double.
//   kStatistics (forward)  g = x - xk with xk = K, the channel's first element: no E[x^2] -
//                          E[x]^2 cancellation when |mean| >> std, and var = E[d^2] - E[d]^2
//                          keeps double's accuracy even when K is far from the mean (an outlier
//                          first value, a first image of zeros), which float terms did not;
//                          x is read and converted once
//   backward               g = grad_y, xk = mean

// One NCHW plane of n elements: 16 partial sums each by index mod 16, then a fixed order, then
// the last n % 16 terms.
template <bool kStatistics, typename T>
void plane_sums(const T* __restrict g, const T* __restrict y, const T* __restrict x, int64_t n, double xk, double* s1,
                double* s2) {
  using Vec = typename Lanes16<T>::type;
  using VecD = typename Lanes16<double>::type;
  VecD t1 = {}, t2 = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    Vec xv;
    std::memcpy(&xv, x + i, sizeof xv);
    const VecD d = __builtin_convertvector(xv, VecD) - xk;
    VecD gd = d;
    if (!kStatistics) {
      Vec gv;
      std::memcpy(&gv, g + i, sizeof gv);
      if (y) {
        Vec yv;
        std::memcpy(&yv, y + i, sizeof yv);
        gv = yv > T(0) ? gv : Vec{};
      }
      gd = __builtin_convertvector(gv, VecD);
    }
    t1 += gd;
    t2 += gd * d;
  }
  double r1 = 0, r2 = 0;
  for (int j = 0; j < 16; ++j) {
    r1 += t1[j];
    r2 += t2[j];
  }
  for (; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - xk;
    const double gi = kStatistics ? d : y ? masked(g[i], y[i] > T(0)) : static_cast<double>(g[i]);
    r1 += gi;
    r2 += gi * d;
  }
  *s1 += r1;
  *s2 += r2;
}

template <bool kStatistics, typename T>
void channel_sums(const BatchNormShape& s, const T* g, const T* y, const T* x, const double* xk, double* s1,
                  double* s2) {
  const int64_t work = 2 * s.size();
  if (s.layout == Layout::NCHW) {
    parallel_for(threads_for(work), s.C, [&](int64_t c_begin, int64_t c_end) {
      for (int64_t c = c_begin; c < c_end; ++c) {
        double t1 = 0, t2 = 0;
        for (int64_t n = 0; n < s.N; ++n) {
          const int64_t o = (n * s.C + c) * s.HW;
          plane_sums<kStatistics>(g + o, y ? y + o : nullptr, x + o, s.HW, xk[c], &t1, &t2);
        }
        s1[c] = t1;
        s2[c] = t2;
      }
    });
    return;
  }
  // NHWC: blocks of kBlockPixels pixels, each summed over all channels (contiguous lanes) into
  // its own row of partial sums; the rows are then added in block order. The block size, not
  // the thread count, fixes the order.
  const int64_t M = s.N * s.HW, blocks = ceil_div(M, kBlockPixels);
  double* part = scratch<double>(3, 2 * blocks * s.C);
  parallel_for(threads_for(work), blocks, [&](int64_t b_begin, int64_t b_end) {
    for (int64_t blk = b_begin; blk < b_end; ++blk) {
      double* __restrict t1 = part + 2 * blk * s.C;
      double* __restrict t2 = t1 + s.C;
      std::fill(t1, t1 + 2 * s.C, 0.0);
      for (int64_t m = blk * kBlockPixels, m_end = std::min(M, m + kBlockPixels); m < m_end; ++m) {
        const T* __restrict gp = g + m * s.C;
        const T* __restrict xp = x + m * s.C;
        if (y) {  // two loops: a condition inside would keep the compiler from vectorizing
          const T* __restrict yp = y + m * s.C;
          for (int64_t c = 0; c < s.C; ++c) {
            const double gc = masked(gp[c], yp[c] > T(0));
            t1[c] += gc;
            t2[c] += gc * (static_cast<double>(xp[c]) - xk[c]);
          }
        } else {
          for (int64_t c = 0; c < s.C; ++c) {
            const double d = static_cast<double>(xp[c]) - xk[c];
            const double gc = kStatistics ? d : static_cast<double>(gp[c]);
            t1[c] += gc;
            t2[c] += gc * d;
          }
        }
      }
    }
  });
  add_block_rows(part, blocks, s.C, s1, s2);
}

// out = a[c] (u - m[c]) + b[c] + q[c] v elementwise (backward; v masked by y > 0 where y is
// given, as in channel_sums), in double and rounded once: grad_x can be far smaller than the
// terms it is the difference of (two values a channel: it cancels to ~eps / var), and double
// keeps its relative accuracy there.
template <typename T>
void per_channel_affine_sum(const BatchNormShape& s, const T* u, const double* m, const double* a, const double* b,
                            const T* v, const T* y, const double* q, T* out) {
  const int64_t work = s.size();
  if (s.layout == Layout::NCHW) {
    parallel_for(threads_for(work), s.N * s.C, [&](int64_t first, int64_t last) {
      for (int64_t i = first; i < last; ++i) {
        const int64_t c = i % s.C, o = i * s.HW;
        const double mc = m[c], ac = a[c], bc = b[c], qc = q[c];
        T* __restrict dst = out + o;
        const T* __restrict up = u + o;
        const T* __restrict vp = v + o;
        if (y) {
          const T* __restrict yp = y + o;
          for (int64_t k = 0; k < s.HW; ++k) {
            const double g = masked(vp[k], yp[k] > T(0));
            dst[k] = static_cast<T>(ac * (up[k] - mc) + bc + qc * g);
          }
        } else {
          for (int64_t k = 0; k < s.HW; ++k) dst[k] = static_cast<T>(ac * (up[k] - mc) + bc + qc * vp[k]);
        }
      }
    });
    return;
  }
  parallel_for(threads_for(work), s.N * s.HW, [&](int64_t first, int64_t last) {
    for (int64_t px = first; px < last; ++px) {
      T* __restrict dst = out + px * s.C;
      const T* __restrict up = u + px * s.C;
      const T* __restrict vp = v + px * s.C;
      if (y) {
        const T* __restrict yp = y + px * s.C;
        for (int64_t c = 0; c < s.C; ++c) {
          const double g = masked(vp[c], yp[c] > T(0));
          dst[c] = static_cast<T>(a[c] * (up[c] - m[c]) + b[c] + q[c] * g);
        }
      } else {
        for (int64_t c = 0; c < s.C; ++c) dst[c] = static_cast<T>(a[c] * (up[c] - m[c]) + b[c] + q[c] * vp[c]);
      }
    }
  });
}

// out = a[c] (u - m[c]) + b[c] elementwise (forward), then max(out, 0) with `relu`, in the
// element type T: float lanes are twice as many as double's and need no conversions (in double
// this pass took twice as long on cache-resident shapes). m[c] is split into T parts hi + lo;
// (u - hi) - lo loses nothing to rounding the mean to T, so y stays accurate when |mean| >> std
// (no u a - m a cancellation); what remains is T's rounding of a few operations on y-sized values.
template <typename T>
inline T relu_of(T v) {
  return v <= T(0) ? T(0) : v;
}  // +0 for -0, NaN stays NaN, as relu_forward

// The same pass in double, rounded once: for coefficients that overflow T although they are finite
// in double (float32 data with eps = 1e-300 on a constant channel: a = 1e150 becomes inf in
// float, and 0 * inf is NaN where the double result is 0).
template <typename T>
void per_channel_affine_in_double(const BatchNormShape& s, const T* u, const double* m, const double* a,
                                  const double* b, bool relu, T* out) {
  parallel_for(threads_for(s.size()), s.N * s.HW, [&](int64_t first, int64_t last) {
    for (int64_t i = first; i < last; ++i)
      for (int64_t c = 0; c < s.C; ++c) {
        // NCHW: i = (n, k) of plane size HW; NHWC: i is the pixel
        const int64_t e = s.layout == Layout::NCHW ? ((i / s.HW) * s.C + c) * s.HW + i % s.HW : i * s.C + c;
        const T v = static_cast<T>(a[c] * (static_cast<double>(u[e]) - m[c]) + b[c]);
        out[e] = relu ? relu_of(v) : v;
      }
  });
}

template <typename T>
void per_channel_affine(const BatchNormShape& s, const T* u, const double* m, const double* a, const double* b,
                        bool relu, T* out) {
  T* coef = scratch<T>(4, 4 * s.C);
  T* __restrict hi = coef;
  T* __restrict lo = coef + s.C;
  T* __restrict ta = coef + 2 * s.C;
  T* __restrict tb = coef + 3 * s.C;
  const auto overflows = [](double wide, T narrow) { return std::isfinite(wide) && !std::isfinite(narrow); };
  bool fits = true;
  for (int64_t c = 0; c < s.C; ++c) {
    hi[c] = static_cast<T>(m[c]);
    lo[c] = static_cast<T>(m[c] - static_cast<double>(hi[c]));
    ta[c] = static_cast<T>(a[c]);
    tb[c] = static_cast<T>(b[c]);
    fits = fits && !overflows(m[c], hi[c]) && !overflows(a[c], ta[c]) && !overflows(b[c], tb[c]);
  }
  if (!fits) {
    per_channel_affine_in_double(s, u, m, a, b, relu, out);
    return;
  }
  const int64_t work = s.size();
  if (s.layout == Layout::NCHW) {
    parallel_for(threads_for(work), s.N * s.C, [&](int64_t first, int64_t last) {
      for (int64_t i = first; i < last; ++i) {
        const int64_t c = i % s.C, o = i * s.HW;
        const T hc = hi[c], lc = lo[c], ac = ta[c], bc = tb[c];
        T* __restrict dst = out + o;
        const T* __restrict up = u + o;
        if (relu) {
          for (int64_t k = 0; k < s.HW; ++k) dst[k] = relu_of(ac * ((up[k] - hc) - lc) + bc);
        } else {
          for (int64_t k = 0; k < s.HW; ++k) dst[k] = ac * ((up[k] - hc) - lc) + bc;
        }
      }
    });
    return;
  }
  parallel_for(threads_for(work), s.N * s.HW, [&](int64_t first, int64_t last) {
    for (int64_t px = first; px < last; ++px) {
      T* __restrict dst = out + px * s.C;
      const T* __restrict up = u + px * s.C;
      if (relu) {
        for (int64_t c = 0; c < s.C; ++c) dst[c] = relu_of(ta[c] * ((up[c] - hi[c]) - lo[c]) + tb[c]);
      } else {
        for (int64_t c = 0; c < s.C; ++c) dst[c] = ta[c] * ((up[c] - hi[c]) - lo[c]) + tb[c];
      }
    }
  });
}

// mean(x - K) over channel c with the terms scaled by 2^-64 (exact for normal numbers), for
// float64 data whose sum of differences overflows (values near +-max / 2): the mean itself is
// in range. A rare path: one scalar pass over the channel.
template <typename T>
double scaled_mean_offset(const BatchNormShape& s, const T* x, int64_t c, double K) {
  const double f = std::ldexp(1.0, -64), Kf = K * f;
  double t = 0;
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t k = 0; k < s.HW; ++k) {
      const int64_t e = s.layout == Layout::NCHW ? (n * s.C + c) * s.HW + k : (n * s.HW + k) * s.C + c;
      t += static_cast<double>(x[e]) * f - Kf;
    }
  return t / static_cast<double>(s.N * s.HW) / f;
}

template <typename T>
void train_forward(const BatchNormShape& s, const T* x, const T* gamma, const T* beta, double eps, bool relu, T* y,
                   T* mean, T* var, T* inv_std) {
  double* sums = scratch<double>(0, 2 * s.C);
  double* coef = scratch<double>(1, 3 * s.C);  // mean, a, b of the normalizing pass
  double* shift = scratch<double>(2, s.C);     // K[c]: the channel's first element
  for (int64_t c = 0; c < s.C; ++c) shift[c] = static_cast<double>(s.layout == Layout::NCHW ? x[c * s.HW] : x[c]);
  channel_sums<true>(s, x, static_cast<const T*>(nullptr), x, shift, sums, sums + s.C);
  const double M = static_cast<double>(s.N * s.HW);
  for (int64_t c = 0; c < s.C; ++c) {
    const double d = std::isfinite(sums[c]) ? sums[c] / M : scaled_mean_offset(s, x, c, shift[c]);
    // a sum of squares past double's range is +inf: the variance is inf (inv_std 0, as the
    // reference), not inf - inf = NaN
    const double q = sums[s.C + c] / M;
    const double v = std::isfinite(q) ? std::max(q - d * d, 0.0) : q;
    const double is = 1.0 / std::sqrt(v + eps);
    coef[c] = shift[c] + d;
    coef[s.C + c] = is * (gamma ? static_cast<double>(gamma[c]) : 1.0);
    coef[2 * s.C + c] = beta ? static_cast<double>(beta[c]) : 0.0;
    mean[c] = static_cast<T>(coef[c]);
    var[c] = static_cast<T>(v);
    // saturated, not inf, where 1 / sqrt(eps) overflows T (eps = 1e-300 on a constant float channel),
    // so the backward pass gives the reference's 0 instead of 0 * inf
    inv_std[c] = static_cast<T>(std::min(is, static_cast<double>(std::numeric_limits<T>::max())));
  }
  per_channel_affine<T>(s, x, coef, coef + s.C, coef + 2 * s.C, relu, y);
}

// y = (x - mean) * scale + shift (inference; the statistics in double), then ReLU with `relu`
template <typename T>
void normalize(const BatchNormShape& s, const T* x, const double* mean, const double* scale, const double* shift,
               bool relu, T* y) {
  per_channel_affine<T>(s, x, mean, scale, shift, relu, y);
}

template <typename T>
void backward(const BatchNormShape& s, bool training, const T* gy, const T* relu_y, const T* x, const T* mean,
              const T* inv_std, const T* gamma, T* gx, T* ggamma, T* gbeta) {
  double* sums = scratch<double>(0, 2 * s.C);
  double* coef = scratch<double>(1, 4 * s.C);
  double* mu = coef;
  double* a = coef + s.C;      // of (x - mean)
  double* b = coef + 2 * s.C;  // constant
  double* k = coef + 3 * s.C;  // of grad_y
  for (int64_t c = 0; c < s.C; ++c) mu[c] = mean[c];
  // sums[c] = sum grad_y, sums[C + c] = sum grad_y * (x - mean)
  channel_sums<false>(s, gy, relu_y, x, mu, sums, sums + s.C);
  const double M = static_cast<double>(s.N * s.HW);
  for (int64_t c = 0; c < s.C; ++c) {
    const double is = inv_std[c], g = gamma ? static_cast<double>(gamma[c]) : 1.0;
    const double db = sums[c], dg = sums[s.C + c] * is;
    gbeta[c] = static_cast<T>(db);
    ggamma[c] = static_cast<T>(dg);
    k[c] = g * is;
    // training: grad_x = k (grad_y - db / M - xhat dg / M) with xhat = (x - mean) is
    a[c] = training ? -k[c] * is * dg / M : 0.0;
    b[c] = training ? -k[c] * db / M : 0.0;
  }
  per_channel_affine_sum<T>(s, x, mu, a, b, gy, relu_y, k, gx);
}

}  // namespace

template <typename T>
BatchNormOps<T> batchnorm_ops() {
  return BatchNormOps<T>{train_forward<T>, normalize<T>, backward<T>};
}
template BatchNormOps<float> batchnorm_ops<float>();
template BatchNormOps<double> batchnorm_ops<double>();

}  // namespace FASTCONV_SIMD_NS
}  // namespace fastconv
