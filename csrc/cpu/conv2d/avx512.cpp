// conv2d on avx512, float32 and float64, both layouts: every algorithm (conv2d/*.inl) and the
// dispatch between them (conv2d.inl), compiled with this file's flags. Reference:
// ref::conv2d_fwd, ref::conv2d_bwd_data, ref::conv2d_bwd_weight (conv2d/ref.cpp).
#include "../simd/avx512.h"
#include "conv2d.inl"
