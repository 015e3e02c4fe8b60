// Average pooling forward and backward, NCHW and NHWC; the semantics of csrc/cpu/pool2d/pool2d.h:
// windows clipped to the input, divided by R*S (include_pad) or by the window's cells inside x.
//   fwd: x (N,C,H,W) | (N,H,W,C) -> y (N,C,P,Q) | (N,P,Q,C); rows then columns of the window
//   bwd: grad_y -> grad_x (overwritten): each input element gathers grad_y * inv of the windows
//        that contain it (p, then q ascending), so no atomics and no zero-fill pass
// One thread per output (fwd) / input element (bwd) and channel; 32-bit work items (FastDivmod),
// the launchers split bigger batches.
#include "../common.cuh"
#include "../kernels.h"
#include "pool2d.cuh"

namespace fastconv {
namespace cuda {
namespace {

template <typename T>
__device__ __forceinline__ T inverse_count(bool include_pad, const PoolDims& d, int p, int q) {
  if (include_pad) return T(1) / T(d.R * d.S);
  const Window win = window_at(d, p, q);
  return T(1) / T((win.h1 - win.h0) * (win.w1 - win.w0));
}

template <typename T, Layout L>
__global__ void avgpool2d_fwd_kernel(PoolDims d, bool include_pad, const T* __restrict__ x, T* __restrict__ y,
                                     int items) {
  for (int64_t ii = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; ii < items; ii += int64_t(gridDim.x) * blockDim.x) {
    const int i = int(ii);
    int p, q, t, plane_or_n, c = 0;
    if (L == Layout::NCHW) {
      d.by_q.divmod(i, t, q);
      d.by_p.divmod(t, plane_or_n, p);  // plane = n*C + c
    } else {
      int t2;
      d.by_cv.divmod(i, t, c);
      d.by_q.divmod(t, t2, q);
      d.by_p.divmod(t2, plane_or_n, p);  // n
    }
    const Window win = window_at(d, p, q);
    T sum = T(0);
    for (int h = win.h0; h < win.h1; ++h)
      for (int w = win.w0; w < win.w1; ++w)
        sum += L == Layout::NCHW ? x[(int64_t(plane_or_n) * d.H + h) * d.W + w]
                                 : x[((int64_t(plane_or_n) * d.H + h) * d.W + w) * d.C + c];
    y[ii] = sum * inverse_count<T>(include_pad, d, p, q);
  }
}

template <typename T, Layout L>
__global__ void avgpool2d_bwd_kernel(PoolDims d, bool include_pad, const T* __restrict__ gy, T* __restrict__ gx,
                                     int items) {
  for (int64_t ii = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; ii < items; ii += int64_t(gridDim.x) * blockDim.x) {
    const int i = int(ii);
    int h, w, t, plane_or_n, c = 0;
    if (L == Layout::NCHW) {
      d.by_w.divmod(i, t, w);
      d.by_h.divmod(t, plane_or_n, h);
    } else {
      int t2;
      d.by_cv.divmod(i, t, c);
      d.by_w.divmod(t, t2, w);
      d.by_h.divmod(t2, plane_or_n, h);
    }
    int p_lo, p_hi, q_lo, q_hi;
    windows_containing(d, h, w, p_lo, p_hi, q_lo, q_hi);
    T acc = T(0);
    for (int p = p_lo; p <= p_hi; ++p)
      for (int q = q_lo; q <= q_hi; ++q) {
        const int64_t o = L == Layout::NCHW ? (int64_t(plane_or_n) * d.P + p) * d.Q + q
                                            : ((int64_t(plane_or_n) * d.P + p) * d.Q + q) * d.C + c;
        acc += gy[o] * inverse_count<T>(include_pad, d, p, q);
      }
    gx[ii] = acc;
  }
}

constexpr int kThreads = 256;

template <typename T, Layout L>
cudaError_t fwd_launch(const Pool2dParams& p, bool include_pad, const T* x, T* y, cudaStream_t stream) {
  const PoolDims d = pool_dims(p, 1);
  const std::string name = std::string(dtype_name(sizeof(T))) + "_avgpool2d_fwd_" + layout_name(L);
  const int64_t per_image = p.C * p.P * p.Q;
  return per_image_chunks(p.N, per_image, [&](int64_t n0, int64_t nb) {
    const int items = int(nb * per_image);
    return launch(name, avgpool2d_fwd_kernel<T, L>, dim3(grid_for(items, kThreads)), dim3(kThreads), stream, d,
                  include_pad, x + n0 * p.C * p.H * p.W, y + n0 * p.C * p.P * p.Q, items);
  });
}

template <typename T, Layout L>
cudaError_t bwd_launch(const Pool2dParams& p, bool include_pad, const T* gy, T* gx, cudaStream_t stream) {
  const PoolDims d = pool_dims(p, 1);
  const std::string name = std::string(dtype_name(sizeof(T))) + "_avgpool2d_bwd_" + layout_name(L);
  const int64_t per_image = p.C * p.H * p.W;
  return per_image_chunks(p.N, per_image, [&](int64_t n0, int64_t nb) {
    const int items = int(nb * per_image);
    return launch(name, avgpool2d_bwd_kernel<T, L>, dim3(grid_for(items, kThreads)), dim3(kThreads), stream, d,
                  include_pad, gy + n0 * p.C * p.P * p.Q, gx + n0 * p.C * p.H * p.W, items);
  });
}

}  // namespace

template <typename T>
cudaError_t avgpool2d_fwd(const Pool2dParams& p, bool include_pad, const T* x, T* y, cudaStream_t stream) {
  return p.layout == Layout::NCHW ? fwd_launch<T, Layout::NCHW>(p, include_pad, x, y, stream)
                                  : fwd_launch<T, Layout::NHWC>(p, include_pad, x, y, stream);
}

template <typename T>
cudaError_t avgpool2d_bwd(const Pool2dParams& p, bool include_pad, const T* gy, T* gx, cudaStream_t stream) {
  return p.layout == Layout::NCHW ? bwd_launch<T, Layout::NCHW>(p, include_pad, gy, gx, stream)
                                  : bwd_launch<T, Layout::NHWC>(p, include_pad, gy, gx, stream);
}

template cudaError_t avgpool2d_fwd<float>(const Pool2dParams&, bool, const float*, float*, cudaStream_t);
template cudaError_t avgpool2d_fwd<double>(const Pool2dParams&, bool, const double*, double*, cudaStream_t);
template cudaError_t avgpool2d_bwd<float>(const Pool2dParams&, bool, const float*, float*, cudaStream_t);
template cudaError_t avgpool2d_bwd<double>(const Pool2dParams&, bool, const double*, double*, cudaStream_t);

}  // namespace cuda
}  // namespace fastconv
