// Elementwise activations (the eltwise family): ReLU, sigmoid, tanh and leaky ReLU, forward and
// backward. The portable loops are in ref.cpp, the vector bodies in eltwise.inl (compiled per ISA
// by avx2.cpp / avx512.cpp).
//
// Contracts (every kernel; n elements, 64-bit count):
//   forward   x -> y              y may alias x (in place)
//   backward  grad_y, y -> grad_x grad_x may alias grad_y; reads the forward's OUTPUT y, so an
//                                 in-place forward keeps its backward possible:
//     relu        y = x where x > 0 or NaN, else +0; grad_x = grad_y where y > 0, else +0
//     sigmoid     grad_x = grad_y * y * (1 - y)
//     tanh        grad_x = grad_y * (1 - y^2)
//     leaky_relu  grad_x = grad_y where y > 0, else alpha * grad_y   (alpha >= 0, so y > 0 iff x > 0)
// NaN propagates through every forward pass.
#pragma once
#include <cstdint>

#include "../../common/activation_kind.h"
#include "../runtime/runtime.h"

namespace fastconv {

template <typename T>
struct EltwiseOps {
  void (*relu_fwd)(int64_t n, const T* x, T* y);
  void (*relu_bwd)(int64_t n, const T* gy, const T* y, T* gx);
  // sigmoid / tanh / leaky ReLU (alpha: leaky ReLU's slope)
  void (*activation_fwd)(Activation a, T alpha, int64_t n, const T* x, T* y);
  void (*activation_bwd)(Activation a, T alpha, int64_t n, const T* gy, const T* y, T* gx);
};

namespace ref {
// y[0 .. n) = epilogue e of itself, on the calling thread: the reference conv2d and dense kernels'
// epilogue (e == none: nothing).
template <typename T>
void apply_epilogue(Epilogue e, T alpha, int64_t n, T* y);
}  // namespace ref

FASTCONV_FAMILY_BUILDS(EltwiseOps, eltwise_ops)

}  // namespace fastconv
