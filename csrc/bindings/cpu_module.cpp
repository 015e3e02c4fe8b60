// fastconv._cpu: the CPU kernels for NumPy arrays.
// Python (functional.py) validates arguments and allocates outputs; this file re-checks only
// what would make a pointer unsafe (dtype, contiguity, element counts), releases the GIL and
// calls the kernel table of the ISA in effect. The process-wide switches, memory and probes are
// bound by cpu_runtime.cpp.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "../cpu/conv2d/algorithm.h"
#include "../cpu/kernel_table.h"
#include "../cpu/runtime/loops.h"
#include "../cpu/runtime/scratch.h"
#include "cpu_runtime.h"
#include "params_binding.h"

namespace py = pybind11;
using namespace fastconv;

namespace {

enum class DType { f32, f64 };

// One kernel call: the GIL released, this thread's scratch buffers held (csrc/cpu/runtime/scratch.h).
struct KernelCall {
  py::gil_scoped_release release;
  ScratchScope scratch;
};

DType dtype_of(const py::array& a, const char* name) {
  if (a.dtype().is(py::dtype::of<float>())) return DType::f32;
  if (a.dtype().is(py::dtype::of<double>())) return DType::f64;
  throw std::invalid_argument(std::string(name) + ": expected float32 or float64");
}

// Pointer to a C-contiguous array of `count` elements of dtype T (checked).
template <typename T>
T* data_of(const py::array& a, int64_t count, const char* name, bool writable) {
  if (!a.dtype().is(py::dtype::of<T>()))
    throw std::invalid_argument(std::string(name) + ": dtype does not match the other arrays");
  if (!(a.flags() & py::array::c_style)) throw std::invalid_argument(std::string(name) + ": must be C-contiguous");
  if (a.size() != count)
    throw std::invalid_argument(std::string(name) + ": has " + std::to_string(a.size()) + " elements, expected " +
                                std::to_string(count));
  if (writable && !a.writeable()) throw std::invalid_argument(std::string(name) + ": not writable");
  return static_cast<T*>(const_cast<void*>(a.data()));
}

template <typename T>
const CpuOps<T>& ops() {
  if constexpr (sizeof(T) == 4) return cpu_kernels().f32;
  else return cpu_kernels().f64;
}

// FASTCONV_VERBOSE=1: after each conv2d call, its shape and the algorithm the dispatch chose
// (the kernel's own line, with its phase times, comes first).
void log_conv2d(ConvPass pass, const char* op, const Conv2dParams& p, DType dt) {
  if (!verbose()) return;
  std::fprintf(stderr,
               "fastconv: %s %s %s isa=%s x=(%lld,%lld,%lld,%lld) K=%lld RxS=%lldx%lld "
               "stride=%lldx%lld dil=%lldx%lld -> PxQ=%lldx%lld threads=%d algorithm=%s\n",
               op, dt == DType::f32 ? "f32" : "f64", p.layout == Layout::NCHW ? "NCHW" : "NHWC",
               isa_name(current_isa()), (long long)p.N, (long long)p.C, (long long)p.H, (long long)p.W, (long long)p.K,
               (long long)p.R, (long long)p.S, (long long)p.stride_h, (long long)p.stride_w, (long long)p.dil_h,
               (long long)p.dil_w, (long long)p.P, (long long)p.Q, num_threads(), algorithm_name(last_algorithm(pass)));
}

template <typename T>
void conv2d_forward_t(const Conv2dParams& p, const py::array& x, const py::array& w, const py::object& bias,
                      const py::array& y) {
  const T* xp = data_of<T>(x, p.x_size(), "x", false);
  const T* wp = data_of<T>(w, p.w_size(), "weight", false);
  const T* bp = bias.is_none() ? nullptr : data_of<T>(bias.cast<py::array>(), p.K, "bias", false);
  T* yp = data_of<T>(y, p.y_size(), "y", true);
  auto fn = ops<T>().conv2d.fwd;
  KernelCall call;
  fn(p, xp, wp, bp, yp);
}

template <typename T>
void conv2d_backward_data_t(const Conv2dParams& p, const py::array& gy, const py::array& w, const py::array& gx) {
  const T* gyp = data_of<T>(gy, p.y_size(), "grad_y", false);
  const T* wp = data_of<T>(w, p.w_size(), "weight", false);
  T* gxp = data_of<T>(gx, p.x_size(), "grad_x", true);
  auto fn = ops<T>().conv2d.bwd_data;
  KernelCall call;
  fn(p, gyp, wp, gxp);
}

template <typename T>
void conv2d_backward_weight_t(const Conv2dParams& p, const py::array& gy, const py::array& x, const py::array& gw,
                              const py::object& gb) {
  const T* gyp = data_of<T>(gy, p.y_size(), "grad_y", false);
  const T* xp = data_of<T>(x, p.x_size(), "x", false);
  T* gwp = data_of<T>(gw, p.w_size(), "grad_weight", true);
  T* gbp = gb.is_none() ? nullptr : data_of<T>(gb.cast<py::array>(), p.K, "grad_bias", true);
  auto fn = ops<T>().conv2d.bwd_weight;
  KernelCall call;
  fn(p, gyp, xp, gwp, gbp);
}

template <typename T>
void maxpool2d_forward_t(const Pool2dParams& p, const py::array& x, const py::array& y, const py::array& idx) {
  const T* xp = data_of<T>(x, p.x_size(), "x", false);
  T* yp = data_of<T>(y, p.y_size(), "y", true);
  int64_t* ip = data_of<int64_t>(idx, p.y_size(), "indices", true);
  auto fn = ops<T>().pool2d.max_fwd;
  KernelCall call;
  fn(p, xp, yp, ip);
}

template <typename T>
void maxpool2d_backward_t(const Pool2dParams& p, const py::array& gy, const py::array& idx, const py::array& gx) {
  const T* gyp = data_of<T>(gy, p.y_size(), "grad_y", false);
  const int64_t* ip = data_of<int64_t>(idx, p.y_size(), "indices", false);
  T* gxp = data_of<T>(gx, p.x_size(), "grad_x", true);
  auto fn = ops<T>().pool2d.max_bwd;
  bool ok;
  {
    KernelCall call;
    ok = fn(p, gyp, ip, gxp);
  }
  if (!ok)
    throw std::invalid_argument("indices: an index lies outside [0, H*W) = [0, " + std::to_string(p.H * p.W) + ")");
}

template <typename T>
void relu_forward_t(const py::array& x, const py::array& y) {
  const int64_t n = x.size();
  const T* xp = data_of<T>(x, n, "x", false);
  T* yp = data_of<T>(y, n, "y", true);
  auto fn = ops<T>().eltwise.relu_fwd;
  KernelCall call;
  fn(n, xp, yp);
}

template <typename T>
void relu_backward_t(const py::array& gy, const py::array& y, const py::array& gx) {
  const int64_t n = gy.size();
  const T* gyp = data_of<T>(gy, n, "grad_y", false);
  const T* yp = data_of<T>(y, n, "y", false);
  T* gxp = data_of<T>(gx, n, "grad_x", true);
  auto fn = ops<T>().eltwise.relu_bwd;
  KernelCall call;
  fn(n, gyp, yp, gxp);
}

template <typename T>
void avgpool2d_forward_t(const Pool2dParams& p, bool include_pad, const py::array& x, const py::array& y) {
  const T* xp = data_of<T>(x, p.x_size(), "x", false);
  T* yp = data_of<T>(y, p.y_size(), "y", true);
  auto fn = ops<T>().pool2d.avg_fwd;
  KernelCall call;
  fn(p, include_pad, xp, yp);
}

template <typename T>
void avgpool2d_backward_t(const Pool2dParams& p, bool include_pad, const py::array& gy, const py::array& gx) {
  const T* gyp = data_of<T>(gy, p.y_size(), "grad_y", false);
  T* gxp = data_of<T>(gx, p.x_size(), "grad_x", true);
  auto fn = ops<T>().pool2d.avg_bwd;
  KernelCall call;
  fn(p, include_pad, gyp, gxp);
}

template <typename T>
const T* optional_data(const py::object& a, int64_t count, const char* name) {
  return a.is_none() ? nullptr : data_of<T>(a.cast<py::array>(), count, name, false);
}

BatchNormShape batchnorm_shape(int64_t N, int64_t C, int64_t HW, const std::string& layout) {
  if (N < 1 || C < 1 || HW < 1) throw std::invalid_argument("x: batch norm needs N, C, H*W >= 1");
  BatchNormShape s{N, C, HW, layout == "NHWC" ? Layout::NHWC : Layout::NCHW};
  if (s.size() / N / C != HW) throw std::invalid_argument("x: the element count overflows 64 bits");
  return s;
}

template <typename T>
void batchnorm_train_t(const BatchNormShape& s, const py::array& x, const py::object& gamma, const py::object& beta,
                       double eps, bool relu, const py::array& y, const py::array& mean, const py::array& var,
                       const py::array& inv_std) {
  const T* xp = data_of<T>(x, s.size(), "x", false);
  const T* gp = optional_data<T>(gamma, s.C, "gamma");
  const T* bp = optional_data<T>(beta, s.C, "beta");
  T* yp = data_of<T>(y, s.size(), "y", true);
  T* mp = data_of<T>(mean, s.C, "mean", true);
  T* vp = data_of<T>(var, s.C, "var", true);
  T* ip = data_of<T>(inv_std, s.C, "inv_std", true);
  auto fn = ops<T>().batchnorm.train_forward;
  KernelCall call;
  fn(s, xp, gp, bp, eps, relu, yp, mp, vp, ip);
}

template <typename T>
void batchnorm_normalize_t(const BatchNormShape& s, const py::array& x, const py::array& mean, const py::array& scale,
                           const py::array& shift, bool relu, const py::array& y) {
  const T* xp = data_of<T>(x, s.size(), "x", false);
  const double* mp = data_of<double>(mean, s.C, "mean", false);
  const double* ap = data_of<double>(scale, s.C, "scale", false);
  const double* bp = data_of<double>(shift, s.C, "shift", false);
  T* yp = data_of<T>(y, s.size(), "y", true);
  auto fn = ops<T>().batchnorm.normalize;
  KernelCall call;
  fn(s, xp, mp, ap, bp, relu, yp);
}

template <typename T>
void batchnorm_backward_t(const BatchNormShape& s, bool training, const py::array& gy, const py::object& relu_y,
                          const py::array& x, const py::array& mean, const py::array& inv_std, const py::object& gamma,
                          const py::array& gx, const py::array& ggamma, const py::array& gbeta) {
  const T* gyp = data_of<T>(gy, s.size(), "grad_y", false);
  const T* ryp = optional_data<T>(relu_y, s.size(), "y");
  const T* xp = data_of<T>(x, s.size(), "x", false);
  const T* mp = data_of<T>(mean, s.C, "saved_mean", false);
  const T* ip = data_of<T>(inv_std, s.C, "saved_inv_std", false);
  const T* gp = optional_data<T>(gamma, s.C, "gamma");
  T* gxp = data_of<T>(gx, s.size(), "grad_x", true);
  T* ggp = data_of<T>(ggamma, s.C, "grad_gamma", true);
  T* gbp = data_of<T>(gbeta, s.C, "grad_beta", true);
  auto fn = ops<T>().batchnorm.backward;
  KernelCall call;
  fn(s, training, gyp, ryp, xp, mp, ip, gp, gxp, ggp, gbp);
}

template <typename T>
void activation_forward_t(Activation a, double alpha, const py::array& x, const py::array& y) {
  const int64_t n = x.size();
  const T* xp = data_of<T>(x, n, "x", false);
  T* yp = data_of<T>(y, n, "y", true);
  auto fn = ops<T>().eltwise.activation_fwd;
  KernelCall call;
  fn(a, static_cast<T>(alpha), n, xp, yp);
}

template <typename T>
void activation_backward_t(Activation a, double alpha, const py::array& gy, const py::array& y, const py::array& gx) {
  const int64_t n = gy.size();
  const T* gyp = data_of<T>(gy, n, "grad_y", false);
  const T* yp = data_of<T>(y, n, "y", false);
  T* gxp = data_of<T>(gx, n, "grad_x", true);
  auto fn = ops<T>().eltwise.activation_bwd;
  KernelCall call;
  fn(a, static_cast<T>(alpha), n, gyp, yp, gxp);
}

// A (M,K) is `a` stored (M,K) C-contiguous, or its transpose stored (K,M) when a_t; B (K,N) is
// `b` stored (K,N), or (N,K) when b_t. Transposed operands are read in place (GemmParams strides).
template <typename T>
void gemm_t(const py::array& a, bool a_t, const py::array& b, bool b_t, int64_t M, int64_t N, int64_t K,
            const py::object& bias, const std::string& activation, double alpha, const py::array& c) {
  if (M < 1 || N < 1 || K < 1) throw std::invalid_argument("gemm: empty dimension");
  GemmParams g;
  if (!std::isfinite(alpha) || alpha < 0)
    throw std::invalid_argument("gemm: alpha (leaky_relu's slope) must be finite and >= 0");
  g.M = M;
  g.N = N;
  g.K = K;
  g.epilogue = epilogue_named(activation);
  g.alpha = alpha;
  g.a_rs = a_t ? 1 : K;
  g.a_cs = a_t ? M : 1;
  g.b_rs = b_t ? 1 : N;
  g.b_cs = b_t ? K : 1;
  const T* ap = data_of<T>(a, M * K, "a", false);
  const T* bp = data_of<T>(b, K * N, "b", false);
  const T* biasp = bias.is_none() ? nullptr : data_of<T>(bias.cast<py::array>(), N, "bias", false);
  T* cp = data_of<T>(c, M * N, "out", true);
  auto fn = ops<T>().linear.gemm;
  KernelCall call;
  fn(g, ap, bp, biasp, cp);
}

template <typename T>
void column_sums_t(const py::array& x, int64_t M, int64_t N, const py::array& sums) {
  const T* xp = data_of<T>(x, M * N, "grad_y", false);
  T* sp = data_of<T>(sums, N, "grad_bias", true);
  auto fn = ops<T>().linear.column_sums;
  KernelCall call;
  fn(M, N, xp, sp);
}

template <typename T>
void adam_update_t(const py::array& p, const py::array& g, const py::array& m, const py::array& v,
                   const py::tuple& constants) {
  const int64_t n = p.size();
  AdamConstants<T> k;
  T* fields[] = {&k.b1, &k.one_minus_b1, &k.b2, &k.one_minus_b2, &k.c2, &k.eps, &k.step};
  if (constants.size() != 7) throw std::invalid_argument("adam_update: 7 constants expected");
  for (int i = 0; i < 7; ++i) *fields[i] = constants[i].cast<T>();
  T* pp = data_of<T>(p, n, "parameter", true);
  const T* gp = data_of<T>(g, n, "gradient", false);
  T* mp = data_of<T>(m, n, "first moment", true);
  T* vp = data_of<T>(v, n, "second moment", true);
  KernelCall call;
  ops<T>().optim.adam(n, pp, gp, mp, vp, k);
}

}  // namespace

PYBIND11_MODULE(_cpu, m) {
  m.doc() = "fastconv CPU kernels (private: use the fastconv package)";
  bind_params(m);

  m.def("conv2d_forward", [](const Conv2dParams& p, py::array x, py::array w, py::object bias, py::array y) {
    const DType dt = dtype_of(x, "x");
    if (dt == DType::f32) conv2d_forward_t<float>(p, x, w, bias, y);
    else conv2d_forward_t<double>(p, x, w, bias, y);
    log_conv2d(ConvPass::fwd, "conv2d_fwd", p, dt);
  });
  m.def("conv2d_backward_data", [](const Conv2dParams& p, py::array gy, py::array w, py::array gx) {
    const DType dt = dtype_of(gy, "grad_y");
    if (dt == DType::f32) conv2d_backward_data_t<float>(p, gy, w, gx);
    else conv2d_backward_data_t<double>(p, gy, w, gx);
    log_conv2d(ConvPass::bwd_data, "conv2d_bwd_data", p, dt);
  });
  m.def("conv2d_backward_weight", [](const Conv2dParams& p, py::array gy, py::array x, py::array gw, py::object gb) {
    const DType dt = dtype_of(gy, "grad_y");
    if (dt == DType::f32) conv2d_backward_weight_t<float>(p, gy, x, gw, gb);
    else conv2d_backward_weight_t<double>(p, gy, x, gw, gb);
    log_conv2d(ConvPass::bwd_weight, "conv2d_bwd_weight", p, dt);
  });
  m.def("maxpool2d_forward", [](const Pool2dParams& p, py::array x, py::array y, py::array idx) {
    if (dtype_of(x, "x") == DType::f32) maxpool2d_forward_t<float>(p, x, y, idx);
    else maxpool2d_forward_t<double>(p, x, y, idx);
  });
  m.def("maxpool2d_backward", [](const Pool2dParams& p, py::array gy, py::array idx, py::array gx) {
    if (dtype_of(gy, "grad_y") == DType::f32) maxpool2d_backward_t<float>(p, gy, idx, gx);
    else maxpool2d_backward_t<double>(p, gy, idx, gx);
  });
  m.def("relu_forward", [](py::array x, py::array y) {
    if (dtype_of(x, "x") == DType::f32) relu_forward_t<float>(x, y);
    else relu_forward_t<double>(x, y);
  });
  m.def("relu_backward", [](py::array gy, py::array y, py::array gx) {
    if (dtype_of(gy, "grad_y") == DType::f32) relu_backward_t<float>(gy, y, gx);
    else relu_backward_t<double>(gy, y, gx);
  });
  m.def(
      "batchnorm_train_forward",
      [](int64_t N, int64_t C, int64_t HW, const std::string& layout, py::array x, py::object gamma, py::object beta,
         double eps, bool relu, py::array y, py::array mean, py::array var, py::array inv_std) {
        const BatchNormShape s = batchnorm_shape(N, C, HW, layout);
        if (dtype_of(x, "x") == DType::f32)
          batchnorm_train_t<float>(s, x, gamma, beta, eps, relu, y, mean, var, inv_std);
        else batchnorm_train_t<double>(s, x, gamma, beta, eps, relu, y, mean, var, inv_std);
      },
      "x -> y (then ReLU with relu), batch mean, biased variance, inverse std (training-mode batch normalization)");
  m.def(
      "batchnorm_normalize",
      [](int64_t N, int64_t C, int64_t HW, const std::string& layout, py::array x, py::array mean, py::array scale,
         py::array shift, bool relu, py::array y) {
        const BatchNormShape s = batchnorm_shape(N, C, HW, layout);
        if (dtype_of(x, "x") == DType::f32) batchnorm_normalize_t<float>(s, x, mean, scale, shift, relu, y);
        else batchnorm_normalize_t<double>(s, x, mean, scale, shift, relu, y);
      },
      "y = (x - mean[c]) * scale[c] + shift[c] (then ReLU with relu), per-channel values float64 (inference-mode batch "
      "norm)");
  m.def(
      "batchnorm_backward",
      [](int64_t N, int64_t C, int64_t HW, const std::string& layout, bool training, py::array gy, py::object relu_y,
         py::array x, py::array mean, py::array inv_std, py::object gamma, py::array gx, py::array ggamma,
         py::array gbeta) {
        const BatchNormShape s = batchnorm_shape(N, C, HW, layout);
        if (dtype_of(gy, "grad_y") == DType::f32)
          batchnorm_backward_t<float>(s, training, gy, relu_y, x, mean, inv_std, gamma, gx, ggamma, gbeta);
        else batchnorm_backward_t<double>(s, training, gy, relu_y, x, mean, inv_std, gamma, gx, ggamma, gbeta);
      },
      "grad_y (where relu_y, a fused ReLU's output, is > 0 when given), x -> grad_x, grad_gamma, grad_beta");
  m.def(
      "avgpool2d_forward",
      [](const Pool2dParams& p, bool include_pad, py::array x, py::array y) {
        if (dtype_of(x, "x") == DType::f32) avgpool2d_forward_t<float>(p, include_pad, x, y);
        else avgpool2d_forward_t<double>(p, include_pad, x, y);
      },
      "x -> y: average pooling; include_pad: divide by R*S, else by the cells inside x");
  m.def("avgpool2d_backward", [](const Pool2dParams& p, bool include_pad, py::array gy, py::array gx) {
    if (dtype_of(gy, "grad_y") == DType::f32) avgpool2d_backward_t<float>(p, include_pad, gy, gx);
    else avgpool2d_backward_t<double>(p, include_pad, gy, gx);
  });
  m.def(
      "activation_forward",
      [](const std::string& name, double alpha, py::array x, py::array y) {
        const Activation a = activation_named(name);
        if (dtype_of(x, "x") == DType::f32) activation_forward_t<float>(a, alpha, x, y);
        else activation_forward_t<double>(a, alpha, x, y);
      },
      "x -> y = sigmoid / tanh / leaky_relu(x) (alpha: leaky_relu's slope); y may be x");
  m.def(
      "activation_backward",
      [](const std::string& name, double alpha, py::array gy, py::array y, py::array gx) {
        const Activation a = activation_named(name);
        if (dtype_of(gy, "grad_y") == DType::f32) activation_backward_t<float>(a, alpha, gy, y, gx);
        else activation_backward_t<double>(a, alpha, gy, y, gx);
      },
      "grad_y, y (the forward's output) -> grad_x; gx may be gy");
  m.def(
      "gemm",
      [](py::array a, bool a_t, py::array b, bool b_t, int64_t M, int64_t N, int64_t K, py::object bias,
         const std::string& activation, double alpha, py::array c) {
        if (dtype_of(a, "a") == DType::f32) gemm_t<float>(a, a_t, b, b_t, M, N, K, bias, activation, alpha, c);
        else gemm_t<double>(a, a_t, b, b_t, M, N, K, bias, activation, alpha, c);
      },
      "c = activation(A B + bias), activation 'none' | 'relu' | 'sigmoid' | 'tanh' | 'leaky_relu'");
  m.def(
      "adam_update",
      [](py::array p, py::array g, py::array m1, py::array v, py::tuple constants) {
        if (dtype_of(p, "parameter") == DType::f32) adam_update_t<float>(p, g, m1, v, constants);
        else adam_update_t<double>(p, g, m1, v, constants);
      },
      "one Adam step in place (constants: b1, 1-b1, b2, 1-b2, 1-b2^t, eps, lr/(1-b1^t))");
  m.def("column_sums", [](py::array x, int64_t M, int64_t N, py::array sums) {
    if (dtype_of(x, "grad_y") == DType::f32) column_sums_t<float>(x, M, N, sums);
    else column_sums_t<double>(x, M, N, sums);
  });

  bind_runtime(m);
}
