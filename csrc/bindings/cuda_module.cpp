// fastconv._cuda: CUDA kernels for CuPy arrays (private: use the fastconv package).
// Arrays arrive as raw device pointers (ints) with the CuPy stream handle; Python checks
// shapes and dtypes and allocates outputs. Every failure becomes a RuntimeError naming the kernel.
#include <cuda_runtime.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "../cuda/kernels.h"

namespace py = pybind11;
using namespace fastconv;

namespace {

void check(cudaError_t err, const char* kernel) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("fastconv CUDA kernel ") + kernel + " failed: " +
                             cudaGetErrorString(err));
}

template <typename T>
T* ptr(std::uintptr_t p) { return reinterpret_cast<T*>(p); }

cudaStream_t stream_of(std::uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "fastconv CUDA kernels (private: use the fastconv package)";

  m.def("device_count", [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();  // clear the sticky error of a machine without a driver
      return 0;
    }
    return n;
  });

  m.def("relu_forward", [](std::uintptr_t x, std::uintptr_t y, int64_t n, bool f64, std::uintptr_t stream) {
    cudaError_t err;
    {
      py::gil_scoped_release release;
      err = f64 ? cuda::relu_forward_f64(ptr<const double>(x), ptr<double>(y), n, stream_of(stream))
                : cuda::relu_forward_f32(ptr<const float>(x), ptr<float>(y), n, stream_of(stream));
    }
    check(err, f64 ? "relu_forward_f64" : "relu_forward_f32");
  });
  m.def("relu_backward", [](std::uintptr_t gy, std::uintptr_t y, std::uintptr_t gx, int64_t n, bool f64,
                            std::uintptr_t stream) {
    cudaError_t err;
    {
      py::gil_scoped_release release;
      err = f64 ? cuda::relu_backward_f64(ptr<const double>(gy), ptr<const double>(y), ptr<double>(gx), n,
                                          stream_of(stream))
                : cuda::relu_backward_f32(ptr<const float>(gy), ptr<const float>(y), ptr<float>(gx), n,
                                          stream_of(stream));
    }
    check(err, f64 ? "relu_backward_f64" : "relu_backward_f32");
  });
}
