// The direct convolution driver of the forward and stride-1 backward-data passes, compiled once
// per ISA (included by conv2d/fwd.inl and bwd_data.inl after a traits header):
//
//   forward         j = 14 output pixels of one row, lanes = 32 output channels, the
//                   reduction runs over (r, s, c). Weights are packed per k-block as
//                   (R, S, C, KB), by the thread that uses them, into an L2-resident buffer:
//                   one contiguous stream per register tile of KB = NV*W output channels.
//                   Input: NHWC is read in place when no padding is needed, else its
//                   zero-padded rows are built on demand into a per-thread ring of rows that
//                   stays in L2; each filter row's (s, c) pairs form one contiguous loop. NCHW
//                   rows are built the same way in a "row-channel-column" layout
//                   (C, stride_w, Wb/stride_w) where the pixels of one tap are adjacent even
//                   for stride 2 (columns split by phase). Bias and the epilogue (ReLU,
//                   sigmoid, ...) are applied to the accumulators; NCHW output is
//                   transposed through the stack on the store.
//   backward-data   the same driver on grad_y with flipped, transposed weights (R, S, K, C): a
//                   stride-1 "full" convolution (stride > 1 goes to bwd_data_strided.inl).
//
// Threads (thread_pool.h): chunks of (k-block group, n, output row) items; batch 1 splits rows,
// so both cores work. Every parallel region of one convolution uses threads_for(p.macs())
// threads (loops.h): problems too small to pay for waking the team run on the calling thread.
#pragma once  // once per translation unit: each ISA file includes it for its own ISA
#ifndef FASTCONV_SIMD_NS
#error "include simd/avx512.h or simd/avx2.h before conv2d/direct.inl"
#endif

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../eltwise/eltwise.h"
#include "../runtime/loops.h"
#include "conv2d.h"
#include "layout.inl"
#include "microkernel.inl"
#include "workspace.h"

namespace fastconv {
namespace FASTCONV_SIMD_NS {

// out[n, k, oh, ow] = bias[k] + sum_{r,s,c} in(n, oh*sh + r*dh, ow*sw + s*dw, c) * w[r, s, c, k]
// (then the epilogue). `in` is a padded buffer of rows; the element for output column ow, reduction
// step (u, t) sits at row(oh*sh + u_row[u]*dh) + ow*js + aoff[u] + t*a_ts. Weights are packed
// per k-block as (U, Tn, KB).
struct DirectConv {
  int64_t N = 0, C = 0, K = 0, P = 0, Q = 0, RS = 0, sh = 1, dh = 1;
  int64_t Hb = 0, row = 0, js = 1, a_ts = 1;
  // Reduction as U x Tn steps: A at aoff[u] + t*a_ts in input row u_row[u], packed weights at
  // boff[u] + t*KB. (R*S taps x C channels; NHWC with dilation_w 1 fuses each filter row's
  // (s, c) pairs, which are contiguous in both operands: R x S*C, fewer and longer loops.)
  int64_t U = 0, Tn = 0;
  std::vector<int64_t> aoff, boff, u_row;
  Layout out_layout = Layout::NCHW;
  Epilogue epilogue = Epilogue::none;
  double alpha = 0.0;
  bool stream_out = false;  // NHWC output written with non-temporal stores (see stream_output)
  int threads = 1;
};

// Geometry of the forward driver's input: NCHW sources become row-channel-column rows (adjacent
// pixels: js = 1); NHWC sources padded NHWC rows (pixels js = sw*C apart). Returns true when
// the NHWC source can be read in place (no padding needed); otherwise the driver builds the
// padded rows on demand with `plan`.
inline bool describe_input(const Padded& g, int64_t R, int64_t S, int64_t sw, int64_t dh, int64_t dw, int64_t KB,
                           int64_t Wph, DirectConv* d) {
  d->Hb = g.Hb;
  d->dh = dh;
  d->U = R * S;
  d->Tn = g.C;
  d->aoff.resize(R * S);
  d->boff.resize(R * S);
  d->u_row.resize(R * S);
  for (int64_t u = 0; u < R * S; ++u) {
    d->boff[u] = u * g.C * KB;
    d->u_row[u] = u / S;
  }
  if (g.layout == Layout::NCHW) {
    d->row = g.C * sw * Wph;
    d->js = 1;
    d->a_ts = sw * Wph;
    for (int64_t r = 0; r < R; ++r)
      for (int64_t s = 0; s < S; ++s) d->aoff[r * S + s] = (s * dw) % sw * Wph + (s * dw) / sw;
    return false;
  }
  const bool in_place = g.off_h == 0 && g.off_w == 0 && g.Hb <= g.Hs && g.Wb <= g.Ws;
  const int64_t Wb = in_place ? g.Ws : g.Wb;
  if (in_place) d->Hb = g.Hs;
  d->row = Wb * g.C;
  d->js = sw * g.C;
  d->a_ts = 1;
  if (dw == 1) {  // fuse (s, c): x[.., col + s, c] is contiguous over (s, c)
    d->U = R;
    d->Tn = S * g.C;
    d->aoff.assign(R, 0);
    d->boff.resize(R);
    d->u_row.resize(R);
    for (int64_t r = 0; r < R; ++r) {
      d->boff[r] = r * S * g.C * KB;
      d->u_row[r] = r;
    }
  } else {
    for (int64_t r = 0; r < R; ++r)
      for (int64_t s = 0; s < S; ++s) d->aoff[r * S + s] = s * dw * g.C;
  }
  return in_place;
}

// Reduction steps t per block (input channels, or (s, c) pairs): the block's packed weights,
// U*tb*KB values, stay in
// L2 (1 MiB) while a group of tiles along the row reuses them. (Blocking for L1 instead, about
// 20 KiB of weights, measured 10% slower on VGG16 layers: the extra partial-sum traffic costs
// more than the L2 weight stream, which the hardware prefetcher keeps up with.) All VGG16
// layers fit in one block.
template <class V>
int64_t reduction_block(int64_t Tn, int64_t U) {
  constexpr int64_t KB = V::NV * V::W;
  const int64_t tb = std::max<int64_t>(4, (1 << 20) / (U * KB * int64_t(sizeof(typename V::T))));
  if (Tn <= tb) return Tn;
  return ceil_div(Tn, ceil_div(Tn, tb));  // equal blocks
}

// `src` is the caller's input; with `plan` its padded rows are built on demand, by the thread
// that needs them, into a small per-thread ring of rows that stays in L2 (consecutive output
// rows of a work chunk reuse R-1 of their R input rows); without, src already is the buffer.
template <class V>
void direct_conv(const DirectConv& d, const typename V::T* src, const RowPlan<typename V::T>* plan,
                 const WeightBlocks<typename V::T>& weights, const typename V::T* bias, typename V::T* y) {
  using T = typename V::T;
  constexpr int64_t KB = V::NV * V::W;                  // output channels per register tile
  constexpr int64_t kGroup = (64 + V::NJ - 1) / V::NJ;  // tiles sharing one weight block
  const int64_t nkb = ceil_div(d.K, KB), tb = reduction_block<V>(d.Tn, d.U);
  const bool strided = d.js != 1;
  // Work items (k-block group, n, oh), each running the k-blocks of its group over one output
  // row. A group's packed weights (R*S*C*KB values per k-block, contiguous) are at most
  // 320 KiB, so they stay in L2 while a thread walks the rows, and the few input rows an item
  // reads are reused from L2 by every k-block of the group: the 224x224 VGG16 layers read their
  // input from memory once instead of once per k-block (+8%); larger groups measured slower.
  const int64_t kb_elems = d.RS * d.C * KB, kb_bytes = kb_elems * int64_t(sizeof(T));
  const int64_t kbg = std::clamp<int64_t>((320 << 10) / kb_bytes, 1, nkb);
  const int64_t ngroups = ceil_div(nkb, kbg);
  const int64_t items = ngroups * d.N * d.P, chunk = default_grain(items, d.threads);
  const int64_t max_row = *std::max_element(d.u_row.begin(), d.u_row.end());
  parallel_team(d.threads, items, chunk, [&](ChunkQueue& queue) {
    // Partial sums of one tile group while the channel blocks go by (row-major, KB wide).
    std::vector<T, std::allocator<T>> partial(kGroup * V::NJ * KB);
    // This thread's packed weights of one k-block group (kept between calls).
    T* wbuf = scratch<T>(slot::kDirectWeights, kbg * kb_elems);
    int64_t packed_group = -1;
    // This thread's ring of padded input rows, tagged with n*Hb + i.
    const int64_t span = (max_row + 1) * d.dh;  // rows one output row can touch
    const int64_t ring_rows = plan ? span + d.sh : 0;
    T* ring = plan ? scratch<T>(slot::kDirectInputRows, ring_rows * d.row) : nullptr;
    std::vector<int64_t> ring_tag(ring_rows, -1), aoff_item(d.U);
    std::vector<int64_t> rowoff(max_row + 1);
    for (int64_t it_begin, it_end; queue.next(&it_begin, &it_end);)
      for (int64_t it = it_begin; it < it_end; ++it) {
        const int64_t grp = it / (d.N * d.P), np = it % (d.N * d.P);
        const int64_t n = np / d.P, oh = np % d.P;
        if (grp != packed_group) {
          for (int64_t kb = grp * kbg; kb < std::min(nkb, (grp + 1) * kbg); ++kb)
            weights.pack(kb, KB, wbuf + (kb - grp * kbg) * kb_elems);
          packed_group = grp;
        }
        // Offsets of this output row's input rows from `base`, then of every reduction step u.
        const T* base = plan ? ring : src;
        for (int64_t r = 0; r <= max_row; ++r) {
          const int64_t i = oh * d.sh + r * d.dh;
          if (plan) {
            const int64_t slot = i % ring_rows;
            if (ring_tag[slot] != n * d.Hb + i) {
              plan->fill(src, n, i, ring + slot * d.row);
              ring_tag[slot] = n * d.Hb + i;
            }
            rowoff[r] = slot * d.row;
          } else {
            rowoff[r] = (n * d.Hb + i) * d.row;
          }
        }
        for (int64_t u = 0; u < d.U; ++u) aoff_item[u] = rowoff[d.u_row[u]] + d.aoff[u];
        for (int64_t kb = grp * kbg; kb < std::min(nkb, (grp + 1) * kbg); ++kb) {
          const int64_t k0 = kb * KB;
          TileArgs<T> g;
          g.aoff = aoff_item.data();
          g.a_js = d.js;
          g.a_ts = d.a_ts;
          g.boff = d.boff.data();
          g.ldb = KB;
          g.U = d.U;
          g.bias = bias ? bias + k0 : nullptr;
          const int kvalid = static_cast<int>(std::min(KB, d.K - k0));
          const int64_t nv = ceil_div(kvalid, V::W);
          const bool nchw = d.out_layout == Layout::NCHW;
          const T* arow = base;
          const T* wkb = wbuf + (kb - grp * kbg) * kb_elems;
          for (int64_t q0 = 0; q0 < d.Q; q0 += kGroup * V::NJ) {
            const int64_t q1 = std::min(d.Q, q0 + kGroup * V::NJ);
            for (int64_t t0 = 0; t0 < d.Tn; t0 += tb) {
              const bool first = t0 == 0, last = t0 + tb >= d.Tn;
              g.B = wkb + t0 * KB;
              g.Tn = std::min(tb, d.Tn - t0);
              g.init = !first ? Init::load : bias ? Init::bias : Init::zero;
              g.epilogue = last ? d.epilogue : Epilogue::none;
              g.alpha = T(d.alpha);
              for (int64_t ow0 = q0; ow0 < q1; ow0 += V::NJ) {
                const int64_t nj = std::min<int64_t>(V::NJ, q1 - ow0);
                T* part = partial.data() + (ow0 - q0) * KB;
                g.A = arow + ow0 * d.js + t0 * d.a_ts;
                g.partial = part;
                g.ldp = KB;
                if (last) {
                  g.out_transposed = nchw;
                  g.ldo = nchw ? d.P * d.Q : d.K;
                  g.out =
                      nchw ? y + ((n * d.K + k0) * d.P + oh) * d.Q + ow0 : y + ((n * d.P + oh) * d.Q + ow0) * d.K + k0;
                  g.kvalid = kvalid;
                  g.out_stream =
                      d.stream_out && kvalid == KB && reinterpret_cast<uintptr_t>(g.out) % (V::W * sizeof(T)) == 0;
                } else {
                  g.out_stream = false;
                  g.out_transposed = false;
                  g.out = part;
                  g.ldo = KB;
                  g.kvalid = static_cast<int>(nv * V::W);
                }
                tile_fn<V>(nj, nv, strided)(g);
              }
            }
          }
        }
      }
    if (d.stream_out) _mm_sfence();
  });
}

}  // namespace FASTCONV_SIMD_NS
}  // namespace fastconv
