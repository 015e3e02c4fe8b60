// Max and average pooling (contracts in pool2d.h), compiled once per ISA by avx2.cpp and
// avx512.cpp: maxpool.inl and maxpool_bwd.inl on the ISA's argmax lanes (simd/<isa>_argmax.h), avgpool.inl's loops for
// the compiler to vectorize. Reference: ref.cpp.
#pragma once  // once per translation unit: each ISA file includes it for its own ISA
#ifndef FASTCONV_SIMD_NS
#error "include simd/avx512.h or simd/avx2.h before pool2d/pool2d.inl"
#endif

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "../runtime/loops.h"
#include "../runtime/scratch.h"
#include "pool2d.h"

namespace fastconv {
namespace FASTCONV_SIMD_NS {
namespace {

#include "avgpool.inl"
#include "maxpool.inl"
#include "maxpool_bwd.inl"

}  // namespace

template <typename T>
Pool2dOps<T> pool2d_ops() {
  return Pool2dOps<T>{maxpool2d_fwd_simd<ArgmaxOf<T>>, maxpool2d_bwd_simd<ArgmaxOf<T>>,
                      avgpool_detail::avgpool2d_forward<T>, avgpool_detail::avgpool2d_backward<T>};
}
template Pool2dOps<float> pool2d_ops<float>();
template Pool2dOps<double> pool2d_ops<double>();

}  // namespace FASTCONV_SIMD_NS
}  // namespace fastconv
