// Dense-layer GEMM and column sums compiled with -mavx2 -mfma: linear.inl.
#include "../simd/avx2.h"
#include "linear.inl"
