// Sigmoid, tanh and leaky ReLU (contracts in activation.h) on vectors, shared by
// activation_avx512.cpp and activation_avx2.cpp. Each includes this file INSIDE its own anonymous
// namespace after defining VecF32 / VecF64 (the operations used below), so the templates compile
// once per ISA. Reference: activation_ref.cpp.
//
// Memory speed: like relu_*.cpp, threads take contiguous chunks of whole cache lines
// (parallel_for_lines), one masked vector brings the output to a vector boundary, the body moves
// 4 vectors per trip with the inputs prefetched ahead (kPrefetchAhead), a masked vector does the
// tail, and outputs larger than kStreamBytes are written with streaming stores. Every element goes through the same vector code (no scalar
// head or tail), so a result does not depend on the array's alignment or the thread count.
//
// e^x in vector registers, from x = k ln2 + r with |r| <= ln2 / 2:
//   e^x = 2^k (1 + p),  e^x - 1 = 2^k p + (2^k - 1),  p = expm1(r) by its Taylor series
// (terms to r^8/8! for float, r^13/13! for double: truncation below 2^-24 / 2^-53 of p); r is
// x - k ln2 with ln2 split in two (Cody-Waite), 2^k is built in the exponent bits. The second
// form keeps tanh accurate near 0, where 1 - e^(-2|x|) would cancel. Arguments are clamped
// with min/max orders that pass NaN through, and exp of a very negative argument scales by
// 2^(k/2) twice so that results in the subnormal range round once, like std::exp.

constexpr int64_t kStreamBytes = int64_t(16) << 20;  // as relu_*.cpp: below it the next layer reads y from cache
// Inputs are prefetched this many elements ahead: sigmoid and tanh spend long enough on each
// vector that the hardware prefetcher alone falls behind, and the loop then waits for memory and
// computes in turn. Measured (python -m fastconv.bench --networks activations, batch 8, 2 threads,
// 103 MB per call): sigmoid forward 20 -> 37 GB/s, tanh 25 -> 45 GB/s; 256 / 4096 ahead: within 5%.
constexpr int64_t kPrefetchAhead = 1024;

template <typename T> struct ExpConstants;
template <> struct ExpConstants<float> {
  static constexpr float round_magic = 12582912.0f;   // 1.5 * 2^23: adding it rounds to an integer
  static constexpr float bias = 127.0f;
  static constexpr float log2e = 1.44269504088896341f;
  static constexpr float ln2_hi = 0.693359375f;       // few bits: k * ln2_hi is exact
  static constexpr float ln2_lo = -2.12194440e-4f;
  static constexpr float min_exp_arg = -104.0f;       // e^-104 < 2^-150 rounds to 0
  static constexpr float max_expm1_arg = 88.0f;       // 2^127 (1 + p) is still finite
  static constexpr int terms = 8;
};
template <> struct ExpConstants<double> {
  static constexpr double round_magic = 6755399441055744.0;   // 1.5 * 2^52
  static constexpr double bias = 1023.0;
  static constexpr double log2e = 1.4426950408889634074;
  static constexpr double ln2_hi = 6.93147180369123816490e-01;
  static constexpr double ln2_lo = 1.90821492927058770002e-10;
  static constexpr double min_exp_arg = -746.0;
  static constexpr double max_expm1_arg = 709.0;
  static constexpr int terms = 13;
};

template <class F> using Reg = typename F::V;
template <class F> using Elem = typename F::T;
template <class F> inline Reg<F> cst(double c) { return F::set1(static_cast<Elem<F>>(c)); }

// 2^k for integer-valued k with 2^k a normal number: k + 1.5 * 2^m + bias holds k + bias in its
// low mantissa bits; shifting them into the exponent field gives the power of two.
template <class F>
inline Reg<F> pow2(Reg<F> k) {
  using C = ExpConstants<Elem<F>>;
  return F::shift_into_exponent(F::add(k, cst<F>(C::round_magic + C::bias)));
}

// k = round(x / ln2), r = x - k ln2, p = expm1(r).
template <class F>
inline void exp_reduce(Reg<F> x, Reg<F>* k, Reg<F>* p) {
  using C = ExpConstants<Elem<F>>;
  *k = F::sub(F::fma(x, cst<F>(C::log2e), cst<F>(C::round_magic)), cst<F>(C::round_magic));
  Reg<F> r = F::fma(*k, cst<F>(-C::ln2_hi), x);
  r = F::fma(*k, cst<F>(-C::ln2_lo), r);
  double inv_fact = 1.0;                                // 1 / C::terms!
  for (int j = 2; j <= C::terms; ++j) inv_fact /= j;
  Reg<F> q = cst<F>(inv_fact);                          // Horner from the highest term down to 1/2!
  for (int j = C::terms; j > 2; --j) {
    inv_fact *= j;
    q = F::fma(q, r, cst<F>(inv_fact));
  }
  *p = F::fma(F::mul(r, r), q, r);                      // r + r^2 (1/2! + r/3! + ...)
}

// e^x for x <= 0 (or NaN).
template <class F>
inline Reg<F> exp_nonpositive(Reg<F> x) {
  using C = ExpConstants<Elem<F>>;
  x = F::max(cst<F>(C::min_exp_arg), x);
  Reg<F> k, p;
  exp_reduce<F>(x, &k, &p);
  const Reg<F> k1 = F::sub(F::fma(k, cst<F>(0.5), cst<F>(C::round_magic)), cst<F>(C::round_magic));
  const Reg<F> k2 = F::sub(k, k1);
  return F::mul(F::mul(F::add(p, cst<F>(1.0)), pow2<F>(k1)), pow2<F>(k2));
}

// e^x - 1 for x >= 0 (or NaN).
template <class F>
inline Reg<F> expm1_nonnegative(Reg<F> x) {
  using C = ExpConstants<Elem<F>>;
  x = F::min(cst<F>(C::max_expm1_arg), x);
  Reg<F> k, p;
  exp_reduce<F>(x, &k, &p);
  const Reg<F> s = pow2<F>(k);
  return F::fma(s, p, F::sub(s, cst<F>(1.0)));
}

// 1 / (1 + e^-x) = (x >= 0 ? 1 : e) / (1 + e) with e = e^-|x| <= 1: no overflow, and the relative
// accuracy holds for large negative x.
template <class F>
inline Reg<F> sigmoid_of(Reg<F> x) {
  const Reg<F> e = exp_nonpositive<F>(F::negative_abs(x));
  return F::div(F::select(F::nonnegative(x), cst<F>(1.0), e), F::add(cst<F>(1.0), e));
}

// tanh x = sign(x) u / (u + 2) with u = e^(2|x|) - 1.
template <class F>
inline Reg<F> tanh_of(Reg<F> x) {
  const Reg<F> a = F::abs(x);
  const Reg<F> u = expm1_nonnegative<F>(F::add(a, a));
  return F::with_sign_of(F::div(u, F::add(u, cst<F>(2.0))), x);
}

// out[i] = op(a[i], b[i]) over [begin, end).
template <class F, bool kStream, class Op>
void elementwise_slice(const Elem<F>* a, const Elem<F>* b, Elem<F>* out, int64_t begin, int64_t end,
                       const Op& op) {
  using T = Elem<F>;
  constexpr int64_t L = F::L;
  int64_t i = begin;
  const int64_t misalign = (int64_t)(((uintptr_t)(out + i)) % (L * sizeof(T))) / (int64_t)sizeof(T);
  if (misalign && i < end) {
    const typename F::M m = F::first(std::min(end - i, L - misalign));
    F::store(out + i, op(F::load(a + i, m), F::load(b + i, m)), m);
    i += L - misalign;
  }
  for (; i + 4 * L <= end; i += 4 * L) {
    for (int64_t line = 0; line < 4 * L; line += 64 / (int64_t)sizeof(T)) {
      _mm_prefetch(reinterpret_cast<const char*>(a + i + line + kPrefetchAhead), _MM_HINT_T0);
      if (b != a) _mm_prefetch(reinterpret_cast<const char*>(b + i + line + kPrefetchAhead), _MM_HINT_T0);
    }
    const Reg<F> r0 = op(F::load(a + i), F::load(b + i));
    const Reg<F> r1 = op(F::load(a + i + L), F::load(b + i + L));
    const Reg<F> r2 = op(F::load(a + i + 2 * L), F::load(b + i + 2 * L));
    const Reg<F> r3 = op(F::load(a + i + 3 * L), F::load(b + i + 3 * L));
    if (kStream) {
      F::stream(out + i, r0); F::stream(out + i + L, r1);
      F::stream(out + i + 2 * L, r2); F::stream(out + i + 3 * L, r3);
    } else {
      F::store(out + i, r0); F::store(out + i + L, r1);
      F::store(out + i + 2 * L, r2); F::store(out + i + 3 * L, r3);
    }
  }
  for (; i < end; i += L) {
    const typename F::M m = F::first(end - i);
    F::store(out + i, op(F::load(a + i, m), F::load(b + i, m)), m);
  }
  if (kStream) _mm_sfence();  // streaming stores are weakly ordered: publish before returning
}

template <class F, class Op>
void elementwise(int64_t n, const Elem<F>* a, const Elem<F>* b, Elem<F>* out, const Op& op) {
  const bool stream = n * (int64_t)sizeof(Elem<F>) >= kStreamBytes;
  parallel_for_lines(n, [&](int64_t begin, int64_t end) {
    if (stream) elementwise_slice<F, true>(a, b, out, begin, end, op);
    else elementwise_slice<F, false>(a, b, out, begin, end, op);
  });
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
      elementwise<F>(n, x, x, y, [a](V v, V) { return F::select(F::positive(v), v, F::mul(a, v)); });
      break;
    }
  }
}

template <class F>
void activation_backward(Activation act, Elem<F> alpha, int64_t n, const Elem<F>* gy, const Elem<F>* y,
                         Elem<F>* gx) {
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
