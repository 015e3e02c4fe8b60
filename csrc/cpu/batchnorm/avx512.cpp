// Batch normalization compiled with -mavx512f/bw/vl/dq: batchnorm.inl.
#include "../simd/avx512.h"
#include "batchnorm.inl"
