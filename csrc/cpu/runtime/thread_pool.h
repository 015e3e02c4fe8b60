// fastconv's own worker threads: every parallel CPU kernel runs through parallel_for or
// parallel_team below (no OpenMP).
//
// Why not OpenMP. In a user's training loop our kernels alternate with NumPy code whose BLAS has
// its own threads. After a parallel region libgomp's threads spin for milliseconds and take a core
// from the NumPy matmul that runs next (1.5-2.7x slower on 2 cores), and a static OpenMP schedule
// waits for its slowest thread, which on a busy machine is the one the OS descheduled. Here:
//  - work is cut into chunks handed out one at a time from an atomic counter, and the calling
//    thread takes part: a worker that is late, descheduled or sharing its core with a spinning
//    BLAS thread simply takes fewer chunks, and the caller never waits for a worker to start;
//  - an idle worker spins for spin_us() (set_spin_us, FASTCONV_SPIN_US) and then sleeps on a
//    condition variable, so it never holds a core for long when there is no work for it;
//  - one team at a time: a call from a second Python thread while a team runs, or from inside a
//    chunk, runs its chunks on its own thread;
//  - an exception thrown in a chunk (std::bad_alloc from a scratch buffer) is passed to the caller
//    after the team has finished, where the bindings turn it into a Python exception.
// Results never depend on which thread ran a chunk: the kernels keep scratch per thread, but every
// output element is written by one chunk, in an order fixed by the chunk boundaries alone.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>

namespace fastconv {

// Chunks of [0, n) of `grain` items, taken in increasing order by whichever thread asks first.
class ChunkQueue {
 public:
  ChunkQueue(int64_t n, int64_t grain) : n_(n), grain_(grain < 1 ? 1 : grain) {}
  bool next(int64_t* begin, int64_t* end) {
    const int64_t b = next_.fetch_add(grain_, std::memory_order_relaxed);
    if (b >= n_) return false;
    *begin = b;
    *end = std::min(n_, b + grain_);
    return true;
  }

 private:
  std::atomic<int64_t> next_{0};
  const int64_t n_, grain_;
};

namespace pool {
// Runs fn(ctx) on the calling thread and on up to threads - 1 workers that join in time; returns
// when every thread that joined has returned. fn must share its work out through a ChunkQueue.
void run_team(int threads, void (*fn)(void*), void* ctx);
int spin_us();
void set_spin_us(int us);  // how long an idle worker spins before it sleeps (0: sleep at once)
int workers_started();     // threads the pool has started (for tests and the environment report)
int last_team_threads();   // threads (caller included) that ran the last team (for tests)
}  // namespace pool

// team(queue) runs once on each of up to `threads` threads; each takes chunks of [0, n) from the
// shared queue until it is empty. Use it when a thread needs its own set-up (a ring of rows, packed
// weights) before it takes chunks.
template <class Team>
void parallel_team(int threads, int64_t n, int64_t grain, Team&& team) {
  ChunkQueue queue(n, grain);
  const int64_t chunks = (n + std::max<int64_t>(grain, 1) - 1) / std::max<int64_t>(grain, 1);
  if (threads <= 1 || chunks <= 1) {
    team(queue);
    return;
  }
  struct Ctx {
    Team* team;
    ChunkQueue* queue;
  } ctx{&team, &queue};
  pool::run_team(
      static_cast<int>(std::min<int64_t>(threads, chunks)),
      [](void* p) {
        Ctx* c = static_cast<Ctx*>(p);
        (*c->team)(*c->queue);
      },
      &ctx);
}

// body(begin, end) over chunks of [0, n) of `grain` items, on up to `threads` threads.
template <class Body>
void parallel_for(int threads, int64_t n, int64_t grain, Body&& body) {
  parallel_team(threads, n, grain, [&body](ChunkQueue& queue) {
    int64_t b, e;
    while (queue.next(&b, &e)) body(b, e);
  });
}

// About 8 chunks per thread: few enough that taking a chunk costs nothing, enough that a thread
// slowed down by another process leaves its share to the others.
inline int64_t default_grain(int64_t n, int threads) {
  return std::max<int64_t>(1, n / (8 * int64_t(std::max(threads, 1))));
}

template <class Body>
void parallel_for(int threads, int64_t n, Body&& body) {
  parallel_for(threads, n, default_grain(n, threads), static_cast<Body&&>(body));
}

}  // namespace fastconv
