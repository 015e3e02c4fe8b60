// Entry points of the SIMD max-pooling kernels (maxpool_avx512.cpp, maxpool_avx2.cpp; shared
// code in maxpool_simd.inl). Same contracts as ref::maxpool2d_fwd / ref::maxpool2d_bwd in
// kernels.h; dispatch.cpp puts them into the per-ISA tables. The SIMD ReLU kernels are declared
// in kernels.h.
#pragma once
#include <cstdint>

#include "../common/params.h"

namespace fastconv {

namespace avx512 {
// x (N,C,H,W)|(N,H,W,C) -> y, indices (N,C,P,Q)|(N,P,Q,C)
void maxpool2d_fwd_f32(const Pool2dParams& p, const float* x, float* y, int64_t* indices);
void maxpool2d_fwd_f64(const Pool2dParams& p, const double* x, double* y, int64_t* indices);
// grad_y, indices -> grad_x; false when an index lies outside [0, H*W)
bool maxpool2d_bwd_f32(const Pool2dParams& p, const float* gy, const int64_t* indices, float* gx);
bool maxpool2d_bwd_f64(const Pool2dParams& p, const double* gy, const int64_t* indices, double* gx);
}  // namespace avx512

namespace avx2 {
void maxpool2d_fwd_f32(const Pool2dParams& p, const float* x, float* y, int64_t* indices);
void maxpool2d_fwd_f64(const Pool2dParams& p, const double* x, double* y, int64_t* indices);
bool maxpool2d_bwd_f32(const Pool2dParams& p, const float* gy, const int64_t* indices, float* gx);
bool maxpool2d_bwd_f64(const Pool2dParams& p, const double* gy, const int64_t* indices, double* gx);
}  // namespace avx2

}  // namespace fastconv
