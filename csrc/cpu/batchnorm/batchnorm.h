// Batch normalization over N, H, W for each channel (the batchnorm family; bodies in batchnorm.inl,
// compiled per ISA by avx2.cpp / avx512.cpp and without ISA flags by ref.cpp).
// x is BatchNormShape's (N, C, HW) for NCHW or (N*HW, C) for NHWC; M = N * HW elements per channel.
//   train_forward  x -> y = (x - mean) * inv_std * gamma + beta, with the batch mean, the biased
//                  variance and inv_std = 1 / sqrt(var + eps) of every channel. Two passes over x:
//                  the statistics (sums of x - K and (x - K)^2 in double, K = the channel's first
//                  element: no E[x^2] - E[x]^2 cancellation when |mean| >> std), then y.
//   normalize      y = (x - mean[c]) * scale[c] + shift[c] (inference: the running statistics,
//                  given in double; one pass).
//   backward       grad_y, x, mean, inv_std -> grad_x, grad_gamma, grad_beta (training: through
//                  the batch statistics; else through the fixed statistics).
// relu: both forward passes end with y = max(y, 0) (a ReLU fused into the pass); backward then
// takes that y (relu_y, else null) and counts grad_y only where y > 0, the ReLU's gradient.
// gamma / beta may be null (1 / 0). Each channel's sums are taken by one thread in a fixed order,
// so results do not depend on the thread count.
#pragma once
#include <cstdint>

#include "../../common/params.h"
#include "../runtime/runtime.h"

namespace fastconv {

template <typename T>
struct BatchNormOps {
  void (*train_forward)(const BatchNormShape& s, const T* x, const T* gamma, const T* beta, double eps, bool relu, T* y,
                        T* mean, T* var, T* inv_std);
  void (*normalize)(const BatchNormShape& s, const T* x, const double* mean, const double* scale, const double* shift,
                    bool relu, T* y);
  void (*backward)(const BatchNormShape& s, bool training, const T* gy, const T* relu_y, const T* x, const T* mean,
                   const T* inv_std, const T* gamma, T* gx, T* ggamma, T* gbeta);
};

FASTCONV_FAMILY_BUILDS(BatchNormOps, batchnorm_ops)

}  // namespace fastconv
