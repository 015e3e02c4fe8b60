// Portable pooling (contracts in pool2d.h), the scalar path.
// Max pooling, forward (value + flat index of the winner) and backward (scatter of grad_y to the
// winners), NCHW and NHWC: windows are scanned in row-major order and a later element wins only
// when strictly greater, so ties go to the first; a NaN wins and stays (NaN propagates like in
// PyTorch). Padded cells are never visited, so they never win. These loops are the reference of
// maxpool.inl.
// Average pooling: avgpool.inl compiled without ISA flags (every build computes the same sums in
// the same order; the independent check is the float64 oracle fastconv.reference.avg_pool2d).
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>

#include "../runtime/loops.h"
#include "../runtime/scratch.h"
#include "pool2d.h"

namespace fastconv {
namespace ref {
namespace {

template <typename T>
inline bool replaces(T candidate, T best) {
  return candidate > best || (candidate != candidate && best == best);
}

// x (N,C,H,W) -> y, indices (N,C,P,Q); one (n, c) plane per iteration.
template <typename T>
void maxpool2d_fwd_nchw(const Pool2dParams& p, const T* x, T* y, int64_t* idx) {
  parallel_for(threads_for(p.y_size() * p.R * p.S), p.N * p.C, [&](int64_t nc_begin, int64_t nc_end) {
    for (int64_t nc = nc_begin; nc < nc_end; ++nc) {
      const T* xp = x + nc * p.H * p.W;
      for (int64_t oh = 0; oh < p.P; ++oh) {
        const int64_t h0 = std::max<int64_t>(oh * p.stride_h - p.pad_top, 0);
        const int64_t h1 = std::min<int64_t>(oh * p.stride_h - p.pad_top + p.R, p.H);
        for (int64_t q = 0; q < p.Q; ++q) {
          const int64_t w0 = std::max<int64_t>(q * p.stride_w - p.pad_left, 0);
          const int64_t w1 = std::min<int64_t>(q * p.stride_w - p.pad_left + p.S, p.W);
          int64_t best_i = h0 * p.W + w0;
          T best = xp[best_i];
          for (int64_t h = h0; h < h1; ++h)
            for (int64_t iw = w0; iw < w1; ++iw)
              if (replaces(xp[h * p.W + iw], best)) {
                best = xp[h * p.W + iw];
                best_i = h * p.W + iw;
              }
          const int64_t o = (nc * p.P + oh) * p.Q + q;
          y[o] = best;
          idx[o] = best_i;
        }
      }
    }
  });
}

// x (N,H,W,C) -> y, indices (N,P,Q,C); one (n, output row) per iteration, channels innermost.
template <typename T>
void maxpool2d_fwd_nhwc(const Pool2dParams& p, const T* x, T* y, int64_t* idx) {
  parallel_for(threads_for(p.y_size() * p.R * p.S), p.N * p.P, [&](int64_t np_begin, int64_t np_end) {
    for (int64_t np = np_begin; np < np_end; ++np) {
      const int64_t n = np / p.P, oh = np % p.P;
      const int64_t h0 = std::max<int64_t>(oh * p.stride_h - p.pad_top, 0);
      const int64_t h1 = std::min<int64_t>(oh * p.stride_h - p.pad_top + p.R, p.H);
      for (int64_t q = 0; q < p.Q; ++q) {
        const int64_t w0 = std::max<int64_t>(q * p.stride_w - p.pad_left, 0);
        const int64_t w1 = std::min<int64_t>(q * p.stride_w - p.pad_left + p.S, p.W);
        T* yv = y + (np * p.Q + q) * p.C;
        int64_t* iv = idx + (np * p.Q + q) * p.C;
        const T* first = x + ((n * p.H + h0) * p.W + w0) * p.C;
        std::copy(first, first + p.C, yv);
        std::fill(iv, iv + p.C, h0 * p.W + w0);
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t iw = w0; iw < w1; ++iw) {
            const T* xv = x + ((n * p.H + h) * p.W + iw) * p.C;
            for (int64_t c = 0; c < p.C; ++c)
              if (replaces(xv[c], yv[c])) {
                yv[c] = xv[c];
                iv[c] = h * p.W + iw;
              }
          }
      }
    }
  });
}

// grad_y, indices (N,C,P,Q) -> grad_x (N,C,H,W); one plane per iteration (no write races).
template <typename T>
bool maxpool2d_bwd_nchw(const Pool2dParams& p, const T* gy, const int64_t* idx, T* gx) {
  const int64_t plane = p.H * p.W, out_plane = p.P * p.Q;
  std::atomic<bool> ok{true};
  parallel_for(threads_for(p.x_size()), p.N * p.C, [&](int64_t nc_begin, int64_t nc_end) {
    for (int64_t nc = nc_begin; nc < nc_end; ++nc) {
      T* gxp = gx + nc * plane;
      std::fill(gxp, gxp + plane, T(0));
      for (int64_t o = nc * out_plane; o < (nc + 1) * out_plane; ++o) {
        const int64_t i = idx[o];
        if (i < 0 || i >= plane) {
          ok.store(false, std::memory_order_relaxed);
          continue;
        }
        gxp[i] += gy[o];
      }
    }
  });
  return ok.load();
}

// grad_y, indices (N,P,Q,C) -> grad_x (N,H,W,C); one image per iteration (windows overlap
// across output rows when stride < kernel, so rows cannot be split between threads).
template <typename T>
bool maxpool2d_bwd_nhwc(const Pool2dParams& p, const T* gy, const int64_t* idx, T* gx) {
  const int64_t plane = p.H * p.W;
  std::atomic<bool> ok{true};
  parallel_for(threads_for(p.x_size()), p.N, [&](int64_t n_begin, int64_t n_end) {
    for (int64_t n = n_begin; n < n_end; ++n) {
      T* gxn = gx + n * plane * p.C;
      std::fill(gxn, gxn + plane * p.C, T(0));
      const int64_t o0 = n * p.P * p.Q * p.C, o1 = (n + 1) * p.P * p.Q * p.C;
      for (int64_t o = o0; o < o1; ++o) {
        const int64_t i = idx[o], c = o % p.C;
        if (i < 0 || i >= plane) {
          ok.store(false, std::memory_order_relaxed);
          continue;
        }
        gxn[i * p.C + c] += gy[o];
      }
    }
  });
  return ok.load();
}

}  // namespace

template <typename T>
void maxpool2d_fwd(const Pool2dParams& p, const T* x, T* y, int64_t* idx) {
  if (p.layout == Layout::NCHW) maxpool2d_fwd_nchw(p, x, y, idx);
  else maxpool2d_fwd_nhwc(p, x, y, idx);
}

template <typename T>
bool maxpool2d_bwd(const Pool2dParams& p, const T* gy, const int64_t* idx, T* gx) {
  return p.layout == Layout::NCHW ? maxpool2d_bwd_nchw(p, gy, idx, gx) : maxpool2d_bwd_nhwc(p, gy, idx, gx);
}

template void maxpool2d_fwd<float>(const Pool2dParams&, const float*, float*, int64_t*);
template void maxpool2d_fwd<double>(const Pool2dParams&, const double*, double*, int64_t*);
template bool maxpool2d_bwd<float>(const Pool2dParams&, const float*, const int64_t*, float*);
template bool maxpool2d_bwd<double>(const Pool2dParams&, const double*, const int64_t*, double*);

namespace {
#include "avgpool.inl"
}  // namespace

template <typename T>
Pool2dOps<T> pool2d_ops() {
  return Pool2dOps<T>{maxpool2d_fwd<T>, maxpool2d_bwd<T>, avgpool_detail::avgpool2d_forward<T>,
                      avgpool_detail::avgpool2d_backward<T>};
}
template Pool2dOps<float> pool2d_ops<float>();
template Pool2dOps<double> pool2d_ops<double>();

}  // namespace ref
}  // namespace fastconv
