// Winograd F(4x4, 3x3) forward, backward-data and backward-weight convolution for 3x3, stride-1,
// dilation-1, fp32 and fp64 layers: the switch, the operand-safety bounds and the shape
// transformation of backward-data (winograd.cpp). Backward-data runs as the forward convolution
// winograd_bwd_data_as_fwd(p); backward-weight has its own driver (winograd_bwd_weight.inl).
//
// The kernels (winograd.inl, winograd_bwd_weight.inl, compiled per ISA) run only where they
// beat the direct kernels (winograd_eligible in algorithm.cpp, from measurements with
// fastconv.bench kernels --winograd on/off). Reference: ref::conv2d_fwd (conv2d/ref.cpp)
// computes the same convolution; Winograd is not bit-exact (its transforms round differently),
// tests/test_winograd.py bounds the error against the float64 oracle in Frobenius norm.
//
// Switch: FASTCONV_WINOGRAD=0 (off) | force at start-up, or set_winograd_enabled (fc.set_winograd).
#pragma once
#include "conv2d.h"

namespace fastconv {

bool winograd_enabled();
void set_winograd_enabled(bool on);
// Testing/benchmarking aid: when forced (FASTCONV_WINOGRAD=force or set_winograd_forced(true)),
// every enabled 3x3 stride-1 dilation-1 pass takes the Winograd path, ignoring the size rule.
bool winograd_forced();
void set_winograd_forced(bool on);

// grad_x of a 3x3 stride-1 dilation-1 layer p is the forward convolution of grad_y (p.K
// channels in, p.C out, P x Q -> H x W) with the flipped, transposed filter and padding
// 2 - pad: the parameters of that convolution.
Conv2dParams winograd_bwd_data_as_fwd(const Conv2dParams& p);

// Winograd's transforms mix every value of a 6x6 input tile into every output of its 4x4 tile and
// scale values by up to 19^2 on the way: one NaN or Inf in an operand would reach outputs whose
// receptive field does not contain it, and large finite values could overflow to Inf where the
// direct sum is finite. These say whether Winograd is safe for operands whose largest
// magnitudes are a_max and b_max (+inf when an operand holds a NaN or Inf; the ISA's dispatch
// scans them): every element finite and, from the transforms' gains, no intermediate able to
// overflow. Where not, the direct kernel runs, which propagates NaN and Inf to exactly the
// outputs the reference does.
bool winograd_fwd_safe(const Conv2dParams& p, double x_max, double w_max, bool fp64);
bool winograd_bwd_data_safe(const Conv2dParams& p, double gy_max, double w_max, bool fp64);
bool winograd_bwd_weight_safe(const Conv2dParams& p, double gy_max, double x_max, bool fp64);

}  // namespace fastconv
