// Builds one kernel table per ISA: the portable kernels first, then whatever the ISA files
// provide on top. cpu_kernels() picks the table of the ISA in effect (runtime.h).
#include "kernels.h"
#include "maxpool_simd.h"
#include "conv2d/winograd.h"

namespace fastconv {
namespace {

template <typename T>
CpuOps<T> portable_ops() {
  return CpuOps<T>{ref::conv2d_fwd<T>,    ref::conv2d_bwd_data<T>, ref::conv2d_bwd_weight<T>,
                   ref::maxpool2d_fwd<T>, ref::maxpool2d_bwd<T>,   ref::relu_fwd<T>,
                   ref::relu_bwd<T>,      ref::gemm<T>,            ref::column_sums<T>};
}

// ---- pooling + ReLU entries (maxpool_*.cpp, relu_*.cpp); the conv entries are set below.
void set_pool_relu_entries(Isa isa, CpuKernelTable* t) {
  if (isa == Isa::avx2) {
    t->f32.maxpool2d_fwd = avx2::maxpool2d_fwd_f32;
    t->f32.maxpool2d_bwd = avx2::maxpool2d_bwd_f32;
    t->f64.maxpool2d_fwd = avx2::maxpool2d_fwd_f64;
    t->f64.maxpool2d_bwd = avx2::maxpool2d_bwd_f64;
    t->f32.relu_fwd = avx2::relu_fwd_f32;
    t->f32.relu_bwd = avx2::relu_bwd_f32;
    t->f64.relu_fwd = avx2::relu_fwd_f64;
    t->f64.relu_bwd = avx2::relu_bwd_f64;
  } else if (isa == Isa::avx512) {
    t->f32.maxpool2d_fwd = avx512::maxpool2d_fwd_f32;
    t->f32.maxpool2d_bwd = avx512::maxpool2d_bwd_f32;
    t->f64.maxpool2d_fwd = avx512::maxpool2d_fwd_f64;
    t->f64.maxpool2d_bwd = avx512::maxpool2d_bwd_f64;
    t->f32.relu_fwd = avx512::relu_fwd_f32;
    t->f32.relu_bwd = avx512::relu_bwd_f32;
    t->f64.relu_fwd = avx512::relu_fwd_f64;
    t->f64.relu_bwd = avx512::relu_bwd_f64;
  }
}
// ---- end of pooling + ReLU entries

CpuKernelTable make_table(Isa isa) {
  CpuKernelTable t{isa, portable_ops<float>(), portable_ops<double>()};
  set_pool_relu_entries(isa, &t);
  if (isa == Isa::avx2) {
    t.f32.conv2d_fwd = avx2::conv2d_fwd_f32_auto;  // Winograd where eligible, else direct (f32 and f64)
    t.f64.conv2d_fwd = avx2::conv2d_fwd_f64_auto;
    t.f32.conv2d_bwd_data = avx2::conv2d_bwd_data_f32_auto;  // Winograd where eligible
    t.f64.conv2d_bwd_data = avx2::conv2d_bwd_data_f64_auto;
    t.f32.conv2d_bwd_weight = avx2::conv2d_bwd_weight_f32_auto;  // Winograd where eligible
    t.f64.conv2d_bwd_weight = avx2::conv2d_bwd_weight_f64_auto;
    t.f32.gemm = avx2::gemm_f32;
    t.f64.gemm = avx2::gemm_f64;
    t.f32.column_sums = avx2::column_sums_f32;
    t.f64.column_sums = avx2::column_sums_f64;
  } else if (isa == Isa::avx512) {
    t.f32.conv2d_fwd = avx512::conv2d_fwd_f32_auto;  // Winograd where eligible, else direct
    t.f64.conv2d_fwd = avx512::conv2d_fwd_f64_auto;
    t.f32.conv2d_bwd_data = avx512::conv2d_bwd_data_f32_auto;  // Winograd where eligible
    t.f64.conv2d_bwd_data = avx512::conv2d_bwd_data_f64_auto;
    t.f32.conv2d_bwd_weight = avx512::conv2d_bwd_weight_f32_auto;  // Winograd where eligible
    t.f64.conv2d_bwd_weight = avx512::conv2d_bwd_weight_f64_auto;
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
