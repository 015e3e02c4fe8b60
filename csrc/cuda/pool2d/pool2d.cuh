// Shared by the pooling kernels (maxpool.cu, avgpool.cu): the window geometry as 32-bit
// fields with fast division, and the batch split that keeps each launch within 32-bit indices.
#pragma once
#include <algorithm>
#include <cstdint>

#include "../common.cuh"
#include "../kernels.h"

namespace fastconv {
namespace cuda {

struct PoolDims {
  int C, H, W, P, Q, R, S, sh, sw, pt, pl;
  FastDivmod by_q, by_p, by_cv, by_w, by_h, by_sh, by_sw;  // by_cv: channel packs (NHWC)
};

inline PoolDims pool_dims(const Pool2dParams& p, int vec) {
  PoolDims d;
  d.C = int(p.C);
  d.H = int(p.H);
  d.W = int(p.W);
  d.P = int(p.P);
  d.Q = int(p.Q);
  d.R = int(p.R);
  d.S = int(p.S);
  d.sh = int(p.stride_h);
  d.sw = int(p.stride_w);
  d.pt = int(p.pad_top);
  d.pl = int(p.pad_left);
  d.by_q = FastDivmod(p.Q);
  d.by_p = FastDivmod(p.P);
  d.by_cv = FastDivmod(p.C / vec);
  d.by_w = FastDivmod(p.W);
  d.by_h = FastDivmod(p.H);
  d.by_sh = FastDivmod(p.stride_h);
  d.by_sw = FastDivmod(p.stride_w);
  return d;
}

// The input rows [h0, h1) and columns [w0, w1) of window (p, q), clipped to the input.
struct Window {
  int h0, h1, w0, w1;
};
__device__ __forceinline__ Window window_at(const PoolDims& d, int p, int q) {
  const int hs = p * d.sh - d.pt, ws = q * d.sw - d.pl;
  return Window{hs > 0 ? hs : 0, hs + d.R < d.H ? hs + d.R : d.H, ws > 0 ? ws : 0, ws + d.S < d.W ? ws + d.S : d.W};
}

// The windows [p_lo, p_hi] x [q_lo, q_hi] that contain input element (h, w): p*sh - pt <= h <
// p*sh - pt + R, and likewise for q.
__device__ __forceinline__ void windows_containing(const PoolDims& d, int h, int w, int& p_lo, int& p_hi, int& q_lo,
                                                   int& q_hi) {
  const int hp = h + d.pt, wp = w + d.pl;
  p_lo = hp - d.R + 1 > 0 ? d.by_sh.div(hp - d.R + 1 + d.sh - 1) : 0;
  q_lo = wp - d.S + 1 > 0 ? d.by_sw.div(wp - d.S + 1 + d.sw - 1) : 0;
  p_hi = d.by_sh.div(hp);
  q_hi = d.by_sw.div(wp);
  p_hi = p_hi < d.P - 1 ? p_hi : d.P - 1;
  q_hi = q_hi < d.Q - 1 ? q_hi : d.Q - 1;
}

// Splits the batch so that one launch has at most max_launch_elements() work items.
template <typename Fn>
inline cudaError_t per_image_chunks(int64_t N, int64_t items_per_image, Fn&& fn) {
  if (items_per_image > max_launch_elements()) return cudaErrorInvalidValue;
  const int64_t per_launch = std::max<int64_t>(1, max_launch_elements() / items_per_image);
  for (int64_t n0 = 0; n0 < N; n0 += per_launch) {
    const cudaError_t err = fn(n0, std::min(per_launch, N - n0));
    if (err != cudaSuccess) return err;
  }
  return cudaSuccess;
}

}  // namespace cuda
}  // namespace fastconv
