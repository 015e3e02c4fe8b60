// Max, average and global pooling compiled with -mavx512f/bw/vl/dq: pool2d.inl.
#include "../simd/avx512.h"
#include "../simd/avx512_argmax.h"
#include "pool2d.inl"
