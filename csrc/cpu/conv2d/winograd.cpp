// Portable side of the Winograd path: the on/off switch, the overflow bounds that decide whether
// it is safe for given operands, and backward-data as a forward convolution (the shape rules
// are in algorithm.cpp). The kernels are conv2d/winograd.inl and winograd_bwd_weight.inl.
#include "winograd.h"

#include <atomic>
#include <cmath>
#include <limits>

#include "../runtime/runtime.h"

namespace fastconv {
namespace {

bool initial_winograd() { return env_switch("FASTCONV_WINOGRAD") != 0; }  // 0/off/false/no: off
bool initial_force() { return env_lower("FASTCONV_WINOGRAD") == "force"; }

std::atomic<bool> g_winograd{initial_winograd()};
std::atomic<bool> g_force{initial_force()};

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

Conv2dParams winograd_bwd_data_as_fwd(const Conv2dParams& p) {
  // grad_x[ih, iw] = sum_{r,s} grad_y[ih + pad_top - r, iw + pad_left - s] w[r, s]
  //               = sum_{r',s'} grad_y[ih + r' - (2 - pad_top), ...] w[2 - r', 2 - s']
  Conv2dParams f = p;
  f.C = p.K;
  f.H = p.P;
  f.W = p.Q;
  f.K = p.C;
  f.P = p.H;
  f.Q = p.W;
  f.pad_top = p.R - 1 - p.pad_top;
  f.pad_left = p.S - 1 - p.pad_left;
  f.epilogue = Epilogue::none;
  return f;
}

}  // namespace fastconv
