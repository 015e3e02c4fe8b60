// Batch normalization compiled with -mavx2 -mfma: batchnorm.inl.
#include "../simd/avx2.h"
#include "batchnorm.inl"
