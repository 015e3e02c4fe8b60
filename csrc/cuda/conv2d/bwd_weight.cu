// conv2d backward-weight: grad_y, x -> grad_w, grad_bias.
//   NCHW: gy (N,K,P,Q), x (N,C,H,W) -> gw (K,C,R,S), gb (K)
//   NHWC: gy (N,P,Q,K), x (N,H,W,C) -> gw (R,S,C,K), gb (K)
// gw[k,c,r,s] = sum_{n,p,q} gy[n,k,p,q] * x[n, c, p*stride - pad + r*dil, ...]; gb[k] = sum gy[n,k,..].
// kernel1_naive: one thread per gw/gb element, loops over (n, p, q) in order.
// kernel2/kernel3: implicit GEMM with M = K, Ng = C*R*S + 1 and the reduction Kg = N*P*Q. The extra
// column of B is all ones, so its GEMM column is grad_bias and comes out of the same main loop.
// The reduction is long and M*Ng small, so it is split into `splits` chunks (blockIdx.z); every
// chunk writes its partial tile to workspace[split][K][Ng] (plain stores, no atomics) and
// conv2d_bwd_weight_reduce_splits adds the chunks in split order: the result does not depend on
// scheduling, run after run.
#include "../kernels.h"
#include "igemm.cuh"

namespace fastconv {
namespace cuda {
namespace {

template <typename T, Layout L>
__global__ void conv2d_bwd_weight_kernel1_naive(Conv2dParams p, const T* __restrict__ gy, const T* __restrict__ x,
                                                T* __restrict__ gw, T* __restrict__ gb, int64_t total) {
  const int64_t w_total = p.K * p.C * p.R * p.S;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    if (i >= w_total) {  // grad_bias[k]
      const int64_t k = i - w_total;
      T acc = T(0);
      for (int64_t n = 0; n < p.N; ++n)
        for (int64_t pq = 0; pq < p.P * p.Q; ++pq)
          acc += L == Layout::NCHW ? gy[(n * p.K + k) * p.P * p.Q + pq] : gy[(n * p.P * p.Q + pq) * p.K + k];
      gb[k] = acc;
      continue;
    }
    int64_t k, c, r, s;  // decompose i in gw's layout
    if (L == Layout::NCHW) {
      s = i % p.S;
      r = (i / p.S) % p.R;
      c = (i / (p.S * p.R)) % p.C;
      k = i / (p.S * p.R * p.C);
    } else {
      k = i % p.K;
      c = (i / p.K) % p.C;
      s = (i / (p.K * p.C)) % p.S;
      r = i / (p.K * p.C * p.S);
    }
    T acc = T(0);
    for (int64_t n = 0; n < p.N; ++n)
      for (int64_t oh = 0; oh < p.P; ++oh) {
        const int64_t h = oh * p.stride_h - p.pad_top + r * p.dil_h;
        if (h < 0 || h >= p.H) continue;
        for (int64_t ow = 0; ow < p.Q; ++ow) {
          const int64_t ww = ow * p.stride_w - p.pad_left + s * p.dil_w;
          if (ww < 0 || ww >= p.W) continue;
          const T g =
              L == Layout::NCHW ? gy[((n * p.K + k) * p.P + oh) * p.Q + ow] : gy[((n * p.P + oh) * p.Q + ow) * p.K + k];
          const T xv =
              L == Layout::NCHW ? x[((n * p.C + c) * p.H + h) * p.W + ww] : x[((n * p.H + h) * p.W + ww) * p.C + c];
          acc += g * xv;
        }
      }
    gw[i] = acc;
  }
}

// Backward-weight as an implicit GEMM: rows k, columns col = (c, r, s) in NCHW / (r, s, c) in NHWC
// (gw's own order) plus the ones column col == CRS, reduction j = (n, p, q).
template <typename T_, Layout L>
struct ConvBwdWeightProblem {
  using T = T_;
  static constexpr bool kAContiguousK = L == Layout::NCHW;  // gy runs along (p, q) resp. k
  static constexpr bool kBContiguousK = L == Layout::NCHW;  // x runs along q (stride_w) resp. c

  const T* gy;
  const T* x;
  T* ws;  // [splits][K][Ng]
  int M, Ng, Kg, k_chunk;
  int C, H, W, K, PQ, CRS, sh, sw;
  FastDivmod by_pq, by_q, by_rs, by_s, by_c;
  int pt, pl, dh, dw;

  struct RowA {
    int k;
    bool ok;
  };
  // kind 0: a (c, r, s) column, 1: the ones column (grad_bias), 2: past the end
  struct ColB {
    int c, rr, ss, kind;
  };  // rr = r*dil_h - pad_top, ss = s*dil_w - pad_left
  using RowC = int;

  __device__ __forceinline__ RowA row_a(int k) const { return {k, k < M}; }
  __device__ __forceinline__ T a(const RowA& row, int j) const {
    if (!row.ok) return T(0);
    if (L == Layout::NHWC) return gy[int64_t(j) * K + row.k];
    int n, pq;
    by_pq.divmod(j, n, pq);
    return gy[(int64_t(n) * K + row.k) * PQ + pq];
  }
  __device__ __forceinline__ ColB col_b(int col) const {
    if (col >= Ng) return {0, 0, 0, 2};
    if (col == CRS) return {0, 0, 0, 1};
    int c, r, s, rs;
    if (L == Layout::NCHW) by_rs.divmod(col, c, rs);
    else by_c.divmod(col, rs, c);
    by_s.divmod(rs, r, s);
    return {c, r * dh - pt, s * dw - pl, 0};
  }
  __device__ __forceinline__ T b(const ColB& col, int j) const {
    if (col.kind != 0) return col.kind == 1 ? T(1) : T(0);
    int n, pq, p, q;
    by_pq.divmod(j, n, pq);
    by_q.divmod(pq, p, q);
    const int h = p * sh + col.rr, w_ = q * sw + col.ss;
    if (unsigned(h) >= unsigned(H) || unsigned(w_) >= unsigned(W)) return T(0);
    return L == Layout::NCHW ? x[((int64_t(n) * C + col.c) * H + h) * W + w_]
                             : x[((int64_t(n) * H + h) * W + w_) * C + col.c];
  }
  __device__ __forceinline__ RowC row_c(int k) const { return k; }
  __device__ __forceinline__ void store(RowC k, int col, T v, int split) const {
    ws[(int64_t(split) * K + k) * Ng + col] = v;
  }
};

// ws [splits][K][Ng] -> gw in its layout, gb (nullable): fixed-order sum over the splits.
template <typename T, Layout L>
__global__ void conv2d_bwd_weight_reduce_splits(const T* __restrict__ ws, int splits, int64_t K, int64_t Ng,
                                                int64_t CRS, T* __restrict__ gw, T* __restrict__ gb) {
  const int64_t total = K * Ng;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    T acc = ws[i];
    for (int s = 1; s < splits; ++s) acc += ws[int64_t(s) * total + i];
    const int64_t k = i / Ng, col = i - k * Ng;
    if (col == CRS) gb[k] = acc;
    else gw[L == Layout::NCHW ? k * CRS + col : col * K + k] = acc;
  }
}

struct BwdWeightPlan {
  int version;  // 1, 2 or 3
  int splits;   // chunks of the N*P*Q reduction (igemm versions)
  int k_chunk;  // reduction elements per chunk, a multiple of the tile's BK
  int64_t Ng;   // C*R*S (+1 with bias)
  int64_t ws_elems;
};

// One GPU wave is about 2 blocks on each of ~132 SMs (H100); split the reduction until the grid
// has that many blocks, but keep at least kMinChunk reduction elements per block.
constexpr int64_t kTargetBlocks = 264;
constexpr int64_t kMinChunk = 256;

BwdWeightPlan plan_bwd_weight(const Conv2dParams& p, int dsize, bool with_bias, int version, int splits) {
  const int64_t limit = max_launch_elements();
  const int64_t Kg = p.N * p.P * p.Q, CRS = p.C * p.R * p.S, Ng = CRS + (with_bias ? 1 : 0);
  const bool fits = Kg <= limit && Ng <= limit && p.K <= limit && p.P * p.Q <= limit && p.H + p.pad_top <= limit &&
                    p.W + p.pad_left <= limit;
  if (version == 0) version = 3;
  if (!fits || (version != 2 && version != 3)) return {1, 1, 0, Ng, 0};
  int bm, bn, bk;
  igemm_tile(version, dsize, Ng, &bm, &bn, &bk);
  const int64_t tiles = ((p.K + bm - 1) / bm) * ((Ng + bn - 1) / bn);
  int64_t s = splits > 0 ? splits : std::min((kTargetBlocks + tiles - 1) / tiles, (Kg + kMinChunk - 1) / kMinChunk);
  s = std::max<int64_t>(1, std::min<int64_t>({s, Kg, 65535}));
  int64_t chunk = (Kg + s - 1) / s;
  chunk = (chunk + bk - 1) / bk * bk;
  s = (Kg + chunk - 1) / chunk;
  return {version, int(s), int(chunk), Ng, s * p.K * Ng};
}

template <typename T, Layout L>
cudaError_t bwd_weight_igemm(const Conv2dParams& p, const BwdWeightPlan& plan, const T* gy, const T* x, T* gw, T* gb,
                             T* ws, cudaStream_t stream) {
  ConvBwdWeightProblem<T, L> prob;
  prob.gy = gy;
  prob.x = x;
  prob.ws = ws;
  prob.M = int(p.K);
  prob.Ng = int(plan.Ng);
  prob.Kg = int(p.N * p.P * p.Q);
  prob.k_chunk = plan.k_chunk;
  prob.C = int(p.C);
  prob.H = int(p.H);
  prob.W = int(p.W);
  prob.K = int(p.K);
  prob.PQ = int(p.P * p.Q);
  prob.CRS = int(p.C * p.R * p.S);
  prob.sh = int(p.stride_h);
  prob.sw = int(p.stride_w);
  prob.by_pq = FastDivmod(p.P * p.Q);
  prob.by_q = FastDivmod(p.Q);
  prob.by_rs = FastDivmod(p.R * p.S);
  prob.by_s = FastDivmod(p.S);
  prob.by_c = FastDivmod(p.C);
  prob.pt = int(p.pad_top);
  prob.pl = int(p.pad_left);
  prob.dh = int(p.dil_h);
  prob.dw = int(p.dil_w);
  cudaError_t err = run_igemm<T>("conv2d_bwd_weight", prob, plan.version, L, plan.splits, stream);
  if (err != cudaSuccess) return err;
  const int64_t total = p.K * plan.Ng;
  constexpr int kThreads = 256;
  const std::string name =
      std::string(dtype_name(sizeof(T))) + "_conv2d_bwd_weight_" + layout_name(L) + "_reduce_splits";
  return launch(name, conv2d_bwd_weight_reduce_splits<T, L>, dim3(grid_for(total, kThreads)), dim3(kThreads), stream,
                static_cast<const T*>(ws), plan.splits, p.K, plan.Ng, p.C * p.R * p.S, gw, gb);
}

}  // namespace

int64_t conv2d_bwd_weight_workspace_bytes(const Conv2dParams& p, int dtype_size, bool with_bias, int version,
                                          int splits) {
  return plan_bwd_weight(p, dtype_size, with_bias, version, splits).ws_elems * dtype_size;
}

template <typename T>
cudaError_t conv2d_bwd_weight(const Conv2dParams& p, const T* gy, const T* x, T* gw, T* gb, void* workspace,
                              int64_t workspace_bytes, int version, int splits, cudaStream_t stream) {
  const BwdWeightPlan plan = plan_bwd_weight(p, sizeof(T), gb != nullptr, version, splits);
  if (plan.version != 1) {
    if (workspace == nullptr || workspace_bytes < plan.ws_elems * int64_t(sizeof(T))) return cudaErrorInvalidValue;
    T* ws = static_cast<T*>(workspace);
    return p.layout == Layout::NCHW ? bwd_weight_igemm<T, Layout::NCHW>(p, plan, gy, x, gw, gb, ws, stream)
                                    : bwd_weight_igemm<T, Layout::NHWC>(p, plan, gy, x, gw, gb, ws, stream);
  }
  const int64_t total = p.K * p.C * p.R * p.S + (gb ? p.K : 0);
  const std::string name =
      std::string(dtype_name(sizeof(T))) + "_conv2d_bwd_weight_" + layout_name(p.layout) + "_kernel1_naive";
  constexpr int kThreads = 256;
  return p.layout == Layout::NCHW
             ? launch(name, conv2d_bwd_weight_kernel1_naive<T, Layout::NCHW>, dim3(grid_for(total, kThreads)),
                      dim3(kThreads), stream, p, gy, x, gw, gb, total)
             : launch(name, conv2d_bwd_weight_kernel1_naive<T, Layout::NHWC>, dim3(grid_for(total, kThreads)),
                      dim3(kThreads), stream, p, gy, x, gw, gb, total);
}

template cudaError_t conv2d_bwd_weight<float>(const Conv2dParams&, const float*, const float*, float*, float*, void*,
                                              int64_t, int, int, cudaStream_t);
template cudaError_t conv2d_bwd_weight<double>(const Conv2dParams&, const double*, const double*, double*, double*,
                                               void*, int64_t, int, int, cudaStream_t);

}  // namespace cuda
}  // namespace fastconv
