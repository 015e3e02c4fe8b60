// ReLU, sigmoid, tanh and leaky ReLU compiled with -mavx2 -mfma: eltwise.inl.
#include "../simd/avx2.h"
#include "eltwise.inl"
