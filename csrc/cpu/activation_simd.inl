// Sigmoid, tanh and leaky ReLU (contracts in activation.h) on arrays, shared by
// activation_avx512.cpp and activation_avx2.cpp. Each includes this file INSIDE its own anonymous
// namespace after its traits (simd/avx512.h or simd/avx2.h) and simd/vector_math.h, whose
// register functions the loops apply, so the templates compile once per ISA. Reference:
// activation_ref.cpp.
//
// Memory speed: like relu_*.cpp, threads take contiguous chunks of whole cache lines
// (parallel_for_lines), one masked vector brings the output to a vector boundary, the body moves
// 4 vectors per trip with the inputs prefetched ahead (kPrefetchAhead), a masked vector does the
// tail, and outputs larger than kStreamBytes are written with streaming stores. Every element goes
// through the same vector code (no scalar head or tail), so a result does not depend on the
// array's alignment or the thread count.

constexpr int64_t kStreamBytes = int64_t(16) << 20;  // as relu_*.cpp: below it the next layer reads y from cache
// Inputs are prefetched this many elements ahead: sigmoid and tanh spend long enough on each
// vector that the hardware prefetcher alone falls behind, and the loop then waits for memory and
// computes in turn. Measured (python -m fastconv.bench --networks activations, batch 8, 2 threads,
// 103 MB per call): sigmoid forward 20 -> 37 GB/s, tanh 25 -> 45 GB/s; 256 / 4096 ahead: within 5%.
constexpr int64_t kPrefetchAhead = 1024;

// out[i] = op(a[i], b[i]) over [begin, end).
template <class F, bool kStream, class Op>
void elementwise_slice(const Elem<F>* a, const Elem<F>* b, Elem<F>* out, int64_t begin, int64_t end,
                       const Op& op) {
  using T = Elem<F>;
  constexpr int64_t L = F::W;
  int64_t i = begin;
  const int64_t misalign = (int64_t)(((uintptr_t)(out + i)) % (L * sizeof(T))) / (int64_t)sizeof(T);
  if (misalign && i < end) {
    const int n = static_cast<int>(std::min(end - i, L - misalign));
    F::store_n(out + i, op(F::load_n(a + i, n), F::load_n(b + i, n)), n);
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
    const int n = static_cast<int>(std::min(end - i, L));
    F::store_n(out + i, op(F::load_n(a + i, n), F::load_n(b + i, n)), n);
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
      elementwise<F>(n, x, x, y, [a](V v, V) { return leaky_relu_of<F>(v, a); });
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
