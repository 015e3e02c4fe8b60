// Max, average and global pooling compiled with -mavx2 -mfma: pool2d.inl.
#include "../simd/avx2.h"
#include "../simd/avx2_argmax.h"
#include "pool2d.inl"
