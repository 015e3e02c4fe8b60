#include "thread_pool.h"

#include "runtime.h"
#include "scratch.h"

#include <pthread.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define FASTCONV_PAUSE() _mm_pause()
#else
#define FASTCONV_PAUSE() ((void)0)
#endif

namespace fastconv {
namespace pool {
namespace {

// Idle workers spin this long before they sleep. Long enough to catch the next kernel of the same
// training step (tens of microseconds of Python between calls), short enough that a NumPy
// operation run after our last kernel has the cores to itself almost at once. Measured on 2
// cores: the MNIST training step takes 25.5 / 24.6 / 23.9 ms with 0 / 100 / 1000 us, and a NumPy
// matmul right after a conv runs 1.0-1.2x / 1.0-1.2x / 1.4-2.3x its time alone with 0 / 100 /
// >= 3000 us (fastconv.bench coexist, bench/results/coexist.txt).
constexpr int kDefaultSpinUs = 100;

std::atomic<int> g_spin_us{static_cast<int>(env_number("FASTCONV_SPIN_US", 0, 1000000, kDefaultSpinUs))};

thread_local bool t_in_team = false;  // workers always; the caller while its team runs

struct Pool {
  std::mutex m;
  std::condition_variable wake;
  std::atomic<uint64_t> epoch{0};  // bumped for every new team
  std::atomic<int> sleepers{0};
  std::atomic<bool> busy{false};  // a team is running
  std::atomic<int> active{0};     // workers inside the current team's fn
  int started = 0;                // workers started (guarded by m)
  std::atomic<int> last_team{1};  // threads that ran the last team's fn (tests)
  // The current team, guarded by m: workers join while seats > 0.
  void (*fn)(void*) = nullptr;
  void* ctx = nullptr;
  int seats = 0;
  std::exception_ptr error;

  void record(std::exception_ptr e) {
    std::lock_guard<std::mutex> lock(m);
    if (!error) error = e;
  }

  // Waits until epoch differs from `seen`: spins for spin_us, then sleeps. Returns the new epoch.
  uint64_t wait_for_team(uint64_t seen) {
    const int spin = g_spin_us.load(std::memory_order_relaxed);
    if (spin > 0) {
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(spin);
      for (int i = 0;; ++i) {
        const uint64_t e = epoch.load(std::memory_order_acquire);
        if (e != seen) return e;
        FASTCONV_PAUSE();
        if ((i & 63) == 63 && std::chrono::steady_clock::now() >= until) break;
      }
    }
    std::unique_lock<std::mutex> lock(m);
    sleepers.fetch_add(1, std::memory_order_relaxed);
    wake.wait(lock, [&] { return epoch.load(std::memory_order_relaxed) != seen; });
    sleepers.fetch_sub(1, std::memory_order_relaxed);
    return epoch.load(std::memory_order_relaxed);
  }

  void worker_loop() {
    t_in_team = true;  // kernels called from inside a chunk run inline
    uint64_t seen = 0;
    for (;;) {
      seen = wait_for_team(seen);
      void (*f)(void*) = nullptr;
      void* c = nullptr;
      {
        std::lock_guard<std::mutex> lock(m);
        if (!fn || seats == 0) continue;  // too late: the caller has done the work
        --seats;
        seen = epoch.load(std::memory_order_relaxed);  // never take a second seat in this team
        active.fetch_add(1, std::memory_order_relaxed);
        f = fn;
        c = ctx;
      }
      try {
        ScratchScope scratch_in_use;  // this worker's buffers live for its share of the team
        f(c);
      } catch (...) {
        record(std::current_exception());
      }
      active.fetch_sub(1, std::memory_order_release);
    }
  }

  // Starts workers until `want` exist (fewer when the OS refuses a thread or memory runs out);
  // returns how many of them may join a team: at most `want`, never more than started.
  int ensure_workers(int want) {
    std::lock_guard<std::mutex> lock(m);
    while (started < want) {
      try {
        std::thread([this] { worker_loop(); }).detach();
      } catch (...) {
        break;
      }
      ++started;
    }
    return std::min(started, want);
  }
};

// Never destroyed: detached workers may still be waiting on its condition variable at exit.
Pool* g_pool = new Pool;

// A forked child has none of the parent's workers (a data-loader process, multiprocessing with
// fork): give it a fresh pool that starts its own.
void reset_after_fork() { g_pool = new Pool; }
[[maybe_unused]] const int g_atfork = pthread_atfork(nullptr, nullptr, reset_after_fork);

}  // namespace

// Clears the pool's busy flag however run_team leaves.
class BusyGuard {
 public:
  explicit BusyGuard(std::atomic<bool>& busy) : busy_(busy) {}
  ~BusyGuard() { busy_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool>& busy_;
};

void run_team(int threads, void (*fn)(void*), void* ctx) {
  Pool& p = *g_pool;
  if (threads <= 1 || t_in_team || p.busy.exchange(true, std::memory_order_acquire)) {
    fn(ctx);  // nested, or another thread's team is running: this call's chunks run here
    return;
  }
  BusyGuard guard(p.busy);
  const int seats = p.ensure_workers(std::min(threads, kMaxThreads) - 1);
  {
    std::lock_guard<std::mutex> lock(p.m);
    p.fn = fn;
    p.ctx = ctx;
    p.seats = seats;
    p.error = nullptr;
    p.epoch.fetch_add(1, std::memory_order_release);
  }
  const int sleeping = p.sleepers.load(std::memory_order_relaxed);
  for (int i = 0; i < std::min(sleeping, seats); ++i) p.wake.notify_one();

  t_in_team = true;
  try {
    fn(ctx);
  } catch (...) {
    p.record(std::current_exception());
  }
  t_in_team = false;
  int joined;
  {
    std::lock_guard<std::mutex> lock(p.m);  // from here on no worker joins
    joined = seats - p.seats;
    p.fn = nullptr;
    p.seats = 0;
  }
  // The queue is empty; wait only for chunks still in progress on workers.
  for (int i = 0; p.active.load(std::memory_order_acquire) > 0; ++i) {
    if (i < 4096) FASTCONV_PAUSE();
    else std::this_thread::yield();
  }
  p.last_team.store(1 + joined, std::memory_order_relaxed);
  std::exception_ptr error;
  {
    std::lock_guard<std::mutex> lock(p.m);
    error = p.error;
    p.error = nullptr;
  }
  if (error) std::rethrow_exception(error);
}

int spin_us() { return g_spin_us.load(std::memory_order_relaxed); }
void set_spin_us(int us) { g_spin_us.store(us < 0 ? 0 : us, std::memory_order_relaxed); }

int workers_started() {
  std::lock_guard<std::mutex> lock(g_pool->m);
  return g_pool->started;
}

int last_team_threads() { return g_pool->last_team.load(std::memory_order_relaxed); }

}  // namespace pool
}  // namespace fastconv
