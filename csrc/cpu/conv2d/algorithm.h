// Which conv2d algorithm a pass runs: the algorithms, the shape rules that choose between them
// (with the measurements behind each, in algorithm.cpp) and the record of the last choice.
//
// Each SIMD ISA's dispatch (conv2d/conv2d.inl) asks, in this order:
//   forward          Winograd?                                   else direct
//   backward-data    Winograd? -> stride > 1? -> few channels?   else direct
//   backward-weight  Winograd?                                   else direct
// The portable (scalar) path always runs the reference loops (conv2d/ref.cpp).
#pragma once
#include "conv2d.h"

namespace fastconv {

enum class ConvPass : int { fwd = 0, bwd_data = 1, bwd_weight = 2 };

enum class ConvAlgorithm : int {
  none = 0,           // no conv2d pass has run on this thread yet
  reference,          // portable loops (scalar ISA)
  direct,             // register-tile direct convolution (fwd.inl, bwd_data.inl, bwd_weight.inl)
  winograd_f4x4_3x3,  // Winograd F(4x4, 3x3) (winograd.inl, winograd_bwd_weight.inl)
  stride_phase,       // backward-data by stride phases (bwd_data_strided.inl)
  small_channels,     // backward-data with pixel-vector tiles for few input channels (bwd_data.inl)
};
const char* algorithm_name(ConvAlgorithm a);            // "direct", "winograd_f4x4_3x3", ...
bool parse_conv_pass(const char* name, ConvPass* out);  // "fwd", "bwd_data", "bwd_weight"

// The algorithm the last conv2d pass of kind `pass` on this thread ran (verbose output, the
// tests and the benchmark read it).
ConvAlgorithm last_algorithm(ConvPass pass);
void record_algorithm(ConvPass pass, ConvAlgorithm a);

// ---- shape rules (none looks at the Winograd switch or at the operands' values)
// Winograd applies to this 3x3 stride-1 dilation-1 shape and, from the measurements, is faster
// than the direct kernel (or winograd_forced()).
bool winograd_eligible(ConvPass pass, const Conv2dParams& p);
// Backward-data of strided layers goes to the stride-phase kernel.
bool use_stride_phase(const Conv2dParams& p);
// Backward-data of layers with at most kSmallChannels input channels uses pixel-vector tiles.
constexpr int kSmallChannels = 8;
bool use_small_channels(const Conv2dParams& p);

}  // namespace fastconv
