// Elementwise activations other than ReLU (relu_*.cpp has its own, simpler kernels): sigmoid, tanh
// and leaky ReLU, forward and backward. The portable loops are in activation_ref.cpp, the vector
// bodies in activation_simd.inl (compiled per ISA by activation_avx2.cpp / activation_avx512.cpp).
//
// Contracts (every kernel; n elements, 64-bit count):
//   forward   x -> y              y may alias x (in place)
//   backward  grad_y, y -> grad_x grad_x may alias grad_y; reads the forward's OUTPUT y, so an
//                                 in-place forward keeps its backward possible:
//     sigmoid     grad_x = grad_y * y * (1 - y)
//     tanh        grad_x = grad_y * (1 - y^2)
//     leaky_relu  grad_x = grad_y where y > 0, else alpha * grad_y   (alpha >= 0, so y > 0 iff x > 0)
// NaN propagates through every forward pass.
#pragma once
#include <cstdint>

#include "../common/activation_kind.h"

namespace fastconv {

template <typename T>
using ActivationFwd = void (*)(Activation a, T alpha, int64_t n, const T* x, T* y);
template <typename T>
using ActivationBwd = void (*)(Activation a, T alpha, int64_t n, const T* gy, const T* y, T* gx);

namespace ref {
template <typename T> void activation_fwd(Activation a, T alpha, int64_t n, const T* x, T* y);
// y[0 .. n) = epilogue e of itself, on the calling thread: the reference conv2d and dense kernels'
// epilogue (e == none: nothing).
template <typename T> void apply_epilogue(Epilogue e, T alpha, int64_t n, T* y);
template <typename T> void activation_bwd(Activation a, T alpha, int64_t n, const T* gy, const T* y, T* gx);
}  // namespace ref

namespace avx2 {
void activation_fwd_f32(Activation a, float alpha, int64_t n, const float* x, float* y);
void activation_fwd_f64(Activation a, double alpha, int64_t n, const double* x, double* y);
void activation_bwd_f32(Activation a, float alpha, int64_t n, const float* gy, const float* y, float* gx);
void activation_bwd_f64(Activation a, double alpha, int64_t n, const double* gy, const double* y, double* gx);
}  // namespace avx2

namespace avx512 {
void activation_fwd_f32(Activation a, float alpha, int64_t n, const float* x, float* y);
void activation_fwd_f64(Activation a, double alpha, int64_t n, const double* x, double* y);
void activation_bwd_f32(Activation a, float alpha, int64_t n, const float* gy, const float* y, float* gx);
void activation_bwd_f64(Activation a, double alpha, int64_t n, const double* gy, const double* y, double* gx);
}  // namespace avx512

}  // namespace fastconv
