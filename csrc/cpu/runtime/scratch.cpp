// Per-thread scratch buffers (see scratch.h).
#include "scratch.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <vector>

#include "output_cache.h"
#include "runtime.h"

namespace fastconv {
namespace {

constexpr int64_t kDefaultLimitMiB = 64;

struct Slot {
  void* ptr = nullptr;
  size_t bytes = 0;
  bool cached = false;  // a block of the output cache (large buffers), else aligned_alloc
};

// One thread's buffers. `in_use` is held by the owner while a scope is open, and briefly by
// release_all_scratch; `slots` change only under it.
struct ThreadScratch {
  std::mutex in_use;
  Slot slots[kScratchSlots];
  std::atomic<size_t> held{0};  // sum of slots[].bytes, readable from any thread

  void allocate(Slot& s, size_t bytes);
  void free_slot(Slot& s);
  void trim_to(size_t limit) {
    while (held.load(std::memory_order_relaxed) > limit) {
      Slot* largest = std::max_element(std::begin(slots), std::end(slots),
                                       [](const Slot& a, const Slot& b) { return a.bytes < b.bytes; });
      free_slot(*largest);
    }
  }
};

std::atomic<size_t> g_limit{
    static_cast<size_t>(env_number("FASTCONV_SCRATCH_MB", 0, int64_t(1) << 20, kDefaultLimitMiB)) << 20};
std::atomic<size_t> g_held{0};

// Buffers of a MiB or more come from the output cache: when the limit makes a thread give one
// back, it stays mapped there for the next call of the same layer (fresh pages would cost a
// page fault each: VGG16 batch 8 ran 20% slower with 64 MiB buffers from malloc every call).
void ThreadScratch::allocate(Slot& s, size_t bytes) {
  free_slot(s);
  const bool cached = bytes >= kOutputCacheMinBytes;
  void* p = cached ? output_cache_take(bytes) : std::aligned_alloc(64, bytes);
  if (!p) throw std::bad_alloc();
  s = Slot{p, bytes, cached};
  held.fetch_add(bytes, std::memory_order_relaxed);
  g_held.fetch_add(bytes, std::memory_order_relaxed);
}

void ThreadScratch::free_slot(Slot& s) {
  if (s.cached) output_cache_give(s.ptr);
  else std::free(s.ptr);
  held.fetch_sub(s.bytes, std::memory_order_relaxed);
  g_held.fetch_sub(s.bytes, std::memory_order_relaxed);
  s = Slot{};
}

// Every thread's buffers. Never destroyed: pool workers are detached and may outlive statics.
struct Registry {
  std::mutex m;
  std::vector<std::shared_ptr<ThreadScratch>> threads;
};
Registry* g_registry = new Registry;

// The calling thread's entry: registered on first use, freed and unregistered at thread exit.
struct Owner {
  std::shared_ptr<ThreadScratch> ts = std::make_shared<ThreadScratch>();
  int depth = 0;  // open ScratchScopes on this thread
  Owner() {
    std::lock_guard<std::mutex> lock(g_registry->m);
    g_registry->threads.push_back(ts);
  }
  ~Owner() {
    {
      std::lock_guard<std::mutex> lock(g_registry->m);
      auto& v = g_registry->threads;
      v.erase(std::remove(v.begin(), v.end(), ts), v.end());
    }
    std::lock_guard<std::mutex> lock(ts->in_use);
    ts->trim_to(0);
  }
};
thread_local Owner t_owner;

// A forked child runs only the thread that forked. Every entry is dropped without touching its
// lock (another thread may have held any of them, this thread's included, when the parent
// forked), and this thread starts with fresh, empty buffers; the parent's stay allocated in the
// child, unused (at most the per-thread limit each).
void fresh_buffers_after_fork() {
  g_registry = new Registry;
  Owner& o = t_owner;  // registers itself in the new registry when it is created here
  if (!g_registry->threads.empty()) return;
  o.ts = std::make_shared<ThreadScratch>();
  g_registry->threads.push_back(o.ts);
  g_held.store(0, std::memory_order_relaxed);
}
[[maybe_unused]] const int g_atfork = pthread_atfork(nullptr, nullptr, fresh_buffers_after_fork);

void trim_all_scratch(size_t limit) {
  std::vector<std::shared_ptr<ThreadScratch>> threads;
  {
    std::lock_guard<std::mutex> lock(g_registry->m);
    threads = g_registry->threads;
  }
  // One lock at a time, none held while waiting for another: a kernel that holds its thread's
  // buffers can always finish (its workers' buffers are never held here for long).
  const Owner& self = t_owner;
  for (const auto& ts : threads) {
    if (ts == self.ts && self.depth > 0) continue;  // called from inside a kernel: keep ours
    std::lock_guard<std::mutex> lock(ts->in_use);
    ts->trim_to(limit);
  }
}

}  // namespace

void* scratch_bytes(int slot, size_t bytes) {
  Owner& o = t_owner;
  if (o.depth == 0 || slot < 0 || slot >= kScratchSlots)
    throw std::logic_error("fastconv: scratch buffer requested outside a ScratchScope");
  bytes = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
  Slot& s = o.ts->slots[slot];
  if (s.bytes < bytes) o.ts->allocate(s, bytes);
  return s.ptr;
}

ScratchScope::ScratchScope() {
  Owner& o = t_owner;
  if (o.depth++ == 0) o.ts->in_use.lock();
}

ScratchScope::~ScratchScope() {
  Owner& o = t_owner;
  if (--o.depth == 0) {
    o.ts->trim_to(g_limit.load(std::memory_order_relaxed));
    o.ts->in_use.unlock();
  }
}

size_t scratch_limit() { return g_limit.load(std::memory_order_relaxed); }
size_t scratch_bytes_held() { return g_held.load(std::memory_order_relaxed); }

int scratch_threads() {
  std::lock_guard<std::mutex> lock(g_registry->m);
  int n = 0;
  for (const auto& ts : g_registry->threads) n += ts->held.load(std::memory_order_relaxed) > 0;
  return n;
}

void set_scratch_limit(size_t bytes) {
  g_limit.store(bytes, std::memory_order_relaxed);
  trim_all_scratch(bytes);
}

void release_all_scratch() { trim_all_scratch(0); }

}  // namespace fastconv
