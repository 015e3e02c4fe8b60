// The register-tile microkernel of the SIMD conv2d, Winograd and dense-layer kernels, compiled
// once per ISA: a TU includes it after its traits header (simd/avx512.h or simd/avx2.h), which
// names the namespace FASTCONV_SIMD_NS and defines the vector traits VecF32 / VecF64.
//
// tile_kernel keeps an NJ x NV register tile
//   acc[j][v] += sum_u sum_t A[aoff[u] + j*a_js + t*a_ts] * B[boff[u] + t*ldb + v*W .. +W)
// i.e. an outer product of NJ broadcast scalars and NV vectors of W lanes per step t.
// AVX-512: NJ=14, NV=2 -> 28 zmm accumulators (14 pixels x 32 fp32 / 16 fp64 channels);
// AVX2: 6 x 2 -> 12 ymm. What the rows, lanes and steps are is up to the driver: see the
// comments of conv2d/direct.inl, bwd_weight.inl, winograd.inl and linear/linear.inl. A tile is
// named <dtype>_<op>_<NJ>x<NV*W>_<isa> in FASTCONV_VERBOSE output.
//
// The templates are in the ISA's named namespace (not an anonymous one), so the tile tables
// are emitted once per ISA however many translation units use them.
#pragma once  // once per translation unit: each ISA file includes it for its own ISA
#ifndef FASTCONV_SIMD_NS
#error "include simd/avx512.h or simd/avx2.h before conv2d/microkernel.inl"
#endif

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include "../simd/vector_math.h"
#include "algorithm.h"

namespace fastconv {
namespace FASTCONV_SIMD_NS {

enum class Init { zero, bias, load };

template <typename T>
struct TileArgs {
  const T* A = nullptr;  // broadcast operand: A[aoff[u] + j*a_js + t*a_ts]
  const int64_t* aoff = nullptr;
  int64_t a_js = 1, a_ts = 0;
  const T* B = nullptr;  // vector operand: B[boff[u] + t*ldb + lane]
  const int64_t* boff = nullptr;
  int64_t ldb = 0;
  int64_t U = 0, Tn = 0;       // reduction extents
  Init init = Init::zero;      // accumulators start at 0, bias[lane] or partial sums
  const T* bias = nullptr;     // NV*W values
  const T* partial = nullptr;  // Init::load: partial[j*ldp + lane]
  int64_t ldp = 0;
  Epilogue epilogue = Epilogue::none;  // applied to the finished sums before the store
  T alpha = T(0);                      // leaky_relu's slope
  T* out = nullptr;
  bool out_transposed = false;  // false: out[j*ldo + lane]; true: out[lane*ldo + j]
  bool out_stream = false;      // non-transposed, all lanes valid, out and ldo vector-aligned:
                                // non-temporal stores (the caller issues the sfence)
  int64_t ldo = 0;
  int kvalid = 0;  // lanes of the tile that exist in `out` (<= NV*W)
};

// NJ broadcast rows x NV vectors, accumulated over (u, t); then the epilogue and the store.
// STRIDED = false: the NJ broadcast values are adjacent (a_js = 1, constant displacements).
// STRIDED = true: they are a_js apart (NHWC pixels); addresses come from one pointer per three
// rows plus a_js*{0,1,2}, which x86 addressing encodes without extra instructions.
// TOUTER = true: loop order t outer, u inner (for operands that are reused across u).
template <class V, int NJ, int NV, bool STRIDED, bool TOUTER = false>
void tile_kernel(const TileArgs<typename V::T>& g) {
  using T = typename V::T;
  using reg = typename V::reg;
  constexpr int W = V::W;
  constexpr int NP = STRIDED ? (NJ + 2) / 3 : 1;
  reg acc[NJ][NV];
  if (g.init == Init::load) {
#pragma GCC unroll 16
    for (int j = 0; j < NJ; ++j)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[j][v] = V::load(g.partial + j * g.ldp + v * W);
  } else {
    reg b[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) b[v] = g.init == Init::bias ? V::load(g.bias + v * W) : V::zero();
#pragma GCC unroll 16
    for (int j = 0; j < NJ; ++j)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[j][v] = b[v];
  }

  const int64_t js = g.a_js;
  if (TOUTER) {
    // t outer, u inner: one t's operand rows are reused by every u while still in L1.
    for (int64_t t = 0; t < g.Tn; ++t) {
      for (int64_t u = 0; u < g.U; ++u) {
        const T* a = g.A + g.aoff[u] + t * g.a_ts;
        const T* b = g.B + g.boff[u] + t * g.ldb;
        reg w[NV];
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) w[v] = V::load(b + v * W);
#pragma GCC unroll 16
        for (int j = 0; j < NJ; ++j) {
          const reg x = V::set1(a[j]);
#pragma GCC unroll 8
          for (int v = 0; v < NV; ++v) acc[j][v] = V::fma(x, w[v], acc[j][v]);
        }
      }
    }
  } else {
    for (int64_t u = 0; u < g.U; ++u) {
      const T* a = g.A + g.aoff[u];
      const T* b = g.B + g.boff[u];
      const T* ap[NP];
#pragma GCC unroll 8
      for (int q = 0; q < NP; ++q) ap[q] = a + 3 * q * js;
      for (int64_t t = 0; t < g.Tn; ++t) {
        reg w[NV];
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) w[v] = V::load(b + v * W);
#pragma GCC unroll 16
        for (int j = 0; j < NJ; ++j) {
          const reg x = STRIDED ? V::set1(ap[j / 3][(j % 3) * js]) : V::set1(a[j]);
#pragma GCC unroll 8
          for (int v = 0; v < NV; ++v) acc[j][v] = V::fma(x, w[v], acc[j][v]);
        }
        if (STRIDED) {
#pragma GCC unroll 8
          for (int q = 0; q < NP; ++q) ap[q] += g.a_ts;
        } else {
          a += g.a_ts;
        }
        b += g.ldb;
      }
    }
  }

  if (g.epilogue == Epilogue::relu) {
#pragma GCC unroll 16
    for (int j = 0; j < NJ; ++j)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[j][v] = V::relu(acc[j][v]);
  } else if (g.epilogue != Epilogue::none) {
    alignas(64) T buf[NJ][NV * W];
#pragma GCC unroll 16
    for (int j = 0; j < NJ; ++j)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) V::store(&buf[j][v * W], acc[j][v]);
    activate_vectors<V>(activation_of(g.epilogue), g.alpha, NJ * NV, &buf[0][0]);
#pragma GCC unroll 16
    for (int j = 0; j < NJ; ++j)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[j][v] = V::load(&buf[j][v * W]);
  }

  if (g.out_stream) {
#pragma GCC unroll 16
    for (int j = 0; j < NJ; ++j)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) V::stream(g.out + j * g.ldo + v * W, acc[j][v]);
  } else if (!g.out_transposed) {
#pragma GCC unroll 16
    for (int j = 0; j < NJ; ++j)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) {
        T* o = g.out + j * g.ldo + v * W;
        if ((v + 1) * W <= g.kvalid) V::store(o, acc[j][v]);
        else if (v * W < g.kvalid) V::store_n(o, acc[j][v], g.kvalid - v * W);
      }
  } else {
    // NCHW output: lanes are channels, j runs along a row; transpose through the stack.
    alignas(64) T buf[NJ][NV * W];
#pragma GCC unroll 16
    for (int j = 0; j < NJ; ++j)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) V::store(&buf[j][v * W], acc[j][v]);
    for (int k = 0; k < g.kvalid; ++k) {
      T* o = g.out + k * g.ldo;
      for (int j = 0; j < NJ; ++j) o[j] = buf[j][k];
    }
  }
}

template <class V>
using TileFn = void (*)(const TileArgs<typename V::T>&);
template <class V>
using TileTable = std::array<std::array<TileFn<V>, V::NV>, V::NJ>;

template <class V, bool ST, int NJ, size_t... I>
constexpr std::array<TileFn<V>, V::NV> tile_row(std::index_sequence<I...>) {
  return {{&tile_kernel<V, NJ, static_cast<int>(I) + 1, ST>...}};
}
template <class V, bool ST, size_t... J>
constexpr TileTable<V> tile_table(std::index_sequence<J...>) {
  return {{tile_row<V, ST, static_cast<int>(J) + 1>(std::make_index_sequence<V::NV>())...}};
}

// The tile kernel for nj broadcast rows (1..NJ), nv vectors (1..NV), adjacent or strided rows.
template <class V>
TileFn<V> tile_fn(int64_t nj, int64_t nv, bool strided) {
  static constexpr TileTable<V> adjacent = tile_table<V, false>(std::make_index_sequence<V::NJ>());
  static constexpr TileTable<V> apart = tile_table<V, true>(std::make_index_sequence<V::NJ>());
  return (strided ? apart : adjacent)[nj - 1][nv - 1];
}

// Tiles for few broadcast rows and many vectors (the pixel-vector backward-data paths for
// C <= kSmallChannels, algorithm.h): NJ rows x nv (1..NVmax) vectors with
// NVmax = min(8, (REGS-1)/(NJ+1)), i.e. NJ*NVmax accumulators + NVmax operand vectors
// + 1 broadcast fit the register file (AVX-512, NJ = 3: 3 x 7 zmm = 112 pixels of 3 channels).
template <class V, int NJ>
constexpr int small_nv() {
  return std::min(8, (V::REGS - 1) / (NJ + 1));
}

template <class V, int NJ, size_t... I>
constexpr std::array<TileFn<V>, 8> small_row(std::index_sequence<I...>) {
  return {{(static_cast<int>(I) < small_nv<V, NJ>()
                ? &tile_kernel<V, NJ, std::min(static_cast<int>(I) + 1, small_nv<V, NJ>()), false, true>
                : nullptr)...}};
}
template <class V>
TileFn<V> small_tile_fn(int64_t nj, int64_t nv) {
  static constexpr std::array<std::array<TileFn<V>, 8>, kSmallChannels> table = {
      {small_row<V, 1>(std::make_index_sequence<8>()), small_row<V, 2>(std::make_index_sequence<8>()),
       small_row<V, 3>(std::make_index_sequence<8>()), small_row<V, 4>(std::make_index_sequence<8>()),
       small_row<V, 5>(std::make_index_sequence<8>()), small_row<V, 6>(std::make_index_sequence<8>()),
       small_row<V, 7>(std::make_index_sequence<8>()), small_row<V, 8>(std::make_index_sequence<8>())}};
  return table[nj - 1][nv - 1];
}
template <class V>
int64_t small_nv_max(int64_t nj) {
  static constexpr int nvs[kSmallChannels] = {small_nv<V, 1>(), small_nv<V, 2>(), small_nv<V, 3>(), small_nv<V, 4>(),
                                              small_nv<V, 5>(), small_nv<V, 6>(), small_nv<V, 7>(), small_nv<V, 8>()};
  return nvs[nj - 1];
}

}  // namespace FASTCONV_SIMD_NS
}  // namespace fastconv
