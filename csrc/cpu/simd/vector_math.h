// Sigmoid, tanh and leaky ReLU on vector registers, for the activation kernels
// (eltwise/eltwise.inl) and the conv2d / dense epilogues (conv2d/microkernel.inl,
// conv2d/winograd_transforms.inl): both use these functions, so a fused epilogue gives the same
// bits as the separate kernel. Compiled once per ISA: a TU includes it after its traits header
// (simd/avx512.h or simd/avx2.h). Reference: eltwise/ref.cpp.
//
// e^x from x = k ln2 + r with |r| <= ln2 / 2:
//   e^x = 2^k (1 + p),  e^x - 1 = 2^k p + (2^k - 1),  p = expm1(r) by its Taylor series
// (terms to r^8/8! for float, r^13/13! for double: truncation below 2^-24 / 2^-53 of p); r is
// x - k ln2 with ln2 split in two (Cody-Waite), 2^k is built in the exponent bits. The second
// form keeps tanh accurate near 0, where 1 - e^(-2|x|) would cancel. Arguments are clamped
// with min/max orders that pass NaN through, and exp of a very negative argument scales by
// 2^(k/2) twice so that results in the subnormal range round once, like std::exp.
#pragma once  // once per translation unit: each ISA file includes it for its own ISA
#ifndef FASTCONV_SIMD_NS
#error "include simd/avx512.h or simd/avx2.h before simd/vector_math.h"
#endif

#include <cstdint>

#include "../../common/activation_kind.h"

namespace fastconv {
namespace FASTCONV_SIMD_NS {

template <typename T>
struct ExpConstants;
template <>
struct ExpConstants<float> {
  static constexpr float round_magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  static constexpr float bias = 127.0f;
  static constexpr float log2e = 1.44269504088896341f;
  static constexpr float ln2_hi = 0.693359375f;  // few bits: k * ln2_hi is exact
  static constexpr float ln2_lo = -2.12194440e-4f;
  static constexpr float min_exp_arg = -104.0f;  // e^-104 < 2^-150 rounds to 0
  static constexpr float max_expm1_arg = 88.0f;  // 2^127 (1 + p) is still finite
  static constexpr int terms = 8;
};
template <>
struct ExpConstants<double> {
  static constexpr double round_magic = 6755399441055744.0;  // 1.5 * 2^52
  static constexpr double bias = 1023.0;
  static constexpr double log2e = 1.4426950408889634074;
  static constexpr double ln2_hi = 6.93147180369123816490e-01;
  static constexpr double ln2_lo = 1.90821492927058770002e-10;
  static constexpr double min_exp_arg = -746.0;
  static constexpr double max_expm1_arg = 709.0;
  static constexpr int terms = 13;
};

template <class V>
using Reg = typename V::reg;
template <class V>
using Elem = typename V::T;
template <class V>
inline Reg<V> cst(double c) {
  return V::set1(static_cast<Elem<V>>(c));
}

// 2^k for integer-valued k with 2^k a normal number: k + 1.5 * 2^m + bias holds k + bias in its
// low mantissa bits; shifting them into the exponent field gives the power of two.
template <class V>
inline Reg<V> pow2(Reg<V> k) {
  using C = ExpConstants<Elem<V>>;
  return V::shift_into_exponent(V::add(k, cst<V>(C::round_magic + C::bias)));
}

// k = round(x / ln2), r = x - k ln2, p = expm1(r).
template <class V>
inline void exp_reduce(Reg<V> x, Reg<V>* k, Reg<V>* p) {
  using C = ExpConstants<Elem<V>>;
  *k = V::sub(V::fma(x, cst<V>(C::log2e), cst<V>(C::round_magic)), cst<V>(C::round_magic));
  Reg<V> r = V::fma(*k, cst<V>(-C::ln2_hi), x);
  r = V::fma(*k, cst<V>(-C::ln2_lo), r);
  double inv_fact = 1.0;  // 1 / C::terms!
  for (int j = 2; j <= C::terms; ++j) inv_fact /= j;
  Reg<V> q = cst<V>(inv_fact);  // Horner from the highest term down to 1/2!
  for (int j = C::terms; j > 2; --j) {
    inv_fact *= j;
    q = V::fma(q, r, cst<V>(inv_fact));
  }
  *p = V::fma(V::mul(r, r), q, r);  // r + r^2 (1/2! + r/3! + ...)
}

// e^x for x <= 0 (or NaN).
template <class V>
inline Reg<V> exp_nonpositive(Reg<V> x) {
  using C = ExpConstants<Elem<V>>;
  x = V::max(cst<V>(C::min_exp_arg), x);
  Reg<V> k, p;
  exp_reduce<V>(x, &k, &p);
  const Reg<V> k1 = V::sub(V::fma(k, cst<V>(0.5), cst<V>(C::round_magic)), cst<V>(C::round_magic));
  const Reg<V> k2 = V::sub(k, k1);
  return V::mul(V::mul(V::add(p, cst<V>(1.0)), pow2<V>(k1)), pow2<V>(k2));
}

// e^x - 1 for x >= 0 (or NaN).
template <class V>
inline Reg<V> expm1_nonnegative(Reg<V> x) {
  using C = ExpConstants<Elem<V>>;
  x = V::min(cst<V>(C::max_expm1_arg), x);
  Reg<V> k, p;
  exp_reduce<V>(x, &k, &p);
  const Reg<V> s = pow2<V>(k);
  return V::fma(s, p, V::sub(s, cst<V>(1.0)));
}

// 1 / (1 + e^-x) = (x >= 0 ? 1 : e) / (1 + e) with e = e^-|x| <= 1: no overflow, and the relative
// accuracy holds for large negative x.
template <class V>
inline Reg<V> sigmoid_of(Reg<V> x) {
  const Reg<V> e = exp_nonpositive<V>(V::negative_abs(x));
  return V::div(V::select(V::nonnegative(x), cst<V>(1.0), e), V::add(cst<V>(1.0), e));
}

// tanh x = sign(x) u / (u + 2) with u = e^(2|x|) - 1.
template <class V>
inline Reg<V> tanh_of(Reg<V> x) {
  const Reg<V> a = V::abs(x);
  const Reg<V> u = expm1_nonnegative<V>(V::add(a, a));
  return V::with_sign_of(V::div(u, V::add(u, cst<V>(2.0))), x);
}

// x where x > 0, else alpha x (NaN: alpha x, which is NaN).
template <class V>
inline Reg<V> leaky_relu_of(Reg<V> x, Reg<V> alpha) {
  return V::select(V::positive(x), x, V::mul(alpha, x));
}

template <class V>
inline Reg<V> activate(Activation a, Reg<V> x, Reg<V> alpha) {
  switch (a) {
    case Activation::sigmoid:
      return sigmoid_of<V>(x);
    case Activation::tanh:
      return tanh_of<V>(x);
    default:
      return leaky_relu_of<V>(x, alpha);
  }
}

// The epilogue e of a conv2d / dense kernel on one register of outputs.
template <class V>
inline Reg<V> apply_epilogue(Epilogue e, Elem<V> alpha, Reg<V> x) {
  if (e == Epilogue::none) return x;
  if (e == Epilogue::relu) return V::relu(x);
  return activate<V>(activation_of(e), x, V::set1(alpha));
}

// buf[0 .. n * V::W) = activation a of itself. Out of line: the register-tile kernels (one per
// tile shape) spill their accumulators here rather than each carrying a copy of the exp code.
template <class V>
__attribute__((noinline)) void activate_vectors(Activation a, Elem<V> alpha, int n, Elem<V>* buf) {
  const Reg<V> al = V::set1(alpha);
  for (int i = 0; i < n; ++i) V::store(buf + i * V::W, activate<V>(a, V::load(buf + i * V::W), al));
}

}  // namespace FASTCONV_SIMD_NS
}  // namespace fastconv
