// Dense-layer GEMM and column sums compiled with -mavx512f/bw/vl/dq: linear.inl.
#include "../simd/avx512.h"
#include "linear.inl"
