// Portable side of the Winograd path: the on/off switch, the eligibility rules and the name of
// the last forward / backward-data path taken. The kernels are conv2d/winograd.inl and winograd_bwd_weight.inl.
#include "winograd.h"

#include <atomic>
#include <cmath>
#include <limits>

#include "../runtime.h"

namespace fastconv {
namespace {

bool initial_winograd() { return env_switch("FASTCONV_WINOGRAD") != 0; }   // 0/off/false/no: off
bool initial_force() { return env_lower("FASTCONV_WINOGRAD") == "force"; }

std::atomic<bool> g_winograd{initial_winograd()};
std::atomic<bool> g_force{initial_force()};
thread_local const char* t_last_path = "none";
thread_local const char* t_last_bwd_data_path = "none";
thread_local const char* t_last_bwd_weight_path = "none";

// Gains of the F(4x4, 3x3) transforms (conv2d/winograd.inl): the largest absolute row sum
// of each matrix, squared for the 2-D transform. B^T: 10 -> 100; G: 1 -> 1; A^T: 19 -> 361;
// backward-weight's A (grad_y): 15 -> 225 and G^T: 5/3 -> 25/9.
constexpr double kInputGain = 100.0;
constexpr double kFilterGain = 1.0;
constexpr double kOutputGain = 361.0;
constexpr double kGradOutputGain = 225.0;
constexpr double kGradFilterGain = 25.0 / 9.0;

// True when no value computed from operands of magnitudes up to a_max and b_max, over `terms`
// summed products scaled by `gain`, can come near the largest finite value (half of it: room
// for the bias). Infinite a_max or b_max (a NaN or Inf in the operand) is never safe.
bool bounded(double a_max, double b_max, double terms, double gain, bool fp64) {
  if (std::isinf(a_max) || std::isinf(b_max)) return false;
  const double largest = fp64 ? std::numeric_limits<double>::max() : std::numeric_limits<float>::max();
  return gain * terms * a_max * b_max <= 0.5 * largest;
}

}  // namespace

bool winograd_fwd_safe(const Conv2dParams& p, double x_max, double w_max, bool fp64) {
  return bounded(x_max, w_max, double(p.C), kInputGain * kFilterGain * kOutputGain, fp64);
}

bool winograd_bwd_data_safe(const Conv2dParams& p, double gy_max, double w_max, bool fp64) {
  return winograd_fwd_safe(winograd_bwd_data_as_fwd(p), gy_max, w_max, fp64);
}

bool winograd_bwd_weight_safe(const Conv2dParams& p, double gy_max, double x_max, bool fp64) {
  const double tiles = double(p.N) * double((p.P + 3) / 4) * double((p.Q + 3) / 4);
  return bounded(gy_max, x_max, tiles, kInputGain * kGradOutputGain * kGradFilterGain, fp64);
}

bool winograd_enabled() { return g_winograd.load(std::memory_order_relaxed); }
void set_winograd_enabled(bool on) { g_winograd.store(on, std::memory_order_relaxed); }
bool winograd_forced() { return g_force.load(std::memory_order_relaxed); }
void set_winograd_forced(bool on) { g_force.store(on, std::memory_order_relaxed); }

const char* last_conv2d_fwd_path() { return t_last_path; }
void set_last_conv2d_fwd_path(const char* name) { t_last_path = name; }
const char* last_conv2d_bwd_data_path() { return t_last_bwd_data_path; }
void set_last_conv2d_bwd_data_path(const char* name) { t_last_bwd_data_path = name; }
const char* last_conv2d_bwd_weight_path() { return t_last_bwd_weight_path; }
void set_last_conv2d_bwd_weight_path(const char* name) { t_last_bwd_weight_path = name; }

bool winograd_fwd_eligible(const Conv2dParams& p) {
  if (p.R != 3 || p.S != 3 || p.stride_h != 1 || p.stride_w != 1 || p.dil_h != 1 || p.dil_w != 1)
    return false;
  if (winograd_forced()) return true;
  // Measured with bench/bench_conv_kernels.py --winograd both (VGG16 layers, batch 1 and 8):
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

Conv2dParams winograd_bwd_data_as_fwd(const Conv2dParams& p) {
  // grad_x[ih, iw] = sum_{r,s} grad_y[ih + pad_top - r, iw + pad_left - s] w[r, s]
  //               = sum_{r',s'} grad_y[ih + r' - (2 - pad_top), ...] w[2 - r', 2 - s']
  Conv2dParams f = p;
  f.C = p.K; f.H = p.P; f.W = p.Q;
  f.K = p.C; f.P = p.H; f.Q = p.W;
  f.pad_top = p.R - 1 - p.pad_top;
  f.pad_left = p.S - 1 - p.pad_left;
  f.relu = false;
  return f;
}

bool winograd_bwd_data_eligible(const Conv2dParams& p) {
  // A padding above 2 would make the equivalent padding negative (a crop), which the kernel's
  // tile loop is not written for: those rare layers keep the direct kernel.
  return p.pad_top <= p.R - 1 && p.pad_left <= p.S - 1 &&
         winograd_fwd_eligible(winograd_bwd_data_as_fwd(p));
}

bool winograd_bwd_weight_eligible(const Conv2dParams& p) {
  // The forward rule (3x3 stride 1, C, K >= 64, >= 16 tiles): measured 1.7-2.6x faster than
  // the direct kernel on the VGG16 layers at batch 8 and 1.3-2.9x at batch 1, 14x14 included
  // (16 tiles); smaller layers were not measured and keep the direct kernel.
  return winograd_fwd_eligible(p);
}

}  // namespace fastconv
