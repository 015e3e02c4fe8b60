#include "runtime.h"

#include "loops.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define FASTCONV_X86 1
#endif

#include <sched.h>

#include <thread>

namespace fastconv {
namespace {

// OMP_NUM_THREADS when set (users set it to limit every library), else the cores this process
// may run on (its affinity mask: a container or taskset may allow fewer than the machine has).
int default_threads() {
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    const long n = std::strtol(env, nullptr, 10);  // "4" or the first of a nested list "4,2"
    if (n >= 1) return static_cast<int>(std::min<long>(n, kMaxThreads));
  }
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

// A process-wide count rather than omp_set_num_threads(), whose setting is per calling thread:
// every Python thread must see the value set_num_threads() stored.
std::atomic<int> g_threads{default_threads()};

#ifdef FASTCONV_X86
unsigned long long xgetbv0() {
  unsigned eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}
#endif

Isa detect_isa() {
#ifdef FASTCONV_X86
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return Isa::scalar;
  const bool osxsave = c & (1u << 27), avx = c & (1u << 28), fma = c & (1u << 12);
  if (!osxsave || !avx) return Isa::scalar;
  const unsigned long long xcr0 = xgetbv0();
  const bool os_ymm = (xcr0 & 0x6) == 0x6;    // XMM + YMM state saved by the OS
  const bool os_zmm = (xcr0 & 0xe6) == 0xe6;  // + opmask, ZMM_Hi256, Hi16_ZMM
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return Isa::scalar;
  const bool avx2 = b & (1u << 5);
  const bool avx512 = (b & (1u << 16)) && (b & (1u << 17)) && (b & (1u << 30)) && (b & (1u << 31));  // F DQ BW VL
  if (avx512 && avx2 && fma && os_zmm) return Isa::avx512;
  if (avx2 && fma && os_ymm) return Isa::avx2;
#endif
  return Isa::scalar;
}

Isa initial_isa() {
  Isa isa = detect_isa();
  Isa requested;
  if (parse_isa(env_lower("FASTCONV_ISA"), &requested) && requested < isa) isa = requested;
  return isa;
}

std::atomic<int> g_isa{static_cast<int>(initial_isa())};

}  // namespace

int num_threads() { return g_threads.load(std::memory_order_relaxed); }
std::atomic<int64_t> g_min_parallel_work{kMinParallelWork};
int64_t min_parallel_work() { return g_min_parallel_work.load(std::memory_order_relaxed); }
void set_min_parallel_work(int64_t work) { g_min_parallel_work.store(work < 0 ? 0 : work, std::memory_order_relaxed); }

void set_num_threads(int n) { g_threads.store(std::clamp(n, 1, kMaxThreads), std::memory_order_relaxed); }

Isa best_supported_isa() {
  static const Isa best = detect_isa();
  return best;
}
Isa current_isa() { return static_cast<Isa>(g_isa.load(std::memory_order_relaxed)); }
Isa set_isa(Isa requested) {
  const Isa isa = requested < best_supported_isa() ? requested : best_supported_isa();
  g_isa.store(static_cast<int>(isa), std::memory_order_relaxed);
  return isa;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512:
      return "avx512";
    case Isa::avx2:
      return "avx2";
    default:
      return "scalar";
  }
}

bool parse_isa(const std::string& name, Isa* out) {
  if (name == "avx512") {
    *out = Isa::avx512;
    return true;
  }
  if (name == "avx2") {
    *out = Isa::avx2;
    return true;
  }
  if (name == "scalar") {
    *out = Isa::scalar;
    return true;
  }
  return false;
}

bool verbose() {
  static const bool on = env_switch("FASTCONV_VERBOSE") == 1;
  return on;
}

std::string env_lower(const char* name) {
  const char* env = std::getenv(name);
  std::string v = env ? env : "";
  for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return v;
}

int env_switch(const char* name) {
  const std::string v = env_lower(name);
  if (v == "1" || v == "on" || v == "true" || v == "yes") return 1;
  if (v == "0" || v == "off" || v == "false" || v == "no") return 0;
  return -1;
}

int64_t env_number(const char* name, int64_t lo, int64_t hi, int64_t fallback) {
  const char* env = std::getenv(name);
  if (!env || !*env) return fallback;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(env, &end, 10);
  if (errno || *end != '\0' || v < lo || v > hi) return fallback;
  return v;
}

}  // namespace fastconv
