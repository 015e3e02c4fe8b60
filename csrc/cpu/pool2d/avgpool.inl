// Average pooling forward/backward (both layouts, float and double), compiled once per ISA:
// pool2d.inl includes it inside its namespace with avx2.cpp's or avx512.cpp's ISA flags, ref.cpp
// without (the scalar path). The loops are written for the compiler
// to vectorize: every inner loop runs over contiguous elements with no sum across lanes, so each
// output is the same sum in the same order on every ISA (bit-identical results). The independent
// check is the float64 oracle, fastconv.reference.avg_pool2d.
//
// The window sum is separable. Forward, per output row p: a vertical pass adds the window's
// input rows into one row buffer v (contiguous), then a horizontal pass adds v's columns of each
// window: y[p][q] = inv(p, q) * sum_s v[q*stride + s - pad]. The order is rows first (h
// ascending), then columns (w ascending), for every output.
// Backward, per output row p: g[q] = grad_y[p][q] * inv(p, q) is spread over the columns
// (b[w] = sum over the windows q covering w, q ascending), and b is added to the input rows of
// the window, p ascending: the first window to reach a row stores, the later ones add, and rows
// no window covers are zeroed, so grad_x is written once where windows do not overlap. NCHW
// 2x2 windows of stride 2 without padding skip the row buffer (backward_plane_2x2).
//
// inv(p, q) = 1 / (R * S) with count_include_pad (PyTorch's default; windows never leave the
// padded input), else 1 / (valid rows * valid columns) (Keras' 'same').
//
// Work split: NCHW, one (n, c) plane a task; NHWC forward, one output row of an image a task
// (all channels: rows are contiguous), NHWC backward, one (n, group of channels) a task with
// groups of whole cache lines (each task owns its grad_x elements). Row buffers are the worker's
// scratch. Global pooling of NCHW planes (one window = the plane) sums each plane directly, eight
// planes at a time.
//
// The including file provides <algorithm>, <cstdint>, <cstring>, pool2d.h, loops.h and scratch.h
// and includes this file inside its own namespace.

namespace avgpool_detail {

using fastconv::Pool2dParams;

// Elements of one task: row r, column w, lane g at base[r * row + w * col + g], g < lanes.
struct Plane {
  int64_t rows, cols, row, col, lanes;
};

inline int64_t window_begin(int64_t o, int64_t stride, int64_t pad) { return o * stride - pad; }

template <typename T>
T inverse_count(bool include_pad, int64_t R, int64_t S, int64_t rows, int64_t cols) {
  return T(1) / static_cast<T>(include_pad ? R * S : rows * cols);
}

// v[w*lanes + g] = sum over input rows [hb, he) of the plane, in row order.
template <typename T>
void sum_rows(const Plane& pl, const T* x, int64_t hb, int64_t he, T* __restrict v) {
  const int64_t n = pl.cols * pl.lanes;
  if (pl.lanes == 1 && pl.col == 1) {
    std::copy(x + hb * pl.row, x + hb * pl.row + n, v);
    for (int64_t h = hb + 1; h < he; ++h) {
      const T* __restrict xr = x + h * pl.row;
      for (int64_t i = 0; i < n; ++i) v[i] += xr[i];
    }
    return;
  }
  for (int64_t w = 0; w < pl.cols; ++w) {
    T* __restrict vw = v + w * pl.lanes;
    const T* __restrict xr = x + hb * pl.row + w * pl.col;
    for (int64_t g = 0; g < pl.lanes; ++g) vw[g] = xr[g];
    for (int64_t h = hb + 1; h < he; ++h) {
      const T* __restrict xh = x + h * pl.row + w * pl.col;
      for (int64_t g = 0; g < pl.lanes; ++g) vw[g] += xh[g];
    }
  }
}

// y[q] = inv * sum_s v[q * stride + s] for q < n, s ascending. kStride 1 and 2 are compile-time
// strides (contiguous and even/odd vector loads), 0 reads `stride` at run time.
template <int kStride, typename T>
void interior_columns(const T* __restrict v, int64_t S, int64_t stride, int64_t n, T inv, T* __restrict y) {
  const int64_t st = kStride ? kStride : stride;
  for (int64_t q = 0; q < n; ++q) y[q] = v[q * st];
  for (int64_t s = 1; s < S; ++s)
    for (int64_t q = 0; q < n; ++q) y[q] += v[q * st + s];
  for (int64_t q = 0; q < n; ++q) y[q] *= inv;
}

// b[q * stride + s] += g[q] for q < n, s ascending (the adjoint of interior_columns).
template <int kStride, typename T>
void spread_interior(const T* __restrict g, int64_t n, int64_t S, int64_t stride, T* __restrict b) {
  const int64_t st = kStride ? kStride : stride;
  for (int64_t s = 0; s < S; ++s)
    for (int64_t q = 0; q < n; ++q) b[q * st + s] += g[q];
}

// One whole plane (NCHW, no padding, the window covers it): the sum of its n elements in 8
// interleaved partial sums combined in a fixed tree, so that it vectorizes and stays the same sum
// on every ISA. The last n % 8 elements are summed apart: indexing the partial sums with a
// run-time lane kept them in memory instead of one vector register.
template <typename T>
T plane_sum(const T* __restrict x, int64_t n) {
  T part[8] = {T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0)};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) part[j] += x[i + j];
  T tail = T(0);
  for (; i < n; ++i) tail += x[i];
  return (((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]))) + tail;
}

// y[b] = plane_sum(x + b * n, n) * inv for kPlaneBlock adjacent planes: the same sums in the same
// order, the planes' partial-sum vectors advanced together so that their additions overlap (one
// plane's chain of dependent adds leaves a small plane, 7x7, latency-bound: 1.4x slower on
// 8 x 2048 planes, one thread). Lanes8 (GCC's vector extension) keeps each plane's 8 partial sums one vector: written
// as loops, the compiler vectorized across the planes with strided loads instead.
constexpr int kPlaneBlock = 8;
template <typename T>
struct Lanes8;
template <>
struct Lanes8<float> {
  typedef float type __attribute__((vector_size(32)));
};
template <>
struct Lanes8<double> {
  typedef double type __attribute__((vector_size(64)));
};

template <typename T>
void plane_block_means(const T* __restrict x, int64_t n, T inv, T* __restrict y) {
  using Vec = typename Lanes8<T>::type;
  Vec part[kPlaneBlock] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int b = 0; b < kPlaneBlock; ++b) {
      Vec v;
      std::memcpy(&v, x + b * n + i, sizeof v);
      part[b] += v;
    }
  for (int b = 0; b < kPlaneBlock; ++b) {
    T tail = T(0);
    for (int64_t k = i; k < n; ++k) tail += x[b * n + k];
    const Vec& q = part[b];
    y[b] = ((((q[0] + q[1]) + (q[2] + q[3])) + ((q[4] + q[5]) + (q[6] + q[7]))) + tail) * inv;
  }
}

inline bool whole_plane(const Pool2dParams& p) {
  return p.layout == fastconv::Layout::NCHW && p.P == 1 && p.Q == 1 && p.R == p.H && p.S == p.W && p.pad_top == 0 &&
         p.pad_left == 0;
}

template <typename T>
void forward_plane(const Pool2dParams& p, bool include_pad, const Plane& pl, const T* x, T* y, int64_t y_row,
                   int64_t y_col, T* v, int64_t p_begin, int64_t p_end) {
  const int64_t R = p.R, S = p.S, sw = p.stride_w, L = pl.lanes;
  // interior output columns: the whole window lies inside the row
  int64_t q_in_lo, q_in_hi;
  fastconv::valid_output_range(p.Q, pl.cols - S + 1, sw, -p.pad_left, &q_in_lo, &q_in_hi);
  for (int64_t op = p_begin; op < p_end; ++op) {
    const int64_t h0 = window_begin(op, p.stride_h, p.pad_top);
    const int64_t hb = std::max<int64_t>(h0, 0), he = std::min(h0 + R, pl.rows);
    sum_rows(pl, x, hb, he, v);
    T* yr = y + op * y_row;
    const auto column = [&](int64_t q) {  // any window, lanes contiguous
      const int64_t w0 = window_begin(q, sw, p.pad_left);
      const int64_t wb = std::max<int64_t>(w0, 0), we = std::min(w0 + S, pl.cols);
      const T inv = inverse_count<T>(include_pad, R, S, he - hb, we - wb);
      T* __restrict yq = yr + q * y_col;
      const T* __restrict vb = v + wb * L;
      for (int64_t g = 0; g < L; ++g) yq[g] = vb[g];
      for (int64_t w = wb + 1; w < we; ++w) {
        const T* __restrict vw = v + w * L;
        for (int64_t g = 0; g < L; ++g) yq[g] += vw[g];
      }
      for (int64_t g = 0; g < L; ++g) yq[g] *= inv;
    };
    if (L > 1 || y_col != 1) {
      for (int64_t q = 0; q < p.Q; ++q) column(q);
      continue;
    }
    // one lane (NCHW): the interior columns as loops over q, s ascending as in column()
    for (int64_t q = 0; q < q_in_lo; ++q) column(q);
    if (q_in_lo < q_in_hi) {
      const T inv = inverse_count<T>(include_pad, R, S, he - hb, S);
      const T* vi = v + q_in_lo * sw - p.pad_left;  // >= v: interior windows start inside the row
      if (sw == 1) interior_columns<1>(vi, S, sw, q_in_hi - q_in_lo, inv, yr + q_in_lo);
      else if (sw == 2) interior_columns<2>(vi, S, sw, q_in_hi - q_in_lo, inv, yr + q_in_lo);
      else interior_columns<0>(vi, S, sw, q_in_hi - q_in_lo, inv, yr + q_in_lo);
    }
    for (int64_t q = std::max(q_in_hi, q_in_lo); q < p.Q; ++q) column(q);
  }
}

template <typename T>
void backward_plane(const Pool2dParams& p, bool include_pad, const Plane& pl, const T* gy, int64_t gy_row,
                    int64_t gy_col, T* gx, T* b, T* g) {
  const int64_t R = p.R, S = p.S, sh = p.stride_h, sw = p.stride_w, L = pl.lanes;
  const bool contiguous = L == 1 && pl.col == 1;
  int64_t q_in_lo, q_in_hi;  // windows that lie inside the row
  fastconv::valid_output_range(p.Q, pl.cols - S + 1, sw, -p.pad_left, &q_in_lo, &q_in_hi);
  const auto zero_row = [&](int64_t h) {
    if (contiguous) {
      std::fill(gx + h * pl.row, gx + h * pl.row + pl.cols, T(0));
      return;
    }
    for (int64_t w = 0; w < pl.cols; ++w) {
      T* __restrict d = gx + h * pl.row + w * pl.col;
      for (int64_t g = 0; g < L; ++g) d[g] = T(0);
    }
  };
  int64_t next_row = 0;  // rows below it have been written
  for (int64_t op = 0; op < p.P; ++op) {
    const int64_t h0 = window_begin(op, sh, p.pad_top);
    const int64_t hb = std::max<int64_t>(h0, 0), he = std::min(h0 + R, pl.rows);
    // b[w] = sum over the windows q that cover column w (q ascending) of grad_y * inv; the
    // products are formed first (g), so no build can fuse them into the sums (same bits on every ISA)
    std::fill(b, b + pl.cols * L, T(0));
    const T* gr = gy + op * gy_row;
    for (int64_t q = 0; q < p.Q; ++q) {
      const int64_t w0 = window_begin(q, sw, p.pad_left);
      const int64_t wb = std::max<int64_t>(w0, 0), we = std::min(w0 + S, pl.cols);
      const T inv = inverse_count<T>(include_pad, R, S, he - hb, we - wb);
      const T* __restrict gq = gr + q * gy_col;
      for (int64_t l = 0; l < L; ++l) g[q * L + l] = gq[l] * inv;
    }
    const auto spread = [&](int64_t q) {  // any window, lanes contiguous
      const int64_t w0 = window_begin(q, sw, p.pad_left);
      const int64_t wb = std::max<int64_t>(w0, 0), we = std::min(w0 + S, pl.cols);
      const T* __restrict gq = g + q * L;
      for (int64_t w = wb; w < we; ++w) {
        T* __restrict bw = b + w * L;
        for (int64_t l = 0; l < L; ++l) bw[l] += gq[l];
      }
    };
    if (!contiguous) {
      for (int64_t q = 0; q < p.Q; ++q) spread(q);
    } else {  // one lane (NCHW): interior windows as loops over q
      for (int64_t q = 0; q < q_in_lo; ++q) spread(q);
      if (q_in_lo < q_in_hi) {
        T* bi = b + q_in_lo * sw - p.pad_left;
        if (sw == 1) spread_interior<1>(g + q_in_lo, q_in_hi - q_in_lo, S, sw, bi);
        else if (sw == 2) spread_interior<2>(g + q_in_lo, q_in_hi - q_in_lo, S, sw, bi);
        else spread_interior<0>(g + q_in_lo, q_in_hi - q_in_lo, S, sw, bi);
      }
      for (int64_t q = std::max(q_in_hi, q_in_lo); q < p.Q; ++q) spread(q);
    }
    for (; next_row < hb; ++next_row) zero_row(next_row);  // rows between windows (stride > R)
    for (int64_t h = hb; h < he; ++h) {
      const bool first = h >= next_row;
      if (contiguous) {
        T* __restrict d = gx + h * pl.row;
        if (first) std::copy(b, b + pl.cols, d);
        else
          for (int64_t w = 0; w < pl.cols; ++w) d[w] += b[w];
        continue;
      }
      for (int64_t w = 0; w < pl.cols; ++w) {
        T* __restrict d = gx + h * pl.row + w * pl.col;
        const T* __restrict bw = b + w * L;
        if (first)
          for (int64_t l = 0; l < L; ++l) d[l] = bw[l];
        else
          for (int64_t l = 0; l < L; ++l) d[l] += bw[l];
      }
    }
    next_row = std::max(next_row, he);
  }
  for (; next_row < pl.rows; ++next_row) zero_row(next_row);
}

// 2x2 windows of stride 2 without padding (AveragePooling2D's default), one NCHW plane: each
// input cell has at most one window, so grad_x is grad_y / 4 repeated over each window and zero
// in an odd last row or column. The general row-buffer path spends most of its time here on
// per-row bookkeeping and strided read-modify-writes (7x slower on 8 x 64 x 56 x 56). The same
// values as that path: g / 4 is added to a zero once.
inline bool tiles_2x2(const Pool2dParams& p) {
  // 2P <= H and 2Q <= W: no window reaches padding at the bottom or right ('same' on odd sizes)
  return p.R == 2 && p.S == 2 && p.stride_h == 2 && p.stride_w == 2 && p.pad_top == 0 && p.pad_left == 0 &&
         2 * p.P <= p.H && 2 * p.Q <= p.W;
}

template <typename T>
void backward_plane_2x2(const T* __restrict gy, int64_t P, int64_t Q, int64_t H, int64_t W, T* __restrict gx) {
  const T inv = T(1) / static_cast<T>(4);
  for (int64_t op = 0; op < P; ++op) {
    T* __restrict r0 = gx + 2 * op * W;
    T* __restrict r1 = r0 + W;
    const T* __restrict gr = gy + op * Q;
    for (int64_t q = 0; q < Q; ++q) {
      const T v = T(0) + gr[q] * inv;
      r0[2 * q] = v;
      r0[2 * q + 1] = v;
      r1[2 * q] = v;
      r1[2 * q + 1] = v;
    }
    for (int64_t w = 2 * Q; w < W; ++w) r0[w] = r1[w] = T(0);
  }
  std::fill(gx + 2 * P * W, gx + H * W, T(0));
}

constexpr int64_t kGroupBytes = 64;  // NHWC backward: channel groups are multiples of a cache line

template <typename T>
void avgpool2d_forward(const Pool2dParams& p, bool include_pad, const T* x, T* y) {
  const int64_t work = p.x_size() + p.y_size();
  if (whole_plane(p)) {  // global average pooling, NCHW
    const int64_t n = p.H * p.W;
    const T inv = T(1) / static_cast<T>(n);
    fastconv::parallel_for(fastconv::threads_for(work), p.N * p.C, [&](int64_t b, int64_t e) {
      int64_t i = b;
      for (; i + kPlaneBlock <= e; i += kPlaneBlock) plane_block_means(x + i * n, n, inv, y + i);
      for (; i < e; ++i) y[i] = plane_sum(x + i * n, n) * inv;
    });
    return;
  }
  if (p.layout == fastconv::Layout::NCHW) {  // one (n, c) plane a task
    const Plane pl{p.H, p.W, p.W, 1, 1};
    fastconv::parallel_for(fastconv::threads_for(work), p.N * p.C, [&](int64_t b, int64_t e) {
      T* v = fastconv::scratch<T>(0, p.W);
      for (int64_t i = b; i < e; ++i)
        forward_plane(p, include_pad, pl, x + i * p.H * p.W, y + i * p.P * p.Q, p.Q, int64_t(1), v, 0, p.P);
    });
    return;
  }
  // NHWC: one output row of one image a task, every channel a lane (rows are contiguous)
  const Plane pl{p.H, p.W, p.W * p.C, p.C, p.C};
  fastconv::parallel_for(fastconv::threads_for(work), p.N * p.P, [&](int64_t b, int64_t e) {
    T* v = fastconv::scratch<T>(0, p.W * p.C);
    for (int64_t i = b; i < e; ++i) {
      const int64_t n = i / p.P, op = i % p.P;
      forward_plane(p, include_pad, pl, x + n * p.H * p.W * p.C, y + n * p.P * p.Q * p.C, p.Q * p.C, p.C, v, op,
                    op + 1);
    }
  });
}

template <typename T>
void avgpool2d_backward(const Pool2dParams& p, bool include_pad, const T* gy, T* gx) {
  const int64_t work = p.x_size() + p.y_size();
  if (whole_plane(p)) {  // global average pooling, NCHW: grad_y / (H W) over each plane
    const int64_t n = p.H * p.W;
    const T inv = T(1) / static_cast<T>(n);
    fastconv::parallel_for(fastconv::threads_for(work), p.N * p.C, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) std::fill(gx + i * n, gx + (i + 1) * n, gy[i] * inv);
    });
    return;
  }
  if (p.layout == fastconv::Layout::NCHW && tiles_2x2(p)) {
    fastconv::parallel_for(fastconv::threads_for(work), p.N * p.C, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) backward_plane_2x2(gy + i * p.P * p.Q, p.P, p.Q, p.H, p.W, gx + i * p.H * p.W);
    });
    return;
  }
  if (p.layout == fastconv::Layout::NCHW) {
    const Plane pl{p.H, p.W, p.W, 1, 1};
    fastconv::parallel_for(fastconv::threads_for(work), p.N * p.C, [&](int64_t b, int64_t e) {
      T* bw = fastconv::scratch<T>(0, p.W);
      T* g = fastconv::scratch<T>(1, p.Q);
      for (int64_t i = b; i < e; ++i)
        backward_plane(p, include_pad, pl, gy + i * p.P * p.Q, p.Q, int64_t(1), gx + i * p.H * p.W, bw, g);
    });
    return;
  }
  // NHWC: one (image, group of channels) a task; groups of whole cache lines, all channels when
  // there is an image for every thread (a narrower group reads and writes every pixel's channels
  // in pieces: on 8 x 64 x 224 x 224 with half the channels a task, 2 threads were no faster
  // than one), else narrower so that every thread has work
  const int64_t line = kGroupBytes / static_cast<int64_t>(sizeof(T));
  const int64_t parts = fastconv::ceil_div(int64_t(fastconv::num_threads()), p.N);
  const int64_t group = fastconv::round_up(fastconv::ceil_div(p.C, parts), line);
  const int64_t groups = fastconv::ceil_div(p.C, group);
  fastconv::parallel_for(fastconv::threads_for(work), p.N * groups, [&](int64_t b, int64_t e) {
    T* bw = fastconv::scratch<T>(0, p.W * group);
    T* g = fastconv::scratch<T>(1, p.Q * group);
    for (int64_t i = b; i < e; ++i) {
      const int64_t n = i / groups, c0 = (i % groups) * group;
      const Plane pl{p.H, p.W, p.W * p.C, p.C, std::min(group, p.C - c0)};
      backward_plane(p, include_pad, pl, gy + n * p.P * p.Q * p.C + c0, p.Q * p.C, p.C, gx + n * p.H * p.W * p.C + c0,
                     bw, g);
    }
  });
}

}  // namespace avgpool_detail
