// Per-thread scratch buffers of the CPU kernels: kept between calls (re-allocating tens of MB
// every call costs page faults comparable to the convolution itself), shared by every kernel
// file, bounded, and releasable from Python (fc.clear_caches, fc.memory_info).
//
// Each thread owns kScratchSlots buffers that grow on demand. A kernel uses them inside a
// ScratchScope: the bindings open one around every kernel call on the calling thread, the thread
// pool one around a worker's share of a team. When a thread's outermost scope closes, its
// buffers are trimmed, largest first, until they hold at most scratch_limit() bytes
// (FASTCONV_SCRATCH_MB, default 64 MiB per thread): a layer that needs more still gets it for
// the call. Buffers of a MiB or more are blocks of the output cache (output_cache.h), so what a
// thread gives back stays mapped there, under that cache's own limit, for the next call.
// release_all_scratch() gives back every thread's buffers, waiting for kernels that use them to
// finish.
//
// A buffer handed out in a worker's share of a team lives until that share ends; a buffer of
// the calling thread (one the whole team reads) lives until the kernel call ends.
#pragma once
#include <cstddef>
#include <cstdint>

namespace fastconv {

constexpr int kScratchSlots = 8;

// 64-byte aligned buffer `slot` of the calling thread with room for `bytes`; its contents are
// undefined. Throws std::bad_alloc when memory runs out, std::logic_error outside a ScratchScope.
void* scratch_bytes(int slot, size_t bytes);

template <typename T>
T* scratch(int slot, int64_t count) {
  return static_cast<T*>(scratch_bytes(slot, static_cast<size_t>(count < 1 ? 1 : count) * sizeof(T)));
}

// While alive, this thread's buffers are in use (release_all_scratch waits); nests.
class ScratchScope {
 public:
  ScratchScope();
  ~ScratchScope();
  ScratchScope(const ScratchScope&) = delete;
  ScratchScope& operator=(const ScratchScope&) = delete;
};

size_t scratch_limit();                // bytes kept per thread after a call
void set_scratch_limit(size_t bytes);  // trims every thread to the new limit at once
size_t scratch_bytes_held();           // all threads, now
int scratch_threads();                 // threads holding at least one buffer
void release_all_scratch();            // frees every thread's buffers (waits for running kernels)

}  // namespace fastconv
