// Batch normalization kernels (contracts in batchnorm.h), compiled once per ISA: the including
// file provides <algorithm>, <cmath>, <cstdint>, batchnorm.h, loops.h and scratch.h and includes
// this file inside its own namespace. Like avgpool.inl, the loops are written for the compiler
// to vectorize (contiguous inner loops over elements or channels); the independent check is the
// float64 oracle fastconv.reference.batch_norm.
//
// Work split, per pass: channel sums, NCHW one channel a task (its N planes in order, each summed
// in 8 interleaved partial sums combined in a fixed tree), NHWC one block of kBlockPixels pixels
// a task (all channels as vector lanes), the blocks' partial sums then added in block order. Elementwise passes, NCHW one
// (n, c) plane a task, NHWC blocks of pixels.

namespace batchnorm_detail {

using fastconv::BatchNormShape;
using fastconv::Layout;

constexpr int64_t kBlockPixels = 256;   // NHWC: pixels one statistics task sums (all channels)

// sum over i < n of f(x[i]) as 8 interleaved double partial sums in a fixed tree
template <typename T, class F>
double plane_sum(const T* __restrict x, int64_t n, const F& f) {
  double part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) part[j] += f(static_cast<double>(x[i + j]), i + j);
  for (int j = 0; i < n; ++i, ++j) part[j] += f(static_cast<double>(x[i]), i);
  return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}

// For every channel c: s1[c] = sum of a(x, z) and s2[c] = sum of b(x, z) over the channel's
// elements, where z is the element of `other` at the same place (x itself when other is x).
template <typename T, class A, class B>
void channel_sums(const BatchNormShape& s, const T* x, const T* other, const A& a, const B& b, double* s1,
                  double* s2) {
  const int64_t work = 2 * s.size();
  if (s.layout == Layout::NCHW) {
    fastconv::parallel_for(fastconv::threads_for(work), s.C, [&](int64_t c_begin, int64_t c_end) {
      for (int64_t c = c_begin; c < c_end; ++c) {
        double t1 = 0, t2 = 0;
        for (int64_t n = 0; n < s.N; ++n) {
          const T* xp = x + (n * s.C + c) * s.HW;
          const T* zp = other + (n * s.C + c) * s.HW;
          t1 += plane_sum(xp, s.HW, [&](double v, int64_t i) { return a(c, v, static_cast<double>(zp[i])); });
          t2 += plane_sum(xp, s.HW, [&](double v, int64_t i) { return b(c, v, static_cast<double>(zp[i])); });
        }
        s1[c] = t1;
        s2[c] = t2;
      }
    });
    return;
  }
  // NHWC: blocks of kBlockPixels pixels, each summed over all channels (contiguous lanes) into
  // its own row of partial sums; the rows are then added in block order. The block size, not the
  // thread count, fixes the order.
  const int64_t M = s.N * s.HW, blocks = fastconv::ceil_div(M, kBlockPixels);
  double* part = fastconv::scratch<double>(3, 2 * blocks * s.C);
  fastconv::parallel_for(fastconv::threads_for(work), blocks, [&](int64_t b_begin, int64_t b_end) {
    for (int64_t blk = b_begin; blk < b_end; ++blk) {
      double* __restrict t1 = part + 2 * blk * s.C;
      double* __restrict t2 = t1 + s.C;
      std::fill(t1, t1 + 2 * s.C, 0.0);
      for (int64_t m = blk * kBlockPixels, m_end = std::min(M, m + kBlockPixels); m < m_end; ++m) {
        const T* __restrict xp = x + m * s.C;
        const T* __restrict zp = other + m * s.C;
        for (int64_t c = 0; c < s.C; ++c) {
          const double v = xp[c], z = zp[c];
          t1[c] += a(c, v, z);
          t2[c] += b(c, v, z);
        }
      }
    }
  });
  std::fill(s1, s1 + s.C, 0.0);
  std::fill(s2, s2 + s.C, 0.0);
  for (int64_t blk = 0; blk < blocks; ++blk)
    for (int64_t c = 0; c < s.C; ++c) {
      s1[c] += part[2 * blk * s.C + c];
      s2[c] += part[(2 * blk + 1) * s.C + c];
    }
}

// out = a[c] (u - m[c]) + b[c] [+ q[c] v] elementwise, in double and rounded once: centering
// before scaling keeps y accurate when |mean| >> std (no x a - mean a cancellation).
template <typename T>
void per_channel_affine(const BatchNormShape& s, const T* u, const double* m, const double* a, const double* b,
                        const T* v, const double* q, T* out) {
  const int64_t work = s.size();
  if (s.layout == Layout::NCHW) {
    fastconv::parallel_for(fastconv::threads_for(work), s.N * s.C, [&](int64_t first, int64_t last) {
      for (int64_t i = first; i < last; ++i) {
        const int64_t c = i % s.C, o = i * s.HW;
        const double mc = m[c], ac = a[c], bc = b[c];
        T* __restrict dst = out + o;
        const T* __restrict up = u + o;
        if (v) {
          const T* __restrict vp = v + o;
          const double qc = q[c];
          for (int64_t k = 0; k < s.HW; ++k) dst[k] = static_cast<T>(ac * (up[k] - mc) + bc + qc * vp[k]);
        } else {
          for (int64_t k = 0; k < s.HW; ++k) dst[k] = static_cast<T>(ac * (up[k] - mc) + bc);
        }
      }
    });
    return;
  }
  const int64_t M = s.N * s.HW;
  fastconv::parallel_for(fastconv::threads_for(work), M, [&](int64_t first, int64_t last) {
    for (int64_t px = first; px < last; ++px) {
      T* __restrict dst = out + px * s.C;
      const T* __restrict up = u + px * s.C;
      if (v) {
        const T* __restrict vp = v + px * s.C;
        for (int64_t c = 0; c < s.C; ++c) dst[c] = static_cast<T>(a[c] * (up[c] - m[c]) + b[c] + q[c] * vp[c]);
      } else {
        for (int64_t c = 0; c < s.C; ++c) dst[c] = static_cast<T>(a[c] * (up[c] - m[c]) + b[c]);
      }
    }
  });
}

template <typename T>
void train_forward(const BatchNormShape& s, const T* x, const T* gamma, const T* beta, double eps, T* y, T* mean,
                   T* var, T* inv_std) {
  double* sums = fastconv::scratch<double>(0, 2 * s.C);
  double* coef = fastconv::scratch<double>(1, 3 * s.C);   // mean, a, b of the normalizing pass
  double* shift = fastconv::scratch<double>(2, s.C);      // K[c]: the channel's first element
  for (int64_t c = 0; c < s.C; ++c) shift[c] = static_cast<double>(s.layout == Layout::NCHW ? x[c * s.HW] : x[c]);
  channel_sums(
      s, x, x, [&](int64_t c, double v, double) { return v - shift[c]; },
      [&](int64_t c, double v, double) { return (v - shift[c]) * (v - shift[c]); }, sums, sums + s.C);
  const double M = static_cast<double>(s.N * s.HW);
  for (int64_t c = 0; c < s.C; ++c) {
    const double d = sums[c] / M;
    const double v = std::max(sums[s.C + c] / M - d * d, 0.0);
    const double is = 1.0 / std::sqrt(v + eps);
    coef[c] = shift[c] + d;
    coef[s.C + c] = is * (gamma ? static_cast<double>(gamma[c]) : 1.0);
    coef[2 * s.C + c] = beta ? static_cast<double>(beta[c]) : 0.0;
    mean[c] = static_cast<T>(coef[c]);
    var[c] = static_cast<T>(v);
    inv_std[c] = static_cast<T>(is);
  }
  per_channel_affine<T>(s, x, coef, coef + s.C, coef + 2 * s.C, nullptr, nullptr, y);
}

// y = (x - mean) * scale + shift (inference; the statistics in double)
template <typename T>
void normalize(const BatchNormShape& s, const T* x, const double* mean, const double* scale, const double* shift,
               T* y) {
  per_channel_affine<T>(s, x, mean, scale, shift, nullptr, nullptr, y);
}

template <typename T>
void backward(const BatchNormShape& s, bool training, const T* gy, const T* x, const T* mean, const T* inv_std,
              const T* gamma, T* gx, T* ggamma, T* gbeta) {
  double* sums = fastconv::scratch<double>(0, 2 * s.C);
  double* coef = fastconv::scratch<double>(1, 4 * s.C);
  // sums[c] = sum grad_y, sums[C + c] = sum grad_y * (x - mean)
  channel_sums(
      s, gy, x, [](int64_t, double g, double) { return g; },
      [&](int64_t c, double g, double v) { return g * (v - static_cast<double>(mean[c])); }, sums, sums + s.C);
  const double M = static_cast<double>(s.N * s.HW);
  double* mu = coef;
  double* a = coef + s.C;        // of (x - mean)
  double* b = coef + 2 * s.C;    // constant
  double* k = coef + 3 * s.C;    // of grad_y
  for (int64_t c = 0; c < s.C; ++c) {
    const double is = inv_std[c], g = gamma ? static_cast<double>(gamma[c]) : 1.0;
    const double db = sums[c], dg = sums[s.C + c] * is;
    gbeta[c] = static_cast<T>(db);
    ggamma[c] = static_cast<T>(dg);
    mu[c] = mean[c];
    k[c] = g * is;
    // training: grad_x = k (grad_y - db / M - xhat dg / M) with xhat = (x - mean) is
    a[c] = training ? -k[c] * is * dg / M : 0.0;
    b[c] = training ? -k[c] * db / M : 0.0;
  }
  per_channel_affine<T>(s, x, mu, a, b, gy, k, gx);
}

template <typename T>
fastconv::BatchNormOps<T> ops() {
  return fastconv::BatchNormOps<T>{train_forward<T>, normalize<T>, backward<T>};
}

}  // namespace batchnorm_detail
