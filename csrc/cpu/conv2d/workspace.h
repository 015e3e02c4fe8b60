// The per-thread scratch buffers (scratch.h) of the SIMD conv2d and dense kernels, one name per
// buffer. A buffer the calling thread takes for the whole team must not share a slot with one a
// worker takes for its share (the calling thread is one of the workers); kernels never nest, so
// different kernels may reuse a slot. The static_asserts check each kernel's split.
#pragma once
#include "../runtime/scratch.h"

namespace fastconv {
namespace slot {

// Direct forward and stride-1 backward-data (conv2d/fwd.inl, direct.inl).
constexpr int kFwdBias = 2;          // caller: bias padded to whole register tiles
constexpr int kDirectWeights = 3;    // worker: packed weights of one k-block group
constexpr int kDirectInputRows = 4;  // worker: ring of padded input rows
static_assert(kFwdBias != kDirectWeights && kFwdBias != kDirectInputRows);

// Backward-data for few channels (bwd_data.inl) and by stride phases (bwd_data_strided.inl).
constexpr int kFlippedWeights = 1;  // caller: weights as (R*S, K, C)
constexpr int kGradRows = 0;        // worker: ring of grad_y rows (few channels);
                                    // caller: all grad_y rows (stride phases)
static_assert(kFlippedWeights != kGradRows);

// Direct backward-weight (bwd_weight.inl): all the caller's.
constexpr int kPaddedInput = 0;      // x as zero-padded NHWC
constexpr int kBlockedGrad = 1;      // grad_y in k-blocks of pixels
constexpr int kWeightGradTiles = 2;  // grad_w as (R, S, C, K rounded up)
constexpr int kBiasGradTiles = 3;    // grad_bias rounded up to whole tiles

// Winograd (winograd.inl, winograd_bwd_weight.inl).
constexpr int kWinoBias = 2;       // caller
constexpr int kWinoInputNhwc = 1;  // caller: NCHW x as NHWC
constexpr int kWinoGradNhwc = 5;   // caller: NCHW grad_y as NHWC (backward-weight)
constexpr int kWinoSplitSums = 6;  // caller: partial dU of each tile split (backward-weight)
constexpr int kWinoFilter = 0;     // U: caller (tiles outer), worker (channels outer, bwd-weight)
constexpr int kWinoInput = 3;      // V: worker (tiles outer, bwd-weight), caller (channels outer)
constexpr int kWinoProducts = 4;   // M: worker
static_assert(kWinoBias != kWinoInput && kWinoBias != kWinoProducts && kWinoBias != kWinoFilter);
static_assert(kWinoInputNhwc != kWinoInput && kWinoInputNhwc != kWinoProducts && kWinoInputNhwc != kWinoFilter);
static_assert(kWinoGradNhwc != kWinoFilter && kWinoGradNhwc != kWinoInput && kWinoGradNhwc != kWinoProducts &&
              kWinoSplitSums != kWinoFilter && kWinoSplitSums != kWinoInput && kWinoSplitSums != kWinoProducts);

// Dense layers (linear/linear.inl): the worker's.
constexpr int kGemmPackedB = 0;      // one group's B panels of a reduction block
constexpr int kGemmPartialSums = 1;  // partial sums between reduction blocks

}  // namespace slot
}  // namespace fastconv
