// Max pooling backward, the second half of maxpool.inl (its top comment states the contract and
// lists the kernels and the vector operations): included right after it by pool2d.inl, inside the
// same anonymous namespace, so it uses maxpool.inl's helpers and includes nothing itself.

// ------------------------------------------------------------------ backward

// Row bands: when windows do not overlap vertically (stride_h >= R), input row h can only be
// the winner of output row owner(h); band(oh) = the input rows owned by output row oh
// (the rows of its window plus the uncovered rows up to the next window; the first and last
// band stretch to the borders). Each work item zeroes its band of grad_x and scatters its
// output row into it, so grad_x is written once, in order, by one thread, while it is still
// in L1/L2. An index outside its own band (possible only with indices that max_pool2d did not
// produce) makes the caller redo the whole tensor with the plane-wise scatter below, which
// also reports out-of-range indices.
inline void row_band(const Pool2dParams& p, int64_t oh, int64_t* b0, int64_t* b1) {
  *b0 = oh == 0 ? 0 : clamp64(oh * p.stride_h - p.pad_top, 0, p.H);
  *b1 = oh == p.P - 1 ? p.H : clamp64((oh + 1) * p.stride_h - p.pad_top, 0, p.H);
}

// dst[0, n) = src[0, n) with streaming stores once dst is vector-aligned (scalar head and tail).
template <class V>
void stream_copy(typename V::T* dst, const typename V::T* src, int64_t n) {
  int64_t i = 0;
  for (; i < n && !aligned16(dst + i); ++i) dst[i] = src[i];
  for (; i + V::L <= n; i += V::L) V::stream(dst + i, V::load(src + i));
  for (; i < n; ++i) dst[i] = src[i];
}

// grad_y, indices (N,C,P,Q) -> grad_x (N,C,H,W); work item = one output row (n, c, oh).
// Large outputs: the band is built in a small per-thread buffer (L1) and streamed out, so
// grad_x lines are written once without being read first.
template <class V>
bool maxpool_bwd_nchw_bands(const Pool2dParams& p, const typename V::T* gy, const int64_t* idx, typename V::T* gx) {
  using T = typename V::T;
  const bool stream = p.x_size() * int64_t(sizeof(T)) >= kStreamBytes;
  int64_t band_max = 0;
  for (int64_t oh = 0; oh < p.P; ++oh) {
    int64_t b0, b1;
    row_band(p, oh, &b0, &b1);
    band_max = b1 - b0 > band_max ? b1 - b0 : band_max;
  }
  std::atomic<bool> ok{true};
  split_range(p.N * p.C * p.P, p.x_size(), [&](int64_t begin, int64_t end) {
    bool mine = true;
    T* buffer = stream ? static_cast<T*>(std::malloc(sizeof(T) * band_max * p.W)) : nullptr;
    if (stream && !buffer) mine = false;  // no memory: let the plane-wise path do it in place
    for (int64_t row = begin; row < end && mine; ++row) {
      const int64_t nc = row / p.P, oh = row % p.P;
      int64_t b0, b1;
      row_band(p, oh, &b0, &b1);
      T* gxp = gx + nc * p.H * p.W;
      T* band = stream ? buffer : gxp + b0 * p.W;  // band[0] is cell (b0, 0)
      std::memset(band, 0, sizeof(T) * (b1 - b0) * p.W);
      const int64_t lo = b0 * p.W, hi = b1 * p.W;
      const T* g = gy + row * p.Q;
      const int64_t* ix = idx + row * p.Q;
      for (int64_t q = 0; q < p.Q; ++q) {
        const int64_t i = ix[q];
        if (i < lo || i >= hi) {
          mine = false;
          break;
        }
        band[i - lo] += g[q];
      }
      if (stream && mine) stream_copy<V>(gxp + lo, band, hi - lo);
    }
    if (stream) {
      _mm_sfence();
      std::free(buffer);
    }
    if (!mine) {
      ok.store(false, std::memory_order_relaxed);
    }
  });
  return ok.load();
}

// grad_y, indices (N,P,Q,C) -> grad_x (N,H,W,C) when windows overlap in neither direction
// (stride >= window): every grad_x cell belongs to at most one window, so instead of scattering
// it is computed directly: cell (h, w) of the window of output (oh, q) gets grad_y where the
// index equals h*W + w, else 0 (one compare and one vector store per cell and channel vector).
// Work item = one output row (n, oh) and its row band; cells outside every window (borders,
// gaps when stride > window) are zeroed first. An index outside its window leaves some lane
// unmatched: the caller then falls back to the plane-wise scatter.
template <class V>
bool maxpool_bwd_nhwc_tiles(const Pool2dParams& p, const typename V::T* gy, const int64_t* idx, typename V::T* gx) {
  using T = typename V::T;
  const int64_t C = p.C, W = p.W;
  const bool tiled_exactly = p.stride_h == p.R && p.stride_w == p.S && p.pad_top == 0 && p.pad_left == 0 &&
                             p.P * p.R == p.H && p.Q * p.S == p.W;
  // Exact tiling writes every grad_x cell exactly once, so large outputs can stream.
  const bool stream =
      tiled_exactly && p.x_size() * int64_t(sizeof(T)) >= kStreamBytes && C % V::L == 0 && aligned16(gx);
  std::atomic<bool> ok{true};
  split_range(p.N * p.P, p.x_size(), [&](int64_t begin, int64_t end) {
    bool mine = true;
    for (int64_t row = begin; row < end && mine; ++row) {
      const int64_t n = row / p.P, oh = row % p.P;
      int64_t b0, b1;
      row_band(p, oh, &b0, &b1);
      T* gxn = gx + n * p.H * W * C;
      if (!tiled_exactly) std::memset(gxn + b0 * W * C, 0, sizeof(T) * (b1 - b0) * W * C);
      const int64_t h0 = clamp64(oh * p.stride_h - p.pad_top, 0, p.H);
      const int64_t h1 = clamp64(oh * p.stride_h - p.pad_top + p.R, 0, p.H);
      for (int64_t q = 0; q < p.Q && mine; ++q) {
        const int64_t w0 = clamp64(q * p.stride_w - p.pad_left, 0, W);
        const int64_t w1 = clamp64(q * p.stride_w - p.pad_left + p.S, 0, W);
        const int64_t o = (row * p.Q + q) * C;
        for (int64_t c = 0; c < C; c += V::L) {
          const bool full = C - c >= V::L;
          const typename V::M m = full ? V::ones() : V::tail(C - c);
          const typename V::LI li = full ? V::load_index(idx + o + c) : V::load_index(idx + o + c, m);
          const typename V::Vec g = V::plus_zero(full ? V::load(gy + o + c) : V::load(gy + o + c, m));
          typename V::M found = V::none();
          for (int64_t h = h0; h < h1; ++h)
            for (int64_t w = w0; w < w1; ++w) {
              const typename V::M hit = V::index_eq(li, h * W + w);
              T* dst = gxn + (h * W + w) * C + c;
              if (stream) V::stream(dst, V::keep(hit, g));
              else if (full) V::store(dst, V::keep(hit, g));
              else V::store(dst, V::keep(hit, g), m);
              found = V::either(found, hit);
            }
          if (!V::same(V::both(found, m), m)) {
            mine = false;
            break;
          }
        }
      }
    }
    if (stream) _mm_sfence();
    if (!mine) {
      ok.store(false, std::memory_order_relaxed);
    }
  });
  return ok.load();
}

// grad_y, indices (N,P,Q,C) -> grad_x (N,H,W,C); work item = one output row (n, oh), all channels.
template <class T>
bool maxpool_bwd_nhwc_bands(const Pool2dParams& p, const T* gy, const int64_t* idx, T* gx) {
  const int64_t C = p.C;
  std::atomic<bool> ok{true};
  split_range(p.N * p.P, p.x_size(), [&](int64_t begin, int64_t end) {
    bool mine = true;
    for (int64_t row = begin; row < end && mine; ++row) {
      const int64_t n = row / p.P, oh = row % p.P;
      int64_t b0, b1;
      row_band(p, oh, &b0, &b1);
      T* gxn = gx + n * p.H * p.W * C;
      std::memset(gxn + b0 * p.W * C, 0, sizeof(T) * (b1 - b0) * p.W * C);
      const int64_t lo = b0 * p.W, hi = b1 * p.W;
      const T* g = gy + row * p.Q * C;
      const int64_t* ix = idx + row * p.Q * C;
      for (int64_t o = 0; o < p.Q * C; o += C)
        for (int64_t c = 0; c < C; ++c) {
          const int64_t i = ix[o + c];
          if (i < lo || i >= hi) {
            mine = false;
            o = p.Q * C;
            break;
          }
          gxn[i * C + c] += g[o + c];
        }
    }
    if (!mine) {
      ok.store(false, std::memory_order_relaxed);
    }
  });
  return ok.load();
}

// Any indices: zero, then scatter-add in ascending output order, one (n, c) plane per work item.
template <class T>
bool maxpool_bwd_nchw_planes(const Pool2dParams& p, const T* gy, const int64_t* idx, T* gx) {
  const int64_t plane = p.H * p.W, out_plane = p.P * p.Q;
  std::atomic<bool> ok{true};
  split_range(p.N * p.C, p.x_size(), [&](int64_t begin, int64_t end) {
    bool mine = true;
    for (int64_t nc = begin; nc < end; ++nc) {
      T* gxp = gx + nc * plane;
      std::memset(gxp, 0, sizeof(T) * plane);
      for (int64_t o = nc * out_plane; o < (nc + 1) * out_plane; ++o) {
        const int64_t i = idx[o];
        if (i < 0 || i >= plane) {
          mine = false;
          continue;
        }
        gxp[i] += gy[o];
      }
    }
    if (!mine) {
      ok.store(false, std::memory_order_relaxed);
    }
  });
  return ok.load();
}

// Any indices, NHWC: work item = (image, block of channels), so batch 1 still splits.
template <class T>
bool maxpool_bwd_nhwc_planes(const Pool2dParams& p, const T* gy, const int64_t* idx, T* gx) {
  const int64_t C = p.C, plane = p.H * p.W, out_plane = p.P * p.Q;
  // 16 channels = one cache line of floats: blocks of whole lines keep threads off each
  // other's lines when C is a multiple of 16.
  const int64_t want_blocks = (num_threads() + p.N - 1) / p.N;
  int64_t cb = (C + want_blocks - 1) / want_blocks;
  cb = (cb + 15) / 16 * 16;
  const int64_t blocks = (C + cb - 1) / cb;
  std::atomic<bool> ok{true};
  split_range(p.N * blocks, p.x_size(), [&](int64_t begin, int64_t end) {
    bool mine = true;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / blocks, c0 = (item % blocks) * cb, c1 = c0 + cb < C ? c0 + cb : C;
      T* gxn = gx + n * plane * C;
      for (int64_t i = 0; i < plane; ++i) std::memset(gxn + i * C + c0, 0, sizeof(T) * (c1 - c0));
      const T* g = gy + n * out_plane * C;
      const int64_t* ix = idx + n * out_plane * C;
      for (int64_t o = 0; o < out_plane * C; o += C)
        for (int64_t c = c0; c < c1; ++c) {
          const int64_t i = ix[o + c];
          if (i < 0 || i >= plane) {
            mine = false;
            continue;
          }
          gxn[i * C + c] += g[o + c];
        }
    }
    if (!mine) {
      ok.store(false, std::memory_order_relaxed);
    }
  });
  return ok.load();
}

// ------------------------------------------------------------------ entry point

template <class V>
bool maxpool2d_bwd_simd(const Pool2dParams& p, const typename V::T* gy, const int64_t* idx, typename V::T* gx) {
  const bool nchw = p.layout == Layout::NCHW;
  if (!nchw && p.stride_h >= p.R && p.stride_w >= p.S && p.H * p.W <= int64_t(0x7fffffff)) {
    if (maxpool_bwd_nhwc_tiles<V>(p, gy, idx, gx)) return true;
  } else if (p.stride_h >= p.R) {
    const bool ok = nchw ? maxpool_bwd_nchw_bands<V>(p, gy, idx, gx) : maxpool_bwd_nhwc_bands(p, gy, idx, gx);
    if (ok) return true;
  }
  return nchw ? maxpool_bwd_nchw_planes(p, gy, idx, gx) : maxpool_bwd_nhwc_planes(p, gy, idx, gx);
}
