// conv2d backward-data: grad_y, w -> grad_x.
//   NCHW: gy (N,K,P,Q), w (K,C,R,S) -> gx (N,C,H,W)
//   NHWC: gy (N,P,Q,K), w (R,S,C,K) -> gx (N,H,W,C)
// gx[n,c,h,w] = sum_{k,r,s} gy[n,k,p,q] * w[k,c,r,s] over the (p, q) with p*stride - pad + r*dil = h
// (and the same for w). kernel1_naive gathers exactly that per gx element. kernel2/kernel3 run it
// as the transposed implicit GEMM: M = N*H*W, Ng = C, Kg = K*R*S, with A[m, (k,r,s)] = gy at
// p = (h + pad - r*dil) / stride when that division is exact and in range, else 0 (for stride 2,
// three quarters of A are such zeros: a stride-phase split would skip them; not done yet).
#include "../kernels.h"
#include "igemm.cuh"

namespace fastconv {
namespace cuda {
namespace {

template <typename T, Layout L>
__global__ void conv2d_bwd_data_kernel1_naive(Conv2dParams p, const T* __restrict__ gy, const T* __restrict__ w,
                                              T* __restrict__ gx, int64_t total) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t n, c, h, ww;  // decompose i in gx's layout
    if (L == Layout::NCHW) {
      ww = i % p.W;
      h = (i / p.W) % p.H;
      c = (i / (p.W * p.H)) % p.C;
      n = i / (p.W * p.H * p.C);
    } else {
      c = i % p.C;
      ww = (i / p.C) % p.W;
      h = (i / (p.C * p.W)) % p.H;
      n = i / (p.C * p.W * p.H);
    }
    T acc = T(0);
    for (int64_t k = 0; k < p.K; ++k)
      for (int64_t r = 0; r < p.R; ++r) {
        const int64_t th = h + p.pad_top - r * p.dil_h;
        if (th < 0 || th % p.stride_h != 0 || th / p.stride_h >= p.P) continue;
        const int64_t oh = th / p.stride_h;
        for (int64_t s = 0; s < p.S; ++s) {
          const int64_t tw = ww + p.pad_left - s * p.dil_w;
          if (tw < 0 || tw % p.stride_w != 0 || tw / p.stride_w >= p.Q) continue;
          const int64_t ow = tw / p.stride_w;
          const T g =
              L == Layout::NCHW ? gy[((n * p.K + k) * p.P + oh) * p.Q + ow] : gy[((n * p.P + oh) * p.Q + ow) * p.K + k];
          const T wv =
              L == Layout::NCHW ? w[((k * p.C + c) * p.R + r) * p.S + s] : w[((r * p.S + s) * p.C + c) * p.K + k];
          acc += g * wv;
        }
      }
    gx[i] = acc;
  }
}

// Backward-data as an implicit GEMM: rows m = (n, h, w), columns c, reduction kk = (k, r, s) in
// NCHW (w's innermost r, s) and (r, s, k) in NHWC (gy's innermost channels).
template <typename T_, Layout L>
struct ConvBwdDataProblem {
  using T = T_;
  static constexpr bool kAContiguousK = L == Layout::NHWC;  // NCHW: consecutive w -> consecutive q
  static constexpr bool kBContiguousK = true;               // w runs along (r,s) resp. k

  const T* gy;
  const T* w;
  T* gx;
  int M, Ng, Kg, k_chunk;
  int C, HW, K, P, Q, RS, S, sh, sw, dh, dw, pt, pl;
  FastDivmod by_hw, by_w, by_rs, by_s, by_k, by_sh, by_sw;

  struct RowA {
    int64_t base;
    int hp, wp;
    bool ok;
  };  // hp = h + pad_top
  using ColB = int;
  using RowC = int64_t;

  __device__ __forceinline__ RowA row_a(int m) const {
    if (m >= M) return {0, 0, 0, false};
    int n, hw, h, w_;
    by_hw.divmod(m, n, hw);
    by_w.divmod(hw, h, w_);
    return {int64_t(n) * K * P * Q, h + pt, w_ + pl, true};
  }
  __device__ __forceinline__ T a(const RowA& row, int kk) const {
    int k, r, s, rs;
    if (L == Layout::NCHW) by_rs.divmod(kk, k, rs);
    else by_k.divmod(kk, rs, k);
    by_s.divmod(rs, r, s);
    const int th = row.hp - r * dh, tw = row.wp - s * dw;
    if (!row.ok || th < 0 || tw < 0) return T(0);
    int p, q, rem_h, rem_w;
    by_sh.divmod(th, p, rem_h);
    by_sw.divmod(tw, q, rem_w);
    if (rem_h != 0 || rem_w != 0 || p >= P || q >= Q) return T(0);
    return L == Layout::NCHW ? gy[row.base + (int64_t(k) * P + p) * Q + q]
                             : gy[row.base + (int64_t(p) * Q + q) * K + k];
  }
  __device__ __forceinline__ ColB col_b(int n) const { return n; }
  __device__ __forceinline__ T b(ColB c, int kk) const {
    if (c >= C) return T(0);
    if (L == Layout::NCHW) {
      int k, rs;
      by_rs.divmod(kk, k, rs);
      return w[(int64_t(k) * C + c) * RS + rs];
    }
    int rs, k;
    by_k.divmod(kk, rs, k);
    return w[(int64_t(rs) * C + c) * K + k];
  }
  __device__ __forceinline__ RowC row_c(int m) const {
    if (L == Layout::NHWC) return int64_t(m) * C;
    int n, hw;
    by_hw.divmod(m, n, hw);
    return int64_t(n) * C * HW + hw;
  }
  __device__ __forceinline__ void store(RowC rc, int c, T v, int) const {
    gx[L == Layout::NCHW ? rc + int64_t(c) * HW : rc + c] = v;
  }
};

template <typename T, Layout L>
cudaError_t bwd_data_igemm(const Conv2dParams& p, const T* gy, const T* w, T* gx, int version, cudaStream_t stream) {
  ConvBwdDataProblem<T, L> prob;
  prob.w = w;
  prob.Ng = int(p.C);
  prob.Kg = int(p.K * p.R * p.S);
  prob.k_chunk = prob.Kg;
  prob.C = int(p.C);
  prob.HW = int(p.H * p.W);
  prob.K = int(p.K);
  prob.P = int(p.P);
  prob.Q = int(p.Q);
  prob.RS = int(p.R * p.S);
  prob.S = int(p.S);
  prob.sh = int(p.stride_h);
  prob.sw = int(p.stride_w);
  prob.dh = int(p.dil_h);
  prob.dw = int(p.dil_w);
  prob.pt = int(p.pad_top);
  prob.pl = int(p.pad_left);
  prob.by_hw = FastDivmod(p.H * p.W);
  prob.by_w = FastDivmod(p.W);
  prob.by_rs = FastDivmod(p.R * p.S);
  prob.by_s = FastDivmod(p.S);
  prob.by_k = FastDivmod(p.K);
  prob.by_sh = FastDivmod(p.stride_h);
  prob.by_sw = FastDivmod(p.stride_w);
  const int64_t per_launch = std::max<int64_t>(1, max_launch_elements() / (p.H * p.W));
  for (int64_t n0 = 0; n0 < p.N; n0 += per_launch) {
    const int64_t nb = std::min(per_launch, p.N - n0);
    prob.gy = gy + n0 * p.K * p.P * p.Q;
    prob.gx = gx + n0 * p.C * p.H * p.W;
    prob.M = int(nb * p.H * p.W);
    const cudaError_t err = run_igemm<T>("conv2d_bwd_data", prob, version, L, 1, stream);
    if (err != cudaSuccess) return err;
  }
  return cudaSuccess;
}

}  // namespace

template <typename T>
cudaError_t conv2d_bwd_data(const Conv2dParams& p, const T* gy, const T* w, T* gx, int version, cudaStream_t stream) {
  const int64_t limit = max_launch_elements();
  const int64_t pad_h = p.pad_top + p.H, pad_w = p.pad_left + p.W;  // largest h + pad_top
  const bool fits = p.H * p.W <= limit && p.K * p.R * p.S <= limit && p.C <= limit && p.P * p.Q <= limit &&
                    pad_h <= limit && pad_w <= limit;
  if (version == 0) version = 3;
  if ((version == 2 || version == 3) && fits)
    return p.layout == Layout::NCHW ? bwd_data_igemm<T, Layout::NCHW>(p, gy, w, gx, version, stream)
                                    : bwd_data_igemm<T, Layout::NHWC>(p, gy, w, gx, version, stream);
  const int64_t total = p.N * p.C * p.H * p.W;
  const std::string name =
      std::string(dtype_name(sizeof(T))) + "_conv2d_bwd_data_" + layout_name(p.layout) + "_kernel1_naive";
  constexpr int kThreads = 256;
  return p.layout == Layout::NCHW
             ? launch(name, conv2d_bwd_data_kernel1_naive<T, Layout::NCHW>, dim3(grid_for(total, kThreads)),
                      dim3(kThreads), stream, p, gy, w, gx, total)
             : launch(name, conv2d_bwd_data_kernel1_naive<T, Layout::NHWC>, dim3(grid_for(total, kThreads)),
                      dim3(kThreads), stream, p, gy, w, gx, total);
}

template cudaError_t conv2d_bwd_data<float>(const Conv2dParams&, const float*, const float*, float*, int, cudaStream_t);
template cudaError_t conv2d_bwd_data<double>(const Conv2dParams&, const double*, const double*, double*, int,
                                             cudaStream_t);

}  // namespace cuda
}  // namespace fastconv
