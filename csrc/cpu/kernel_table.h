// The CPU kernel table: one group of entries per kernel family, one table per ISA.
//
// Every family (a folder: conv2d/, pool2d/, eltwise/, batchnorm/, linear/, optim/) declares in its
// header an Ops struct of entry points and three functions that fill it: ref::<family>_ops (the
// portable reference, its ref.cpp: the `scalar` path, the fallback on any CPU and the baseline
// every SIMD kernel is tested against), avx2::<family>_ops and avx512::<family>_ops (its .inl body
// compiled by avx2.cpp / avx512.cpp with their flags). kernel_table.cpp asks each family.
#pragma once
#include "batchnorm/batchnorm.h"
#include "conv2d/conv2d.h"
#include "eltwise/eltwise.h"
#include "linear/linear.h"
#include "optim/optim.h"
#include "pool2d/pool2d.h"
#include "runtime/runtime.h"

namespace fastconv {

template <typename T>
struct CpuOps {
  Conv2dOps<T> conv2d;
  Pool2dOps<T> pool2d;
  EltwiseOps<T> eltwise;
  BatchNormOps<T> batchnorm;
  LinearOps<T> linear;
  OptimOps<T> optim;
};

struct CpuKernelTable {
  Isa isa;
  CpuOps<float> f32;
  CpuOps<double> f64;
};

// The table for the ISA currently in effect (current_isa()).
const CpuKernelTable& cpu_kernels();
const CpuKernelTable& cpu_kernels_for(Isa isa);

}  // namespace fastconv
