// The implicit-GEMM main loop shared by the three convolution passes.
//
//   C[M x Ng] = A[M x Kg] * B[Kg x Ng]      (forward: M = N*P*Q, Ng = K, Kg = C*R*S)
//
// A and B are never stored: a Problem (fwd.cu, bwd_data.cu, bwd_weight.cu)
// computes one element of the virtual matrices (an im2col gather with zero padding, or a plain
// weight load) while the tiles are copied to shared memory, and writes C in its epilogue.
//
// Problem interface (all __device__, indices < 2^31; the launchers guarantee it):
//   using T;  int M, Ng, Kg, k_chunk;
//   static constexpr bool kAContiguousK, kBContiguousK   // which way the loads coalesce
//   RowA row_a(int m);  T a(const RowA&, int kk);       // row_a() handles m >= M
//   ColB col_b(int n);  T b(const ColB&, int kk);       // col_b() handles n >= Ng
//   RowC row_c(int m);  void store(const RowC&, int n, T value, int split);
// kk always lies in [k_begin, k_end) of the block's split (blockIdx.z), so problems need not
// bound-check it.
//
// Blocking (TileConfig): a block of (BM/TM)*(BN/TN) threads computes a BM x BN tile of C,
// stepping BK columns of A / rows of B at a time through shared memory; each thread owns a
// TM x TN register tile. kernel3 f32: 128x128x8 with 8x8 per thread = 256 threads, 64
// accumulators + 8 + 8 fragment registers; per BK step a thread loads 4 A + 4 B elements and
// does 8*64 = 512 FMAs from 8*(8+8) shared-memory reads (two 16-byte reads per fragment).
// The next tile's global loads are issued into registers before the current tile's math
// (register prefetch), so their latency hides behind the FMAs.
#pragma once
#include "../common.cuh"

namespace fastconv {
namespace cuda {

template <int BM_, int BN_, int BK_, int TM_, int TN_>
struct TileConfig {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, TM = TM_, TN = TN_;
  static constexpr int kThreads = (BM / TM) * (BN / TN);
};

// Reads n consecutive elements of shared memory, 16 bytes at a time when the count allows it
// (the address is 16-byte aligned: rows are padded to a multiple of 16 bytes).
template <typename T, int N>
__device__ __forceinline__ void load_fragment(T (&dst)[N], const T* src) {
  constexpr int kVec = 16 / sizeof(T);
  if constexpr (N % kVec == 0) {
#pragma unroll
    for (int i = 0; i < N; i += kVec) {
      const Pack<T, kVec> v = *reinterpret_cast<const Pack<T, kVec>*>(src + i);
#pragma unroll
      for (int j = 0; j < kVec; ++j) dst[i + j] = v.v[j];
    }
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i) dst[i] = src[i];
  }
}

template <typename Problem, typename Cfg>
__global__ void __launch_bounds__(Cfg::kThreads) conv2d_igemm_kernel(Problem prob) {
  using T = typename Problem::T;
  constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK, TM = Cfg::TM, TN = Cfg::TN;
  constexpr int kThreads = Cfg::kThreads;
  constexpr int kPad = 16 / sizeof(T);  // keeps rows 16-byte aligned and spreads the banks
  constexpr int kAIters = BM * BK / kThreads, kBIters = BN * BK / kThreads;
  static_assert(BM * BK % kThreads == 0 && BN * BK % kThreads == 0, "tile not divisible by threads");
  static_assert(BM % TM == 0 && BN % TN == 0, "register tile must divide the block tile");

  struct alignas(16) Smem {
    T a[BK][BM + kPad];  // A tile stored k-major: a thread's TM rows are contiguous
    T b[BK][BN + kPad];
  };
  __shared__ Smem smem;

  const int tid = threadIdx.x;
  const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;
  const int k_begin = blockIdx.z * prob.k_chunk;
  const int k_end = k_begin + prob.k_chunk < prob.Kg ? k_begin + prob.k_chunk : prob.Kg;

  // This thread's load slots: element i of its share of a tile sits at (a_m[i], a_k[i]).
  // Consecutive threads take consecutive addresses in memory: along k when the operand is
  // contiguous in k, along m (or n) otherwise.
  int a_m[kAIters], a_k[kAIters], b_n[kBIters], b_k[kBIters];
  typename Problem::RowA rows[kAIters];
  typename Problem::ColB cols[kBIters];
#pragma unroll
  for (int i = 0; i < kAIters; ++i) {
    const int lin = tid + i * kThreads;
    a_k[i] = Problem::kAContiguousK ? lin % BK : lin / BM;
    a_m[i] = Problem::kAContiguousK ? lin / BK : lin % BM;
    rows[i] = prob.row_a(m0 + a_m[i]);
  }
#pragma unroll
  for (int i = 0; i < kBIters; ++i) {
    const int lin = tid + i * kThreads;
    b_k[i] = Problem::kBContiguousK ? lin % BK : lin / BN;
    b_n[i] = Problem::kBContiguousK ? lin / BK : lin % BN;
    cols[i] = prob.col_b(n0 + b_n[i]);
  }

  T a_reg[kAIters], b_reg[kBIters];
  auto fetch = [&](int k0) {
#pragma unroll
    for (int i = 0; i < kAIters; ++i) {
      const int kk = k0 + a_k[i];
      a_reg[i] = kk < k_end ? prob.a(rows[i], kk) : T(0);
    }
#pragma unroll
    for (int i = 0; i < kBIters; ++i) {
      const int kk = k0 + b_k[i];
      b_reg[i] = kk < k_end ? prob.b(cols[i], kk) : T(0);
    }
  };

  const int tx = tid % (BN / TN), ty = tid / (BN / TN);
  T acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = T(0);

  if (k_begin < k_end) fetch(k_begin);
  for (int k0 = k_begin; k0 < k_end; k0 += BK) {
#pragma unroll
    for (int i = 0; i < kAIters; ++i) smem.a[a_k[i]][a_m[i]] = a_reg[i];
#pragma unroll
    for (int i = 0; i < kBIters; ++i) smem.b[b_k[i]][b_n[i]] = b_reg[i];
    __syncthreads();
    if (k0 + BK < k_end) fetch(k0 + BK);  // in flight while we compute on the current tile
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      T af[TM], bf[TN];
      load_fragment(af, &smem.a[kk][ty * TM]);
      load_fragment(bf, &smem.b[kk][tx * TN]);
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] += af[i] * bf[j];
    }
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int m = m0 + ty * TM + i;
    if (m >= prob.M) continue;
    const typename Problem::RowC rc = prob.row_c(m);
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int n = n0 + tx * TN + j;
      if (n < prob.Ng) prob.store(rc, n, acc[i][j], blockIdx.z);
    }
  }
}

// Launches conv2d_igemm_kernel<Problem, Cfg> over the whole (M, Ng, splits) problem.
template <typename Cfg, typename Problem>
cudaError_t launch_igemm(const std::string& name, const Problem& prob, int splits, cudaStream_t stream) {
  const dim3 grid(ceil_div_u(prob.M, Cfg::BM), ceil_div_u(prob.Ng, Cfg::BN), splits);
  if (grid.y > 65535 || grid.z > 65535) return cudaErrorInvalidValue;
  return launch(name, conv2d_igemm_kernel<Problem, Cfg>, grid, dim3(Cfg::kThreads), stream, prob);
}

// The configurations the launchers pick from (see kernels.h for the version numbers).
using SmemTiled = TileConfig<16, 16, 16, 1, 1>;         // kernel2, both dtypes
using RegTileF32 = TileConfig<128, 128, 8, 8, 8>;       // kernel3 f32
using RegTileF32Narrow = TileConfig<128, 64, 8, 8, 4>;  // kernel3 f32 when Ng <= 64
using RegTileF64 = TileConfig<64, 64, 8, 4, 4>;         // kernel3 f64

template <typename Cfg>
std::string tile_name(const char* op, const char* version, const char* dtype, Layout layout) {
  return std::string(dtype) + "_" + op + "_" + layout_name(layout) + "_" + version + "_" + std::to_string(Cfg::BM) +
         "x" + std::to_string(Cfg::BN) + "x" + std::to_string(Cfg::BK) + "_" + std::to_string(Cfg::TM) + "x" +
         std::to_string(Cfg::TN);
}

// Runs `prob` with the tile configuration of `version` (2 or 3) for dtype T.
template <typename T, typename Problem>
cudaError_t run_igemm(const char* op, const Problem& prob, int version, Layout layout, int splits,
                      cudaStream_t stream) {
  const char* dt = dtype_name(sizeof(T));
  if (version == 2)
    return launch_igemm<SmemTiled>(tile_name<SmemTiled>(op, "kernel2_smem_tiled", dt, layout), prob, splits, stream);
  if constexpr (sizeof(T) == 4) {
    if (prob.Ng <= 64)
      return launch_igemm<RegTileF32Narrow>(tile_name<RegTileF32Narrow>(op, "kernel3_regtile", dt, layout), prob,
                                            splits, stream);
    return launch_igemm<RegTileF32>(tile_name<RegTileF32>(op, "kernel3_regtile", dt, layout), prob, splits, stream);
  } else {
    return launch_igemm<RegTileF64>(tile_name<RegTileF64>(op, "kernel3_regtile", dt, layout), prob, splits, stream);
  }
}

// Tile sizes of `version` for dtype size `dsize` and Ng columns: {BM, BN, BK}.
inline void igemm_tile(int version, int dsize, int64_t Ng, int* bm, int* bn, int* bk) {
  if (version == 2) {
    *bm = SmemTiled::BM;
    *bn = SmemTiled::BN;
    *bk = SmemTiled::BK;
    return;
  }
  if (dsize == 4) {
    const bool narrow = Ng <= 64;
    *bm = narrow ? RegTileF32Narrow::BM : RegTileF32::BM;
    *bn = narrow ? RegTileF32Narrow::BN : RegTileF32::BN;
    *bk = RegTileF32::BK;
    return;
  }
  *bm = RegTileF64::BM;
  *bn = RegTileF64::BN;
  *bk = RegTileF64::BK;
}

}  // namespace cuda
}  // namespace fastconv
