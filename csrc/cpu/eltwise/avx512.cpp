// ReLU, sigmoid, tanh and leaky ReLU compiled with -mavx512f/bw/vl/dq: eltwise.inl.
#include "../simd/avx512.h"
#include "eltwise.inl"
