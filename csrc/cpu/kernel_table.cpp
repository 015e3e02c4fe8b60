// The registry: one kernel table per ISA, each family's entries for that ISA (kernel_table.h).
#include "kernel_table.h"

namespace fastconv {
namespace {

template <typename T>
CpuOps<T> ops_for(Isa isa) {
  return CpuOps<T>{
      for_isa(isa, ref::conv2d_ops<T>, avx2::conv2d_ops<T>, avx512::conv2d_ops<T>),
      for_isa(isa, ref::pool2d_ops<T>, avx2::pool2d_ops<T>, avx512::pool2d_ops<T>),
      for_isa(isa, ref::eltwise_ops<T>, avx2::eltwise_ops<T>, avx512::eltwise_ops<T>),
      for_isa(isa, ref::batchnorm_ops<T>, avx2::batchnorm_ops<T>, avx512::batchnorm_ops<T>),
      for_isa(isa, ref::linear_ops<T>, avx2::linear_ops<T>, avx512::linear_ops<T>),
      for_isa(isa, ref::optim_ops<T>, avx2::optim_ops<T>, avx512::optim_ops<T>),
  };
}

CpuKernelTable make_table(Isa isa) { return CpuKernelTable{isa, ops_for<float>(isa), ops_for<double>(isa)}; }

}  // namespace

const CpuKernelTable& cpu_kernels_for(Isa isa) {
  static const CpuKernelTable tables[] = {make_table(Isa::scalar), make_table(Isa::avx2), make_table(Isa::avx512)};
  return tables[static_cast<int>(isa)];
}

const CpuKernelTable& cpu_kernels() { return cpu_kernels_for(current_isa()); }

}  // namespace fastconv
