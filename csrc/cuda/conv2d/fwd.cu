// conv2d forward.
//   NCHW: x (N,C,H,W), w (K,C,R,S), bias (K) -> y (N,K,P,Q)
//   NHWC: x (N,H,W,C), w (R,S,C,K), bias (K) -> y (N,P,Q,K)
// kernel1_naive: one thread per output element (the SIMT reference).
// kernel2/kernel3: implicit GEMM (igemm.cuh) with M = N*P*Q, Ng = K, Kg = C*R*S; the
// reduction index kk is (c, r, s) in NCHW (matching w's rows) and (r, s, c) in NHWC (matching
// x's innermost channels and w's rows). Bias and the activation (p.epilogue) are applied in
// the epilogue.
#include "../kernels.h"
#include "igemm.cuh"

namespace fastconv {
namespace cuda {
namespace {

template <typename T, Layout L>
__global__ void conv2d_fwd_kernel1_naive(Conv2dParams p, const T* __restrict__ x, const T* __restrict__ w,
                                         const T* __restrict__ bias, T* __restrict__ y, int64_t total) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t n, k, oh, ow;  // decompose i in y's layout
    if (L == Layout::NCHW) {
      ow = i % p.Q;
      oh = (i / p.Q) % p.P;
      k = (i / (p.Q * p.P)) % p.K;
      n = i / (p.Q * p.P * p.K);
    } else {
      k = i % p.K;
      ow = (i / p.K) % p.Q;
      oh = (i / (p.K * p.Q)) % p.P;
      n = i / (p.K * p.Q * p.P);
    }
    T acc = T(0);
    for (int64_t c = 0; c < p.C; ++c)
      for (int64_t r = 0; r < p.R; ++r) {
        const int64_t h = oh * p.stride_h - p.pad_top + r * p.dil_h;
        if (h < 0 || h >= p.H) continue;
        for (int64_t s = 0; s < p.S; ++s) {
          const int64_t ww = ow * p.stride_w - p.pad_left + s * p.dil_w;
          if (ww < 0 || ww >= p.W) continue;
          const T xv =
              L == Layout::NCHW ? x[((n * p.C + c) * p.H + h) * p.W + ww] : x[((n * p.H + h) * p.W + ww) * p.C + c];
          const T wv =
              L == Layout::NCHW ? w[((k * p.C + c) * p.R + r) * p.S + s] : w[((r * p.S + s) * p.C + c) * p.K + k];
          acc += xv * wv;
        }
      }
    if (bias) acc += bias[k];
    y[i] = epilogue_value(p.epilogue, T(p.alpha), acc);
  }
}

// The forward pass as an implicit GEMM (see igemm.cuh for the interface).
template <typename T_, Layout L>
struct ConvFwdProblem {
  using T = T_;
  // NHWC: consecutive kk are consecutive channels of x; NCHW: consecutive m are consecutive
  // output columns (x addresses stride_w apart). w is (K, C*R*S) in NCHW, (R*S*C, K) in NHWC.
  static constexpr bool kAContiguousK = L == Layout::NHWC;
  static constexpr bool kBContiguousK = L == Layout::NCHW;

  const T* x;
  const T* w;
  const T* bias;
  T* y;
  int M, Ng, Kg, k_chunk;
  int C, H, W, K, PQ, Q, RS, S, sh, sw, pt, pl, dh, dw;
  Epilogue epilogue;
  T alpha;
  FastDivmod by_pq, by_q, by_rs, by_s, by_c;

  struct RowA {
    int64_t base;
    int h0, w0;
    bool ok;
  };
  using ColB = int;
  using RowC = int64_t;

  __device__ __forceinline__ RowA row_a(int m) const {
    if (m >= M) return {0, 0, 0, false};
    int n, pq, p, q;
    by_pq.divmod(m, n, pq);
    by_q.divmod(pq, p, q);
    return {int64_t(n) * C * H * W, p * sh - pt, q * sw - pl, true};
  }
  __device__ __forceinline__ T a(const RowA& row, int kk) const {
    int c, r, s, rs;
    if (L == Layout::NCHW) {
      by_rs.divmod(kk, c, rs);
    } else {
      by_c.divmod(kk, rs, c);
    }
    by_s.divmod(rs, r, s);
    const int h = row.h0 + r * dh, w_ = row.w0 + s * dw;
    if (!row.ok || unsigned(h) >= unsigned(H) || unsigned(w_) >= unsigned(W)) return T(0);
    return L == Layout::NCHW ? x[row.base + (int64_t(c) * H + h) * W + w_]
                             : x[row.base + (int64_t(h) * W + w_) * C + c];
  }
  __device__ __forceinline__ ColB col_b(int n) const { return n; }
  __device__ __forceinline__ T b(ColB k, int kk) const {
    if (k >= K) return T(0);
    return L == Layout::NCHW ? w[int64_t(k) * Kg + kk] : w[int64_t(kk) * K + k];
  }
  __device__ __forceinline__ RowC row_c(int m) const {
    if (L == Layout::NHWC) return int64_t(m) * K;
    int n, pq;
    by_pq.divmod(m, n, pq);
    return int64_t(n) * K * PQ + pq;
  }
  __device__ __forceinline__ void store(RowC rc, int k, T v, int) const {
    if (bias) v += bias[k];
    v = epilogue_value(epilogue, alpha, v);
    y[L == Layout::NCHW ? rc + int64_t(k) * PQ : rc + k] = v;
  }
};

template <typename T, Layout L>
cudaError_t fwd_igemm(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y, int version,
                      cudaStream_t stream) {
  ConvFwdProblem<T, L> prob;
  prob.w = w;
  prob.bias = bias;
  prob.Ng = int(p.K);
  prob.Kg = int(p.C * p.R * p.S);
  prob.k_chunk = prob.Kg;
  prob.C = int(p.C);
  prob.H = int(p.H);
  prob.W = int(p.W);
  prob.K = int(p.K);
  prob.PQ = int(p.P * p.Q);
  prob.Q = int(p.Q);
  prob.RS = int(p.R * p.S);
  prob.S = int(p.S);
  prob.sh = int(p.stride_h);
  prob.sw = int(p.stride_w);
  prob.pt = int(p.pad_top);
  prob.pl = int(p.pad_left);
  prob.dh = int(p.dil_h);
  prob.dw = int(p.dil_w);
  prob.epilogue = p.epilogue;
  prob.alpha = T(p.alpha);
  prob.by_pq = FastDivmod(p.P * p.Q);
  prob.by_q = FastDivmod(p.Q);
  prob.by_rs = FastDivmod(p.R * p.S);
  prob.by_s = FastDivmod(p.S);
  prob.by_c = FastDivmod(p.C);
  // Images per launch so that M = images * P * Q stays below the 32-bit limit.
  const int64_t per_launch = std::max<int64_t>(1, max_launch_elements() / (p.P * p.Q));
  for (int64_t n0 = 0; n0 < p.N; n0 += per_launch) {
    const int64_t nb = std::min(per_launch, p.N - n0);
    prob.x = x + n0 * p.C * p.H * p.W;
    prob.y = y + n0 * p.K * p.P * p.Q;
    prob.M = int(nb * p.P * p.Q);
    const cudaError_t err = run_igemm<T>("conv2d_fwd", prob, version, L, 1, stream);
    if (err != cudaSuccess) return err;
  }
  return cudaSuccess;
}

}  // namespace

template <typename T>
cudaError_t conv2d_fwd(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y, int version,
                       cudaStream_t stream) {
  const int64_t limit = max_launch_elements();
  // The implicit GEMM indexes one image's P*Q, C*R*S, K and sizes with 32 bits.
  const bool fits =
      p.P * p.Q <= limit && p.C * p.R * p.S <= limit && p.K <= limit && p.H * p.W <= limit && p.C <= limit;
  if (version == 0) version = 3;
  if ((version == 2 || version == 3) && fits)
    return p.layout == Layout::NCHW ? fwd_igemm<T, Layout::NCHW>(p, x, w, bias, y, version, stream)
                                    : fwd_igemm<T, Layout::NHWC>(p, x, w, bias, y, version, stream);
  const int64_t total = p.N * p.K * p.P * p.Q;
  const std::string name =
      std::string(dtype_name(sizeof(T))) + "_conv2d_fwd_" + layout_name(p.layout) + "_kernel1_naive";
  constexpr int kThreads = 256;
  return p.layout == Layout::NCHW
             ? launch(name, conv2d_fwd_kernel1_naive<T, Layout::NCHW>, dim3(grid_for(total, kThreads)), dim3(kThreads),
                      stream, p, x, w, bias, y, total)
             : launch(name, conv2d_fwd_kernel1_naive<T, Layout::NHWC>, dim3(grid_for(total, kThreads)), dim3(kThreads),
                      stream, p, x, w, bias, y, total);
}

template cudaError_t conv2d_fwd<float>(const Conv2dParams&, const float*, const float*, const float*, float*, int,
                                       cudaStream_t);
template cudaError_t conv2d_fwd<double>(const Conv2dParams&, const double*, const double*, const double*, double*, int,
                                        cudaStream_t);

}  // namespace cuda
}  // namespace fastconv
