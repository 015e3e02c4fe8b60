// Shapes and hyper-parameters shared by the CPU and CUDA kernels.
// Python (fastconv/functional.py) validates and normalizes every argument, then fills these
// structs; the kernels trust them. All sizes are int64 so flat indices never overflow.
#pragma once
#include <cstdint>

#include "activation_kind.h"

namespace fastconv {

enum class Layout : int { NCHW = 0, NHWC = 1 };

// x (N,C,H,W) | (N,H,W,C);  w (K,C,R,S) | (R,S,C,K);  y (N,K,P,Q) | (N,P,Q,K)
struct Conv2dParams {
  int64_t N = 0, C = 0, H = 0, W = 0;  // input
  int64_t K = 0, R = 0, S = 0;         // filters
  int64_t P = 0, Q = 0;                // output spatial size
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_top = 0, pad_left = 0;  // bottom/right padding only shows up through P, Q
  int64_t dil_h = 1, dil_w = 1;
  Layout layout = Layout::NCHW;
  Epilogue epilogue = Epilogue::none;  // fused after the bias (forward only)
  double alpha = 0.0;                  // leaky_relu's slope

  int64_t x_size() const { return N * C * H * W; }
  int64_t w_size() const { return K * C * R * S; }
  int64_t y_size() const { return N * K * P * Q; }
  int64_t macs() const { return N * K * P * Q * C * R * S; }  // multiply-adds of one pass
};

// x (N,C,H,W) | (N,H,W,C) -> y, indices (N,C,P,Q) | (N,P,Q,C)
struct Pool2dParams {
  int64_t N = 0, C = 0, H = 0, W = 0;
  int64_t R = 0, S = 0;  // window
  int64_t P = 0, Q = 0;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_top = 0, pad_left = 0;
  Layout layout = Layout::NCHW;

  int64_t x_size() const { return N * C * H * W; }
  int64_t y_size() const { return N * C * P * Q; }
};

// Batch normalization over N, H, W per channel: x (N, C, HW) for NCHW or (N*HW, C) for NHWC.
struct BatchNormShape {
  int64_t N = 0, C = 0, HW = 0;
  Layout layout = Layout::NCHW;
  int64_t size() const { return N * C * HW; }
  int64_t per_channel() const { return N * HW; }  // M, the elements one channel's statistics cover
};

}  // namespace fastconv
