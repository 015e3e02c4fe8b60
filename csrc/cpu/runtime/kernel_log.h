// FASTCONV_VERBOSE=1: which CPU kernel ran and how long each of its phases (packing, layout
// copies, the register-tile loop) took, one line on stderr per call:
//   fastconv:   kernel <dtype>_<op>_<NJ>x<lanes>_<isa> (<how>): <phase> <ms> ms ...
// Off (the default), a KernelLog reads no clock and prints nothing.
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdio>

#include "runtime.h"

namespace fastconv {

class KernelLog {
 public:
  KernelLog() : on_(verbose()), last_(std::chrono::steady_clock::now()) {}
  void lap(const char* phase) {
    if (!on_) return;
    const auto now = std::chrono::steady_clock::now();
    const double ms = std::chrono::duration<double, std::milli>(now - last_).count();
    last_ = now;
    const int n = std::snprintf(buf_ + len_, sizeof(buf_) - len_, " %s %.3f ms", phase, ms);
    if (n > 0) len_ = std::min<int>(sizeof(buf_) - 1, len_ + n);
  }
  void print(const char* isa, const char* op, const char* dtype, const char* how, int nj, int kb) const {
    if (on_) std::fprintf(stderr, "fastconv:   kernel %s_%s_%dx%d_%s (%s):%s\n", dtype, op, nj, kb, isa, how, buf_);
  }

 private:
  bool on_;
  std::chrono::steady_clock::time_point last_;
  char buf_[256] = {0};
  int len_ = 0;
};

}  // namespace fastconv
