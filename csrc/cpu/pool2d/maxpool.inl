// Max pooling forward/backward written once against a small vector "traits" type V (the argmax
// lanes of simd/avx2_argmax.h and simd/avx512_argmax.h) and compiled once per ISA: pool2d.inl
// includes this file INSIDE its anonymous namespace, so every function here gets internal
// linkage and the linker can never hand an AVX-512 copy to an AVX2 caller. This file therefore
// includes nothing itself; pool2d.inl provides <cstring>, <cstdlib>, <cstdint>, <atomic> and
// loops.h.
//
// Semantics are those of pool2d/ref.cpp, bit for bit:
//   * each window is scanned in row-major order; a later element wins only when strictly
//     greater, or when it is NaN and the best so far is not (NaN wins and stays);
//   * windows are clipped to the input, so padded cells never win;
//   * indices are h*W + w inside the (n, c) plane;
//   * backward scatters grad_y to indices with +=, in ascending output order per plane, and
//     returns false when an index lies outside [0, H*W).
//
// Kernels (picked per call from layout, window and stride):
//   forward NCHW   maxpool_fwd_nchw_row<V, mode>: lanes along output columns of one output row;
//                  modes kPair2x2 (window width 2, stride 2: VGG; 2 loads + 2 permutes per
//                  window row), kStride1, kStride2, kAnyStride (gathers); border outputs whose
//                  window is clipped run the scalar loop.
//   forward NHWC   maxpool_fwd_nhwc<V>: lanes along channels, one output pixel per work item.
//   backward NHWC, windows overlapping in neither direction: maxpool_bwd_nhwc_tiles<V>
//                  (grad_x computed cell by cell with vector compares, no scatter).
//   backward, windows not overlapping vertically: maxpool_bwd_{nchw,nhwc}_bands (zero one
//                  row band of grad_x in cache, scatter the output row into it).
//   backward otherwise, or when an index is not where max_pool2d would have put it:
//                  maxpool_bwd_{nchw,nhwc}_planes (zero + ordered scatter-add per plane).
//
// The vector type V provides (L lanes of T; M a lane mask; I the L lane indices):
//   L, T, Vec, M, I       types and lane count
//   ones(), tail(n)       all lanes / the first n < L lanes
//   load(p), load(p, m)   contiguous load (masked-off lanes read nothing)
//   gather(p, s, m)       p[0], p[s], ..., p[(L-1)*s] in the lanes of m
//   deinterleave(p, &e, &o)   e = p[0,2,..,2L-2], o = p[1,3,..,2L-1] (reads p[0..2L))
//   stride2(p)            p[0,2,..,2L-2], reading nothing past p[2L-2]
//   replaces(c, best)     the mask of lanes where c replaces best (see above)
//   select(m, a, b)       b where m, else a (also for I)
//   iota(base, step)      base + step * lane (I)
//   broadcast_index(i)    i in every lane (I)
//   store(p, v[, m]), store_index(p, i[, m])   indices are widened to int64 on store
//   stream(p, v), stream_index(p, i)            the same with non-temporal stores in 16-byte
//                                              pieces (p 16-byte aligned; the caller issues the sfence)
//   LI, load_index(p[, m]), index_eq(li, i)     int64 indices loaded for comparison (lanes
//                                              that cannot be an in-range index never compare equal)
//   none(), either(a, b), both(a, b), same(a, b), keep(m, v), plus_zero(v)   mask algebra; keep = v where m else 0;
//                                              plus_zero(v) = 0 + v (turns -0 into +0 like the scatter-add)
// Indices are held in 32-bit lanes for float (16 per zmm); the entry points fall back to the
// portable kernel when a plane has 2^31 elements or more.

// ------------------------------------------------------------------ work splitting

// Calls body(begin, end) on chunks of contiguous items of [0, total) (thread_pool.h): neighbouring
// items touch neighbouring memory. `work` (element visits) decides whether threads pay off.
template <class Body>
void split_range(int64_t total, int64_t work, const Body& body) {
  parallel_for(threads_for(work), total, body);
}

inline int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Outputs at least this large are written with non-temporal stores where the layout keeps
// every vector store aligned: no read-for-ownership of lines that are fully overwritten, and the
// result does not evict the input from cache. Smaller outputs (VGG16 at batch 1) stay in cache
// for the next layer. Same threshold as the ReLU kernels.
constexpr int64_t kStreamBytes = int64_t(16) << 20;

// V::stream writes 16-byte pieces, so 16-byte alignment (what NumPy's allocator gives) suffices.
inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// Output positions o whose whole window [o*stride - pad, o*stride - pad + k) lies inside [0, in).
inline void full_window_range(int64_t out, int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t* lo,
                              int64_t* hi) {
  *lo = clamp64((pad + stride - 1) / stride, 0, out);  // o*stride - pad >= 0
  const int64_t last = in - k + pad;                   // o*stride <= in - k + pad
  *hi = last < 0 ? 0 : clamp64(last / stride + 1, *lo, out);
}

// ------------------------------------------------------------------ scalar pieces (== ref)

template <class T>
inline bool replaces_scalar(T candidate, T best) {
  return candidate > best || (candidate != candidate && best == best);
}

// One output of one plane, clipped window [h0,h1) x [w0,w1): the reference loop.
template <class T>
inline void window_max_scalar(const T* xp, int64_t W, int64_t h0, int64_t h1, int64_t w0, int64_t w1, T* y,
                              int64_t* idx) {
  int64_t best_i = h0 * W + w0;
  T best = xp[best_i];
  for (int64_t h = h0; h < h1; ++h)
    for (int64_t w = w0; w < w1; ++w)
      if (replaces_scalar(xp[h * W + w], best)) {
        best = xp[h * W + w];
        best_i = h * W + w;
      }
  *y = best;
  *idx = best_i;
}

// ------------------------------------------------------------------ forward, NCHW

// Column access patterns of the vector body: how lane l reads x[row][ws + j + l*stride].
enum ColumnMode { kStride1 = 1, kStride2 = 2, kAnyStride = 0, kPair2x2 = 3 };

// One output row (n, c, oh) of y (Q values) and indices. Lanes run along q; the outputs whose
// window crosses the left/right border are done by the scalar loop, the rest in vectors.
// Mode kPair2x2 (window width 2, stride 2, the VGG case) loads each window row once as two
// vectors and splits it into even and odd columns: 2 loads + 2 permutes per window row.
template <class V, int kMode>
void maxpool_fwd_nchw_row(const Pool2dParams& p, const typename V::T* xp, typename V::T* yr, int64_t* ir, int64_t oh,
                          int64_t qlo, int64_t qhi) {
  using T = typename V::T;
  const int64_t W = p.W, s = p.stride_w;
  const int64_t h0 = clamp64(oh * p.stride_h - p.pad_top, 0, p.H);
  const int64_t h1 = clamp64(oh * p.stride_h - p.pad_top + p.R, 0, p.H);
  auto scalar = [&](int64_t q) {
    const int64_t w0 = clamp64(q * s - p.pad_left, 0, W), w1 = clamp64(q * s - p.pad_left + p.S, 0, W);
    window_max_scalar(xp, W, h0, h1, w0, w1, yr + q, ir + q);
  };
  for (int64_t q = 0; q < qlo; ++q) scalar(q);
  for (int64_t q = qlo; q < qhi; q += V::L) {
    const bool full = qhi - q >= V::L;
    const typename V::M m = full ? V::ones() : V::tail(qhi - q);
    const int64_t ws = q * s - p.pad_left;  // first window column of lane 0
    typename V::Vec best = V::zero();
    typename V::I best_i = V::broadcast_index(0);
    bool first = true;
    auto consider = [&](typename V::Vec c, int64_t flat) {  // flat: h*W + column of lane 0
      const typename V::I ci = V::iota(flat, s);
      if (first) {
        best = c;
        best_i = ci;
        first = false;
        return;
      }
      const typename V::M r = V::replaces(c, best);
      best = V::select(r, best, c);
      best_i = V::select(r, best_i, ci);
    };
    for (int64_t h = h0; h < h1; ++h) {
      const T* row = xp + h * W + ws;
      if (kMode == kPair2x2) {
        typename V::Vec even, odd;
        if (full) V::deinterleave(row, &even, &odd);
        else {
          even = V::gather(row, 2, m);
          odd = V::gather(row + 1, 2, m);
        }
        consider(even, h * W + ws);
        consider(odd, h * W + ws + 1);
      } else {
        for (int64_t j = 0; j < p.S; ++j) {
          typename V::Vec c;
          if (!full) c = V::gather(row + j, s, m);
          else if (kMode == kStride1) c = V::load(row + j);
          else if (kMode == kStride2) c = V::stride2(row + j);
          else c = V::gather(row + j, s, m);
          consider(c, h * W + ws + j);
        }
      }
    }
    if (full) {
      V::store(yr + q, best);
      V::store_index(ir + q, best_i);
    } else {
      V::store(yr + q, best, m);
      V::store_index(ir + q, best_i, m);
    }
  }
  for (int64_t q = qhi < qlo ? qlo : qhi; q < p.Q; ++q) scalar(q);
}

template <class V, int kMode>
void maxpool_fwd_nchw_mode(const Pool2dParams& p, const typename V::T* x, typename V::T* y, int64_t* idx) {
  int64_t qlo, qhi;
  full_window_range(p.Q, p.W, p.S, p.stride_w, p.pad_left, &qlo, &qhi);
  split_range(p.N * p.C * p.P, p.y_size() * p.R * p.S, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t nc = row / p.P, oh = row % p.P;
      maxpool_fwd_nchw_row<V, kMode>(p, x + nc * p.H * p.W, y + row * p.Q, idx + row * p.Q, oh, qlo, qhi);
    }
  });
}

// x (N,C,H,W) -> y, indices (N,C,P,Q)
template <class V>
void maxpool_fwd_nchw(const Pool2dParams& p, const typename V::T* x, typename V::T* y, int64_t* idx) {
  if (p.S == 2 && p.stride_w == 2) maxpool_fwd_nchw_mode<V, kPair2x2>(p, x, y, idx);
  else if (p.stride_w == 1) maxpool_fwd_nchw_mode<V, kStride1>(p, x, y, idx);
  else if (p.stride_w == 2) maxpool_fwd_nchw_mode<V, kStride2>(p, x, y, idx);
  else maxpool_fwd_nchw_mode<V, kAnyStride>(p, x, y, idx);
}

// ------------------------------------------------------------------ forward, NHWC

// x (N,H,W,C) -> y, indices (N,P,Q,C). Work items are output pixels (so batch 1 splits well);
// lanes run along channels, where the winning index of a window cell is the same for every lane.
template <class V, bool kStream>
void maxpool_fwd_nhwc_impl(const Pool2dParams& p, const typename V::T* x, typename V::T* y, int64_t* idx) {
  using T = typename V::T;
  const int64_t C = p.C;
  split_range(p.N * p.P * p.Q, p.y_size() * p.R * p.S, [&](int64_t begin, int64_t end) {
    for (int64_t pix = begin; pix < end; ++pix) {
      const int64_t q = pix % p.Q, oh = (pix / p.Q) % p.P, n = pix / (p.Q * p.P);
      const int64_t h0 = clamp64(oh * p.stride_h - p.pad_top, 0, p.H);
      const int64_t h1 = clamp64(oh * p.stride_h - p.pad_top + p.R, 0, p.H);
      const int64_t w0 = clamp64(q * p.stride_w - p.pad_left, 0, p.W);
      const int64_t w1 = clamp64(q * p.stride_w - p.pad_left + p.S, 0, p.W);
      const T* xn = x + n * p.H * p.W * C;
      T* yv = y + pix * C;
      int64_t* iv = idx + pix * C;
      for (int64_t c = 0; c < C; c += V::L) {
        const bool full = C - c >= V::L;
        const typename V::M m = full ? V::ones() : V::tail(C - c);
        const T* first = xn + (h0 * p.W + w0) * C + c;
        typename V::Vec best = full ? V::load(first) : V::load(first, m);
        typename V::I best_i = V::broadcast_index(h0 * p.W + w0);
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = (h == h0 ? w0 + 1 : w0); w < w1; ++w) {
            const T* src = xn + (h * p.W + w) * C + c;
            const typename V::Vec v = full ? V::load(src) : V::load(src, m);
            const typename V::M r = V::replaces(v, best);
            best = V::select(r, best, v);
            best_i = V::select(r, best_i, V::broadcast_index(h * p.W + w));
          }
        if (kStream) {
          V::stream(yv + c, best);
          V::stream_index(iv + c, best_i);
        }  // C % L == 0
        else if (full) {
          V::store(yv + c, best);
          V::store_index(iv + c, best_i);
        } else {
          V::store(yv + c, best, m);
          V::store_index(iv + c, best_i, m);
        }
      }
    }
    if (kStream) _mm_sfence();
  });
}

// x (N,H,W,C) -> y, indices (N,P,Q,C); streaming stores for large outputs when C is a multiple
// of the vector width (then every store of y and indices is 16-byte aligned like the arrays).
template <class V>
void maxpool_fwd_nhwc(const Pool2dParams& p, const typename V::T* x, typename V::T* y, int64_t* idx) {
  const bool stream = p.y_size() * int64_t(sizeof(typename V::T) + sizeof(int64_t)) >= kStreamBytes &&
                      p.C % V::L == 0 && aligned16(y) && aligned16(idx);
  if (stream) maxpool_fwd_nhwc_impl<V, true>(p, x, y, idx);
  else maxpool_fwd_nhwc_impl<V, false>(p, x, y, idx);
}

// ------------------------------------------------------------------ entry point (backward: maxpool_bwd.inl)

template <class V>
void maxpool2d_fwd_simd(const Pool2dParams& p, const typename V::T* x, typename V::T* y, int64_t* idx) {
  if (p.H * p.W > int64_t(0x7fffffff)) {  // beyond the 32-bit index lanes
    ref::maxpool2d_fwd(p, x, y, idx);
    return;
  }
  if (p.layout == Layout::NCHW) maxpool_fwd_nchw<V>(p, x, y, idx);
  else maxpool_fwd_nhwc<V>(p, x, y, idx);
}
