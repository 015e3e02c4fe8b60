// Portable side of the Winograd path: the on/off switch, the eligibility rule and the name of
// the last forward path taken. The kernel itself is conv2d_winograd_avx512.cpp.
#include "conv2d_winograd.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace fastconv {
namespace {

bool initial_winograd() {
  const char* env = std::getenv("FASTCONV_WINOGRAD");
  return !(env && std::strcmp(env, "0") == 0);
}
bool initial_force() {
  const char* env = std::getenv("FASTCONV_WINOGRAD");
  return env && std::strcmp(env, "force") == 0;
}

std::atomic<bool> g_winograd{initial_winograd()};
std::atomic<bool> g_force{initial_force()};
thread_local const char* t_last_path = "none";

}  // namespace

bool winograd_enabled() { return g_winograd.load(std::memory_order_relaxed); }
void set_winograd_enabled(bool on) { g_winograd.store(on, std::memory_order_relaxed); }
bool winograd_forced() { return g_force.load(std::memory_order_relaxed); }
void set_winograd_forced(bool on) { g_force.store(on, std::memory_order_relaxed); }

const char* last_conv2d_fwd_path() { return t_last_path; }
void set_last_conv2d_fwd_path(const char* name) { t_last_path = name; }

bool winograd_fwd_eligible(const Conv2dParams& p) {
  if (p.R != 3 || p.S != 3 || p.stride_h != 1 || p.stride_w != 1 || p.dil_h != 1 || p.dil_w != 1)
    return false;
  if (winograd_forced()) return true;
  // Measured with bench/bench_conv_kernels.py --winograd both (VGG16 layers, batch 1 and 8):
  // Winograd was 1.2-2.9x faster than the direct kernel on every VGG16 layer with C, K >= 64
  // (AVX-512 and AVX2, 1 and 2 threads, batch 1 and 8; bench/results/winograd_fwd_*.txt), the
  // least at 14x14, batch 1 (16 tiles of 4x4 outputs). Smaller channel counts or fewer tiles
  // were not measured: the direct kernel keeps them.
  const int64_t tiles = p.N * ((p.P + 3) / 4) * ((p.Q + 3) / 4);
  return p.C >= 64 && p.K >= 64 && tiles >= 16;
}

}  // namespace fastconv
