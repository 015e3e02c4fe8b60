// The part of fastconv._cpu that binds process-wide state rather than kernels (cpu_runtime.cpp).
#pragma once
#include <pybind11/pybind11.h>

namespace fastconv {

void bind_runtime(pybind11::module_& m);

}  // namespace fastconv
