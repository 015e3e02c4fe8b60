// Max pooling forward and backward, NCHW and NHWC; same semantics as csrc/cpu/pool2d/ref.cpp:
// windows clipped to the input (padded cells never win), scanned in row-major order, a later
// element wins only when strictly greater or when it is NaN and the best is not (NaN propagates),
// so ties go to the first; indices are flat h*W+w inside each (n, c) plane.
//   fwd: x (N,C,H,W) | (N,H,W,C) -> y, indices (N,C,P,Q) | (N,P,Q,C)
//   bwd: grad_y, indices -> grad_x (overwritten)
// kernel1_scalar: one thread per output (fwd) / input element (bwd) and channel.
// kernel2_vec: NHWC with C % V == 0, V = 16 / sizeof(T) channels per thread in 16-byte packs.
// Work items are indexed with 32 bits (FastDivmod); the launchers split bigger batches.
#include "../common.cuh"
#include "../kernels.h"
#include "pool2d.cuh"

namespace fastconv {
namespace cuda {
namespace {

template <typename T>
__device__ __forceinline__ bool replaces(T candidate, T best) {
  return candidate > best || (candidate != candidate && best == best);
}

// One thread per output element (NCHW) or per V output channels (NHWC).
template <typename T, Layout L, int V>
__global__ void maxpool2d_fwd_kernel(PoolDims d, const T* __restrict__ x, T* __restrict__ y, int64_t* __restrict__ idx,
                                     int items) {
  for (int64_t ii = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; ii < items; ii += int64_t(gridDim.x) * blockDim.x) {
    const int i = int(ii);
    int p, q, t, plane_or_n, cv = 0;
    if (L == Layout::NCHW) {
      d.by_q.divmod(i, t, q);
      d.by_p.divmod(t, plane_or_n, p);  // plane = n*C + c
    } else {
      int t2;
      d.by_cv.divmod(i, t, cv);
      d.by_q.divmod(t, t2, q);
      d.by_p.divmod(t2, plane_or_n, p);  // n
    }
    const Window win = window_at(d, p, q);
    const int h0 = win.h0, h1 = win.h1, w0 = win.w0, w1 = win.w1;
    // element (h, w) of this thread's plane(s)
    auto at = [&](int h, int w) -> int64_t {
      return L == Layout::NCHW ? (int64_t(plane_or_n) * d.H + h) * d.W + w
                               : ((int64_t(plane_or_n) * d.H + h) * d.W + w) * d.C + cv * V;
    };
    Pack<T, V> best = *reinterpret_cast<const Pack<T, V>*>(x + at(h0, w0));
    int best_i[V];
#pragma unroll
    for (int v = 0; v < V; ++v) best_i[v] = h0 * d.W + w0;
    for (int h = h0; h < h1; ++h)
      for (int w = w0; w < w1; ++w) {
        const Pack<T, V> cand = *reinterpret_cast<const Pack<T, V>*>(x + at(h, w));
#pragma unroll
        for (int v = 0; v < V; ++v)
          if (replaces(cand.v[v], best.v[v])) {
            best.v[v] = cand.v[v];
            best_i[v] = h * d.W + w;
          }
      }
    const int64_t o = int64_t(i) * V;  // outputs are in item order
    *reinterpret_cast<Pack<T, V>*>(y + o) = best;
#pragma unroll
    for (int v = 0; v < V; ++v) idx[o + v] = best_i[v];
  }
}

// One thread per input element (NCHW) or per V input channels (NHWC): sums, in output order, the
// grad_y of the windows containing it whose index points at it. The thread at a window's first
// in-bounds element also checks that window's index lies inside it, else sets *bad_index.
template <typename T, Layout L, int V>
__global__ void maxpool2d_bwd_kernel(PoolDims d, const T* __restrict__ gy, const int64_t* __restrict__ idx,
                                     T* __restrict__ gx, int* bad_index, int items) {
  for (int64_t ii = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; ii < items; ii += int64_t(gridDim.x) * blockDim.x) {
    const int i = int(ii);
    int h, w, t, plane_or_n, cv = 0;
    if (L == Layout::NCHW) {
      d.by_w.divmod(i, t, w);
      d.by_h.divmod(t, plane_or_n, h);
    } else {
      int t2;
      d.by_cv.divmod(i, t, cv);
      d.by_w.divmod(t, t2, w);
      d.by_h.divmod(t2, plane_or_n, h);
    }
    int p_lo, p_hi, q_lo, q_hi;
    windows_containing(d, h, w, p_lo, p_hi, q_lo, q_hi);
    const int64_t me = int64_t(h) * d.W + w;
    T acc[V];
#pragma unroll
    for (int v = 0; v < V; ++v) acc[v] = T(0);
    for (int p = p_lo; p <= p_hi; ++p)
      for (int q = q_lo; q <= q_hi; ++q) {
        const int64_t o = L == Layout::NCHW ? (int64_t(plane_or_n) * d.P + p) * d.Q + q
                                            : ((int64_t(plane_or_n) * d.P + p) * d.Q + q) * d.C + cv * V;
        const Window win = window_at(d, p, q);
        const bool checker = h == win.h0 && w == win.w0;
        const Pack<T, V> g = *reinterpret_cast<const Pack<T, V>*>(gy + o);
#pragma unroll
        for (int v = 0; v < V; ++v) {
          const int64_t id = idx[o + v];
          if (id == me) acc[v] += g.v[v];
          if (checker) {
            bool ok = id >= 0 && id < int64_t(d.H) * d.W;
            if (ok) {
              int ih, iw;
              d.by_w.divmod(int(id), ih, iw);
              ok = ih >= win.h0 && ih < win.h1 && iw >= win.w0 && iw < win.w1;
            }
            if (!ok) atomicOr(bad_index, 1);
          }
        }
      }
    Pack<T, V> out;
#pragma unroll
    for (int v = 0; v < V; ++v) out.v[v] = acc[v];
    *reinterpret_cast<Pack<T, V>*>(gx + int64_t(i) * V) = out;
  }
}

constexpr int kThreads = 256;

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <typename T, Layout L, int V>
cudaError_t pool_fwd_launch(const Pool2dParams& p, const T* x, T* y, int64_t* idx, cudaStream_t stream) {
  const PoolDims d = pool_dims(p, V);
  const std::string name = std::string(dtype_name(sizeof(T))) + "_maxpool2d_fwd_" + layout_name(L) +
                           (V == 1 ? "_kernel1_scalar" : "_kernel2_vec" + std::to_string(V));
  const int64_t per_image = p.C * p.P * p.Q / V;
  return per_image_chunks(p.N, per_image, [&](int64_t n0, int64_t nb) {
    const int items = int(nb * per_image);
    return launch(name, maxpool2d_fwd_kernel<T, L, V>, dim3(grid_for(items, kThreads)), dim3(kThreads), stream, d,
                  x + n0 * p.C * p.H * p.W, y + n0 * p.C * p.P * p.Q, idx + n0 * p.C * p.P * p.Q, items);
  });
}

template <typename T, Layout L, int V>
cudaError_t pool_bwd_launch(const Pool2dParams& p, const T* gy, const int64_t* idx, T* gx, int* bad_index,
                            cudaStream_t stream) {
  const PoolDims d = pool_dims(p, V);
  const std::string name = std::string(dtype_name(sizeof(T))) + "_maxpool2d_bwd_" + layout_name(L) +
                           (V == 1 ? "_kernel1_scalar" : "_kernel2_vec" + std::to_string(V));
  const int64_t per_image = p.C * p.H * p.W / V;
  return per_image_chunks(p.N, per_image, [&](int64_t n0, int64_t nb) {
    const int items = int(nb * per_image);
    return launch(name, maxpool2d_bwd_kernel<T, L, V>, dim3(grid_for(items, kThreads)), dim3(kThreads), stream, d,
                  gy + n0 * p.C * p.P * p.Q, idx + n0 * p.C * p.P * p.Q, gx + n0 * p.C * p.H * p.W, bad_index, items);
  });
}

}  // namespace

template <typename T>
cudaError_t maxpool2d_fwd(const Pool2dParams& p, const T* x, T* y, int64_t* indices, int version, cudaStream_t stream) {
  constexpr int V = 16 / sizeof(T);
  if (p.H * p.W > max_launch_elements()) return cudaErrorInvalidValue;  // flat indices are 32-bit here
  if (p.layout == Layout::NCHW) return pool_fwd_launch<T, Layout::NCHW, 1>(p, x, y, indices, stream);
  const bool vec = version != 1 && p.C % V == 0 && aligned16(x) && aligned16(y);
  return vec ? pool_fwd_launch<T, Layout::NHWC, V>(p, x, y, indices, stream)
             : pool_fwd_launch<T, Layout::NHWC, 1>(p, x, y, indices, stream);
}

template <typename T>
cudaError_t maxpool2d_bwd(const Pool2dParams& p, const T* gy, const int64_t* indices, T* gx, int* bad_index,
                          int version, cudaStream_t stream) {
  constexpr int V = 16 / sizeof(T);
  if (p.H * p.W > max_launch_elements()) return cudaErrorInvalidValue;
  if (p.layout == Layout::NCHW) return pool_bwd_launch<T, Layout::NCHW, 1>(p, gy, indices, gx, bad_index, stream);
  const bool vec = version != 1 && p.C % V == 0 && aligned16(gy) && aligned16(gx);
  return vec ? pool_bwd_launch<T, Layout::NHWC, V>(p, gy, indices, gx, bad_index, stream)
             : pool_bwd_launch<T, Layout::NHWC, 1>(p, gy, indices, gx, bad_index, stream);
}

template cudaError_t maxpool2d_fwd<float>(const Pool2dParams&, const float*, float*, int64_t*, int, cudaStream_t);
template cudaError_t maxpool2d_fwd<double>(const Pool2dParams&, const double*, double*, int64_t*, int, cudaStream_t);
template cudaError_t maxpool2d_bwd<float>(const Pool2dParams&, const float*, const int64_t*, float*, int*, int,
                                          cudaStream_t);
template cudaError_t maxpool2d_bwd<double>(const Pool2dParams&, const double*, const int64_t*, double*, int*, int,
                                           cudaStream_t);

}  // namespace cuda
}  // namespace fastconv
