// Fiber scheduler of the CUDA host emulation (see cuda_emu.h for the model).
#include "cuda_emu.h"

#include <ucontext.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <thread>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

namespace cuda_emu {
namespace {

// Each emulated thread gets its own stack. The kernels keep a few hundred bytes of registers
// (at most an 8x8 accumulator tile of doubles) on it; 64 KiB leaves room for -O0 builds.
constexpr size_t kStackBytes = 64 * 1024;

struct Fiber {
  ucontext_t ctx;
  uint3 tid;
  bool done;
  char* stack;
  void* fake_stack;  // AddressSanitizer's bookkeeping across switches
};

// One per host worker: the fibers of the block it is running and the scheduler's context.
struct BlockRunner {
  const std::function<void()>* body = nullptr;
  std::vector<Fiber> fibers;
  std::unique_ptr<char[]> stacks;  // fibers.size() * kStackBytes, left uninitialized
  std::vector<unsigned> order;     // the order of the current round
  ucontext_t scheduler;
  Fiber* current = nullptr;
  const void* scheduler_stack = nullptr;  // for AddressSanitizer's stack-switch annotations
  size_t scheduler_stack_bytes = 0;
  void* scheduler_fake_stack = nullptr;
};

thread_local BlockRunner* t_runner = nullptr;
std::atomic<int> g_workers{0};
std::atomic<ThreadOrder> g_order{ThreadOrder::forward};
std::atomic<uint64_t> g_seed{0};

// AddressSanitizer must be told when execution moves to another stack, or it misreads the
// fibers' frames (false reports, missed ones). No-ops in other builds.
#if defined(__SANITIZE_ADDRESS__)
void entering_fiber(BlockRunner& r, Fiber& f) {
  __sanitizer_start_switch_fiber(&r.scheduler_fake_stack, f.stack, kStackBytes);
}
void back_in_scheduler(BlockRunner& r) { __sanitizer_finish_switch_fiber(r.scheduler_fake_stack, nullptr, nullptr); }
void running_in_fiber(BlockRunner& r) {
  __sanitizer_finish_switch_fiber(r.current->fake_stack, &r.scheduler_stack, &r.scheduler_stack_bytes);
}
void leaving_fiber(BlockRunner& r, bool finished) {
  __sanitizer_start_switch_fiber(finished ? nullptr : &r.current->fake_stack, r.scheduler_stack,
                                 r.scheduler_stack_bytes);
}
#else
void entering_fiber(BlockRunner&, Fiber&) {}
void back_in_scheduler(BlockRunner&) {}
void running_in_fiber(BlockRunner&) {}
void leaving_fiber(BlockRunner&, bool) {}
#endif

void fiber_main() {
  BlockRunner* r = t_runner;
  running_in_fiber(*r);
  (*r->body)();
  r->current->done = true;
  leaving_fiber(*r, true);
  // returning resumes uc_link, the scheduler
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// The order of round `round` of block `block` (a permutation of 0..n-1 in r.order).
void order_round(BlockRunner& r, unsigned n, uint64_t block, uint64_t round) {
  r.order.resize(n);
  std::iota(r.order.begin(), r.order.end(), 0u);
  switch (g_order.load(std::memory_order_relaxed)) {
    case ThreadOrder::forward:
      break;
    case ThreadOrder::reverse:
      std::reverse(r.order.begin(), r.order.end());
      break;
    case ThreadOrder::shuffled: {  // Fisher-Yates from a hash of (seed, block, round)
      uint64_t state =
          splitmix64(g_seed.load(std::memory_order_relaxed) ^ splitmix64(block) ^ splitmix64(round + 0x51ED));
      for (unsigned i = n; i > 1; --i) {
        state = splitmix64(state);
        std::swap(r.order[i - 1], r.order[state % i]);
      }
      break;
    }
  }
}

// Runs one block to completion; false when its threads reach different numbers of barriers.
bool run_block(BlockRunner& r, dim3 block, uint3 block_idx, uint64_t block_linear) {
  const unsigned n = block.x * block.y * block.z;
  blockIdx = block_idx;
  for (unsigned i = 0; i < n; ++i) {
    Fiber& f = r.fibers[i];
    getcontext(&f.ctx);
    f.stack = r.stacks.get() + size_t(i) * kStackBytes;
    f.ctx.uc_stack.ss_sp = f.stack;
    f.ctx.uc_stack.ss_size = kStackBytes;
    f.ctx.uc_link = &r.scheduler;
    makecontext(&f.ctx, fiber_main, 0);
    f.tid = {i % block.x, (i / block.x) % block.y, i / (block.x * block.y)};
    f.done = false;
    f.fake_stack = nullptr;
  }
  // Rounds: resume every live thread once; each stops at its next barrier or at its end.
  // A round is legal when all n threads stopped at a barrier, or none did (all finished).
  for (uint64_t round = 0;; ++round) {
    unsigned waiting = 0;
    order_round(r, n, block_linear, round);
    for (unsigned i : r.order) {
      Fiber& f = r.fibers[i];
      if (f.done) continue;
      r.current = &f;
      threadIdx = f.tid;
      entering_fiber(r, f);
      swapcontext(&r.scheduler, &f.ctx);
      back_in_scheduler(r);
      if (!f.done) ++waiting;
    }
    if (waiting == 0) return true;
    if (waiting != n) return false;  // abandoned fibers hold no resources beyond their stacks
  }
}

}  // namespace

int workers() {
  int w = g_workers.load();
  if (w > 0) return w;
  const char* env = std::getenv("FASTCONV_EMU_WORKERS");
  w = env ? std::atoi(env) : 0;
  if (w < 1) w = static_cast<int>(std::min(2u, std::max(1u, std::thread::hardware_concurrency())));
  g_workers.store(w);
  return w;
}

void set_workers(int n) { g_workers.store(n < 1 ? 1 : n); }

void set_thread_order(ThreadOrder order, uint64_t seed) {
  g_order.store(order);
  g_seed.store(seed);
}

cudaError_t run_grid(dim3 grid, dim3 block, const std::function<void()>& body) {
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  const uint64_t blocks = uint64_t(grid.x) * grid.y * grid.z;
  if (threads == 0 || threads > 1024 || blocks == 0 || block.z > 64 || grid.y > 65535 || grid.z > 65535)
    return cudaErrorInvalidConfiguration;

  std::atomic<uint64_t> next{0};
  std::atomic<bool> ok{true};
  auto work = [&] {
    BlockRunner r;
    r.body = &body;
    r.fibers.resize(threads);
    r.stacks.reset(new char[threads * kStackBytes]);
    BlockRunner* saved = t_runner;
    t_runner = &r;
    blockDim = block;
    gridDim = grid;
    for (uint64_t b = next++; b < blocks && ok.load(); b = next++) {
      const uint3 idx{unsigned(b % grid.x), unsigned((b / grid.x) % grid.y), unsigned(b / (uint64_t(grid.x) * grid.y))};
      if (!run_block(r, block, idx, b)) ok.store(false);
    }
    t_runner = saved;
  };

  const int n_workers = static_cast<int>(std::min<uint64_t>(workers(), blocks));
  std::vector<std::thread> helpers;
  for (int i = 1; i < n_workers; ++i) helpers.emplace_back(work);
  work();
  for (auto& t : helpers) t.join();
  return ok.load() ? cudaSuccess : cudaErrorLaunchFailure;
}

}  // namespace cuda_emu

void __syncthreads() {
  cuda_emu::BlockRunner* r = cuda_emu::t_runner;
  if (r == nullptr) std::abort();  // a kernel called outside cuda_emu::run_grid
  cuda_emu::leaving_fiber(*r, false);
  swapcontext(&r->current->ctx, &r->scheduler);
  cuda_emu::running_in_fiber(*r);
}

const char* cudaGetErrorString(cudaError_t err) {
  switch (err) {
    case cudaSuccess:
      return "no error";
    case cudaErrorInvalidValue:
      return "invalid argument";
    case cudaErrorInvalidConfiguration:
      return "invalid configuration argument";
    case cudaErrorLaunchFailure:
      return "unspecified launch failure (emulation: the threads of a block did not all reach "
             "the same __syncthreads() barriers)";
  }
  return "unknown error";
}
