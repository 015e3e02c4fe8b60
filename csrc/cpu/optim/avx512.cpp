// Adam with -mavx512f/bw/vl/dq: optim.inl.
#include "../simd/avx512.h"
#include "optim.inl"
