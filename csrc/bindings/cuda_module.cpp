// fastconv._cuda: the CUDA kernels for CuPy arrays (private: use the fastconv package).
// Built a second time with -DFASTCONV_CUDA_EMU as fastconv._cuda_emu, the same kernels compiled as
// host C++ (csrc/cuda/emu/cuda_emu.h) and called on NumPy arrays' host pointers by the tests.
//
// Arrays arrive as raw pointers (ints) with CuPy's current stream handle; python/fastconv/
// _cuda_runner.py checks shapes, dtypes and contiguity and allocates outputs and workspaces. Every
// launch failure becomes a RuntimeError naming the kernel. Nothing here synchronizes.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "../cuda/kernels.h"
#include "params_binding.h"

#ifdef FASTCONV_CUDA_EMU
#include "../cuda/emu/emu_selftest.h"
#define FASTCONV_CUDA_MODULE _cuda_emu
#else
#define FASTCONV_CUDA_MODULE _cuda
#endif

namespace py = pybind11;
using namespace fastconv;

namespace {

bool verbose() {
  static const bool on = [] {
    const char* v = std::getenv("FASTCONV_VERBOSE");
    return v != nullptr && v[0] != '\0' && v[0] != '0';
  }();
  return on;
}

void check(cudaError_t err, const char* op) {
  const std::string kernel = cuda::last_kernel();
  if (err != cudaSuccess && kernel.empty())  // refused before any launch (bad sizes/workspace)
    throw std::runtime_error(std::string("fastconv CUDA ") + op + ": no kernel launched: " + cudaGetErrorString(err));
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("fastconv CUDA kernel ") + kernel + " (" + op +
                             ") failed: " + cudaGetErrorString(err));
  if (verbose()) std::fprintf(stderr, "fastconv: cuda %s ran %s\n", op, kernel.c_str());
}

template <typename T>
T* ptr(std::uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

cudaStream_t stream_of(std::uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

// Runs fn() without the GIL, names the op in errors. cuda::last_kernel() is per host thread and
// the call stays on this thread, so the name read in check() is that of this call's kernels.
template <typename Fn>
void run(const char* op, Fn&& fn) {
  cuda::clear_last_kernel();
  cudaError_t err;
  {
    py::gil_scoped_release release;
    err = fn();
  }
  check(err, op);
}

}  // namespace

PYBIND11_MODULE(FASTCONV_CUDA_MODULE, m) {
  m.doc() = "fastconv CUDA kernels (private: use the fastconv package)";
  bind_params(m);
#ifdef FASTCONV_CUDA_EMU
  m.attr("emulated") = true;
  m.def("device_count", [] { return 0; });
  m.def("set_workers", &cuda_emu::set_workers, "host threads that run emulated blocks concurrently");
  m.def("workers", &cuda_emu::workers);
  m.def("selftest_reverse_in_block", [](std::uintptr_t in, std::uintptr_t out, int blocks, int threads) {
    run("selftest_reverse_in_block", [&] {
      return cuda::emu_selftest::reverse_in_block(ptr<const int32_t>(in), ptr<int32_t>(out), blocks, threads);
    });
  });
  m.def("selftest_racy_reverse_in_block", [](std::uintptr_t in, std::uintptr_t out, int blocks, int threads) {
    run("selftest_racy_reverse_in_block", [&] {
      return cuda::emu_selftest::racy_reverse_in_block(ptr<const int32_t>(in), ptr<int32_t>(out), blocks, threads);
    });
  });
  m.def("selftest_global_read_past_end", [](std::uintptr_t in, std::uintptr_t out, int threads) {
    run("selftest_global_read_past_end",
        [&] { return cuda::emu_selftest::global_read_past_end(ptr<const int32_t>(in), ptr<int32_t>(out), threads); });
  });
  m.def("selftest_shared_write_past_end", [](std::uintptr_t out, int threads) {
    if (threads < 1 || threads > 256) throw std::invalid_argument("threads must be in [1, 256]");
    run("selftest_shared_write_past_end",
        [&] { return cuda::emu_selftest::shared_write_past_end(ptr<int32_t>(out), threads); });
  });
  m.def(
      "set_thread_order",
      [](const std::string& order, uint64_t seed) {
        cuda_emu::ThreadOrder o;
        if (order == "forward") o = cuda_emu::ThreadOrder::forward;
        else if (order == "reverse") o = cuda_emu::ThreadOrder::reverse;
        else if (order == "shuffled") o = cuda_emu::ThreadOrder::shuffled;
        else throw std::invalid_argument("order: expected 'forward', 'reverse' or 'shuffled', got '" + order + "'");
        cuda_emu::set_thread_order(o, seed);
      },
      py::arg("order"), py::arg("seed") = 0,
      "the order in which each round resumes a block's threads (a race shows up as a difference)");
#if defined(__SANITIZE_ADDRESS__)
  m.attr("sanitized") = true;
#else
  m.attr("sanitized") = false;
#endif
  m.def("selftest_divergent_barrier", [](std::uintptr_t out, int threads) {
    run("selftest_divergent_barrier",
        [&] { return cuda::emu_selftest::divergent_barrier(ptr<int32_t>(out), threads); });
  });
  m.def("fast_divmod", [](int64_t d, int32_t n) {
    if (d < 1 || d > INT32_MAX || n < 0) throw std::invalid_argument("fast_divmod: need 1 <= d < 2**31, n >= 0");
    int32_t q, r;
    cuda::emu_selftest::fast_divmod(d, n, &q, &r);
    return py::make_tuple(q, r);
  });
#else
  m.attr("emulated") = false;
  m.def("device_count", [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();  // clear the sticky error of a machine without a driver
      return 0;
    }
    return n;
  });
#endif

  m.def("conv2d_forward", [](const Conv2dParams& p, std::uintptr_t x, std::uintptr_t w, std::uintptr_t bias,
                             std::uintptr_t y, bool f64, int version, std::uintptr_t stream) {
    run("conv2d_forward", [&] {
      return f64 ? cuda::conv2d_fwd(p, ptr<const double>(x), ptr<const double>(w), ptr<const double>(bias),
                                    ptr<double>(y), version, stream_of(stream))
                 : cuda::conv2d_fwd(p, ptr<const float>(x), ptr<const float>(w), ptr<const float>(bias), ptr<float>(y),
                                    version, stream_of(stream));
    });
  });
  m.def("conv2d_backward_data", [](const Conv2dParams& p, std::uintptr_t gy, std::uintptr_t w, std::uintptr_t gx,
                                   bool f64, int version, std::uintptr_t stream) {
    run("conv2d_backward_data", [&] {
      return f64 ? cuda::conv2d_bwd_data(p, ptr<const double>(gy), ptr<const double>(w), ptr<double>(gx), version,
                                         stream_of(stream))
                 : cuda::conv2d_bwd_data(p, ptr<const float>(gy), ptr<const float>(w), ptr<float>(gx), version,
                                         stream_of(stream));
    });
  });
  m.def("conv2d_backward_weight_workspace_bytes",
        [](const Conv2dParams& p, bool f64, bool with_bias, int version, int splits) {
          return cuda::conv2d_bwd_weight_workspace_bytes(p, f64 ? 8 : 4, with_bias, version, splits);
        });
  m.def("conv2d_backward_weight", [](const Conv2dParams& p, std::uintptr_t gy, std::uintptr_t x, std::uintptr_t gw,
                                     std::uintptr_t gb, std::uintptr_t ws, int64_t ws_bytes, bool f64, int version,
                                     int splits, std::uintptr_t stream) {
    run("conv2d_backward_weight", [&] {
      return f64 ? cuda::conv2d_bwd_weight(p, ptr<const double>(gy), ptr<const double>(x), ptr<double>(gw),
                                           ptr<double>(gb), ptr<void>(ws), ws_bytes, version, splits, stream_of(stream))
                 : cuda::conv2d_bwd_weight(p, ptr<const float>(gy), ptr<const float>(x), ptr<float>(gw), ptr<float>(gb),
                                           ptr<void>(ws), ws_bytes, version, splits, stream_of(stream));
    });
  });
  m.def("maxpool2d_forward", [](const Pool2dParams& p, std::uintptr_t x, std::uintptr_t y, std::uintptr_t idx, bool f64,
                                int version, std::uintptr_t stream) {
    run("max_pool2d", [&] {
      return f64 ? cuda::maxpool2d_fwd(p, ptr<const double>(x), ptr<double>(y), ptr<int64_t>(idx), version,
                                       stream_of(stream))
                 : cuda::maxpool2d_fwd(p, ptr<const float>(x), ptr<float>(y), ptr<int64_t>(idx), version,
                                       stream_of(stream));
    });
  });
  m.def("maxpool2d_backward", [](const Pool2dParams& p, std::uintptr_t gy, std::uintptr_t idx, std::uintptr_t gx,
                                 std::uintptr_t bad_index, bool f64, int version, std::uintptr_t stream) {
    run("max_pool2d_backward", [&] {
      return f64 ? cuda::maxpool2d_bwd(p, ptr<const double>(gy), ptr<const int64_t>(idx), ptr<double>(gx),
                                       ptr<int>(bad_index), version, stream_of(stream))
                 : cuda::maxpool2d_bwd(p, ptr<const float>(gy), ptr<const int64_t>(idx), ptr<float>(gx),
                                       ptr<int>(bad_index), version, stream_of(stream));
    });
  });
  m.def(
      "relu_forward",
      [](std::uintptr_t x, std::uintptr_t y, int64_t n, bool f64, std::uintptr_t stream, int version) {
        run("relu", [&] {
          return f64 ? cuda::relu_fwd(ptr<const double>(x), ptr<double>(y), n, version, stream_of(stream))
                     : cuda::relu_fwd(ptr<const float>(x), ptr<float>(y), n, version, stream_of(stream));
        });
      },
      py::arg("x"), py::arg("y"), py::arg("n"), py::arg("f64"), py::arg("stream"), py::arg("version") = 0);
  m.def(
      "relu_backward",
      [](std::uintptr_t gy, std::uintptr_t y, std::uintptr_t gx, int64_t n, bool f64, std::uintptr_t stream,
         int version) {
        run("relu_backward", [&] {
          return f64 ? cuda::relu_bwd(ptr<const double>(gy), ptr<const double>(y), ptr<double>(gx), n, version,
                                      stream_of(stream))
                     : cuda::relu_bwd(ptr<const float>(gy), ptr<const float>(y), ptr<float>(gx), n, version,
                                      stream_of(stream));
        });
      },
      py::arg("gy"), py::arg("y"), py::arg("gx"), py::arg("n"), py::arg("f64"), py::arg("stream"),
      py::arg("version") = 0);

  m.def("avgpool2d_forward", [](const Pool2dParams& p, bool include_pad, std::uintptr_t x, std::uintptr_t y, bool f64,
                                std::uintptr_t stream) {
    run("avg_pool2d", [&] {
      return f64 ? cuda::avgpool2d_fwd(p, include_pad, ptr<const double>(x), ptr<double>(y), stream_of(stream))
                 : cuda::avgpool2d_fwd(p, include_pad, ptr<const float>(x), ptr<float>(y), stream_of(stream));
    });
  });
  m.def("avgpool2d_backward", [](const Pool2dParams& p, bool include_pad, std::uintptr_t gy, std::uintptr_t gx,
                                 bool f64, std::uintptr_t stream) {
    run("avg_pool2d_backward", [&] {
      return f64 ? cuda::avgpool2d_bwd(p, include_pad, ptr<const double>(gy), ptr<double>(gx), stream_of(stream))
                 : cuda::avgpool2d_bwd(p, include_pad, ptr<const float>(gy), ptr<float>(gx), stream_of(stream));
    });
  });
  // Batch normalization: (N, C, HW, layout) as in fastconv._cpu; null pointers (0) for gamma/beta.
  m.def("batchnorm_workspace_bytes", [](int64_t N, int64_t C, int64_t HW, bool nhwc) {
    return cuda::batchnorm_workspace_bytes(BatchNormShape{N, C, HW, nhwc ? Layout::NHWC : Layout::NCHW});
  });
  m.def("batchnorm_train_forward",
        [](int64_t N, int64_t C, int64_t HW, bool nhwc, std::uintptr_t x, std::uintptr_t gamma, std::uintptr_t beta,
           double eps, std::uintptr_t y, std::uintptr_t mean, std::uintptr_t var, std::uintptr_t inv_std,
           std::uintptr_t workspace, bool f64, std::uintptr_t stream) {
          const BatchNormShape s{N, C, HW, nhwc ? Layout::NHWC : Layout::NCHW};
          run("batch_norm", [&] {
            void* ws = ptr<void>(workspace);
            return f64 ? cuda::batchnorm_train_fwd(s, ptr<const double>(x), ptr<const double>(gamma),
                                                   ptr<const double>(beta), eps, ptr<double>(y), ptr<double>(mean),
                                                   ptr<double>(var), ptr<double>(inv_std), ws, stream_of(stream))
                       : cuda::batchnorm_train_fwd(s, ptr<const float>(x), ptr<const float>(gamma),
                                                   ptr<const float>(beta), eps, ptr<float>(y), ptr<float>(mean),
                                                   ptr<float>(var), ptr<float>(inv_std), ws, stream_of(stream));
          });
        });
  m.def("batchnorm_normalize", [](int64_t N, int64_t C, int64_t HW, bool nhwc, std::uintptr_t x, std::uintptr_t coef,
                                  std::uintptr_t y, bool f64, std::uintptr_t stream) {
    const BatchNormShape s{N, C, HW, nhwc ? Layout::NHWC : Layout::NCHW};
    run("batch_norm", [&] {
      return f64 ? cuda::batchnorm_normalize(s, ptr<const double>(x), ptr<const double>(coef), ptr<double>(y),
                                             stream_of(stream))
                 : cuda::batchnorm_normalize(s, ptr<const float>(x), ptr<const double>(coef), ptr<float>(y),
                                             stream_of(stream));
    });
  });
  m.def("batchnorm_backward", [](int64_t N, int64_t C, int64_t HW, bool nhwc, bool training, std::uintptr_t gy,
                                 std::uintptr_t x, std::uintptr_t mean, std::uintptr_t inv_std, std::uintptr_t gamma,
                                 std::uintptr_t gx, std::uintptr_t ggamma, std::uintptr_t gbeta,
                                 std::uintptr_t workspace, bool f64, std::uintptr_t stream) {
    const BatchNormShape s{N, C, HW, nhwc ? Layout::NHWC : Layout::NCHW};
    run("batch_norm_backward", [&] {
      void* ws = ptr<void>(workspace);
      return f64 ? cuda::batchnorm_bwd(s, training, ptr<const double>(gy), ptr<const double>(x),
                                       ptr<const double>(mean), ptr<const double>(inv_std), ptr<const double>(gamma),
                                       ptr<double>(gx), ptr<double>(ggamma), ptr<double>(gbeta), ws, stream_of(stream))
                 : cuda::batchnorm_bwd(s, training, ptr<const float>(gy), ptr<const float>(x), ptr<const float>(mean),
                                       ptr<const float>(inv_std), ptr<const float>(gamma), ptr<float>(gx),
                                       ptr<float>(ggamma), ptr<float>(gbeta), ws, stream_of(stream));
    });
  });
  m.def("activation_forward", [](const std::string& name, double alpha, std::uintptr_t x, std::uintptr_t y, int64_t n,
                                 bool f64, std::uintptr_t stream) {
    const Activation a = activation_named(name);
    run(name.c_str(), [&] {
      return f64 ? cuda::activation_fwd(a, alpha, ptr<const double>(x), ptr<double>(y), n, stream_of(stream))
                 : cuda::activation_fwd(a, static_cast<float>(alpha), ptr<const float>(x), ptr<float>(y), n,
                                        stream_of(stream));
    });
  });
  m.def("activation_backward", [](const std::string& name, double alpha, std::uintptr_t gy, std::uintptr_t y,
                                  std::uintptr_t gx, int64_t n, bool f64, std::uintptr_t stream) {
    const Activation a = activation_named(name);
    run((name + "_backward").c_str(), [&] {
      return f64 ? cuda::activation_bwd(a, alpha, ptr<const double>(gy), ptr<const double>(y), ptr<double>(gx), n,
                                        stream_of(stream))
                 : cuda::activation_bwd(a, static_cast<float>(alpha), ptr<const float>(gy), ptr<const float>(y),
                                        ptr<float>(gx), n, stream_of(stream));
    });
  });

  m.def("last_kernel", [] { return cuda::last_kernel(); }, "the kernel most recently launched from this thread");
  m.def("set_max_launch_elements", &cuda::set_max_launch_elements,
        "testing knob: split launches above this many elements (default 2**31 - 1)");
  m.def("max_launch_elements", &cuda::max_launch_elements);
}
