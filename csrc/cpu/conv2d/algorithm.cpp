// The shape rules of the conv2d dispatch and the measurements behind them; the record of the
// last algorithm per pass. See algorithm.h for the order in which the rules are asked.
#include "algorithm.h"

#include <cstring>

#include "winograd.h"

namespace fastconv {
namespace {

thread_local ConvAlgorithm t_last[3] = {ConvAlgorithm::none, ConvAlgorithm::none, ConvAlgorithm::none};

bool winograd_fwd_eligible(const Conv2dParams& p) {
  if (p.R != 3 || p.S != 3 || p.stride_h != 1 || p.stride_w != 1 || p.dil_h != 1 || p.dil_w != 1) return false;
  if (winograd_forced()) return true;
  // Measured with fastconv.bench kernels --winograd both (VGG16 layers, batch 1 and 8):
  // Winograd was 1.2-2.9x faster than the direct kernel on every VGG16 layer with C, K >= 64
  // (AVX-512 and AVX2, 1 and 2 threads, batch 1 and 8; bench/results/winograd_fwd_*.txt), the
  // least at 14x14, batch 1 (16 tiles of 4x4 outputs).
  // Small images waste part of each 4x4 tile: at least half of the computed outputs must be
  // real. MNIST's conv3 (64 -> 64, batch 64): its 3x3 output (9 of 16) is 2.6x faster with
  // Winograd, its 5x5 grad_x (25 of 64) 1.3x slower than the direct kernel.
  // 32 to 63 channels (AVX2, 2 threads, NHWC, fwd / bwd-data / bwd-weight vs direct): 32 -> 32 at
  // 28x28, batch 64: 1.7x / 2.3x / 1.8x faster; 32 -> 64 at 56x56, batch 8: 1.6x / 1.4x / 1.7x;
  // MNIST's conv2 (32 -> 64, 11x11 output, 84% of the tiles real): 1.05x / - / 1.3x, but its 13x13
  // grad_x (66% real) 1.1x slower; 16 channels: 1.1-1.3x slower. So 32..63 channels need 3/4
  // of the computed outputs to be real.
  const int64_t th = (p.P + 3) / 4, tw = (p.Q + 3) / 4, tiles = p.N * th * tw;
  const int64_t real = p.P * p.Q, computed = th * tw * 16;
  if (tiles < 16 || p.C < 32 || p.K < 32) return false;
  if (p.C >= 64 && p.K >= 64) return 2 * real >= computed;
  return 4 * real >= 3 * computed;
}

bool winograd_bwd_data_eligible(const Conv2dParams& p) {
  // A padding above 2 would make the equivalent padding negative (a crop), which the kernel's
  // tile loop is not written for: those rare layers keep the direct kernel.
  return p.pad_top <= p.R - 1 && p.pad_left <= p.S - 1 && winograd_fwd_eligible(winograd_bwd_data_as_fwd(p));
}

bool winograd_bwd_weight_eligible(const Conv2dParams& p) {
  // The forward rule (3x3 stride 1, C, K >= 64, >= 16 tiles): measured 1.7-2.6x faster than
  // the direct kernel on the VGG16 layers at batch 8 and 1.3-2.9x at batch 1, 14x14 included
  // (16 tiles); smaller layers were not measured and keep the direct kernel.
  return winograd_fwd_eligible(p);
}

}  // namespace

const char* algorithm_name(ConvAlgorithm a) {
  switch (a) {
    case ConvAlgorithm::none:
      return "none";
    case ConvAlgorithm::reference:
      return "reference";
    case ConvAlgorithm::direct:
      return "direct";
    case ConvAlgorithm::winograd_f4x4_3x3:
      return "winograd_f4x4_3x3";
    case ConvAlgorithm::stride_phase:
      return "stride_phase";
    case ConvAlgorithm::small_channels:
      return "small_channels";
  }
  return "none";
}

bool parse_conv_pass(const char* name, ConvPass* out) {
  static const char* const names[] = {"fwd", "bwd_data", "bwd_weight"};
  for (int i = 0; i < 3; ++i)
    if (std::strcmp(name, names[i]) == 0) {
      *out = static_cast<ConvPass>(i);
      return true;
    }
  return false;
}

ConvAlgorithm last_algorithm(ConvPass pass) { return t_last[static_cast<int>(pass)]; }
void record_algorithm(ConvPass pass, ConvAlgorithm a) { t_last[static_cast<int>(pass)] = a; }

bool winograd_eligible(ConvPass pass, const Conv2dParams& p) {
  switch (pass) {
    case ConvPass::fwd:
      return winograd_fwd_eligible(p);
    case ConvPass::bwd_data:
      return winograd_bwd_data_eligible(p);
    case ConvPass::bwd_weight:
      return winograd_bwd_weight_eligible(p);
  }
  return false;
}

bool use_stride_phase(const Conv2dParams& p) {
  // Running the stride-1 driver over grad_y with zeros interleaved costs sh*sw x the useful
  // work; the phase kernel does none of it and measured faster on every stride-2 shape tried
  // (AVX-512, 1 thread, NCHW, 3x3 pad 1): C=3 K=25 31x31 N=100 f64 5.5 -> 1.3 ms;
  // C=64 K=128 32x32 N=16 f64 32 -> 9 ms; C=256 K=256 28x28 N=4 f64 50 -> 27 ms, f32 24 -> 13 ms.
  return p.stride_h * p.stride_w > 1;
}

bool use_small_channels(const Conv2dParams& p) {
  // With few input channels (an RGB first layer) a tile of channel lanes is mostly empty; lanes
  // along a row of grad_x measured 4-5x faster than the channel-lane tiles for C = 3..5.
  return p.C <= kSmallChannels;
}

}  // namespace fastconv
