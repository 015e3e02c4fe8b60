// CUDA kernel launchers: plain C++ (device pointers, sizes, the caller's stream), no pybind11.
// Each returns the launch's cudaError_t; the binding turns a failure into a Python error
// naming the kernel. Outputs are allocated by CuPy in Python, never here.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace fastconv {
namespace cuda {

// x (n) -> y (n); y may alias x. NaN propagates.
cudaError_t relu_forward_f32(const float* x, float* y, int64_t n, cudaStream_t stream);
cudaError_t relu_forward_f64(const double* x, double* y, int64_t n, cudaStream_t stream);
// grad_y, y (n) -> grad_x (n): grad_y where y > 0, else 0.
cudaError_t relu_backward_f32(const float* gy, const float* y, float* gx, int64_t n, cudaStream_t stream);
cudaError_t relu_backward_f64(const double* gy, const double* y, double* gx, int64_t n, cudaStream_t stream);

}  // namespace cuda
}  // namespace fastconv
