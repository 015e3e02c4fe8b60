// Portable conv2d kernels (forward, backward-data, backward-weight), NCHW and NHWC, any
// stride/padding/dilation. Plain loops, the threads splitting an outer dimension whose iterations
// write disjoint outputs (no atomics, deterministic). Innermost loops run along the contiguous
// dimension: output width q in NCHW, channels in NHWC.
#include <algorithm>
#include <cstring>

#include "../eltwise/eltwise.h"
#include "../runtime/loops.h"
#include "algorithm.h"
#include "conv2d.h"

namespace fastconv {
namespace ref {
namespace {

// x (N,C,H,W), w (K,C,R,S), bias (K) -> y (N,K,P,Q); one (n, k) output plane per iteration.
template <typename T>
void conv2d_fwd_nchw(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y) {
  const int64_t plane = p.P * p.Q;
  parallel_for(threads_for(p.macs()), p.N * p.K, [&](int64_t nk_begin, int64_t nk_end) {
    for (int64_t nk = nk_begin; nk < nk_end; ++nk) {
      const int64_t n = nk / p.K, k = nk % p.K;
      T* yp = y + nk * plane;
      std::fill(yp, yp + plane, bias ? bias[k] : T(0));
      for (int64_t c = 0; c < p.C; ++c) {
        const T* xp = x + (n * p.C + c) * p.H * p.W;
        const T* wp = w + (k * p.C + c) * p.R * p.S;
        for (int64_t r = 0; r < p.R; ++r) {
          int64_t p0, p1;
          valid_output_range(p.P, p.H, p.stride_h, r * p.dil_h - p.pad_top, &p0, &p1);
          for (int64_t s = 0; s < p.S; ++s) {
            const T wv = wp[r * p.S + s];
            const int64_t woff = s * p.dil_w - p.pad_left;
            int64_t q0, q1;
            valid_output_range(p.Q, p.W, p.stride_w, woff, &q0, &q1);
            for (int64_t oh = p0; oh < p1; ++oh) {
              const T* xrow = xp + (oh * p.stride_h + r * p.dil_h - p.pad_top) * p.W + woff;
              T* yrow = yp + oh * p.Q;
              for (int64_t q = q0; q < q1; ++q) yrow[q] += wv * xrow[q * p.stride_w];
            }
          }
        }
      }
      apply_epilogue(p.epilogue, T(p.alpha), plane, yp);
    }
  });
}

// x (N,H,W,C), w (R,S,C,K), bias (K) -> y (N,P,Q,K); one (n, output row) per iteration.
template <typename T>
void conv2d_fwd_nhwc(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y) {
  parallel_for(threads_for(p.macs()), p.N * p.P, [&](int64_t np_begin, int64_t np_end) {
    for (int64_t np = np_begin; np < np_end; ++np) {
      const int64_t n = np / p.P, oh = np % p.P;
      for (int64_t q = 0; q < p.Q; ++q) {
        T* yv = y + (np * p.Q + q) * p.K;
        for (int64_t k = 0; k < p.K; ++k) yv[k] = bias ? bias[k] : T(0);
        for (int64_t r = 0; r < p.R; ++r) {
          const int64_t h = oh * p.stride_h - p.pad_top + r * p.dil_h;
          if (h < 0 || h >= p.H) continue;
          for (int64_t s = 0; s < p.S; ++s) {
            const int64_t iw = q * p.stride_w - p.pad_left + s * p.dil_w;
            if (iw < 0 || iw >= p.W) continue;
            const T* xv = x + ((n * p.H + h) * p.W + iw) * p.C;
            const T* wrs = w + (r * p.S + s) * p.C * p.K;
            for (int64_t c = 0; c < p.C; ++c) {
              const T xc = xv[c];
              const T* wrow = wrs + c * p.K;
              for (int64_t k = 0; k < p.K; ++k) yv[k] += xc * wrow[k];
            }
          }
        }
        apply_epilogue(p.epilogue, T(p.alpha), p.K, yv);
      }
    }
  });
}

// grad_y (N,K,P,Q), w (K,C,R,S) -> grad_x (N,C,H,W): each iteration owns one (n, c) plane of
// grad_x and scatters every grad_y element that reads it.
template <typename T>
void conv2d_bwd_data_nchw(const Conv2dParams& p, const T* gy, const T* w, T* gx) {
  parallel_for(threads_for(p.macs()), p.N * p.C, [&](int64_t nc_begin, int64_t nc_end) {
    for (int64_t nc = nc_begin; nc < nc_end; ++nc) {
      const int64_t n = nc / p.C, c = nc % p.C;
      T* gxp = gx + nc * p.H * p.W;
      std::fill(gxp, gxp + p.H * p.W, T(0));
      for (int64_t k = 0; k < p.K; ++k) {
        const T* gyp = gy + (n * p.K + k) * p.P * p.Q;
        const T* wp = w + (k * p.C + c) * p.R * p.S;
        for (int64_t r = 0; r < p.R; ++r) {
          int64_t p0, p1;
          valid_output_range(p.P, p.H, p.stride_h, r * p.dil_h - p.pad_top, &p0, &p1);
          for (int64_t s = 0; s < p.S; ++s) {
            const T wv = wp[r * p.S + s];
            const int64_t woff = s * p.dil_w - p.pad_left;
            int64_t q0, q1;
            valid_output_range(p.Q, p.W, p.stride_w, woff, &q0, &q1);
            for (int64_t oh = p0; oh < p1; ++oh) {
              T* gxrow = gxp + (oh * p.stride_h + r * p.dil_h - p.pad_top) * p.W + woff;
              const T* gyrow = gyp + oh * p.Q;
              for (int64_t q = q0; q < q1; ++q) gxrow[q * p.stride_w] += wv * gyrow[q];
            }
          }
        }
      }
    }
  });
}

// grad_y (N,P,Q,K), w (R,S,C,K) -> grad_x (N,H,W,C): gathers, for each input pixel, the output
// pixels whose window covers it; one (n, input row) per iteration.
template <typename T>
void conv2d_bwd_data_nhwc(const Conv2dParams& p, const T* gy, const T* w, T* gx) {
  parallel_for(threads_for(p.macs()), p.N * p.H, [&](int64_t nh_begin, int64_t nh_end) {
    for (int64_t nh = nh_begin; nh < nh_end; ++nh) {
      const int64_t n = nh / p.H, h = nh % p.H;
      for (int64_t iw = 0; iw < p.W; ++iw) {
        T* gxv = gx + (nh * p.W + iw) * p.C;
        std::fill(gxv, gxv + p.C, T(0));
        for (int64_t r = 0; r < p.R; ++r) {
          const int64_t th = h + p.pad_top - r * p.dil_h;
          if (th < 0 || th % p.stride_h) continue;
          const int64_t oh = th / p.stride_h;
          if (oh >= p.P) continue;
          for (int64_t s = 0; s < p.S; ++s) {
            const int64_t tw = iw + p.pad_left - s * p.dil_w;
            if (tw < 0 || tw % p.stride_w) continue;
            const int64_t q = tw / p.stride_w;
            if (q >= p.Q) continue;
            const T* gyv = gy + ((n * p.P + oh) * p.Q + q) * p.K;
            const T* wrs = w + (r * p.S + s) * p.C * p.K;
            for (int64_t c = 0; c < p.C; ++c) {
              const T* wrow = wrs + c * p.K;
              T acc = 0;
              for (int64_t k = 0; k < p.K; ++k) acc += gyv[k] * wrow[k];
              gxv[c] += acc;
            }
          }
        }
      }
    }
  });
}

// grad_y (N,K,P,Q), x (N,C,H,W) -> grad_w (K,C,R,S), grad_bias (K); one (k, c) filter per
// iteration, each tap a full reduction over (n, p, q).
template <typename T>
void conv2d_bwd_weight_nchw(const Conv2dParams& p, const T* gy, const T* x, T* gw, T* gb) {
  parallel_for(threads_for(p.macs()), p.K * p.C, [&](int64_t kc_begin, int64_t kc_end) {
    for (int64_t kc = kc_begin; kc < kc_end; ++kc) {
      const int64_t k = kc / p.C, c = kc % p.C;
      for (int64_t r = 0; r < p.R; ++r) {
        int64_t p0, p1;
        valid_output_range(p.P, p.H, p.stride_h, r * p.dil_h - p.pad_top, &p0, &p1);
        for (int64_t s = 0; s < p.S; ++s) {
          const int64_t woff = s * p.dil_w - p.pad_left;
          int64_t q0, q1;
          valid_output_range(p.Q, p.W, p.stride_w, woff, &q0, &q1);
          T acc = 0;
          for (int64_t n = 0; n < p.N; ++n) {
            const T* gyp = gy + (n * p.K + k) * p.P * p.Q;
            const T* xp = x + (n * p.C + c) * p.H * p.W;
            for (int64_t oh = p0; oh < p1; ++oh) {
              const T* xrow = xp + (oh * p.stride_h + r * p.dil_h - p.pad_top) * p.W + woff;
              const T* gyrow = gyp + oh * p.Q;
              for (int64_t q = q0; q < q1; ++q) acc += gyrow[q] * xrow[q * p.stride_w];
            }
          }
          gw[kc * p.R * p.S + r * p.S + s] = acc;
        }
      }
    }
  });
  if (gb) {
    parallel_for(threads_for(p.N * p.K * p.P * p.Q), p.K, [&](int64_t k_begin, int64_t k_end) {
      for (int64_t k = k_begin; k < k_end; ++k) {
        T acc = 0;
        for (int64_t n = 0; n < p.N; ++n) {
          const T* gyp = gy + (n * p.K + k) * p.P * p.Q;
          for (int64_t i = 0; i < p.P * p.Q; ++i) acc += gyp[i];
        }
        gb[k] = acc;
      }
    });
  }
}

// grad_y (N,P,Q,K), x (N,H,W,C) -> grad_w (R,S,C,K), grad_bias (K); one (r, s, c) row of K
// weights per iteration.
template <typename T>
void conv2d_bwd_weight_nhwc(const Conv2dParams& p, const T* gy, const T* x, T* gw, T* gb) {
  parallel_for(threads_for(p.macs()), p.R * p.S * p.C, [&](int64_t rsc_begin, int64_t rsc_end) {
    for (int64_t rsc = rsc_begin; rsc < rsc_end; ++rsc) {
      const int64_t r = rsc / (p.S * p.C), s = (rsc / p.C) % p.S, c = rsc % p.C;
      T* gwrow = gw + rsc * p.K;
      std::fill(gwrow, gwrow + p.K, T(0));
      int64_t p0, p1, q0, q1;
      valid_output_range(p.P, p.H, p.stride_h, r * p.dil_h - p.pad_top, &p0, &p1);
      valid_output_range(p.Q, p.W, p.stride_w, s * p.dil_w - p.pad_left, &q0, &q1);
      for (int64_t n = 0; n < p.N; ++n) {
        for (int64_t oh = p0; oh < p1; ++oh) {
          const int64_t h = oh * p.stride_h + r * p.dil_h - p.pad_top;
          for (int64_t q = q0; q < q1; ++q) {
            const int64_t iw = q * p.stride_w + s * p.dil_w - p.pad_left;
            const T xv = x[((n * p.H + h) * p.W + iw) * p.C + c];
            const T* gyv = gy + ((n * p.P + oh) * p.Q + q) * p.K;
            for (int64_t k = 0; k < p.K; ++k) gwrow[k] += xv * gyv[k];
          }
        }
      }
    }
  });
  if (gb) {
    std::fill(gb, gb + p.K, T(0));
    const int64_t pixels = p.N * p.P * p.Q;
    for (int64_t i = 0; i < pixels; ++i)
      for (int64_t k = 0; k < p.K; ++k) gb[k] += gy[i * p.K + k];
  }
}

}  // namespace

template <typename T>
void conv2d_fwd(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y) {
  if (p.layout == Layout::NCHW) conv2d_fwd_nchw(p, x, w, bias, y);
  else conv2d_fwd_nhwc(p, x, w, bias, y);
}

template <typename T>
void conv2d_bwd_data(const Conv2dParams& p, const T* gy, const T* w, T* gx) {
  if (p.layout == Layout::NCHW) conv2d_bwd_data_nchw(p, gy, w, gx);
  else conv2d_bwd_data_nhwc(p, gy, w, gx);
}

template <typename T>
void conv2d_bwd_weight(const Conv2dParams& p, const T* gy, const T* x, T* gw, T* gb) {
  if (p.layout == Layout::NCHW) conv2d_bwd_weight_nchw(p, gy, x, gw, gb);
  else conv2d_bwd_weight_nhwc(p, gy, x, gw, gb);
}

#define FASTCONV_INSTANTIATE(T)                                                       \
  template void conv2d_fwd<T>(const Conv2dParams&, const T*, const T*, const T*, T*); \
  template void conv2d_bwd_data<T>(const Conv2dParams&, const T*, const T*, T*);      \
  template void conv2d_bwd_weight<T>(const Conv2dParams&, const T*, const T*, T*, T*);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)
#undef FASTCONV_INSTANTIATE

namespace {
// The table's entries record their algorithm like the SIMD dispatch (conv2d.inl).
template <typename T>
void recorded_fwd(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y) {
  record_algorithm(ConvPass::fwd, ConvAlgorithm::reference);
  conv2d_fwd<T>(p, x, w, bias, y);
}
template <typename T>
void recorded_bwd_data(const Conv2dParams& p, const T* gy, const T* w, T* gx) {
  record_algorithm(ConvPass::bwd_data, ConvAlgorithm::reference);
  conv2d_bwd_data<T>(p, gy, w, gx);
}
template <typename T>
void recorded_bwd_weight(const Conv2dParams& p, const T* gy, const T* x, T* gw, T* gb) {
  record_algorithm(ConvPass::bwd_weight, ConvAlgorithm::reference);
  conv2d_bwd_weight<T>(p, gy, x, gw, gb);
}
}  // namespace

template <typename T>
Conv2dOps<T> conv2d_ops() {
  return Conv2dOps<T>{recorded_fwd<T>, recorded_bwd_data<T>, recorded_bwd_weight<T>};
}
template Conv2dOps<float> conv2d_ops<float>();
template Conv2dOps<double> conv2d_ops<double>();

}  // namespace ref
}  // namespace fastconv
