// CPU runtime state: thread count and instruction-set selection.
#pragma once
#include <cstdint>
#include <string>

namespace fastconv {

enum class Isa : int { scalar = 0, avx2 = 1, avx512 = 2 };

constexpr int kMaxThreads = 1024;  // more would only oversubscribe: no machine we target has more cores
int num_threads();                 // threads every kernel's parallel region uses
void set_num_threads(int n);       // clamped to [1, kMaxThreads]
int64_t min_parallel_work();       // below this much work a kernel runs on the calling thread (loops.h)
void set_min_parallel_work(int64_t work);

Isa best_supported_isa();    // what this CPU and OS can run (cpuid + xgetbv)
Isa current_isa();           // FASTCONV_ISA (capped) at start-up, or set_isa()
Isa set_isa(Isa requested);  // caps to the supported ISA, returns what is in effect
const char* isa_name(Isa isa);
bool parse_isa(const std::string& name, Isa* out);

// A kernel family's table entries for `isa` (kernel_table.cpp): its AVX-512 or AVX2 build, else
// its portable reference. FASTCONV_FAMILY_BUILDS(Ops, name) declares the three:
// ref::name<T>(), avx2::name<T>() and avx512::name<T>(), each returning Ops<T>.
template <typename Ops>
Ops for_isa(Isa isa, Ops (*portable)(), Ops (*avx2)(), Ops (*avx512)()) {
  switch (isa) {
    case Isa::avx512:
      return avx512();
    case Isa::avx2:
      return avx2();
    case Isa::scalar:
      break;
  }
  return portable();
}

#define FASTCONV_FAMILY_BUILDS(Ops, name) \
  namespace ref {                         \
  template <typename T>                   \
  Ops<T> name();                          \
  }                                       \
  namespace avx2 {                        \
  template <typename T>                   \
  Ops<T> name();                          \
  }                                       \
  namespace avx512 {                      \
  template <typename T>                   \
  Ops<T> name();                          \
  }

bool verbose();  // FASTCONV_VERBOSE=1: print which kernel ran

// Environment settings, read with the obvious spellings accepted (python/fastconv/_env.py warns
// once at import about any other value, which is then ignored):
// env_switch: 1 for 1/on/true/yes, 0 for 0/off/false/no (any case), -1 when unset or neither.
int env_switch(const char* name);
// env_number: the integer value when set and within [lo, hi], else `fallback`.
int64_t env_number(const char* name, int64_t lo, int64_t hi, int64_t fallback);
std::string env_lower(const char* name);  // the value in lower case ("" when unset)

}  // namespace fastconv
