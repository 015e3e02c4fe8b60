// Portable ReLU, sigmoid, tanh and leaky ReLU (contracts in eltwise.h): the scalar path, the
// fallback and the baseline the SIMD kernels are tested against. sigmoid is evaluated from
// e = exp(-|x|) on both sides (1 / (1 + e) or e / (1 + e)), so it never overflows and keeps its
// relative accuracy for large negative x.
#include <cmath>

#include "../runtime/loops.h"
#include "eltwise.h"

namespace fastconv {
namespace ref {
namespace {

template <typename T>
T sigmoid(T x) {
  const T e = std::exp(-std::fabs(x));
  return (x >= T(0) ? T(1) : e) / (T(1) + e);
}

// y[i] = a(x[i]) for i in [begin, end).
template <typename T>
void activate_range(Activation a, T alpha, const T* x, T* y, int64_t begin, int64_t end) {
  switch (a) {
    case Activation::sigmoid:
      for (int64_t i = begin; i < end; ++i) y[i] = sigmoid(x[i]);
      break;
    case Activation::tanh:
      for (int64_t i = begin; i < end; ++i) y[i] = std::tanh(x[i]);
      break;
    case Activation::leaky_relu:
      for (int64_t i = begin; i < end; ++i) y[i] = x[i] > T(0) ? x[i] : alpha * x[i];
      break;
  }
}

template <typename T>
void relu_fwd(int64_t n, const T* x, T* y) {
  parallel_for(threads_for(n), n, [&](int64_t i_begin, int64_t i_end) {
    for (int64_t i = i_begin; i < i_end; ++i) y[i] = x[i] > T(0) || x[i] != x[i] ? x[i] : T(0);
  });
}

template <typename T>
void relu_bwd(int64_t n, const T* gy, const T* y, T* gx) {
  parallel_for(threads_for(n), n, [&](int64_t i_begin, int64_t i_end) {
    for (int64_t i = i_begin; i < i_end; ++i) gx[i] = y[i] > T(0) ? gy[i] : T(0);
  });
}

template <typename T>
void activation_fwd(Activation a, T alpha, int64_t n, const T* x, T* y) {
  parallel_for(threads_for(n), n, [&](int64_t begin, int64_t end) { activate_range(a, alpha, x, y, begin, end); });
}

template <typename T>
void activation_bwd(Activation a, T alpha, int64_t n, const T* gy, const T* y, T* gx) {
  parallel_for(threads_for(n), n, [&](int64_t begin, int64_t end) {
    switch (a) {
      case Activation::sigmoid:
        for (int64_t i = begin; i < end; ++i) gx[i] = gy[i] * (y[i] * (T(1) - y[i]));
        break;
      case Activation::tanh:
        for (int64_t i = begin; i < end; ++i) gx[i] = gy[i] * (T(1) - y[i] * y[i]);
        break;
      case Activation::leaky_relu:
        for (int64_t i = begin; i < end; ++i) gx[i] = y[i] > T(0) ? gy[i] : alpha * gy[i];
        break;
    }
  });
}

}  // namespace

template <typename T>
void apply_epilogue(Epilogue e, T alpha, int64_t n, T* y) {
  if (e == Epilogue::relu) {
    for (int64_t i = 0; i < n; ++i) y[i] = y[i] > T(0) || y[i] != y[i] ? y[i] : T(0);  // NaN propagates
  } else if (e != Epilogue::none) {
    activate_range(activation_of(e), alpha, y, y, 0, n);
  }
}

template void apply_epilogue<float>(Epilogue, float, int64_t, float*);
template void apply_epilogue<double>(Epilogue, double, int64_t, double*);

template <typename T>
EltwiseOps<T> eltwise_ops() {
  return EltwiseOps<T>{relu_fwd<T>, relu_bwd<T>, activation_fwd<T>, activation_bwd<T>};
}
template EltwiseOps<float> eltwise_ops<float>();
template EltwiseOps<double> eltwise_ops<double>();

}  // namespace ref
}  // namespace fastconv
