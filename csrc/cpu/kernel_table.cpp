// Builds one kernel table per ISA: the portable kernels first, then whatever the ISA files
// provide on top. cpu_kernels() picks the table of the ISA in effect (runtime.h).
#include "conv2d/algorithm.h"
#include "kernels.h"
#include "maxpool_simd.h"

namespace fastconv {
namespace {

// The portable conv2d passes record their algorithm like the SIMD dispatch (conv2d/dispatch.inl).
template <typename T>
void conv2d_fwd_reference(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y) {
  record_algorithm(ConvPass::fwd, ConvAlgorithm::reference);
  ref::conv2d_fwd<T>(p, x, w, bias, y);
}
template <typename T>
void conv2d_bwd_data_reference(const Conv2dParams& p, const T* gy, const T* w, T* gx) {
  record_algorithm(ConvPass::bwd_data, ConvAlgorithm::reference);
  ref::conv2d_bwd_data<T>(p, gy, w, gx);
}
template <typename T>
void conv2d_bwd_weight_reference(const Conv2dParams& p, const T* gy, const T* x, T* gw, T* gb) {
  record_algorithm(ConvPass::bwd_weight, ConvAlgorithm::reference);
  ref::conv2d_bwd_weight<T>(p, gy, x, gw, gb);
}

template <typename T>
CpuOps<T> portable_ops() {
  return CpuOps<T>{conv2d_fwd_reference<T>, conv2d_bwd_data_reference<T>, conv2d_bwd_weight_reference<T>,
                   ref::maxpool2d_fwd<T>,   ref::maxpool2d_bwd<T>,         ref::relu_fwd<T>,
                   ref::relu_bwd<T>,        ref::gemm<T>,                  ref::column_sums<T>,
                   ref::activation_fwd<T>,  ref::activation_bwd<T>,
                   ref::avgpool2d_fwd<T>,   ref::avgpool2d_bwd<T>,         ref::batchnorm_ops<T>()};
}

// ---- pooling and activation entries (maxpool_*.cpp, avgpool_*.cpp, relu_*.cpp, activation_*.cpp); the conv
// entries are set below.
void set_pool_activation_entries(Isa isa, CpuKernelTable* t) {
  if (isa == Isa::avx2) {
    t->f32.maxpool2d_fwd = avx2::maxpool2d_fwd_f32;
    t->f32.maxpool2d_bwd = avx2::maxpool2d_bwd_f32;
    t->f64.maxpool2d_fwd = avx2::maxpool2d_fwd_f64;
    t->f64.maxpool2d_bwd = avx2::maxpool2d_bwd_f64;
    t->f32.relu_fwd = avx2::relu_fwd_f32;
    t->f32.relu_bwd = avx2::relu_bwd_f32;
    t->f64.relu_fwd = avx2::relu_fwd_f64;
    t->f64.relu_bwd = avx2::relu_bwd_f64;
    t->f32.activation_fwd = avx2::activation_fwd_f32;
    t->f32.activation_bwd = avx2::activation_bwd_f32;
    t->f64.activation_fwd = avx2::activation_fwd_f64;
    t->f64.activation_bwd = avx2::activation_bwd_f64;
    t->f32.avgpool2d_fwd = avx2::avgpool2d_fwd_f32;
    t->f32.avgpool2d_bwd = avx2::avgpool2d_bwd_f32;
    t->f64.avgpool2d_fwd = avx2::avgpool2d_fwd_f64;
    t->f64.avgpool2d_bwd = avx2::avgpool2d_bwd_f64;
    t->f32.batchnorm = avx2::batchnorm_ops_f32();
    t->f64.batchnorm = avx2::batchnorm_ops_f64();
  } else if (isa == Isa::avx512) {
    t->f32.maxpool2d_fwd = avx512::maxpool2d_fwd_f32;
    t->f32.maxpool2d_bwd = avx512::maxpool2d_bwd_f32;
    t->f64.maxpool2d_fwd = avx512::maxpool2d_fwd_f64;
    t->f64.maxpool2d_bwd = avx512::maxpool2d_bwd_f64;
    t->f32.relu_fwd = avx512::relu_fwd_f32;
    t->f32.relu_bwd = avx512::relu_bwd_f32;
    t->f64.relu_fwd = avx512::relu_fwd_f64;
    t->f64.relu_bwd = avx512::relu_bwd_f64;
    t->f32.activation_fwd = avx512::activation_fwd_f32;
    t->f32.activation_bwd = avx512::activation_bwd_f32;
    t->f64.activation_fwd = avx512::activation_fwd_f64;
    t->f64.activation_bwd = avx512::activation_bwd_f64;
    t->f32.avgpool2d_fwd = avx512::avgpool2d_fwd_f32;
    t->f32.avgpool2d_bwd = avx512::avgpool2d_bwd_f32;
    t->f64.avgpool2d_fwd = avx512::avgpool2d_fwd_f64;
    t->f64.avgpool2d_bwd = avx512::avgpool2d_bwd_f64;
    t->f32.batchnorm = avx512::batchnorm_ops_f32();
    t->f64.batchnorm = avx512::batchnorm_ops_f64();
  }
}
// ---- end of pooling and activation entries

CpuKernelTable make_table(Isa isa) {
  CpuKernelTable t{isa, portable_ops<float>(), portable_ops<double>()};
  set_pool_activation_entries(isa, &t);
  if (isa == Isa::avx2) {
    t.f32.conv2d_fwd = avx2::conv2d_fwd_f32;   // each picks its algorithm (conv2d/dispatch.inl)
    t.f64.conv2d_fwd = avx2::conv2d_fwd_f64;
    t.f32.conv2d_bwd_data = avx2::conv2d_bwd_data_f32;
    t.f64.conv2d_bwd_data = avx2::conv2d_bwd_data_f64;
    t.f32.conv2d_bwd_weight = avx2::conv2d_bwd_weight_f32;
    t.f64.conv2d_bwd_weight = avx2::conv2d_bwd_weight_f64;
    t.f32.gemm = avx2::gemm_f32;
    t.f64.gemm = avx2::gemm_f64;
    t.f32.column_sums = avx2::column_sums_f32;
    t.f64.column_sums = avx2::column_sums_f64;
  } else if (isa == Isa::avx512) {
    t.f32.conv2d_fwd = avx512::conv2d_fwd_f32;
    t.f64.conv2d_fwd = avx512::conv2d_fwd_f64;
    t.f32.conv2d_bwd_data = avx512::conv2d_bwd_data_f32;
    t.f64.conv2d_bwd_data = avx512::conv2d_bwd_data_f64;
    t.f32.conv2d_bwd_weight = avx512::conv2d_bwd_weight_f32;
    t.f64.conv2d_bwd_weight = avx512::conv2d_bwd_weight_f64;
    t.f32.gemm = avx512::gemm_f32;
    t.f64.gemm = avx512::gemm_f64;
    t.f32.column_sums = avx512::column_sums_f32;
    t.f64.column_sums = avx512::column_sums_f64;
  }
  return t;
}

}  // namespace

const CpuKernelTable& cpu_kernels_for(Isa isa) {
  static const CpuKernelTable tables[] = {make_table(Isa::scalar), make_table(Isa::avx2),
                                          make_table(Isa::avx512)};
  return tables[static_cast<int>(isa)];
}

const CpuKernelTable& cpu_kernels() { return cpu_kernels_for(current_isa()); }

}  // namespace fastconv
