// Dense-layer GEMM and column sums, avx2: linear_simd.inl (driving the register tile of
// conv2d/microkernel.inl) compiled with this file's flags. References: ref::gemm and ref::column_sums
// in linear_ref.cpp.
#include "simd/avx2.h"
#include "linear_simd.inl"
