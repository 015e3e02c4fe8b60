// Dense-layer kernels (contracts in linear.h) compiled once per ISA: avx512.cpp and avx2.cpp
// include this after their traits header (which names the ISA namespace FASTCONV_SIMD_NS); it
// drives the register-tile microkernel of conv2d/microkernel.inl; linear_ops is at the end.
// References: ref::gemm and ref::column_sums in ref.cpp.
//
// fc.linear and its backward passes are one GEMM each, C (M,N) = A (M,K) B (K,N), with the
// operands read in place through strides (GemmParams), whichever way round they are stored:
//   forward          y (N,out)  = x (N,in) w^T            + bias, activation fused
//   backward-data    gx (N,in)  = gy (N,out) w (out,in)
//   backward-weight  gw (out,in) = gy^T (out,N) x (N,in),  gb = column sums of gy
//
// Blocking. The microkernel (tile_kernel, conv2d/microkernel.inl) keeps an NJ x KB tile of C in registers
// (AVX-512: 14 rows x 32 fp32 columns, AVX2: 6 x 16) and broadcasts NJ values of A, read in place
// through its strides, against KB contiguous values of B per reduction step. A work item is a
// group of adjacent KB-column panels of C. For each block of kc reduction steps the thread packs
// the group's B values into (panel, kc, KB) order, reading B along its contiguous axis (whole
// row segments of a row-major B, whole column segments of a transposed one: a dense layer at
// small batch is bound by reading its weights, and only long contiguous reads run at memory
// speed), then runs every NJ-row block of A over the packed panels while that A block stays in
// L1. Partial sums between reduction blocks go to a per-thread (M, group width) buffer; the last
// block writes C with the bias and the activation. Every element of C adds its k in increasing order, so
// the result is the same for any thread count and any grouping.

#pragma once  // once per translation unit: each ISA file includes it for its own ISA
#ifndef FASTCONV_SIMD_NS
#error "include simd/avx512.h or simd/avx2.h before linear/linear.inl"
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../conv2d/microkernel.inl"
#include "../conv2d/workspace.h"
#include "../eltwise/eltwise.h"
#include "../runtime/loops.h"
#include "linear.h"

namespace fastconv {
namespace FASTCONV_SIMD_NS {
namespace {

constexpr int64_t kGemmKBlock = 256;       // packed B block: 256 x 32 fp32 = 32 KiB per panel
constexpr int64_t kGemmMinRowBytes = 512;  // a group reads at least 8 cache lines per B row

// a, b by strides (GemmParams), bias (N) or null -> c (M,N) row-major
template <class V>
void gemm(const GemmParams& g, const typename V::T* a, const typename V::T* b, const typename V::T* bias,
          typename V::T* c) {
  using T = typename V::T;
  constexpr int64_t KB = V::NV * V::W;
  const int threads = threads_for(g.macs());
  const int64_t panels = ceil_div(g.N, KB), kc = std::min(g.K, kGemmKBlock);
  const int64_t wide = ceil_div(kGemmMinRowBytes, KB * int64_t(sizeof(T)));
  const int64_t per_group = std::max<int64_t>(1, std::min(wide, ceil_div(panels, threads)));
  const int64_t groups = ceil_div(panels, per_group);
  const bool a_strided = g.a_rs != 1;
  const int64_t zero = 0;
  parallel_for(threads, groups, 1, [&](int64_t gb, int64_t ge) {
    T* packed = scratch<T>(slot::kGemmPackedB, per_group * kc * KB);
    T* sums = g.K > kc ? scratch<T>(slot::kGemmPartialSums, g.M * per_group * KB) : nullptr;
    std::vector<T> bias_block(per_group * KB, T(0));
    for (int64_t grp = gb; grp < ge; ++grp) {
      const int64_t p0 = grp * per_group, np = std::min(per_group, panels - p0);
      const int64_t n0 = p0 * KB, ncols = std::min(np * KB, g.N - n0);
      if (bias) std::copy(bias + n0, bias + n0 + ncols, bias_block.begin());
      for (int64_t k0 = 0; k0 < g.K; k0 += kc) {
        const int64_t kn = std::min(kc, g.K - k0);
        const bool first = k0 == 0, last = k0 + kn == g.K;
        // B[k0 + k][n0 + j] -> packed[(j / KB) * kc * KB + k * KB + j % KB], zeros past N
        const T* bk = b + k0 * g.b_rs + n0 * g.b_cs;
        if (g.b_cs == 1) {
          for (int64_t k = 0; k < kn; ++k) {
            const T* row = bk + k * g.b_rs;
            for (int64_t pi = 0; pi < np; ++pi) {
              T* dst = packed + pi * kc * KB + k * KB;
              const int64_t nvalid = std::min(KB, ncols - pi * KB);
              if (nvalid == KB) {
                std::memcpy(dst, row + pi * KB, KB * sizeof(T));
              } else {
                std::copy(row + pi * KB, row + pi * KB + nvalid, dst);
                std::fill(dst + nvalid, dst + KB, T(0));
              }
            }
          }
        } else {
          for (int64_t j = 0; j < np * KB; ++j) {
            T* dst = packed + (j / KB) * kc * KB + j % KB;
            if (j < ncols)
              for (int64_t k = 0; k < kn; ++k) dst[k * KB] = bk[j * g.b_cs + k * g.b_rs];
            else
              for (int64_t k = 0; k < kn; ++k) dst[k * KB] = T(0);
          }
        }
        for (int64_t m0 = 0; m0 < g.M; m0 += V::NJ) {
          const int64_t nj = std::min<int64_t>(V::NJ, g.M - m0);
          for (int64_t pi = 0; pi < np; ++pi) {
            const int64_t nvalid = std::min(KB, ncols - pi * KB);
            TileArgs<T> t;
            t.A = a + m0 * g.a_rs + k0 * g.a_cs;
            t.aoff = &zero;
            t.a_js = g.a_rs;
            t.a_ts = g.a_cs;
            t.B = packed + pi * kc * KB;
            t.boff = &zero;
            t.ldb = KB;
            t.U = 1;
            t.Tn = kn;
            t.init = !first ? Init::load : bias ? Init::bias : Init::zero;
            t.bias = bias_block.data() + pi * KB;
            if (!first) {
              t.partial = sums + m0 * np * KB + pi * KB;
              t.ldp = np * KB;
            }
            if (last) {
              t.epilogue = g.epilogue;
              t.alpha = T(g.alpha);
              t.out = c + m0 * g.N + n0 + pi * KB;
              t.ldo = g.N;
              t.kvalid = static_cast<int>(nvalid);
            } else {
              t.out = sums + m0 * np * KB + pi * KB;
              t.ldo = np * KB;
              t.kvalid = static_cast<int>(KB);
            }
            tile_fn<V>(nj, last ? ceil_div(nvalid, V::W) : V::NV, a_strided)(t);
          }
        }
      }
    }
  });
  if (verbose())
    std::fprintf(stderr, "fastconv: gemm %s_gemm_%dx%d_%s M=%lld N=%lld K=%lld kc=%lld groups=%lld threads=%d\n",
                 V::name, V::NJ, int(KB), isa_name(current_isa()), (long long)g.M, (long long)g.N, (long long)g.K,
                 (long long)kc, (long long)groups, threads);
}
// x (M,N) row-major -> sums (N): vectors of columns, rows added in order.
template <class V>
void column_sums(int64_t M, int64_t N, const typename V::T* x, typename V::T* sums) {
  using T = typename V::T;
  const int64_t nvec = ceil_div(N, V::W);
  parallel_for(threads_for(M * N), nvec, [&](int64_t vb, int64_t ve) {
    for (int64_t v = vb; v < ve; ++v) {
      const int64_t j = v * V::W;
      const int nl = static_cast<int>(std::min<int64_t>(V::W, N - j));
      typename V::reg s = V::zero();
      for (int64_t i = 0; i < M; ++i) s = V::add(s, nl == V::W ? V::load(x + i * N + j) : V::load_n(x + i * N + j, nl));
      alignas(64) T lanes[V::W];
      V::store(lanes, s);
      for (int l = 0; l < nl; ++l) sums[j + l] = lanes[l];
    }
  });
}

}  // namespace

template <typename T>
LinearOps<T> linear_ops() {
  return LinearOps<T>{gemm<VecOf<T>>, column_sums<VecOf<T>>};
}
template LinearOps<float> linear_ops<float>();
template LinearOps<double> linear_ops<double>();

}  // namespace FASTCONV_SIMD_NS
}  // namespace fastconv
