// The output-buffer cache of output_cache.h: exact-size free lists under one mutex.
#include "output_cache.h"

#include "runtime.h"

#include <pthread.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>
#include <utility>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace fastconv {
namespace {

size_t initial_limit() {  // MiB, at most 1 TiB (fastconv.set_output_cache_limit's range)
  return static_cast<size_t>(env_number("FASTCONV_OUTPUT_CACHE_MB", 0, int64_t(1) << 20, 1024)) << 20;
}

struct Cache {
  std::mutex mu;
  std::unordered_multimap<size_t, void*> free_blocks;  // size -> block
  std::unordered_map<void*, size_t> size_of;           // every live or free block
  size_t free_bytes = 0, used_bytes = 0, limit = initial_limit();

  // Free blocks until free_bytes <= target (mu held).
  void trim(size_t target) {
    for (auto it = free_blocks.begin(); free_bytes > target && it != free_blocks.end();) {
      free_bytes -= it->first;
      size_of.erase(it->second);
      std::free(it->second);
      it = free_blocks.erase(it);
    }
  }
};

Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: capsules may outlive static destruction
  return *c;
}

// Kernels on worker threads take the cache's mutex (scratch buffers of 1 MiB or more), so a fork
// from another thread could copy it locked: hold it across fork so the child gets it unlocked.
void lock_before_fork() { cache().mu.lock(); }
void unlock_after_fork() { cache().mu.unlock(); }
[[maybe_unused]] const int g_atfork = pthread_atfork(lock_before_fork, unlock_after_fork, unlock_after_fork);

}  // namespace

void* output_cache_take(size_t bytes) {
  Cache& c = cache();
  const size_t size = (bytes + 4095) / 4096 * 4096;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free_blocks.find(size);
    if (it != c.free_blocks.end()) {
      void* p = it->second;
      c.free_blocks.erase(it);
      c.free_bytes -= size;
      c.used_bytes += size;
      return p;
    }
  }
  void* p = std::aligned_alloc(4096, size);
  if (!p) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  // Large blocks on transparent huge pages where the system allows it (as NumPy does).
  if (size >= (size_t(4) << 20)) madvise(p, size, MADV_HUGEPAGE);
#endif
  std::lock_guard<std::mutex> lock(c.mu);
  c.size_of[p] = size;
  c.used_bytes += size;
  return p;
}

void output_cache_give(void* p) {
  if (!p) return;
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  const size_t size = c.size_of.at(p);
  c.used_bytes -= size;
  if (c.free_bytes + size > c.limit) c.trim(c.limit > size ? c.limit - size : 0);
  if (c.free_bytes + size <= c.limit) {
    c.free_blocks.emplace(size, p);
    c.free_bytes += size;
  } else {
    c.size_of.erase(p);
    std::free(p);
  }
}

void output_cache_set_limit(size_t bytes) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.limit = bytes;
  c.trim(bytes);
}

namespace {
size_t read_locked(size_t Cache::* field) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.*field;
}
}  // namespace

size_t output_cache_limit() { return read_locked(&Cache::limit); }
size_t output_cache_free_bytes() { return read_locked(&Cache::free_bytes); }
size_t output_cache_used_bytes() { return read_locked(&Cache::used_bytes); }

void output_cache_clear() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.trim(0);
}

}  // namespace fastconv
