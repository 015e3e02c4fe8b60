// Adam with -mavx2 -mfma: optim.inl.
#include "../simd/avx2.h"
#include "optim.inl"
