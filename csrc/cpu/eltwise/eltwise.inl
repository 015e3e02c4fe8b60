// ReLU, sigmoid, tanh and leaky ReLU, forward and backward (contracts in eltwise.h), compiled once
// per ISA by avx2.cpp and avx512.cpp: each is the one streaming loop of simd/elementwise.h with
// its register function (simd/vector_math.h, shared with the conv2d and dense epilogues, so a
// fused activation gives the same bits). Reference: ref.cpp.
#pragma once  // once per translation unit: each ISA file includes it for its own ISA
#ifndef FASTCONV_SIMD_NS
#error "include simd/avx512.h or simd/avx2.h before eltwise/eltwise.inl"
#endif

#include "../simd/elementwise.h"
#include "../simd/vector_math.h"
#include "eltwise.h"

namespace fastconv {
namespace FASTCONV_SIMD_NS {
namespace {

// x -> y = x where x > 0 or x is NaN, else +0 (not max(0, x), which keeps -0); y may be x
template <class F>
void relu_forward(int64_t n, const Elem<F>* x, Elem<F>* y) {
  using V = Reg<F>;
  elementwise<F, false>(n, x, x, y, [](V v, V) { return F::keep(F::positive_or_nan(v), v); });
}

// grad_y, y -> grad_x = grad_y where y > 0, else +0; grad_x may be grad_y
template <class F>
void relu_backward(int64_t n, const Elem<F>* gy, const Elem<F>* y, Elem<F>* gx) {
  using V = Reg<F>;
  elementwise<F, false>(n, gy, y, gx, [](V g, V v) { return F::keep(F::positive(v), g); });
}

template <class F>
void activation_forward(Activation act, Elem<F> alpha, int64_t n, const Elem<F>* x, Elem<F>* y) {
  using V = Reg<F>;
  switch (act) {
    case Activation::sigmoid:
      elementwise<F>(n, x, x, y, [](V v, V) { return sigmoid_of<F>(v); });
      break;
    case Activation::tanh:
      elementwise<F>(n, x, x, y, [](V v, V) { return tanh_of<F>(v); });
      break;
    case Activation::leaky_relu: {
      const V a = F::set1(alpha);
      elementwise<F>(n, x, x, y, [a](V v, V) { return leaky_relu_of<F>(v, a); });
      break;
    }
  }
}

template <class F>
void activation_backward(Activation act, Elem<F> alpha, int64_t n, const Elem<F>* gy, const Elem<F>* y, Elem<F>* gx) {
  using V = Reg<F>;
  switch (act) {
    case Activation::sigmoid:
      elementwise<F>(n, gy, y, gx, [](V g, V s) { return F::mul(g, F::mul(s, F::sub(cst<F>(1.0), s))); });
      break;
    case Activation::tanh:
      elementwise<F>(n, gy, y, gx, [](V g, V t) { return F::mul(g, F::fma(F::negate(t), t, cst<F>(1.0))); });
      break;
    case Activation::leaky_relu: {
      const V a = F::set1(alpha);
      elementwise<F>(n, gy, y, gx, [a](V g, V v) { return F::select(F::positive(v), g, F::mul(a, g)); });
      break;
    }
  }
}

}  // namespace

template <typename T>
EltwiseOps<T> eltwise_ops() {
  return EltwiseOps<T>{relu_forward<VecOf<T>>, relu_backward<VecOf<T>>, activation_forward<VecOf<T>>,
                       activation_backward<VecOf<T>>};
}
template EltwiseOps<float> eltwise_ops<float>();
template EltwiseOps<double> eltwise_ops<double>();

}  // namespace FASTCONV_SIMD_NS
}  // namespace fastconv
