// Batch normalization, NCHW and NHWC, float and double: the contracts of csrc/cpu/batchnorm/batchnorm.h
// with the same arithmetic (statistics as double sums of x - K, K = the channel's first element;
// every output rounded once from double).
//   statistics  one block per (channel, chunk) for NCHW, per (32-channel tile, chunk of rows) for
//               NHWC, each summing its chunk into its own slot of `workspace` in a fixed tree;
//               then one thread per channel adds the chunks in chunk order. Chunks depend only on
//               the shape, so the bits do not depend on the GPU or the scheduling.
//   finalize    per channel: mean / var / inv_std (or grad_gamma / grad_beta) and the
//               coefficients of the elementwise pass, in double.
//   apply       out = a[c] (u - m[c]) + b[c] [+ k[c] v], one thread per element, 32-bit indices
//               (FastDivmod); launches split over rows beyond max_launch_elements().
#include <cfloat>
#include <cmath>

#include "../common.cuh"
#include "../kernels.h"

namespace fastconv {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kChunk = 4096;     // NCHW: elements of one channel one statistics block sums
constexpr int kTileC = 32;           // NHWC: channels of one statistics block (one per lane)
constexpr int kRowThreads = 8;       // NHWC: rows of one block read at once
constexpr int64_t kChunkRows = 256;  // NHWC: rows (pixels) one statistics block sums

// How the per-channel elements split into statistics chunks (all from the shape).
struct Chunks {
  int64_t planes = 1;  // NCHW: whole planes per chunk (when HW <= kChunk)
  int64_t parts = 1;   // NCHW: chunks per plane (when HW > kChunk)
  int64_t count = 1;   // chunks per channel (NHWC: per channel tile)
};

Chunks chunks_of(const BatchNormShape& s) {
  Chunks k;
  if (s.layout == Layout::NHWC) {
    k.count = (s.per_channel() + kChunkRows - 1) / kChunkRows;
  } else if (s.HW > kChunk) {
    k.parts = (s.HW + kChunk - 1) / kChunk;
    k.count = s.N * k.parts;
  } else {
    k.planes = kChunk / s.HW;
    k.count = (s.N + k.planes - 1) / k.planes;
  }
  return k;
}

// Forward: t1 += x - K, t2 += (x - K)^2 with K = x's first element of the channel.
// Backward: t1 += grad_y, t2 += grad_y (x - mean[c]).  (v: x or grad_y; z: x in backward.)
template <bool Backward>
__device__ __forceinline__ void accumulate(double& t1, double& t2, double v, double z, double k) {
  if (Backward) {
    t1 += v;
    t2 += v * (z - k);
  } else {
    const double d = v - k;
    t1 += d;
    t2 += d * d;
  }
}

// Tree sum of `n` (a power of two) values per column in shared memory, rows `stride` apart;
// column sums land in row 0. Every thread of the block calls it.
__device__ __forceinline__ void tree_sum(double* s1, double* s2, int row, int col, int n, int width) {
  for (int half = n / 2; half > 0; half /= 2) {
    __syncthreads();
    if (row < half) {
      s1[row * width + col] += s1[(row + half) * width + col];
      s2[row * width + col] += s2[(row + half) * width + col];
    }
  }
  __syncthreads();
}

template <typename T, bool Backward>
__global__ void __launch_bounds__(kThreads)
    stats_nchw_kernel(BatchNormShape s, Chunks ch, FastDivmod by_hw, const T* __restrict__ v, const T* __restrict__ z,
                      const T* __restrict__ mean, double* __restrict__ part) {
  __shared__ double s1[kThreads], s2[kThreads];
  const int64_t c = blockIdx.x / ch.count, g = blockIdx.x % ch.count;
  const double k = Backward ? double(mean[c]) : double(v[c * s.HW]);
  int64_t n0 = g, hw0 = 0, len = 0;
  if (ch.parts > 1) {
    n0 = g / ch.parts;
    hw0 = (g % ch.parts) * kChunk;
    len = s.HW - hw0 < kChunk ? s.HW - hw0 : kChunk;
  } else {
    n0 = g * ch.planes;
    len = (s.N - n0 < ch.planes ? s.N - n0 : ch.planes) * s.HW;
  }
  double t1 = 0, t2 = 0;
  for (int j = threadIdx.x; j < len; j += kThreads) {
    int n_local = 0, hw = j;
    if (ch.parts == 1) by_hw.divmod(j, n_local, hw);
    const int64_t at = ((n0 + n_local) * s.C + c) * s.HW + hw0 + hw;
    accumulate<Backward>(t1, t2, double(v[at]), Backward ? double(z[at]) : 0.0, k);
  }
  s1[threadIdx.x] = t1;
  s2[threadIdx.x] = t2;
  tree_sum(s1, s2, threadIdx.x, 0, kThreads, 1);
  if (threadIdx.x == 0) {
    part[2 * (c * ch.count + g)] = s1[0];
    part[2 * (c * ch.count + g) + 1] = s2[0];
  }
}

template <typename T, bool Backward>
__global__ void __launch_bounds__(kTileC* kRowThreads)
    stats_nhwc_kernel(BatchNormShape s, Chunks ch, const T* __restrict__ v, const T* __restrict__ z,
                      const T* __restrict__ mean, double* __restrict__ part) {
  __shared__ double s1[kRowThreads * kTileC], s2[kRowThreads * kTileC];
  const int64_t tile = blockIdx.x / ch.count, g = blockIdx.x % ch.count;
  const int lane = threadIdx.x % kTileC, row = threadIdx.x / kTileC;
  const int64_t c = tile * kTileC + lane, M = (s.N * s.HW);
  double t1 = 0, t2 = 0;
  if (c < s.C) {
    const double k = Backward ? double(mean[c]) : double(v[c]);
    const int64_t end = (g + 1) * kChunkRows < M ? (g + 1) * kChunkRows : M;
    for (int64_t r = g * kChunkRows + row; r < end; r += kRowThreads)
      accumulate<Backward>(t1, t2, double(v[r * s.C + c]), Backward ? double(z[r * s.C + c]) : 0.0, k);
  }
  s1[row * kTileC + lane] = t1;
  s2[row * kTileC + lane] = t2;
  tree_sum(s1, s2, row, lane, kRowThreads, kTileC);
  if (row == 0 && c < s.C) {
    part[2 * (c * ch.count + g)] = s1[lane];
    part[2 * (c * ch.count + g) + 1] = s2[lane];
  }
}

// The chunks of channel c added in chunk order.
__device__ __forceinline__ void channel_totals(const double* part, int64_t c, int64_t chunks, double& s1, double& s2) {
  s1 = 0;
  s2 = 0;
  for (int64_t g = 0; g < chunks; ++g) {
    s1 += part[2 * (c * chunks + g)];
    s2 += part[2 * (c * chunks + g) + 1];
  }
}

// coef = [m | a | b | k] (C each): the elementwise pass computes a (u - m) + b [+ k v].
template <typename T>
__global__ void finalize_fwd_kernel(BatchNormShape s, int64_t chunks, const T* x, const T* gamma, const T* beta,
                                    double eps, const double* part, double* coef, T* mean, T* var, T* inv_std) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= s.C) return;
  double s1, s2;
  channel_totals(part, c, chunks, s1, s2);
  const double M = double((s.N * s.HW));
  const double K = double(s.layout == Layout::NCHW ? x[c * s.HW] : x[c]);
  // a sum of squares past double's range is +inf: the variance is inf (inv_std 0), not inf - inf
  const double d = s1 / M, q = s2 / M, v = q < HUGE_VAL ? (q - d * d > 0.0 ? q - d * d : 0.0) : q;
  const double is = 1.0 / sqrt(v + eps);
  coef[c] = K + d;
  coef[s.C + c] = is * (gamma ? double(gamma[c]) : 1.0);
  coef[2 * s.C + c] = beta ? double(beta[c]) : 0.0;
  mean[c] = T(coef[c]);
  var[c] = T(v);
  inv_std[c] = T(fmin(is, sizeof(T) == 4 ? double(FLT_MAX) : DBL_MAX));  // saturated, as the CPU kernel
}

template <typename T>
__global__ void finalize_bwd_kernel(BatchNormShape s, int64_t chunks, bool training, const T* mean, const T* inv_std,
                                    const T* gamma, const double* part, double* coef, T* ggamma, T* gbeta) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= s.C) return;
  double db, sum_gxc;
  channel_totals(part, c, chunks, db, sum_gxc);
  const double M = double((s.N * s.HW));
  const double is = double(inv_std[c]), g = gamma ? double(gamma[c]) : 1.0, dg = sum_gxc * is;
  gbeta[c] = T(db);
  ggamma[c] = T(dg);
  const double k = g * is;
  // training: grad_x = k (grad_y - db / M - xhat dg / M) with xhat = (x - mean) is
  coef[c] = double(mean[c]);
  coef[s.C + c] = training ? -k * is * dg / M : 0.0;
  coef[2 * s.C + c] = training ? -k * db / M : 0.0;
  coef[3 * s.C + c] = k;
}

// out[i] = a[c] (u[i] - m[c]) + b[c] [+ k[c] v[i]] over `items` elements of whole rows
// (NCHW: planes, the first of them channel c0; NHWC: pixels).
template <typename T, Layout L, bool HasV>
__global__ void apply_kernel(FastDivmod by_hw, FastDivmod by_c, int c0, const T* __restrict__ u,
                             const T* __restrict__ v, const double* __restrict__ m, const double* __restrict__ a,
                             const double* __restrict__ b, const double* __restrict__ k, T* __restrict__ out,
                             int items) {
  for (int64_t ii = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; ii < items; ii += int64_t(gridDim.x) * blockDim.x) {
    const int i = int(ii);
    int c, rest;
    if (L == Layout::NCHW) {
      int plane, hw;
      by_hw.divmod(i, plane, hw);
      by_c.divmod(c0 + plane, rest, c);
    } else {
      by_c.divmod(i, rest, c);
    }
    double r = a[c] * (double(u[i]) - m[c]) + b[c];
    if (HasV) r += k[c] * double(v[i]);
    out[i] = T(r);
  }
}

template <typename T>
cudaError_t stats(const BatchNormShape& s, const char* pass, const T* v, const T* z, const T* mean, double* part,
                  cudaStream_t stream) {
  const Chunks ch = chunks_of(s);
  const std::string name =
      std::string(dtype_name(sizeof(T))) + "_batchnorm_" + pass + "_stats_" + layout_name(s.layout);
  const bool backward = z != nullptr;
  if (s.layout == Layout::NCHW) {
    const unsigned blocks = unsigned(s.C * ch.count);
    const FastDivmod by_hw(ch.parts == 1 ? s.HW : 1);
    return backward ? launch(name, stats_nchw_kernel<T, true>, dim3(blocks), dim3(kThreads), stream, s, ch, by_hw, v, z,
                             mean, part)
                    : launch(name, stats_nchw_kernel<T, false>, dim3(blocks), dim3(kThreads), stream, s, ch, by_hw, v,
                             z, mean, part);
  }
  const unsigned blocks = unsigned((s.C + kTileC - 1) / kTileC * ch.count);
  return backward ? launch(name, stats_nhwc_kernel<T, true>, dim3(blocks), dim3(kTileC * kRowThreads), stream, s, ch, v,
                           z, mean, part)
                  : launch(name, stats_nhwc_kernel<T, false>, dim3(blocks), dim3(kTileC * kRowThreads), stream, s, ch,
                           v, z, mean, part);
}

template <typename T, Layout L, bool HasV>
cudaError_t apply_rows(const BatchNormShape& s, const char* pass, const T* u, const T* v, const double* coef,
                       int n_coef, T* out, cudaStream_t stream) {
  const std::string name = std::string(dtype_name(sizeof(T))) + "_batchnorm_" + pass + "_" + layout_name(L);
  const int64_t rows = L == Layout::NCHW ? s.N * s.C : s.per_channel();
  const int64_t row_len = L == Layout::NCHW ? s.HW : s.C;
  const double* m = coef;
  const double* a = coef + s.C;
  const double* b = coef + 2 * s.C;
  const double* k = n_coef == 4 ? coef + 3 * s.C : nullptr;
  // Rows per launch: as many as 32-bit indices allow (supported() keeps a row within that),
  // whole channel cycles where possible, so a launch's first plane is channel 0 and c0 + plane
  // stays below 2^31.
  int64_t per_launch = std::max<int64_t>(1, max_launch_elements() / row_len);
  if (L == Layout::NCHW && per_launch >= s.C) per_launch -= per_launch % s.C;
  for (int64_t r0 = 0; r0 < rows; r0 += per_launch) {
    const int items = int(std::min(per_launch, rows - r0) * row_len);
    const int64_t o = r0 * row_len;
    const cudaError_t err = launch(name, apply_kernel<T, L, HasV>, dim3(grid_for(items, kThreads)), dim3(kThreads),
                                   stream, FastDivmod(s.HW), FastDivmod(s.C), int(L == Layout::NCHW ? r0 % s.C : 0),
                                   u + o, HasV ? v + o : v, m, a, b, k, out + o, items);
    if (err != cudaSuccess) return err;
  }
  return cudaSuccess;
}

template <typename T, bool HasV>
cudaError_t apply(const BatchNormShape& s, const char* pass, const T* u, const T* v, const double* coef, int n_coef,
                  T* out, cudaStream_t stream) {
  return s.layout == Layout::NCHW ? apply_rows<T, Layout::NCHW, HasV>(s, pass, u, v, coef, n_coef, out, stream)
                                  : apply_rows<T, Layout::NHWC, HasV>(s, pass, u, v, coef, n_coef, out, stream);
}

// Shapes the launchers take: 32-bit channel and row arithmetic (C < 2^30, a row below the
// launch limit); anything else is refused rather than indexed wrongly.
bool supported(const BatchNormShape& s) {
  const int64_t row_len = s.layout == Layout::NCHW ? s.HW : s.C;
  return s.N > 0 && s.C > 0 && s.HW > 0 && s.C < (int64_t(1) << 30) && row_len <= max_launch_elements();
}

double* partial_sums(void* workspace) { return static_cast<double*>(workspace); }
double* coefficients(const BatchNormShape& s, void* workspace) {
  return static_cast<double*>(workspace) + 2 * s.C * chunks_of(s).count;
}

}  // namespace

int64_t batchnorm_workspace_bytes(const BatchNormShape& s) {
  return int64_t(sizeof(double)) * (2 * s.C * chunks_of(s).count + 4 * s.C);
}

template <typename T>
cudaError_t batchnorm_train_fwd(const BatchNormShape& s, const T* x, const T* gamma, const T* beta, double eps, T* y,
                                T* mean, T* var, T* inv_std, void* workspace, cudaStream_t stream) {
  if (!supported(s)) return cudaErrorInvalidValue;
  double* part = partial_sums(workspace);
  double* coef = coefficients(s, workspace);
  cudaError_t err = stats<T>(s, "fwd", x, nullptr, nullptr, part, stream);
  if (err != cudaSuccess) return err;
  const std::string name = std::string(dtype_name(sizeof(T))) + "_batchnorm_fwd_finalize";
  err = launch(name, finalize_fwd_kernel<T>, dim3(ceil_div_u(s.C, kThreads)), dim3(kThreads), stream, s,
               chunks_of(s).count, x, gamma, beta, eps, static_cast<const double*>(part), coef, mean, var, inv_std);
  if (err != cudaSuccess) return err;
  return apply<T, false>(s, "fwd", x, nullptr, coef, 3, y, stream);
}

template <typename T>
cudaError_t batchnorm_normalize(const BatchNormShape& s, const T* x, const double* coef, T* y, cudaStream_t stream) {
  if (!supported(s)) return cudaErrorInvalidValue;
  return apply<T, false>(s, "normalize", x, nullptr, coef, 3, y, stream);
}

template <typename T>
cudaError_t batchnorm_bwd(const BatchNormShape& s, bool training, const T* gy, const T* x, const T* mean,
                          const T* inv_std, const T* gamma, T* gx, T* ggamma, T* gbeta, void* workspace,
                          cudaStream_t stream) {
  if (!supported(s)) return cudaErrorInvalidValue;
  double* part = partial_sums(workspace);
  double* coef = coefficients(s, workspace);
  cudaError_t err = stats<T>(s, "bwd", gy, x, mean, part, stream);
  if (err != cudaSuccess) return err;
  const std::string name = std::string(dtype_name(sizeof(T))) + "_batchnorm_bwd_finalize";
  err =
      launch(name, finalize_bwd_kernel<T>, dim3(ceil_div_u(s.C, kThreads)), dim3(kThreads), stream, s,
             chunks_of(s).count, training, mean, inv_std, gamma, static_cast<const double*>(part), coef, ggamma, gbeta);
  if (err != cudaSuccess) return err;
  return apply<T, true>(s, "bwd", x, gy, coef, 4, gx, stream);
}

template cudaError_t batchnorm_train_fwd<float>(const BatchNormShape&, const float*, const float*, const float*, double,
                                                float*, float*, float*, float*, void*, cudaStream_t);
template cudaError_t batchnorm_train_fwd<double>(const BatchNormShape&, const double*, const double*, const double*,
                                                 double, double*, double*, double*, double*, void*, cudaStream_t);
template cudaError_t batchnorm_normalize<float>(const BatchNormShape&, const float*, const double*, float*,
                                                cudaStream_t);
template cudaError_t batchnorm_normalize<double>(const BatchNormShape&, const double*, const double*, double*,
                                                 cudaStream_t);
template cudaError_t batchnorm_bwd<float>(const BatchNormShape&, bool, const float*, const float*, const float*,
                                          const float*, const float*, float*, float*, float*, void*, cudaStream_t);
template cudaError_t batchnorm_bwd<double>(const BatchNormShape&, bool, const double*, const double*, const double*,
                                           const double*, const double*, double*, double*, double*, void*,
                                           cudaStream_t);

}  // namespace cuda
}  // namespace fastconv
