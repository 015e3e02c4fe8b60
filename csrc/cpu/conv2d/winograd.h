// Winograd F(4x4, 3x3) forward, backward-data and backward-weight convolution for 3x3, stride-1,
// dilation-1, fp32 and fp64 layers. Backward-data runs as the forward convolution
// winograd_bwd_data_as_fwd(p); backward-weight has its own driver
// (conv2d/winograd_bwd_weight.inl).
//
// The kernel (conv2d/winograd.inl, compiled per ISA) is used only where it beats the direct
// kernels (winograd_fwd_eligible below, from measurements with
// bench/bench_conv_kernels.py --winograd on/off); everything else takes the direct kernel.
// Reference: ref::conv2d_fwd (conv2d/ref.cpp) computes the same convolution; Winograd is not
// bit-exact (its transforms round differently), tests/test_winograd.py bounds the error
// against the float64 oracle in Frobenius norm.
//
// Switch: FASTCONV_WINOGRAD=0 (off) | force at start-up, or set_winograd_enabled(false) (fc.set_winograd).
#pragma once
#include "../kernels.h"

namespace fastconv {

bool winograd_enabled();
void set_winograd_enabled(bool on);
// Testing/benchmarking aid: when forced (FASTCONV_WINOGRAD=force or set_winograd_forced(true)),
// every enabled 3x3 stride-1 dilation-1 pass takes the Winograd path, ignoring the
// size rule below.
bool winograd_forced();
void set_winograd_forced(bool on);

// True when the Winograd path applies to this shape (3x3, stride 1, dilation 1) and, from the
// measurements, is faster than the direct kernel. Does not look at the switch.
bool winograd_fwd_eligible(const Conv2dParams& p);

// grad_x of a 3x3 stride-1 dilation-1 layer p is the forward convolution of grad_y (p.K
// channels in, p.C out, P x Q -> H x W) with the flipped, transposed filter and padding
// 2 - pad: the parameters of that convolution.
Conv2dParams winograd_bwd_data_as_fwd(const Conv2dParams& p);
// winograd_fwd_eligible of that convolution.
bool winograd_bwd_data_eligible(const Conv2dParams& p);
// True when the Winograd backward-weight path applies and, from the measurements, is faster.
bool winograd_bwd_weight_eligible(const Conv2dParams& p);

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

// Name of the kernel family the last SIMD forward / backward-data / backward-weight pass on this thread
// went through: "winograd_f4x4_3x3" or "direct" (a debugging aid for the tests).
const char* last_conv2d_fwd_path();
void set_last_conv2d_fwd_path(const char* name);
const char* last_conv2d_bwd_data_path();
void set_last_conv2d_bwd_data_path(const char* name);
const char* last_conv2d_bwd_weight_path();
void set_last_conv2d_bwd_weight_path(const char* name);

// The f32 and f64 entries of each SIMD ISA's dispatch table (conv2d/winograd_entries.inl,
// compiled by conv2d/winograd_avx512.cpp and winograd_avx2.cpp): the Winograd kernel
// when enabled and eligible, else the direct kernels.
// Layouts: x (N,C,H,W) | (N,H,W,C), w (K,C,3,3) | (3,3,C,K), y (N,K,P,Q) | (N,P,Q,K).
namespace avx2 {
void conv2d_fwd_f32_auto(const Conv2dParams& p, const float* x, const float* w, const float* bias,
                         float* y);
void conv2d_fwd_f64_auto(const Conv2dParams& p, const double* x, const double* w,
                         const double* bias, double* y);
void conv2d_bwd_data_f32_auto(const Conv2dParams& p, const float* gy, const float* w, float* gx);
void conv2d_bwd_data_f64_auto(const Conv2dParams& p, const double* gy, const double* w, double* gx);
void conv2d_bwd_weight_f32_auto(const Conv2dParams& p, const float* gy, const float* x, float* gw,
                                float* gb);
void conv2d_bwd_weight_f64_auto(const Conv2dParams& p, const double* gy, const double* x,
                                double* gw, double* gb);
}  // namespace avx2
namespace avx512 {
void conv2d_fwd_f32_auto(const Conv2dParams& p, const float* x, const float* w, const float* bias,
                         float* y);
void conv2d_fwd_f64_auto(const Conv2dParams& p, const double* x, const double* w,
                         const double* bias, double* y);
void conv2d_bwd_data_f32_auto(const Conv2dParams& p, const float* gy, const float* w, float* gx);
void conv2d_bwd_data_f64_auto(const Conv2dParams& p, const double* gy, const double* w, double* gx);
void conv2d_bwd_weight_f32_auto(const Conv2dParams& p, const float* gy, const float* x, float* gw,
                                float* gb);
void conv2d_bwd_weight_f64_auto(const Conv2dParams& p, const double* gy, const double* x,
                                double* gw, double* gb);
}  // namespace avx512

}  // namespace fastconv
